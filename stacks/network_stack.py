"""NetworkStack: the VPC every other stack is placed in."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mlhpc.config.network import NetworkConfig
from stacks.constructs.endpoints import PrivateEndpoints
from stacks.constructs.flow_logs import EncryptedFlowLogs


class NetworkStack(Stack):
    """A VPC over several zones: public subnets for NAT only, private subnets for everything else.

    Attributes other stacks take through their constructors:
    ``vpc``, ``private_subnets`` (a selection), ``endpoints`` (its security group admits
    HTTPS from the VPC).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: NetworkConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        pinned = config.availability_zones is not None
        # Unpinned: the first az_count zones Fn::GetAZs returns at deploy time, so the
        # template works in any region and account (zone names differ per account).
        zones = list(
            config.availability_zones or [Fn.select(i, Fn.get_azs()) for i in range(config.az_count)]
        )
        private_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if config.nat_gateways > 0 else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.cidr),
            availability_zones=zones,
            nat_gateways=config.nat_gateways,
            enable_dns_hostnames=True,  # private DNS names of interface endpoints need both
            enable_dns_support=True,
            # CloudFormation cannot empty the default security group itself; CDK does it
            # with a small custom resource, so nothing can use it by accident.
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=config.public_subnet_mask,
                    # Public subnets hold only NAT gateways (which have their own Elastic IPs):
                    # nothing launched there should get a public address by accident.
                    map_public_ip_on_launch=False,
                ),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=private_type, cidr_mask=config.private_subnet_mask
                ),
            ],
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=private_type)
        if pinned:
            for subnet in [*self.vpc.public_subnets, *self.vpc.private_subnets, *self.vpc.isolated_subnets]:
                cfn = subnet.node.default_child
                assert isinstance(cfn, CfnResource)
                # cfn-lint W3010 warns about literal zone names; here they are the user's
                # explicit choice (network.availability_zones), usually where GPU capacity is.
                cfn.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})

        self.flow_logs = EncryptedFlowLogs(self, "FlowLogs", vpc=self.vpc, config=config.flow_logs)
        self.endpoints = PrivateEndpoints(
            self,
            "Endpoints",
            vpc=self.vpc,
            subnets=self.private_subnets,
            interface_services=config.interface_endpoints,
            client_cidr=config.cidr,
            gateway_endpoints=config.gateway_endpoints,
        )

        self.private_subnet_list = self.vpc.select_subnets(subnet_type=private_type).subnets
        private_ids = [s.subnet_id for s in self.private_subnet_list]
        outputs = {
            "VpcId": (self.vpc.vpc_id, "VPC id"),
            "VpcCidr": (self.vpc.vpc_cidr_block, "VPC IPv4 CIDR"),
            "PrivateSubnetIds": (
                Fn.join(",", private_ids),
                "Private subnet ids, one per zone, in zone order",
            ),
            "PublicSubnetIds": (
                Fn.join(",", [s.subnet_id for s in self.vpc.public_subnets]),
                "Public subnet ids (NAT gateways only)",
            ),
            "AvailabilityZones": (Fn.join(",", zones), "Zones the VPC spans, in subnet order"),
            "EndpointSecurityGroupId": (
                self.endpoints.security_group.security_group_id,
                "Security group of the interface endpoints",
            ),
            "FlowLogGroupName": (
                self.flow_logs.log_group.log_group_name,
                "CloudWatch log group of VPC flow logs",
            ),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)
