"""The cluster's IAM roles: node instances, job containers, container start-up, SageMaker training.

Every statement has a ``sid`` and names the project's resources; grants from the L2
constructs are not used because they write statements without ids. Data access comes
from StorageStack's managed policy, so every compute stack shares one definition of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.refs import StorageRefs


class ClusterRoles(Construct):
    """Four roles with separate duties: instance, job, execution (ECS agent) and SageMaker."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: StorageRefs,
        log_group: logs.ILogGroup,
        repositories: Sequence[ecr.IRepository],
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        # Nodes: join ECS, be reachable through SSM (no SSH keys anywhere), mount EFS with IAM.
        # The path is the one StorageStack's file system policy allows root access to.
        self.instance = iam.Role(
            self,
            "Instance",
            description="mlhpc Batch nodes",
            path=storage.efs_root_role_path,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonEC2ContainerServiceforEC2Role"
                ),
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
            ],
        )
        if storage.efs is not None:
            self.instance.add_to_policy(
                iam.PolicyStatement(
                    sid="MountEfs",
                    # root: the nodes mount the file system's root at /efs for containers running as root
                    actions=[
                        "elasticfilesystem:ClientMount",
                        "elasticfilesystem:ClientWrite",
                        "elasticfilesystem:ClientRootAccess",
                    ],
                    resources=[storage.efs.file_system_arn],
                )
            )
        self.instance.add_to_policy(
            iam.PolicyStatement(
                sid="PublishGpuMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the namespace condition narrows it
                conditions={"StringEquals": {"cloudwatch:namespace": "CWAgent"}},
            )
        )
        acknowledge(
            self.instance,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
            "The AWS-maintained policy ECS container instances need to register with Batch's ECS cluster; "
            "a hand copy would miss the actions AWS adds to it.",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Session Manager replaces SSH on the nodes; this AWS-maintained policy is the documented minimum for it.",
        )
        acknowledge(
            self.instance,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData supports no resource ARNs; the statement is limited to the CWAgent namespace.",
        )

        # Job containers: the data, nothing else.
        self.job = iam.Role(
            self,
            "Job",
            description="mlhpc job containers",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        self.job.add_managed_policy(storage.data_access_policy)

        # ECS agent starting a job: pull the image, write the logs.
        self.execution = iam.Role(
            self,
            "Execution",
            description="mlhpc container start-up (image pull, logs)",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
        )
        for statement in self._pull_and_log(repositories, key, [log_group.log_group_arn]):
            self.execution.add_to_policy(statement)
        acknowledge(
            self.execution,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken is account-wide by design (it returns a registry login token).",
        )

        # SageMaker training jobs: the same data access, image pull and its own log group.
        self.sagemaker = iam.Role(
            self,
            "SageMaker",
            description="mlhpc SageMaker training jobs",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        sagemaker_logs = (
            f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/TrainingJobs"
        )
        self.sagemaker.add_managed_policy(storage.data_access_policy)
        for statement in [
            *self._pull_and_log(repositories, key, [sagemaker_logs, f"{sagemaker_logs}:*"]),
            iam.PolicyStatement(
                sid="TrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # no resource type; narrowed by namespace
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            ),
        ]:
            self.sagemaker.add_to_policy(statement)
        acknowledge(
            self.sagemaker,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken is account-wide by design; cloudwatch:PutMetricData has no resource type "
            "and is limited to the SageMaker namespace.",
        )
        acknowledge(
            self.sagemaker,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:*]",
            "SageMaker names one log stream per training job inside its fixed log group.",
        )

    @staticmethod
    def _pull_and_log(
        repositories: Sequence[ecr.IRepository], key: kms.IKey, log_resources: list[str]
    ) -> list[iam.PolicyStatement]:
        statements = [
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="DecryptImagesAndLogs",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=[
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:CreateLogGroup",
                    "logs:DescribeLogStreams",
                ],
                resources=log_resources,
            ),
        ]
        if repositories:
            statements.insert(
                1,
                iam.PolicyStatement(
                    sid="PullWorkloadImages",
                    actions=[
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:BatchCheckLayerAvailability",
                    ],
                    resources=[r.repository_arn for r in repositories],
                ),
            )
        return statements
