"""The network domain: the VPC, its endpoints and flow logs, and the NET rules.

NET003 also reads ``project.region``: the fix it offers is in either section, the check is about zones.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field

from mlhpc.config.common import RetentionDays, Section
from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.errors import echo, shorten

if TYPE_CHECKING:
    from mlhpc.config.model import Config


_AZ_RE = re.compile(r"^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d)([a-z])$")


def _az(value: str) -> str:
    if not _AZ_RE.match(value):
        raise ValueError(
            f"{echo(value)} is not an Availability Zone name; expected a region followed by a letter, "
            "such as 'us-east-1a'"
        )
    return value


def _ipv4_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(
            f"{echo(value)} is not an IPv4 CIDR block ({shorten(str(err))}); use a block such as '10.0.0.0/16'"
        ) from err
    if not 16 <= net.prefixlen <= 24:
        raise ValueError(
            f"a VPC CIDR of /{net.prefixlen} is outside what mlhpc supports (/16 to /24); use e.g. '10.0.0.0/16'"
        )
    if not net.is_private:
        raise ValueError(
            f"{echo(value)} is not a private (RFC 1918) range; use e.g. '10.0.0.0/16' or '172.16.0.0/16'"
        )
    return value


AvailabilityZone = Annotated[str, AfterValidator(_az)]
VpcCidr = Annotated[str, AfterValidator(_ipv4_cidr)]


class InterfaceEndpoint(StrEnum):
    """AWS services reached privately through interface VPC endpoints."""

    ECR_API = "ecr.api"
    ECR_DKR = "ecr.dkr"
    LOGS = "logs"
    MONITORING = "monitoring"
    SSM = "ssm"
    SSM_MESSAGES = "ssmmessages"
    EC2_MESSAGES = "ec2messages"
    EC2 = "ec2"
    STS = "sts"
    SECRETS_MANAGER = "secretsmanager"
    KMS = "kms"
    SAGEMAKER_API = "sagemaker.api"
    SAGEMAKER_RUNTIME = "sagemaker.runtime"
    BATCH = "batch"
    ECS = "ecs"
    ECS_AGENT = "ecs-agent"
    ECS_TELEMETRY = "ecs-telemetry"
    ELASTIC_FILESYSTEM = "elasticfilesystem"


DEFAULT_INTERFACE_ENDPOINTS: tuple[InterfaceEndpoint, ...] = (
    InterfaceEndpoint.ECR_API,
    InterfaceEndpoint.ECR_DKR,
    InterfaceEndpoint.LOGS,
    InterfaceEndpoint.SSM,
    InterfaceEndpoint.SSM_MESSAGES,
    InterfaceEndpoint.EC2_MESSAGES,
    InterfaceEndpoint.STS,
    InterfaceEndpoint.SECRETS_MANAGER,
    InterfaceEndpoint.SAGEMAKER_API,
    InterfaceEndpoint.SAGEMAKER_RUNTIME,
    InterfaceEndpoint.BATCH,
)


class FlowLogTraffic(StrEnum):
    """Which packets VPC flow logs record."""

    ALL = "ALL"
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"


class FlowLogsConfig(Section):
    """VPC flow logs, delivered to a KMS-encrypted CloudWatch log group."""

    traffic_type: FlowLogTraffic = FlowLogTraffic.ALL
    retention_days: RetentionDays = 90
    max_aggregation_interval_s: Literal[60, 600] = Field(default=600, description="60 or 600 seconds.")


class NetworkConfig(Section):
    """The VPC every other stack lives in."""

    cidr: VpcCidr = "10.0.0.0/16"
    az_count: int = Field(default=2, ge=2, le=6, description="Availability Zones spanned (at least 2).")
    availability_zones: tuple[AvailabilityZone, ...] | None = Field(
        default=None,
        description="Explicit AZ names (length az_count), e.g. where GPU capacity is; "
        "default: the first az_count zones CloudFormation's Fn::GetAZs returns for the account.",
    )
    nat_gateways: int = Field(default=1, ge=0, le=6, description="NAT gateways; 1 keeps the default cheap.")
    public_subnet_mask: int = Field(default=24, ge=16, le=28)
    private_subnet_mask: int = Field(default=20, ge=16, le=28)
    gateway_endpoints: bool = Field(default=True, description="S3 and DynamoDB gateway endpoints (free).")
    interface_endpoints: tuple[InterfaceEndpoint, ...] = DEFAULT_INTERFACE_ENDPOINTS
    flow_logs: FlowLogsConfig = FlowLogsConfig()


# --- rules ------------------------------------------------------------------------------------


def nat_within_azs(config: Config) -> Iterator[ConfigIssue]:
    """NET001: a NAT gateway lives in one AZ's public subnet, so there can be at most one per AZ."""
    net = config.network
    if net.nat_gateways > net.az_count:
        yield ConfigIssue(
            code="NET001",
            path="network.nat_gateways",
            value=net.nat_gateways,
            message=f"{net.nat_gateways} NAT gateways for {net.az_count} Availability Zones: at most one per zone",
            fix=f"set network.nat_gateways to {net.az_count} or fewer (1 is cheapest, {net.az_count} is "
            "zone-redundant)",
        )


