#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# Hardening: security updates at bake time, no password or root SSH, Session Manager
# instead of SSH keys. IMDSv2-only is enforced where instances start (the launch template
# and Image Builder's infrastructure configuration); the test phase proves it from inside.
#   harden.sh install | validate | test
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

SSHD_DROPIN=/etc/ssh/sshd_config.d/10-mlhpc-hardening.conf

case $action in
  install)
    # Security errata only: the parent image's other packages stay as AWS released them.
    dnf -y upgrade --security --refresh
    # sshd reads drop-ins in name order and keeps the first value it sees: 10- wins over
    # cloud-init's 50-cloud-init.conf.
    cat >"$SSHD_DROPIN" <<'SSHD'
# mlhpc image hardening: keys only (and normally Session Manager, no SSH at all).
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
X11Forwarding no
MaxAuthTries 3
SSHD
    chmod 0600 "$SSHD_DROPIN"
    passwd -l root >/dev/null
    rpm -q amazon-ssm-agent >/dev/null || dnf -y install amazon-ssm-agent
    systemctl enable amazon-ssm-agent
    log "hardening applied"
    ;;
  validate)
    settings=$(sshd -T)
    for expected in "passwordauthentication no" "kbdinteractiveauthentication no" "permitrootlogin no" \
      "permitemptypasswords no"; do
      grep -qx "$expected" <<<"$settings" || die "sshd is not hardened: expected '$expected' in 'sshd -T'"
    done
    systemctl is-enabled --quiet amazon-ssm-agent || die "amazon-ssm-agent is not enabled; nodes would be unreachable without SSH"
    # dnf exits 100 when updates are available.
    if ! dnf -q check-update --security >/dev/null; then
      die "security updates are still pending after the build phase: $(dnf -q updateinfo list --security | head -n5)"
    fi
    log "hardening validated"
    ;;
  test)
    # The test instance runs with HttpTokens=required: a request without a session token must fail.
    code=$(curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id || true)
    [[ $code == 401 ]] || die "IMDSv1 answered (HTTP $code): the instance does not require IMDSv2 tokens"
    systemctl is-active --quiet amazon-ssm-agent || die "amazon-ssm-agent is not running on the test instance"
    log "IMDSv2-only and Session Manager confirmed on the test instance"
    ;;
  *) die "usage: harden.sh install|validate|test" ;;
esac
