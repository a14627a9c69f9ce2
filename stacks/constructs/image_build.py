"""A CodeBuild project that builds a workload's image in the account and pushes it to its repository.

For a machine without a container engine (`mlhpc image build --in-account WORKLOAD`): the
source is this repository's ``mlhpc/`` and ``workloads/`` folders, uploaded as an S3 asset
at ``cdk deploy`` (so a build uses the code of the last deployment), and each build is
started with ``WORKLOAD``, ``REPOSITORY_URI`` and ``IMAGE_TAG`` as environment overrides.
It runs ``docker build -f workloads/$WORKLOAD/Dockerfile .`` from that source, exactly as
``mlhpc image build`` does on a laptop, then pushes ``$REPOSITORY_URI:$IMAGE_TAG``.

The role can read the one source object, write its own log group, and push to the
workload repositories it is given, nothing else; the L2 grants are not used because they
write statements without sids.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Aws, Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from mlhpc.contract import ImageBuildEnv
from stacks.constructs.nag import acknowledge

REPO_ROOT = Path(__file__).resolve().parents[2]
# What an image build needs from the repository (every Dockerfile COPYs only these): a
# .dockerignore-style list, so the asset stays small and its hash moves only with them.
SOURCE_INCLUDE: tuple[str, ...] = ("mlhpc/", "workloads/")
SOURCE_EXCLUDE: tuple[str, ...] = (
    "*",
    *(f"!{path}" for path in SOURCE_INCLUDE),
    "**/__pycache__",
    "**/*.pyc",
)

# The variables `mlhpc image build --in-account` overrides per build (names: mlhpc.contract).
ENV_WORKLOAD = ImageBuildEnv.WORKLOAD.value
ENV_REPOSITORY_URI = ImageBuildEnv.REPOSITORY_URI.value
ENV_IMAGE_TAG = ImageBuildEnv.IMAGE_TAG.value
ENV_IMAGE_VARIANT = ImageBuildEnv.IMAGE_VARIANT.value

BUILD_SPEC = {
    "version": "0.2",
    "env": {"shell": "bash"},
    "phases": {
        "pre_build": {
            "commands": [
                # Refuse a build started without the overrides (or for a workload without a Dockerfile).
                f'test -n "${ENV_WORKLOAD}" && test -n "${ENV_REPOSITORY_URI}" && test -n "${ENV_IMAGE_TAG}"',
                f'test -f "workloads/${ENV_WORKLOAD}/Dockerfile"',
                # The password goes through a pipe, never onto a command line or into the log.
                'aws ecr get-login-password --region "$AWS_REGION"'
                f' | docker login --username AWS --password-stdin "${{{ENV_REPOSITORY_URI}%%/*}}"',
            ]
        },
        "build": {
            # One phase, so a failed build never reaches the push (post_build would run anyway).
            "commands": [
                # a variant (bert's Neuron images) is the Dockerfile's VARIANT argument; none: its default
                f'docker build -f "workloads/${ENV_WORKLOAD}/Dockerfile"'
                f" ${{{ENV_IMAGE_VARIANT}:+--build-arg VARIANT=${ENV_IMAGE_VARIANT}}}"
                f' -t "${ENV_REPOSITORY_URI}:${ENV_IMAGE_TAG}" .',
                f'docker push "${ENV_REPOSITORY_URI}:${ENV_IMAGE_TAG}"',
            ]
        },
    },
}

PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]


class ImageBuildProject(Construct):
    """A privileged CodeBuild project building and pushing workload images from the uploaded source.

    Attributes: ``project`` (its name is the stack output ``ImageBuildProjectName``),
    ``source`` (the S3 asset), ``role`` and ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repositories: Sequence[ecr.IRepository],
        key: kms.IKey,
        image_tag: str,
        log_retention: logs.RetentionDays,
        source_dir: Path = REPO_ROOT,
        timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.source = s3_assets.Asset(
            self,
            "Source",
            path=str(source_dir),
            exclude=list(SOURCE_EXCLUDE),
            ignore_mode=IgnoreMode.DOCKER,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", encryption_key=key, retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            description="mlhpc image builds: read the source, push workload images, write build logs",
            assumed_by=iam.ServicePrincipal(
                "codebuild.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
        )
        statements = [
            iam.PolicyStatement(
                sid="ReadSource",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.source.bucket.arn_for_objects(self.source.s3_object_key)],
            ),
            iam.PolicyStatement(
                sid="WriteBuildLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            # GetAuthorizationToken has no resource type: it returns a login for the registry.
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            # The repositories and the log group are encrypted with the stack's key.
            iam.PolicyStatement(
                sid="UseStackKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
        ]
        if repositories:
            statements.insert(
                3,
                iam.PolicyStatement(
                    sid="PushWorkloadImages",
                    actions=PUSH_ACTIONS,
                    resources=[r.repository_arn for r in repositories],
                ),
            )
        for statement in statements:
            self.role.add_to_policy(statement)
        self.project = codebuild.Project(
            self,
            "Project",
            description="Builds a workload image (WORKLOAD, REPOSITORY_URI, IMAGE_TAG) and pushes it to ECR",
            source=codebuild.Source.s3(bucket=self.source.bucket, path=self.source.s3_object_key),
            build_spec=codebuild.BuildSpec.from_object(BUILD_SPEC),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.MEDIUM,
                privileged=True,  # `docker build` needs the Docker daemon, which runs only privileged
            ),
            environment_variables={
                ENV_WORKLOAD: codebuild.BuildEnvironmentVariable(value=""),
                ENV_REPOSITORY_URI: codebuild.BuildEnvironmentVariable(value=""),
                ENV_IMAGE_TAG: codebuild.BuildEnvironmentVariable(value=image_tag),
            },
            encryption_key=key,
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
            # The immutable view keeps the L2 project from adding its own (sid-less) grants.
            role=self.role.without_policy_updates(),
            timeout=timeout or Duration.hours(1),
        )
        acknowledge(
            self.project,
            "AwsSolutions-CB3",
            "Building a container image runs the Docker daemon inside the build, which CodeBuild allows only "
            "in privileged mode; the build runs our own Dockerfiles from our uploaded source.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken supports no resource ARN; it only returns a registry login token, and "
            "pushes are limited to the workload repositories by the PushWorkloadImages statement.",
        )
