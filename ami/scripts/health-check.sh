#!/bin/bash
# mlhpc node health check, installed in the image as /opt/mlhpc/bin/health-check.sh and run by
# the Batch node user data (stacks/userdata/node-setup.sh) before the ECS agent starts:
#   - GPUs: every NVIDIA GPU on the PCI bus is visible to nvidia-smi, with no uncorrectable ECC
#     errors and no retired pages waiting for a reset;
#   - EFA: every EFA device on the PCI bus is bound to the efa driver and libfabric's EFA
#     provider works; with --expect-efa N (or when the instance type supports EFA and
#     DescribeInstanceTypes can be asked) at least N devices are present;
#   - FSx for Lustre: every lustre entry in /etc/fstab is mounted and answers.
# An unhealthy node gets a clear message on the console and in the journal, a status file
# (/var/lib/mlhpc/health.json), and its ECS agent masked so that Batch never places a job
# on it; the script then exits 1. --dry-run checks and reports but changes nothing.
#
# Usage: health-check.sh [--region R] [--dry-run] [--no-mark] [--expect-efa N]
#                        [--expect-gpus N] [--skip-fsx] [--root DIR]
#   --root DIR reads sysfs, /proc/mounts and /etc/fstab under DIR (tests use a fake tree).
# Exit: 0 healthy, 1 unhealthy, 2 usage error.
set -uo pipefail

REGION="" DRY_RUN=false MARK=true EXPECT_EFA="" EXPECT_GPUS="" SKIP_FSX=false ROOT=""
usage() {
  printf 'usage: health-check.sh [--region R] [--dry-run] [--no-mark] [--expect-efa N] [--expect-gpus N] [--skip-fsx] [--root DIR]\n' >&2
  exit 2
}
count_arg() { [[ $2 =~ ^[0-9]+$ ]] || {
  printf 'health-check: %s needs a whole number, got %s\n' "$1" "'$2'" >&2
  exit 2
}; }
while (($#)); do
  case $1 in
    --region) (($# >= 2)) || usage; REGION=$2; shift ;;
    --dry-run) DRY_RUN=true ;;
    --no-mark) MARK=false ;;
    --expect-efa) (($# >= 2)) || usage; count_arg "$1" "$2"; EXPECT_EFA=$2; shift ;;
    --expect-gpus) (($# >= 2)) || usage; count_arg "$1" "$2"; EXPECT_GPUS=$2; shift ;;
    --skip-fsx) SKIP_FSX=true ;;
    --root) (($# >= 2)) || usage; ROOT=${2%/}; shift ;;
    -h | --help) usage ;;
    *) printf 'health-check: unknown option %s\n' "'$1'" >&2; usage ;;
  esac
  shift
done
$DRY_RUN && MARK=false
STATUS_FILE=${MLHPC_HEALTH_STATUS:-$ROOT/var/lib/mlhpc/health.json}

failures=()
notes=()
fail() { failures+=("$*"); }
note() { notes+=("$*"); }

# pci_count VENDOR CLASS_PREFIX [DEVICE_PREFIX]: PCI functions matching vendor, class and device.
pci_count() {
  local vendor=$1 class=$2 device=${3:-} dev n=0
  for dev in "$ROOT"/sys/bus/pci/devices/*; do
    [[ -r $dev/vendor ]] || continue
    [[ $(<"$dev/vendor") == "$vendor" ]] || continue
    [[ $(<"$dev/class") == "$class"* ]] || continue
    [[ -z $device || $(<"$dev/device") == "$device"* ]] || continue
    n=$((n + 1))
  done
  echo "$n"
}

check_gpus() {
  # NVIDIA (0x10de) 3D/VGA controllers (class 0x03xxxx); NVSwitches are bridges (0x0680) and not counted.
  local on_bus listed index bus ecc pending
  on_bus=$(pci_count 0x10de 0x03)
  if [[ -n $EXPECT_GPUS ]] && ((on_bus < EXPECT_GPUS)); then
    fail "GPU: $on_bus NVIDIA GPU(s) on the PCI bus, expected $EXPECT_GPUS (a GPU fell off the bus; stop and start the instance)"
  fi
  if ((on_bus == 0)); then
    note "GPU: none on this instance"
    return
  fi
  if ! command -v nvidia-smi >/dev/null; then
    fail "GPU: $on_bus GPU(s) on the PCI bus but nvidia-smi is not installed (is this the mlhpc GPU image?)"
    return
  fi
  if ! listed=$(nvidia-smi --query-gpu=index,pci.bus_id,ecc.errors.uncorrected.volatile.total,retired_pages.pending --format=csv,noheader,nounits 2>&1); then
    fail "GPU: nvidia-smi failed: ${listed//$'\n'/ }"
    return
  fi
  local count=0
  while IFS=', ' read -r index bus ecc pending; do
    [[ -n $index ]] || continue
    count=$((count + 1))
    if [[ $ecc =~ ^[0-9]+$ ]] && ((ecc > 0)); then
      fail "GPU $index ($bus): $ecc uncorrectable ECC error(s) since the driver loaded"
    fi
    if [[ $pending == Yes ]]; then
      fail "GPU $index ($bus): retired pages are pending; the GPU needs a reset before it can be trusted"
    fi
  done <<<"$listed"
  if ((count != on_bus)); then
    fail "GPU: nvidia-smi sees $count of the $on_bus GPU(s) on the PCI bus"
  else
    note "GPU: $count healthy"
  fi
}

efa_expected_from_api() {
  # The instance type's EFA support from the EC2 API; silent when the CLI, IMDS or permission is missing.
  local token type
  command -v aws >/dev/null && [[ -n $REGION ]] || return 0
  token=$(curl -sf -m 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token) || return 0
  type=$(curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" http://169.254.169.254/latest/meta-data/instance-type) || return 0
  aws ec2 describe-instance-types --region "$REGION" --instance-types "$type" \
    --query 'InstanceTypes[0].NetworkInfo.EfaSupported' --output text 2>/dev/null | grep -qx True && echo 1
}

check_efa() {
  # Amazon (0x1d0f) network controllers (0x02xxxx) with an EFA device id (0xefa*).
  local on_bus bound=0 dev expected
  on_bus=$(pci_count 0x1d0f 0x02 0xefa)
  for dev in "$ROOT"/sys/class/infiniband/*; do
    [[ -e $dev/device/driver ]] || continue
    [[ $(readlink -f "$dev/device/driver") == */efa ]] && bound=$((bound + 1))
  done
  expected=${EXPECT_EFA:-$(efa_expected_from_api)}
  if [[ -n $expected ]] && ((on_bus < expected)); then
    fail "EFA: $on_bus EFA device(s) attached, expected at least $expected (check the launch template's EFA interfaces)"
  fi
  if ((on_bus == 0)); then
    note "EFA: none attached"
    return
  fi
  if ((bound < on_bus)); then
    fail "EFA: $on_bus EFA device(s) on the PCI bus but $bound bound to the efa driver (modprobe efa; is the EFA installer in the image?)"
    return
  fi
  local fi_info=fi_info
  [[ -x /opt/amazon/efa/bin/fi_info ]] && fi_info=/opt/amazon/efa/bin/fi_info
  if ! "$fi_info" -p efa -t FI_EP_RDM >/dev/null 2>&1; then
    fail "EFA: $bound device(s) bound but libfabric's EFA provider does not start (fi_info -p efa)"
    return
  fi
  note "EFA: $bound device(s) healthy"
}

