#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# NVIDIA DCGM from NVIDIA's signed repository: GPU health, diagnostics and telemetry.
#   dcgm.sh install --packages "name-version ..." --repo-url U --key-url K --key-sha256 S
#   dcgm.sh validate --packages "name-version ..."
#   dcgm.sh test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

case $action in
  install)
    require packages repo_url key_url
    add_repo nvidia-cuda "$ARG_REPO_URL" "$ARG_KEY_URL" "${ARG_KEY_SHA256:-}"
    read -r -a specs <<<"$ARG_PACKAGES"
    dnf -y install "${specs[@]}"
    systemctl enable nvidia-dcgm
    record dcgm "$ARG_PACKAGES"
    ;;
  validate)
    require packages
    read -r -a specs <<<"$ARG_PACKAGES"
    for spec in "${specs[@]}"; do rpm -q "$spec" >/dev/null || die "$spec is not installed (rpm -q)"; done
    ;;
  test)
    systemctl start nvidia-dcgm
    dcgmi discovery -l || die "DCGM cannot discover the GPUs"
    # Level 1: the quick software and deployment checks (seconds, no GPU stress).
    dcgmi diag -r 1 || die "DCGM diagnostics (level 1) failed"
    ;;
  *) die "usage: dcgm.sh install|validate|test [options]" ;;
esac
