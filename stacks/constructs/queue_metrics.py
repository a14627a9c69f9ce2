"""A scheduled function that publishes Batch queue depth and running jobs as CloudWatch metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.lambdas.queue_metrics import NAMESPACE, STATUSES

HANDLER = Path(__file__).resolve().parents[1] / "lambdas" / "queue_metrics.py"


class QueueMetrics(Construct):
    """Every minute, count each queue's jobs by status into ``mlhpc/Batch`` ``Jobs{Queue,Status}``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: Mapping[str, batch.IJobQueue],
        vpc: ec2.IVpc,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue_names = list(queues)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CountJobs",
                actions=["batch:ListJobs"],
                resources=["*"],  # ListJobs has no resource-level permissions
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishQueueMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; narrowed by namespace
                conditions={"StringEquals": {"cloudwatch:namespace": NAMESPACE}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="RunInVpc",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=[
                    "*"
                ],  # ENI actions for VPC functions cannot be scoped to ENIs that do not exist yet
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "batch:ListJobs and cloudwatch:PutMetricData support no resource ARNs (the latter is limited to "
            "the mlhpc/Batch namespace); Lambda's VPC ENI actions cannot name ENIs before they exist.",
        )
        security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="Queue metrics function: HTTPS out",
        )
        security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Batch and CloudWatch APIs")
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text(encoding="utf-8")),
            timeout=Duration.seconds(50),
            memory_size=256,
            role=role.without_policy_updates(),
            environment={"QUEUES": json.dumps({n: q.job_queue_arn for n, q in queues.items()})},
            environment_encryption=key,
            log_group=self.log_group,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            if vpc.private_subnets
            else ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[security_group],
            reserved_concurrent_executions=1,  # one count per minute is all it does
            description="mlhpc: publish Batch job counts per queue and status",
        )
        # The policy (not the role, which GetAtt already orders) must exist before the first run;
        # CDK would also list the role, which cfn-lint rightly calls redundant (W3005).
        policy = role.node.find_child("DefaultPolicy").node.default_child
        function_cfn = self.function.node.default_child
        assert isinstance(policy, CfnResource) and isinstance(function_cfn, CfnResource)
        function_cfn.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])
        events.Rule(
            self,
            "EveryMinute",
            description="Count mlhpc Batch jobs per queue and status",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

    def metric(self, queue: str, status: str) -> cloudwatch.Metric:
        """Return the job-count metric of one queue and status (RUNNABLE is the queue depth)."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {STATUSES}")
        return cloudwatch.Metric(
            namespace=NAMESPACE,
            metric_name="Jobs",
            dimensions_map={"Queue": queue, "Status": status},
            statistic="Maximum",
            period=Duration.minutes(1),
            label=f"{queue} {status.lower()}",
        )
