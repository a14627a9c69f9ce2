"""Checks of a config against a real account: instance types offered in the zones, quotas large enough.

Synthesis never calls AWS; these checks do, so they live in `mlhpc validate FILE --online`.
Each finding is a :class:`~mlhpc.config.ConfigIssue` with a stable code:

* ``ONL001`` a zone pinned in the config does not exist in the region;
* ``ONL002`` an instance type is not offered in a zone the cluster uses;
* ``ONL003`` an instance type is not offered anywhere in the region (or does not exist);
* ``ONL004`` the vCPU quota of the instance family is below what the nodes need;
* ``ONL005`` the quota could not be read (warning: the check was skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlhpc.config import Config, ConfigIssue, Level
from mlhpc_app.aws.session import Aws, with_backoff

# EC2 vCPU-based quotas (service code "ec2"), by instance family letter(s), On-Demand and Spot.
# Source: the Service Quotas console / `aws service-quotas list-service-quotas --service-code ec2`.
ON_DEMAND = {
    "p": ("L-417A185B", "Running On-Demand P instances"),
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "inf": ("L-1945791B", "Running On-Demand Inf instances"),
    "trn": ("L-2C3B7624", "Running On-Demand Trn instances"),
    "dl": ("L-6E869C2A", "Running On-Demand DL instances"),
    "x": ("L-7295265B", "Running On-Demand X instances"),
    "f": ("L-74FC7D96", "Running On-Demand F instances"),
}
STANDARD = ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
SPOT = {
    "p": ("L-7212CCBC", "All P Spot Instance Requests"),
    "g": ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    "vt": ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    "inf": ("L-B5D1601B", "All Inf Spot Instance Requests"),
    "trn": ("L-6B0D517C", "All Trn Spot Instance Requests"),
    "dl": ("L-85EED4F7", "All DL Spot Instance Requests"),
    "x": ("L-E3A00192", "All X Spot Instance Requests"),
    "f": ("L-88CF9481", "All F Spot Instance Requests"),
}
STANDARD_SPOT = ("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests")


def family(instance_type: str) -> str:
    """Return the quota family of an instance type: 'p5.48xlarge' -> 'p', 'inf2.xlarge' -> 'inf'."""
    letters = ""
    for char in instance_type.split(".", maxsplit=1)[0]:
        if not char.isalpha():
            break
        letters += char
    for prefix in ("inf", "trn", "dl", "vt"):
        if letters.startswith(prefix):
            return prefix
    return letters[:1]


def quota_for(instance_type: str, *, spot: bool) -> tuple[str, str]:
    """Return (quota code, quota name) limiting the vCPUs of an instance type."""
    table, default = (SPOT, STANDARD_SPOT) if spot else (ON_DEMAND, STANDARD)
    return table.get(family(instance_type), default)


def instance_types_of(config: Config) -> list[tuple[str, str]]:
    """Return (path, instance type) pairs the config asks for (HpcStack's compute section, when present)."""
    found: list[tuple[str, str]] = []
    hpc = getattr(config, "hpc", None)
    compute = getattr(hpc, "compute", None)
    for attr in ("instance_types", "gpu_instance_types", "cpu_instance_types"):
        for index, value in enumerate(getattr(compute, attr, None) or []):
            found.append((f"hpc.compute.{attr}[{index}]", str(value)))
    return found


def _zones(aws: Aws, config: Config) -> tuple[list[str], list[ConfigIssue]]:
    ec2 = aws.client("ec2")
    available = with_backoff(
        lambda: ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}]),
        what="ec2:DescribeAvailabilityZones",
    )["AvailabilityZones"]
    names = sorted(
        z["ZoneName"] for z in available if z.get("ZoneType", "availability-zone") == "availability-zone"
    )
    pinned = list(config.network.availability_zones or [])
    issues = []
    for index, zone in enumerate(pinned):
        if zone not in names:
            issues.append(
                ConfigIssue(
                    path=f"network.availability_zones[{index}]",
                    code="ONL001",
                    message=f"zone {zone} does not exist (or is not available) in {aws.region}",
                    value=zone,
                    fix=f"use zones of {aws.region}: {', '.join(names)}",
                )
            )
    return (pinned or names[: config.network.az_count]), issues


