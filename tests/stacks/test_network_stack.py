"""NetworkStack and its constructs, asserted on the synthesized template (never on hashed logical ids)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Match, Template

from mlhpc.config import parse_config
from mlhpc.config.network import FlowLogsConfig, InterfaceEndpoint
from stacks.assembly import NETWORK, build_app
from stacks.constructs.endpoints import PrivateEndpoints, endpoint_id
from stacks.constructs.flow_logs import EncryptedFlowLogs

pytestmark = pytest.mark.synth


def network_template(yaml_text: str = "") -> Template:
    config, _ = parse_config(yaml_text)
    assembly = build_app(config, nag=False)
    return Template.from_stack(assembly.stacks[NETWORK])


@pytest.fixture(scope="module")
def default_template() -> Template:
    return network_template()


def test_vpc_cidr_dns_and_two_zones_from_getazs(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True}
    )
    subnets = default_template.find_resources("AWS::EC2::Subnet")
    zones = [s["Properties"]["AvailabilityZone"] for s in subnets.values()]
    assert sorted({z["Fn::Select"][0] for z in zones}) == [0, 1]
    assert all(z["Fn::Select"][1] == {"Fn::GetAZs": ""} for z in zones)
    assert len(subnets) == 4  # one public and one private per zone


def test_pinned_zones_are_literal_and_acknowledged_for_cfn_lint() -> None:
    template = network_template("network:\n  availability_zones: [us-east-1c, us-east-1d]\n")
    subnets = template.find_resources("AWS::EC2::Subnet")
    assert sorted({s["Properties"]["AvailabilityZone"] for s in subnets.values()}) == [
        "us-east-1c",
        "us-east-1d",
    ]
    for subnet in subnets.values():
        assert subnet["Metadata"]["cfn-lint"] == {"config": {"ignore_checks": ["W3010"]}}


def test_public_subnets_never_assign_public_ips(default_template: Template) -> None:
    for subnet in default_template.find_resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_one_nat_gateway_by_default(default_template: Template) -> None:
    default_template.resource_count_is("AWS::EC2::NatGateway", 1)


def test_nat_per_zone_when_configured() -> None:
    template = network_template("project:\n  region: us-east-2\nnetwork:\n  az_count: 3\n  nat_gateways: 3\n")
    template.resource_count_is("AWS::EC2::NatGateway", 3)
    template.resource_count_is("AWS::EC2::Subnet", 6)


def test_no_nat_means_isolated_private_subnets() -> None:
    template = network_template("network:\n  nat_gateways: 0\n")
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    routes = template.find_resources("AWS::EC2::Route")
    # Only the public subnets' route to the internet gateway remains.
    assert all("GatewayId" in r["Properties"] for r in routes.values())


def test_gateway_endpoints_for_s3_and_dynamodb(default_template: Template) -> None:
    for service in ("s3", "dynamodb"):
        default_template.has_resource_properties(
            "AWS::EC2::VPCEndpoint",
            {
                "VpcEndpointType": "Gateway",
                "ServiceName": Match.object_like(
                    {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, f".{service}"]]}
                ),
            },
        )


def _interface_services(template: Template) -> set[str]:
    found = template.find_resources("AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Interface"}})
    names = set()
    for resource in found.values():
        name: Any = resource["Properties"]["ServiceName"]
        text = (
            name
            if isinstance(name, str)
            else "".join(p if isinstance(p, str) else "" for p in name["Fn::Join"][1])
        )
        names.add(text.split(".", 3)[-1] if text.startswith("com.amazonaws.") else text)
        assert resource["Properties"]["PrivateDnsEnabled"] is True
    return names


def test_interface_endpoints_from_config(default_template: Template) -> None:
    names = _interface_services(default_template)
    assert len(names) == 11
    for expected in ("ecr.api", "ecr.dkr", "logs", "ssm", "ssmmessages", "ec2messages", "sts", "secretsmanager",
                     "sagemaker.api", "sagemaker.runtime", "batch"):  # fmt: skip
        assert any(n.endswith(expected) for n in names), (expected, names)


def test_endpoint_security_group_admits_https_from_the_vpc_only(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "GroupDescription": "Interface VPC endpoints: HTTPS from inside the VPC",
            "SecurityGroupIngress": [
                Match.object_like(
                    {"CidrIp": "10.0.0.0/16", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp"}
                )
            ],
            # CDK's marker rule for "no egress at all"
            "SecurityGroupEgress": [Match.object_like({"CidrIp": "255.255.255.255/32"})],
        },
    )


def test_flow_logs_to_encrypted_log_group_with_retention(default_template: Template) -> None:
    default_template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "MaxAggregationInterval": 600,
        },
    )
    default_template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"RetentionInDays": 90, "KmsKeyId": Match.object_like({"Fn::GetAtt": Match.any_value()})},
    )
    default_template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    default_template.has_resource(
        "AWS::Logs::LogGroup", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_default_security_group_is_emptied(default_template: Template) -> None:
    default_template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_outputs_for_other_stacks_and_the_cli(default_template: Template) -> None:
    outputs = default_template.find_outputs("*")
    assert set(outputs) >= {
        "VpcId", "VpcCidr", "PrivateSubnetIds", "PublicSubnetIds", "AvailabilityZones",
        "EndpointSecurityGroupId", "FlowLogGroupName",
    }  # fmt: skip
    assert outputs["AvailabilityZones"]["Value"]["Fn::Join"][0] == ","


# --- constructs on their own ---------------------------------------------------------------


def bare_stack() -> tuple[Stack, ec2.Vpc]:
    stack = Stack(App(), "Bare")
    return stack, ec2.Vpc(
        stack, "Vpc", ip_addresses=ec2.IpAddresses.cidr("10.1.0.0/16"), max_azs=2, nat_gateways=0
    )


def test_private_endpoints_construct() -> None:
    stack, vpc = bare_stack()
    endpoints = PrivateEndpoints(
        stack,
        "Endpoints",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        interface_services=[InterfaceEndpoint.SSM, InterfaceEndpoint.SSM, InterfaceEndpoint.ECR_DKR],
        client_cidr="10.1.0.0/16",
        gateway_endpoints=False,
    )
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 2)  # repeats dropped, no gateway endpoints
    assert set(endpoints.interface) == {InterfaceEndpoint.SSM, InterfaceEndpoint.ECR_DKR}
    assert endpoint_id(InterfaceEndpoint.ECR_DKR) == "EcrDkr"
    assert endpoint_id(InterfaceEndpoint.ECS_TELEMETRY) == "EcsTelemetry"


def test_flow_logs_construct_has_sids_and_account_scoped_trust() -> None:
    stack, vpc = bare_stack()
    EncryptedFlowLogs(
        stack, "FlowLogs", vpc=vpc, config=FlowLogsConfig(traffic_type="REJECT", retention_days=30)
    )
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "REJECT"})
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    )
                ]
            }
        },
    )
    policy = next(iter(template.find_resources("AWS::IAM::Policy").values()))
    sids = [s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert sids == ["WriteFlowLogStreams", "DescribeFlowLogGroup"]
    key = next(iter(template.find_resources("AWS::KMS::Key").values()))
    logs_statement = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid")]
    assert logs_statement[0]["Condition"]["ArnLike"]
