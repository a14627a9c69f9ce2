"""StorageStack: the data that outlives any cluster — S3 buckets, EFS and FSx for Lustre.

Storage is its own stack so that deleting HpcStack (to stop paying for compute)
never touches datasets, results, checkpoints or home directories.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlhpc import contract
from mlhpc.config.storage import EfsThroughput, StorageConfig
from stacks.constructs.buckets import AccessLogBucket, SecureBucket
from stacks.constructs.lustre import LustreScratch
from stacks.constructs.nag import acknowledge
from stacks.constructs.stateful import removal_policy

_IA = {
    1: efs.LifecyclePolicy.AFTER_1_DAY, 7: efs.LifecyclePolicy.AFTER_7_DAYS, 14: efs.LifecyclePolicy.AFTER_14_DAYS,
    30: efs.LifecyclePolicy.AFTER_30_DAYS, 60: efs.LifecyclePolicy.AFTER_60_DAYS,
    90: efs.LifecyclePolicy.AFTER_90_DAYS, 180: efs.LifecyclePolicy.AFTER_180_DAYS,
    270: efs.LifecyclePolicy.AFTER_270_DAYS, 365: efs.LifecyclePolicy.AFTER_365_DAYS,
}  # fmt: skip


class StorageStack(Stack):
    """Buckets (datasets, results, checkpoints), EFS (/efs) and FSx for Lustre (/fsx).

    Attributes for other stacks: ``key``, ``datasets``, ``results``, ``checkpoints``
    (buckets), ``efs``, ``efs_client_security_group`` and ``efs_root_role_path`` (the IAM path
    of roles that may mount EFS as root), ``lustre`` (or None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StorageConfig,
        project: str,
        vpc: ec2.IVpc,
        compute_subnet: ec2.ISubnet,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Roles under this IAM path may mount EFS as root (the file system policy below); HpcStack
        # puts its node role there. A path, not a role ARN: the roles live in stacks deployed later.
        self.efs_root_role_path = f"/{project}/efs-root/"
        bucket_removal = removal_policy(config.buckets.removal_policy)
        self.key = kms.Key(
            self,
            "DataKey",
            description="Encrypts mlhpc datasets, results, checkpoints, EFS and FSx",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,  # data encrypted with it may outlive the stack
        )
        logs = AccessLogBucket(
            self,
            "AccessLogs",
            removal_policy=bucket_removal,
            expiry_days=config.buckets.access_log_expiry_days,
        )
        abort = Duration.days(config.buckets.abort_incomplete_upload_days)
        self.datasets = SecureBucket(
            self, "Datasets", key=self.key, access_logs=logs.bucket, removal_policy=bucket_removal, versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=abort),
                s3.LifecycleRule(id="ExpireOldVersions", noncurrent_version_expiration=Duration.days(30)),
            ],
        ).bucket  # fmt: skip
        self.results = SecureBucket(
            self, "Results", key=self.key, access_logs=logs.bucket, removal_policy=bucket_removal, versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=abort),
                s3.LifecycleRule(
                    id="ExpireOldVersions",
                    noncurrent_version_expiration=Duration.days(config.buckets.results_noncurrent_expiry_days),
                ),
            ],
        ).bucket  # fmt: skip
        # Checkpoints are rewritten constantly and only the latest matters: no versioning,
        # and whole runs expire once they are old.
        self.checkpoints = SecureBucket(
            self, "Checkpoints", key=self.key, access_logs=logs.bucket, removal_policy=bucket_removal, versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=abort),
                s3.LifecycleRule(
                    id="ExpireOldCheckpoints", expiration=Duration.days(config.buckets.checkpoint_expiry_days)
                ),
            ],
        ).bucket  # fmt: skip

        self.efs: efs.FileSystem | None = None
        self.efs_client_security_group = ec2.SecurityGroup(
            self,
            "EfsClientSecurityGroup",
            vpc=vpc,
            description="EFS clients (NFS over TLS)",
            allow_all_outbound=False,
        )
        if config.efs.enabled:
            self.efs = self._efs(config, vpc)

        self.lustre: LustreScratch | None = None
        if config.fsx.enabled:
            self.lustre = LustreScratch(
                self,
                "Scratch",
                vpc=vpc,
                subnet=compute_subnet,
                config=config.fsx,
                bucket=self.datasets,
                key=self.key,
                removal_policy=removal_policy(config.fsx.removal_policy),
            )

        self.data_access_policy = self._data_access_policy()

        # The keys come from mlhpc.contract: the CLI reads them back from the deployed stack.
        outputs: list[tuple[contract.Output[str], str, str]] = [
            (
                contract.DATASETS_BUCKET,
                self.datasets.bucket_name,
                "Datasets (linked to /fsx when FSx is enabled)",
            ),
            (contract.RESULTS_BUCKET, self.results.bucket_name, "Job outputs: <workload>/<run-id>/"),
            (contract.CHECKPOINTS_BUCKET, self.checkpoints.bucket_name, "Checkpoints: <workload>/<run-id>/"),
            (contract.DATA_KEY, self.key.key_arn, "KMS key of the buckets and file systems"),
        ]
        if self.efs is not None:
            outputs.append((contract.EFS_FILE_SYSTEM, self.efs.file_system_id, "EFS mounted at /efs"))
        if self.lustre is not None:
            outputs.append(
                (
                    contract.FSX_FILE_SYSTEM,
                    self.lustre.file_system.file_system_id,
                    "FSx for Lustre mounted at /fsx",
                )
            )
            outputs.append((contract.FSX_MOUNT_NAME, self.lustre.mount_name, "Lustre mount name"))
        for output, value, description in outputs:
            CfnOutput(self, output.key, value=value, description=description)

    def _data_access_policy(self) -> iam.ManagedPolicy:
        """Read datasets; read and write results and checkpoints; use the data key for it."""
        rw = [self.results, self.checkpoints]
        policy = iam.ManagedPolicy(
            self,
            "DataAccessPolicy",
            description="mlhpc jobs: read datasets, read/write results and checkpoints",
            statements=[
                iam.PolicyStatement(
                    sid="ListProjectBuckets",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[b.bucket_arn for b in (self.datasets, *rw)],
                ),
                iam.PolicyStatement(
                    sid="ReadDatasets",
                    actions=["s3:GetObject"],
                    resources=[self.datasets.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="ReadWriteResultsAndCheckpoints",
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[b.arn_for_objects("*") for b in rw],
                ),
                iam.PolicyStatement(
                    sid="UseDataKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[self.key.key_arn],
                ),
            ],
        )
        for bucket in (self.datasets, *rw):
            logical = self.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::<{logical}.Arn>/*]",
                "Jobs read (and for results and checkpoints write) any object of this one project bucket: run "
                "ids are made at submit time; the bucket is named, not a wildcard.",
            )
        return policy

    def _efs(self, config: StorageConfig, vpc: ec2.IVpc) -> efs.FileSystem:
        security_group = ec2.SecurityGroup(
            self, "EfsSecurityGroup", vpc=vpc, description="EFS mount targets", allow_all_outbound=False
        )
        security_group.add_ingress_rule(
            self.efs_client_security_group, ec2.Port.tcp(2049), "NFS from EFS clients"
        )
        self.efs_client_security_group.add_egress_rule(security_group, ec2.Port.tcp(2049), "NFS to EFS")
        ia = config.efs.infrequent_access_after_days
        file_system = efs.FileSystem(
            self,
            "Efs",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            if vpc.private_subnets
            else ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_group=security_group,
            encrypted=True,
            kms_key=self.key,
            enable_automatic_backups=config.efs.backups,
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=efs.ThroughputMode.ELASTIC
            if config.efs.throughput_mode is EfsThroughput.ELASTIC
            else efs.ThroughputMode.BURSTING,
            lifecycle_policy=_IA[ia] if ia else None,
            removal_policy=removal_policy(config.efs.removal_policy),
            # Leaves out CDK's default statement, which lets *any* principal of any account that
            # reaches a mount target write as root; the statements below allow less. Anonymous
            # clients (mounted without `iam`) are still refused: no Allow below matches them.
            allow_anonymous_access=True,
        )
        # In a file system policy "*" as the resource means this file system.
        # Deny every request not made over TLS: /efs is mounted with `-o tls`.
        file_system.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyWithoutTls",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["*"],
                resources=["*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        )
        # Mount and write: principals of this account whose own IAM policy allows it (the node
        # role's MountEfs statement; /efs is mounted with `-o iam`), through a mount target only.
        through_mount_target = {"Bool": {"elasticfilesystem:AccessedViaMountTarget": "true"}}
        file_system.add_to_resource_policy(
            iam.PolicyStatement(
                sid="MountAndWriteFromThisAccount",
                principals=[iam.AccountRootPrincipal()],
                actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
                resources=["*"],
                conditions=through_mount_target,
            )
        )
        # Root (no root squashing) only for roles under efs_root_role_path: the Batch nodes mount
        # the file system's root at /efs, and their containers run as root.
        file_system.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RootAccessForNodeRoles",
                principals=[iam.AccountRootPrincipal()],
                actions=["elasticfilesystem:ClientRootAccess"],
                resources=["*"],
                conditions={
                    **through_mount_target,
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:{self.partition}:iam::{self.account}:role{self.efs_root_role_path}*"
                    },
                },
            )
        )
        for name, path in (("Home", "/home"), ("Shared", "/shared")):
            file_system.add_access_point(
                name,
                path=path,
                create_acl=efs.Acl(owner_uid="1000", owner_gid="1000", permissions="750"),
                posix_user=efs.PosixUser(uid="1000", gid="1000"),
            )
        return file_system
