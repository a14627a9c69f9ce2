#!/bin/bash
# shellcheck disable=SC2154 source-path=SCRIPTDIR # ARG_* are set by parse_args (lib.sh)
# The CloudWatch agent, started at boot with a config that publishes memory, disk and (on GPU
# images) nvidia-smi metrics to the CWAgent namespace, which HpcStack's dashboard reads.
#   cloudwatch-agent.sh install --version V --url U --sha256 S --gpu true|false
#   cloudwatch-agent.sh validate --version V
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action=${1:-}
(($#)) && shift
parse_args "$@"

CONFIG=/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json

case $action in
  install)
    require version url gpu
    fetch_verified "$ARG_URL" "${ARG_SHA256:-}" "$MLHPC_WORK/amazon-cloudwatch-agent.rpm"
    dnf -y install "$MLHPC_WORK/amazon-cloudwatch-agent.rpm"
    gpu_metrics=""
    if [[ $ARG_GPU == true ]]; then
      gpu_metrics=',"nvidia_gpu": {"measurement": ["utilization_gpu", "utilization_memory", "memory_used", "temperature_gpu", "power_draw"], "metrics_collection_interval": 60}'
    fi
    cat >"$CONFIG" <<JSON
{
  "agent": {"metrics_collection_interval": 60, "run_as_user": "cwagent"},
  "metrics": {
    "namespace": "CWAgent",
    "append_dimensions": {"InstanceId": "\${aws:InstanceId}", "InstanceType": "\${aws:InstanceType}"},
    "metrics_collected": {
      "mem": {"measurement": ["mem_used_percent"]},
      "disk": {"measurement": ["used_percent"], "resources": ["/"]}$gpu_metrics
    }
  }
}
JSON
    python3 -m json.tool "$CONFIG" >/dev/null || die "the generated CloudWatch agent config is not valid JSON"
    systemctl enable amazon-cloudwatch-agent
    rm -f "$MLHPC_WORK/amazon-cloudwatch-agent.rpm"
    record cloudwatch_agent "$ARG_VERSION"
    ;;
  validate)
    require version
    found=$(rpm -q --qf '%{VERSION}' amazon-cloudwatch-agent) || die "amazon-cloudwatch-agent is not installed"
    [[ $found == "$ARG_VERSION"* ]] || die "amazon-cloudwatch-agent $found is installed, versions.yaml pins $ARG_VERSION"
    [[ -s $CONFIG ]] || die "$CONFIG is missing"
    ;;
  test)
    /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -c "file:$CONFIG" -s ||
      die "the CloudWatch agent does not start with $CONFIG"
    ;;
  *) die "usage: cloudwatch-agent.sh install|validate|test [options]" ;;
esac
