#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# GDRCopy: low-latency GPU memory copies over GPUDirect RDMA (used by NCCL and libfabric on
# p4d/p5). Built as RPMs from the verified source so the gdrdrv module rebuilds with DKMS.
#   gdrcopy.sh install --version V --url U --sha256 S
#   gdrcopy.sh validate --version V
#   gdrcopy.sh test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

case $action in
  install)
    require version url
    dnf -y install dkms rpm-build make gcc check check-devel subunit subunit-devel "kernel-devel-$(uname -r)"
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/gdrcopy.tar.gz"
    unpack "$MLHPC_WORK/gdrcopy.tar.gz" "$MLHPC_WORK/gdrcopy"
    (cd "$MLHPC_WORK/gdrcopy/packages" && CUDA=/usr/local/cuda ./build-rpm-packages.sh)
    find "$MLHPC_WORK/gdrcopy/packages" -name '*.rpm' ! -name '*.src.rpm' -exec dnf -y install {} +
    systemctl enable gdrcopy
    rm -rf "$MLHPC_WORK/gdrcopy" "$MLHPC_WORK/gdrcopy.tar.gz"
    record gdrcopy "$ARG_VERSION"
    ;;
  validate)
    require version
    found=$(rpm -q --qf '%{VERSION}' gdrcopy) || die "the gdrcopy package is not installed"
    [[ $found == "$ARG_VERSION" ]] || die "gdrcopy $found is installed, versions.yaml pins $ARG_VERSION"
    ;;
  test)
    lsmod | grep -q '^gdrdrv' || die "the gdrdrv kernel module is not loaded"
    gdrcopy_copybw || die "gdrcopy_copybw failed: GPUDirect RDMA copies do not work"
    ;;
  *) die "usage: gdrcopy.sh install|validate|test [options]" ;;
esac
