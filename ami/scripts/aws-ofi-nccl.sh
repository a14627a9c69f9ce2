#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# aws-ofi-nccl: the NCCL network plugin that carries NCCL traffic over libfabric's EFA
# provider, built against the EFA installer's libfabric and Open MPI, in /opt/aws-ofi-nccl.
#   aws-ofi-nccl.sh install --version V --url U --sha256 S
#   aws-ofi-nccl.sh validate --version V
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

case $action in
  install)
    require version url
    dnf -y install autoconf automake libtool hwloc-devel gcc-c++
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/aws-ofi-nccl.tar.gz"
    unpack "$MLHPC_WORK/aws-ofi-nccl.tar.gz" "$MLHPC_WORK/aws-ofi-nccl"
    (
      cd "$MLHPC_WORK/aws-ofi-nccl"
      ./autogen.sh
      ./configure --prefix=/opt/aws-ofi-nccl --with-libfabric=/opt/amazon/efa \
        --with-cuda=/usr/local/cuda --with-mpi=/opt/amazon/openmpi --disable-tests
      make -j "$(nproc)"
      make install
    )
    ldconf aws-ofi-nccl /opt/aws-ofi-nccl/lib
    rm -rf "$MLHPC_WORK/aws-ofi-nccl" "$MLHPC_WORK/aws-ofi-nccl.tar.gz"
    record aws_ofi_nccl "$ARG_VERSION"
    ;;
  validate)
    require version
    plugin=$(compgen -G '/opt/aws-ofi-nccl/lib/libnccl-net*.so' | head -n1) || true
    [[ -n $plugin ]] || die "no NCCL net plugin (libnccl-net*.so) in /opt/aws-ofi-nccl/lib"
    # The plugin logs its own version at start-up; the string is compiled in.
    grep -aq "$ARG_VERSION" "$plugin" || die "$plugin does not carry version $ARG_VERSION"
    ;;
  test) ldconfig -p | grep -q 'libnccl-net' || die "the dynamic linker cannot find the NCCL net plugin" ;;
  *) die "usage: aws-ofi-nccl.sh install|validate|test [options]" ;;
esac
