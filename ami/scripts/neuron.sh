#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# AWS Neuron (driver, runtime, tools) from the signed Neuron repository, pinned per target:
# Inf2/Trn use the current release, Inf1 the last driver line that supports it.
#   neuron.sh install --packages "name-version ..." --repo-url U --key-url K --key-sha256 S
#   neuron.sh validate --packages "name-version ..."
#   neuron.sh test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

NEURON_BIN=${MLHPC_NEURON_BIN:-/opt/aws/neuron/bin}

case $action in
  install)
    require packages repo_url key_url
    dnf -y install "kernel-devel-$(uname -r)" "kernel-headers-$(uname -r)"
    add_repo neuron "$ARG_REPO_URL" "$ARG_KEY_URL" "${ARG_KEY_SHA256:-}"
    read -r -a specs <<<"$ARG_PACKAGES"
    dnf -y install "${specs[@]}"
    # shellcheck disable=SC2016 # $PATH expands at login, not now
    printf 'export PATH=%s:$PATH\n' "$NEURON_BIN" >/etc/profile.d/mlhpc-neuron.sh
    record neuron "$ARG_PACKAGES"
    ;;
  validate)
    require packages
    read -r -a specs <<<"$ARG_PACKAGES"
    for spec in "${specs[@]}"; do rpm -q "$spec" >/dev/null || die "$spec is not installed (rpm -q)"; done
    ;;
  test)
    compgen -G '/dev/neuron*' >/dev/null || die "no /dev/neuron* device: the test instance must be an Inferentia/Trainium type"
    listing=$("$NEURON_BIN/neuron-ls") || die "neuron-ls failed: the Neuron driver does not see the devices"
    printf '%s\n' "$listing"
    ;;
  *) die "usage: neuron.sh install|validate|test [options]" ;;
esac
