#!/bin/bash
# Prepares an mlhpc Batch node before the ECS agent starts: shared file systems,
# memlock and huge pages for EFA. Rendered by stacks/constructs/node_setup.py: the
# dollar-brace names below are filled in by CloudFormation (Fn::Sub), and the
# dollar-brace-bang forms become plain shell expansions.
set -euo pipefail
exec > >(tee -a /var/log/mlhpc-node-setup.log) 2>&1

FSX_DNS="${FsxDnsName}"
FSX_MOUNT="${FsxMountName}"
EFS_ID="${EfsId}"
HUGEPAGES="${HugePages}"
REGION="${AWS::Region}"

echo "mlhpc node setup: fsx=${!FSX_DNS:-none} efs=${!EFS_ID:-none} hugepages=${!HUGEPAGES}"

# EFA registers (pins) buffers; the default 64 KiB memlock limit makes NCCL fail.
cat > /etc/security/limits.d/90-mlhpc-memlock.conf <<'LIMITS'
* soft memlock unlimited
* hard memlock unlimited
LIMITS
# Containers inherit Docker's default ulimits, not limits.d.
mkdir -p /etc/docker
if [ ! -s /etc/docker/daemon.json ]; then echo '{}' > /etc/docker/daemon.json; fi
python3 - <<'PY'
import json
path = "/etc/docker/daemon.json"
config = json.load(open(path))
config.setdefault("default-ulimits", {})["memlock"] = {"Name": "memlock", "Soft": -1, "Hard": -1}
json.dump(config, open(path, "w"), indent=2)
PY

# libfabric's EFA provider allocates its bounce buffers from 2 MiB huge pages.
if [ "${!HUGEPAGES}" -gt 0 ]; then
  echo "vm.nr_hugepages = ${!HUGEPAGES}" > /etc/sysctl.d/90-mlhpc-hugepages.conf
  sysctl -w "vm.nr_hugepages=${!HUGEPAGES}"
fi

install_if_missing() {
  local command=$1 package=$2
  if ! command -v "$command" >/dev/null 2>&1; then
    dnf install -y "$package" || yum install -y "$package"
  fi
}

if [ -n "${!FSX_DNS}" ]; then
  # The mlhpc AMI (ami/) ships the Lustre client; the stock ECS GPU AMI does not.
  install_if_missing mount.lustre lustre-client
  mkdir -p /fsx
  echo "${!FSX_DNS}@tcp:/${!FSX_MOUNT} /fsx lustre defaults,relatime,flock,_netdev,x-systemd.automount,x-systemd.requires=network.service 0 0" >> /etc/fstab
  mount /fsx
fi

if [ -n "${!EFS_ID}" ]; then
  install_if_missing mount.efs amazon-efs-utils
  mkdir -p /efs
  # tls: encrypted in transit (the file system policy refuses anything else). iam: the mount
  # is made as the instance role, which the file system policy requires: it allows mounts of
  # this account's roles through a mount target, root access only to roles under the node
  # role's path (StorageStack), and refuses clients mounting without IAM.
  echo "${!EFS_ID}:/ /efs efs _netdev,noresvport,tls,iam 0 0" >> /etc/fstab
  mount /efs
fi

# Nodes run the health check when the image provides it (ami/scripts/health-check.sh).
if [ -x /opt/mlhpc/bin/health-check.sh ]; then
  /opt/mlhpc/bin/health-check.sh --region "${!REGION}"
fi
echo "mlhpc node setup: done"
