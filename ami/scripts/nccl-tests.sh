#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# nccl-tests (all_reduce_perf and friends) against /opt/nccl and Open MPI, in /opt/nccl-tests.
# The test phase runs a single-node all_reduce_perf over every GPU of the test instance and
# fails on a wrong result (nccl-tests checks the reduced values) or zero bandwidth.
#   nccl-tests.sh install --version V --url U --sha256 S --cuda-architectures "80 90"
#   nccl-tests.sh validate | test [--max-bytes 128M]
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

BIN=${MLHPC_NCCL_TESTS_BIN:-/opt/nccl-tests/bin}

# check_output FILE: the verdict lines nccl-tests prints after a run.
check_output() {
  local out=$1 wrong bandwidth
  wrong=$(sed -n 's/^# Out of bounds values : \([0-9]*\).*/\1/p' "$out")
  bandwidth=$(sed -n 's/^# Avg bus bandwidth *: *\([0-9.]*\).*/\1/p' "$out")
  [[ -n $wrong && -n $bandwidth ]] || die "all_reduce_perf printed no verdict (see the output above)"
  ((wrong == 0)) || die "all_reduce_perf found $wrong wrong values: NCCL corrupts data on this instance"
  awk -v b="$bandwidth" 'BEGIN { exit !(b > 0) }' || die "all_reduce_perf measured no bandwidth ($bandwidth GB/s)"
  log "all_reduce_perf: 0 wrong values, average bus bandwidth $bandwidth GB/s"
}

case $action in
  install)
    require version url cuda_architectures
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/nccl-tests.tar.gz"
    unpack "$MLHPC_WORK/nccl-tests.tar.gz" "$MLHPC_WORK/nccl-tests"
    make -C "$MLHPC_WORK/nccl-tests" -j "$(nproc)" MPI=1 MPI_HOME=/opt/amazon/openmpi \
      CUDA_HOME=/usr/local/cuda NCCL_HOME=/opt/nccl NVCC_GENCODE="$(gencode "$ARG_CUDA_ARCHITECTURES")"
    install -d "$BIN"
    install -m 0755 "$MLHPC_WORK"/nccl-tests/build/*_perf "$BIN"/
    rm -rf "$MLHPC_WORK/nccl-tests" "$MLHPC_WORK/nccl-tests.tar.gz"
    record nccl_tests "$ARG_VERSION"
    ;;
  validate) [[ -x $BIN/all_reduce_perf ]] || die "$BIN/all_reduce_perf is missing" ;;
  test)
    gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
    ((gpus > 0)) || die "no GPU on the test instance: all_reduce_perf needs at least one"
    out=$(mktemp)
    # One process driving every local GPU (-g): NCCL's intra-node path (NVLink/PCIe), no MPI needed.
    LD_LIBRARY_PATH=/opt/nccl/lib:/opt/aws-ofi-nccl/lib:/opt/amazon/openmpi/lib64:${LD_LIBRARY_PATH:-} \
      "$BIN/all_reduce_perf" -b 8 -e "${ARG_MAX_BYTES:-128M}" -f 2 -g "$gpus" -c 1 | tee "$out" ||
      die "all_reduce_perf exited with an error"
    check_output "$out"
    rm -f "$out"
    ;;
  *) die "usage: nccl-tests.sh install|validate|test [options]" ;;
esac
