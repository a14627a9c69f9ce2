"""Cross-field configuration rules: plain functions, each with a stable code and a fix.

A rule takes the whole (already type-checked) :class:`Config` and yields
:class:`ConfigIssue` objects. Errors stop synthesis and ``mlhpc validate`` exits 1;
warnings and infos are printed and do not. Add a rule by writing a function and
listing it in :data:`RULES`; give it the next free code of its family.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.config.model import Config

Rule = Callable[[Config], Iterator[ConfigIssue]]


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


RULES: tuple[Rule, ...] = (
    nat_within_azs,
    zones_match_count,
    subnets_fit,
    egress_warnings,
)


def check_rules(config: Config) -> list[ConfigIssue]:
    """Run every rule and return all issues, errors first."""
    found = [issue for rule in RULES for issue in rule(config)]
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}
    return sorted(found, key=lambda i: order[i.level])
