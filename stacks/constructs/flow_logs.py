"""VPC flow logs delivered to a KMS-encrypted CloudWatch log group with retention."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlhpc.config.network import FlowLogsConfig
from stacks.constructs.keys import allow_cloudwatch_logs
from stacks.constructs.nag import acknowledge
from stacks.constructs.retention import retention


class EncryptedFlowLogs(Construct):
    """Record a VPC's traffic into an encrypted log group through a least-privilege delivery role.

    Built on the L1 ``CfnFlowLog`` so that every IAM statement is ours (with a ``sid``):
    the L2 ``FlowLog`` grants through ``grantWrite`` without statement ids.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        config: FlowLogsConfig,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        region = Stack.of(self).region

        self.key = kms.Key(
            self,
            "Key",
            description="Encrypts the VPC flow log group",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        allow_cloudwatch_logs(self.key, sid="AllowCloudWatchLogsForThisAccount")

        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            encryption_key=self.key,
            retention=retention(config.retention_days),
            removal_policy=removal_policy,
        )

        self.role = iam.Role(
            self,
            "DeliveryRole",
            description="Lets VPC Flow Logs write to the flow log group",
            assumed_by=iam.ServicePrincipal(
                "vpc-flow-logs.amazonaws.com",
                # Confused-deputy guard: only flow logs of this account may assume the role.
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
        )
        # A separate policy (not the role's default one) so the flow log can depend on
        # the permissions existing without a redundant dependency on the role itself.
        self.policy = iam.Policy(
            self,
            "DeliveryPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteFlowLogStreams",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[self.log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="DescribeFlowLogGroup",
                    actions=["logs:DescribeLogGroups"],
                    resources=[f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:log-group:*"],
                ),
            ],
        )
        # cdk-nag prints intrinsics as <AWS::Region>; an environment-agnostic stack has no literal region.
        shown_region = "<AWS::Region>" if Token.is_unresolved(region) else region
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:{shown_region}:<AWS::AccountId>:log-group:*]",
            "logs:DescribeLogGroups is a list action: IAM cannot scope it to one log group, so it is "
            "limited to this account's log groups in this region (the write actions name the one group).",
        )

        self.flow_log = ec2.CfnFlowLog(
            self,
            "FlowLog",
            resource_id=vpc.vpc_id,
            resource_type="VPC",
            traffic_type=config.traffic_type.value,
            log_destination_type="cloud-watch-logs",
            log_group_name=self.log_group.log_group_name,
            deliver_logs_permission_arn=self.role.role_arn,
            max_aggregation_interval=config.max_aggregation_interval_s,
        )
        self.flow_log.node.add_dependency(self.policy)