def check(
    aws: Aws,
    config: Config,
    *,
    extra_instance_types: Iterable[str] = (),
    nodes: int = 1,
    spot: bool = False,
) -> list[ConfigIssue]:
    """Return every online finding for a config (an empty list: the account can take it)."""
    from botocore.exceptions import ClientError

    zones, issues = _zones(aws, config)
    wanted = instance_types_of(config) + [
        (f"--instance-type[{i}]", t) for i, t in enumerate(extra_instance_types)
    ]
    ec2 = aws.client("ec2")
    quotas = aws.client("service-quotas")
    needed: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for path, itype in wanted:
        offered = with_backoff(
            lambda t=itype: ec2.describe_instance_type_offerings(  # type: ignore[misc]
                LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [t]}]
            ),
            what="ec2:DescribeInstanceTypeOfferings",
        )["InstanceTypeOfferings"]
        where = sorted({o["Location"] for o in offered})
        if not where:
            issues.append(
                ConfigIssue(
                    path=path,
                    code="ONL003",
                    value=itype,
                    message=f"{itype} is not offered in any zone of {aws.region}",
                    fix="check the name (`aws ec2 describe-instance-types`) or choose a region that has it",
                )
            )
            continue
        missing = [z for z in zones if z not in where]
        if missing:
            issues.append(
                ConfigIssue(
                    path=path,
                    code="ONL002",
                    value=itype,
                    message=f"{itype} is not offered in {', '.join(missing)} (offered in: {', '.join(where)})",
                    fix="pin network.availability_zones to zones that offer it, e.g. "
                    f"[{', '.join(where[: max(2, config.network.az_count)])}]",
                )
            )
        described: list[dict[str, Any]] = with_backoff(
            lambda t=itype: ec2.describe_instance_types(InstanceTypes=[t])["InstanceTypes"],  # type: ignore[misc]
            what="ec2:DescribeInstanceTypes",
        )
        vcpus = int(described[0]["VCpuInfo"]["DefaultVCpus"]) if described else 0
        key = quota_for(itype, spot=spot)
        total, paths = needed.get(key, (0, []))
        needed[key] = (total + vcpus * nodes, [*paths, f"{itype} x{nodes} ({vcpus * nodes} vCPUs)"])
    for (code, name), (vcpus, what) in sorted(needed.items()):
        try:
            value = _quota(quotas, code)
        except ClientError as err:
            issues.append(
                ConfigIssue(
                    path="hpc.compute",
                    code="ONL005",
                    level=Level.WARNING,
                    value=code,
                    message=f"could not read the quota '{name}' ({code}): {err.response['Error'].get('Code')}",
                    fix="allow servicequotas:GetServiceQuota, or check the quota in the Service Quotas console",
                )
            )
            continue
        if value < vcpus:
            issues.append(
                ConfigIssue(
                    path="hpc.compute",
                    code="ONL004",
                    value=int(value),
                    message=f"quota '{name}' ({code}) is {value:g} vCPUs; {' + '.join(what)} need {vcpus}",
                    fix=f"request an increase to at least {vcpus}: aws service-quotas request-service-quota-increase "
                    f"--service-code ec2 --quota-code {code} --desired-value {vcpus}",
                )
            )
    return issues


def _quota(client: Any, code: str) -> float:
    """Return the applied quota value, falling back to the AWS default when none is applied."""
    from botocore.exceptions import ClientError

    try:
        return float(
            with_backoff(
                lambda: client.get_service_quota(ServiceCode="ec2", QuotaCode=code),
                what="servicequotas:GetServiceQuota",
            )["Quota"]["Value"]
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchResourceException":
            raise
    return float(
        with_backoff(
            lambda: client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code),
            what="servicequotas:GetAWSDefaultServiceQuota",
        )["Quota"]["Value"]
    )
