#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# The CUDA toolkit from NVIDIA's runfile, toolkit only (the driver is nvidia-driver.sh's job),
# in /usr/local/cuda-MAJOR.MINOR with /usr/local/cuda pointing at it.
#   cuda.sh install --version V --url U --sha256 S
#   cuda.sh validate --version V
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

case $action in
  install)
    require version url
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/cuda.run"
    prefix=/usr/local/cuda-${ARG_VERSION%.*}
    sh "$MLHPC_WORK/cuda.run" --silent --toolkit --toolkitpath="$prefix" --no-opengl-libs --override \
      --tmpdir=/var/tmp
    ln -sfn "$prefix" /usr/local/cuda
    # shellcheck disable=SC2016 # $PATH expands at login, not now
    printf 'export PATH=/usr/local/cuda/bin:$PATH\n' >/etc/profile.d/mlhpc-cuda.sh
    ldconf cuda /usr/local/cuda/lib64
    rm -f "$MLHPC_WORK/cuda.run"
    record cuda "$ARG_VERSION"
    ;;
  validate)
    require version
    found=$(python3 -c 'import json; print(json.load(open("/usr/local/cuda/version.json"))["cuda"]["version"])')
    [[ $found == "$ARG_VERSION" ]] || die "/usr/local/cuda is CUDA $found, versions.yaml pins $ARG_VERSION"
    /usr/local/cuda/bin/nvcc --version >/dev/null || die "nvcc does not run"
    ;;
  test) /usr/local/cuda/bin/nvcc --version ;;
  *) die "usage: cuda.sh install|validate|test [options]" ;;
esac
