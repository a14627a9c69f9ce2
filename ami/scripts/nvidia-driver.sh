#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# The NVIDIA driver. The default parent image (the ECS GPU-optimized AMI) already ships one
# that AWS keeps working with its ECS agent and container toolkit: with --policy keep_base
# it is kept when it is new enough for the CUDA pin. With --policy install_pinned the pinned
# runfile is installed on a parent without a driver, and a different driver is an error.
#   nvidia-driver.sh install --version V --url U --sha256 S --policy P --minimum-driver M
#   nvidia-driver.sh validate --minimum-driver M
#   nvidia-driver.sh test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

installed_driver() { modinfo -F version nvidia 2>/dev/null || true; }

case $action in
  install)
    require version url policy minimum_driver
    current=$(installed_driver)
    if [[ -n $current ]]; then
      case $ARG_POLICY in
        keep_base)
          version_ge "$current" "$ARG_MINIMUM_DRIVER" ||
            die "the parent image's NVIDIA driver $current is older than $ARG_MINIMUM_DRIVER, the minimum for the CUDA pin; choose a newer parent image or set image.gpu.driver: install_pinned on a parent without a driver"
          log "keeping the parent image's NVIDIA driver $current (policy keep_base)"
          ;;
        install_pinned)
          [[ $current == "$ARG_VERSION" ]] ||
            die "the parent image already has NVIDIA driver $current but versions.yaml pins $ARG_VERSION; use a parent image without a driver (plain Amazon Linux 2023) or set image.gpu.driver: keep_base"
          ;;
        *) die "unknown --policy '$ARG_POLICY'; use keep_base or install_pinned" ;;
      esac
      record nvidia_driver "$current"
      exit 0
    fi
    [[ $ARG_POLICY == install_pinned ]] ||
      die "the parent image has no NVIDIA driver and image.gpu.driver is keep_base; set image.gpu.driver: install_pinned to install the pinned one"
    dnf -y install "kernel-devel-$(uname -r)" "kernel-headers-$(uname -r)" dkms gcc make
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/nvidia-driver.run"
    sh "$MLHPC_WORK/nvidia-driver.run" --silent --dkms --no-questions --ui=none
    systemctl enable nvidia-persistenced || true
    record nvidia_driver "$ARG_VERSION"
    ;;
  validate)
    require minimum_driver
    current=$(installed_driver)
    [[ -n $current ]] || die "no NVIDIA kernel module is installed"
    version_ge "$current" "$ARG_MINIMUM_DRIVER" || die "NVIDIA driver $current is older than $ARG_MINIMUM_DRIVER"
    [[ $(recorded nvidia_driver) == "$current" ]] || die "installed driver $current is not the one the build recorded ($(recorded nvidia_driver))"
    nvidia-smi -L || die "nvidia-smi cannot talk to the driver"
    ;;
  test)
    count=$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)
    ((count > 0)) || die "nvidia-smi lists no GPU on the test instance"
    /opt/mlhpc/bin/health-check.sh --skip-fsx --no-mark
    log "$count GPU(s) healthy"
    ;;
  *) die "usage: nvidia-driver.sh install|validate|test [options]" ;;
esac
