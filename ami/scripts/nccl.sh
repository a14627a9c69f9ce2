#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# NCCL built from the verified source for the manifest's GPU architectures, in /opt/nccl.
#   nccl.sh install --version V --url U --sha256 S --cuda-architectures "80 90"
#   nccl.sh validate --version V
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

case $action in
  install)
    require version url cuda_architectures
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/nccl.tar.gz"
    unpack "$MLHPC_WORK/nccl.tar.gz" "$MLHPC_WORK/nccl"
    make -C "$MLHPC_WORK/nccl" -j "$(nproc)" src.build CUDA_HOME=/usr/local/cuda \
      NVCC_GENCODE="$(gencode "$ARG_CUDA_ARCHITECTURES")"
    make -C "$MLHPC_WORK/nccl" src.install PREFIX=/opt/nccl
    ldconf nccl /opt/nccl/lib
    rm -rf "$MLHPC_WORK/nccl" "$MLHPC_WORK/nccl.tar.gz"
    record nccl "$ARG_VERSION"
    ;;
  validate)
    require version
    header=/opt/nccl/include/nccl.h
    built=$(awk '/#define NCCL_(MAJOR|MINOR|PATCH) /{v = v (v ? "." : "") $3} END {print v}' "$header")
    [[ $built == "${ARG_VERSION%-*}" ]] || die "/opt/nccl is NCCL $built, versions.yaml pins $ARG_VERSION"
    compgen -G '/opt/nccl/lib/libnccl.so.*' >/dev/null || die "libnccl.so is missing from /opt/nccl/lib"
    ;;
  test) ldconfig -p | grep -q 'libnccl.so' || die "the dynamic linker cannot find libnccl.so" ;;
  *) die "usage: nccl.sh install|validate|test [options]" ;;
esac