def zones_match_count(config: Config) -> Iterator[ConfigIssue]:
    """NET002/NET003: explicit AZ names must number az_count, be distinct and lie in the region."""
    net, region = config.network, config.project.region
    if net.availability_zones is None:
        return
    zones = net.availability_zones
    if len(zones) != net.az_count:
        yield ConfigIssue(
            code="NET002",
            path="network.availability_zones",
            value=list(zones),
            message=f"{len(zones)} zones listed but az_count is {net.az_count}",
            fix=f"list exactly {net.az_count} zones, or set network.az_count to {len(zones)}",
        )
    if len(set(zones)) != len(zones):
        yield ConfigIssue(
            code="NET002",
            path="network.availability_zones",
            value=list(zones),
            message="the same zone is listed twice; subnets must spread over distinct zones",
            fix="list each zone once",
        )
    for index, zone in enumerate(zones):
        if zone[:-1] != region:
            yield ConfigIssue(
                code="NET003",
                path=f"network.availability_zones[{index}]",
                value=zone,
                message=f"zone '{zone}' is not in the project's region {region}",
                fix=f"use a zone of {region} (e.g. '{region}a'), or change project.region to '{zone[:-1]}'",
            )


def subnets_fit(config: Config) -> Iterator[ConfigIssue]:
    """NET005: every AZ gets one public and one private subnet; they must fit inside the VPC CIDR."""
    net = config.network
    vpc = ipaddress.IPv4Network(net.cidr)
    for name, mask in (
        ("public_subnet_mask", net.public_subnet_mask),
        ("private_subnet_mask", net.private_subnet_mask),
    ):
        if mask <= vpc.prefixlen:
            yield ConfigIssue(
                code="NET005",
                path=f"network.{name}",
                value=mask,
                message=f"a /{mask} subnet is not smaller than the /{vpc.prefixlen} VPC",
                fix=f"set network.{name} to more than {vpc.prefixlen} (e.g. {min(vpc.prefixlen + 4, 28)})",
            )
            return
    needed = net.az_count * (2 ** (32 - net.public_subnet_mask) + 2 ** (32 - net.private_subnet_mask))
    if needed > vpc.num_addresses:
        yield ConfigIssue(
            code="NET005",
            path="network.cidr",
            value=net.cidr,
            message=f"{net.az_count} public /{net.public_subnet_mask} and {net.az_count} private "
            f"/{net.private_subnet_mask} subnets need {needed} addresses; /{vpc.prefixlen} has {vpc.num_addresses}",
            fix="use a larger VPC CIDR (e.g. a /16), fewer zones, or larger subnet masks (smaller subnets)",
        )


def egress_warnings(config: Config) -> Iterator[ConfigIssue]:
    """NET006/NET007: NAT choices that are legal but have consequences a person should know."""
    net = config.network
    if net.nat_gateways == 0:
        yield ConfigIssue(
            code="NET006",
            level=Level.WARNING,
            path="network.nat_gateways",
            value=0,
            message="no NAT gateway: private subnets are isolated and reach AWS only through VPC endpoints",
            fix="keep it if images come from ECR through the endpoints; set 1 to allow package and image pulls",
        )
    elif net.nat_gateways < net.az_count:
        yield ConfigIssue(
            code="NET007",
            level=Level.INFO,
            path="network.nat_gateways",
            value=net.nat_gateways,
            message=f"{net.nat_gateways} NAT gateway(s) for {net.az_count} zones: cheaper, but a zone outage can "
            "cut egress for the others",
            fix=f"set network.nat_gateways: {net.az_count} for production",
        )
