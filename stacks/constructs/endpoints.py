"""Gateway and interface VPC endpoints, so private instances reach AWS without the internet."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from mlhpc.config.network import InterfaceEndpoint

# Our endpoint names (config values) mapped to CDK's service descriptions.
INTERFACE_SERVICES: dict[InterfaceEndpoint, ec2.InterfaceVpcEndpointAwsService] = {
    InterfaceEndpoint.ECR_API: ec2.InterfaceVpcEndpointAwsService.ECR,
    InterfaceEndpoint.ECR_DKR: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    InterfaceEndpoint.LOGS: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    InterfaceEndpoint.MONITORING: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    InterfaceEndpoint.SSM: ec2.InterfaceVpcEndpointAwsService.SSM,
    InterfaceEndpoint.SSM_MESSAGES: ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    InterfaceEndpoint.EC2_MESSAGES: ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
    InterfaceEndpoint.EC2: ec2.InterfaceVpcEndpointAwsService.EC2,
    InterfaceEndpoint.STS: ec2.InterfaceVpcEndpointAwsService.STS,
    InterfaceEndpoint.SECRETS_MANAGER: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    InterfaceEndpoint.KMS: ec2.InterfaceVpcEndpointAwsService.KMS,
    InterfaceEndpoint.SAGEMAKER_API: ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    InterfaceEndpoint.SAGEMAKER_RUNTIME: ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    InterfaceEndpoint.BATCH: ec2.InterfaceVpcEndpointAwsService.BATCH,
    InterfaceEndpoint.ECS: ec2.InterfaceVpcEndpointAwsService.ECS,
    InterfaceEndpoint.ECS_AGENT: ec2.InterfaceVpcEndpointAwsService.ECS_AGENT,
    InterfaceEndpoint.ECS_TELEMETRY: ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY,
    InterfaceEndpoint.ELASTIC_FILESYSTEM: ec2.InterfaceVpcEndpointAwsService.ELASTIC_FILESYSTEM,
}


def endpoint_id(service: InterfaceEndpoint) -> str:
    """Return the construct id of an interface endpoint: 'ecr.api' -> 'EcrApi' (a public contract)."""
    return "".join(part.capitalize() for part in service.value.replace("-", ".").split("."))


class PrivateEndpoints(Construct):
    """S3/DynamoDB gateway endpoints and HTTPS interface endpoints in the private subnets.

    Interface endpoints share one security group that admits HTTPS from ``client_cidr``
    (the VPC's CIDR as a literal, so reviewers and cdk-nag can read the rule) and opens
    no egress (an endpoint never initiates connections).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        interface_services: Sequence[InterfaceEndpoint],
        client_cidr: str,
        gateway_endpoints: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.gateway: dict[str, ec2.GatewayVpcEndpoint] = {}
        self.interface: dict[InterfaceEndpoint, ec2.InterfaceVpcEndpoint] = {}

        if gateway_endpoints:
            for name, service in (
                ("S3", ec2.GatewayVpcEndpointAwsService.S3),
                ("DynamoDb", ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            ):
                self.gateway[name] = ec2.GatewayVpcEndpoint(
                    self, name, vpc=vpc, service=service, subnets=[subnets]
                )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Interface VPC endpoints: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.ipv4(client_cidr), ec2.Port.tcp(443), "HTTPS from the VPC to AWS service endpoints"
        )

        for wanted in dict.fromkeys(interface_services):  # keep order, drop repeats
            self.interface[wanted] = ec2.InterfaceVpcEndpoint(
                self,
                endpoint_id(wanted),
                vpc=vpc,
                service=INTERFACE_SERVICES[wanted],
                subnets=subnets,
                security_groups=[self.security_group],
                private_dns_enabled=True,
                open=False,
            )