check_fsx() {
  local spec mountpoint fstype rest found=0
  [[ -r $ROOT/etc/fstab ]] || return 0
  while read -r spec mountpoint fstype rest; do
    [[ $spec == \#* || $fstype != lustre ]] && continue
    found=$((found + 1))
    if ! awk -v m="$mountpoint" '$2 == m && $3 == "lustre" { ok = 1 } END { exit !ok }' "$ROOT/proc/mounts"; then
      fail "FSx: $spec is in /etc/fstab but not mounted at $mountpoint (mount $mountpoint; check the FSx security group and the lustre client)"
    elif ! timeout 10 stat -f "$ROOT$mountpoint" >/dev/null 2>&1; then
      fail "FSx: $mountpoint is mounted but does not answer within 10 s"
    else
      note "FSx: $mountpoint mounted"
    fi
  done <"$ROOT/etc/fstab"
  ((found > 0)) || note "FSx: no lustre file system in /etc/fstab"
}

say() {
  # Console and journal: what an operator sees in `aws ec2 get-console-output` and journalctl.
  printf '%s\n' "$*"
  if ! $DRY_RUN; then
    logger -t mlhpc-health "$*" 2>/dev/null || true
    [[ -w /dev/console ]] && printf '%s\n' "$*" >/dev/console 2>/dev/null
  fi
  return 0
}

write_status() {
  local status=$1 json_failures="" item
  for item in "${failures[@]}"; do
    item=${item//\\/\\\\}
    json_failures+="${json_failures:+, }\"${item//\"/\\\"}\""
  done
  if $DRY_RUN; then
    say "MLHPC-HEALTH: dry run: would write $STATUS_FILE with status $status"
    return
  fi
  mkdir -p "$(dirname "$STATUS_FILE")"
  printf '{"status": "%s", "checked_at": "%s", "failures": [%s]}\n' \
    "$status" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$json_failures" >"$STATUS_FILE"
}

mark_unhealthy() {
  # Batch places jobs on a node only through its ECS agent: a node whose agent never starts
  # never gets a job, and Batch replaces capacity that does not register.
  if $DRY_RUN; then
    say "MLHPC-HEALTH: dry run: would mask ecs.service so this node takes no jobs"
  elif $MARK; then
    systemctl mask --now ecs.service >/dev/null 2>&1 || true
    say "MLHPC-HEALTH: ecs.service masked: this node will take no Batch jobs"
  fi
}

check_gpus
check_efa
$SKIP_FSX || check_fsx

for item in "${notes[@]}"; do say "MLHPC-HEALTH: ok: $item"; done
if ((${#failures[@]} == 0)); then
  write_status healthy
  say "MLHPC-HEALTH: HEALTHY"
  exit 0
fi
for item in "${failures[@]}"; do say "MLHPC-HEALTH: UNHEALTHY: $item"; done
write_status unhealthy
mark_unhealthy
exit 1
