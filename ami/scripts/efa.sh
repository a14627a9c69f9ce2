#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# The EFA installer: the efa kernel module, libfabric with the EFA provider, rdma-core and
# Open MPI (openmpi40-aws in /opt/amazon/openmpi), all from one verified tarball.
#   efa.sh install --version V --url U --sha256 S
#   efa.sh validate --version V --openmpi-version O
#   efa.sh test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

# EFA devices are PCI functions of vendor 0x1d0f (Amazon) bound to the efa driver; an instance
# only has them when its launch attached EFA interfaces (Image Builder's build instance never does).
efa_devices() { compgen -G '/sys/class/infiniband/*' | while read -r dev; do [[ $(readlink -f "$dev/device/driver") == */efa ]] && echo "$dev"; done; }

case $action in
  install)
    require version url
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/efa.tar.gz"
    unpack "$MLHPC_WORK/efa.tar.gz" "$MLHPC_WORK/efa"
    (cd "$MLHPC_WORK/efa" && ./efa_installer.sh -y)
    rm -rf "$MLHPC_WORK/efa" "$MLHPC_WORK/efa.tar.gz"
    record efa_installer "$ARG_VERSION"
    ;;
  validate)
    require version openmpi_version
    grep -q "EFA installer version: $ARG_VERSION$" /opt/amazon/efa_installed_packages ||
      die "/opt/amazon/efa_installed_packages does not record EFA installer $ARG_VERSION"
    /opt/amazon/efa/bin/fi_info --version >/dev/null || die "libfabric's fi_info does not run"
    /opt/amazon/openmpi/bin/mpirun --version | grep -q "Open MPI) $ARG_OPENMPI_VERSION$" ||
      die "/opt/amazon/openmpi is not Open MPI $ARG_OPENMPI_VERSION: $(/opt/amazon/openmpi/bin/mpirun --version | head -n1)"
    record openmpi "$ARG_OPENMPI_VERSION"
    ;;
  test)
    if [[ -z $(efa_devices) ]]; then
      log "no EFA device on this instance (none attached); skipping fi_info -p efa"
      exit 0
    fi
    /opt/amazon/efa/bin/fi_info -p efa -t FI_EP_RDM || die "EFA devices are present but libfabric's EFA provider does not work"
    ;;
  *) die "usage: efa.sh install|validate|test [options]" ;;
esac
