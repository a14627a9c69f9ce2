"""FSx for Lustre scratch linked to an S3 bucket, with the client and server security groups FSx needs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlhpc.config.storage import FsxConfig, FsxDeploymentType

# Lustre uses TCP 988 and 1018-1023 between clients and servers, in both directions.
LUSTRE_PORTS = (ec2.Port.tcp(988), ec2.Port.tcp_range(1018, 1023))

_DEPLOYMENT = {
    FsxDeploymentType.SCRATCH_1: fsx.LustreDeploymentType.SCRATCH_1,
    FsxDeploymentType.SCRATCH_2: fsx.LustreDeploymentType.SCRATCH_2,
    FsxDeploymentType.PERSISTENT_1: fsx.LustreDeploymentType.PERSISTENT_1,
    FsxDeploymentType.PERSISTENT_2: fsx.LustreDeploymentType.PERSISTENT_2,
}


class LustreScratch(Construct):
    """An FSx for Lustre file system in one subnet (the EFA compute zone), linked to an S3 bucket.

    PERSISTENT_2 links through a data repository association (lazy import on first
    read, automatic export of new and changed files); the older types use the file
    system's import/export paths. ``client_security_group`` is what compute nodes wear.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        config: FsxConfig,
        bucket: s3.IBucket,
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.server_security_group = ec2.SecurityGroup(
            self,
            "ServerSecurityGroup",
            vpc=vpc,
            description="FSx for Lustre servers",
            allow_all_outbound=False,
        )
        self.client_security_group = ec2.SecurityGroup(
            self,
            "ClientSecurityGroup",
            vpc=vpc,
            description="FSx for Lustre clients",
            allow_all_outbound=False,
        )
        for port in LUSTRE_PORTS:
            for peer, description in (
                (self.server_security_group, "Lustre between file servers"),
                (self.client_security_group, "Lustre from clients"),
            ):
                self.server_security_group.add_ingress_rule(peer, port, description)
            self.server_security_group.add_egress_rule(
                self.server_security_group, port, "Lustre between servers"
            )
            self.server_security_group.add_egress_rule(self.client_security_group, port, "Lustre to clients")
            self.client_security_group.add_egress_rule(
                self.server_security_group, port, "Lustre to file servers"
            )
            self.client_security_group.add_ingress_rule(
                self.server_security_group, port, "Lustre from file servers"
            )

        persistent = config.deployment_type in (
            FsxDeploymentType.PERSISTENT_1,
            FsxDeploymentType.PERSISTENT_2,
        )
        legacy_link = config.deployment_type is not FsxDeploymentType.PERSISTENT_2
        lustre_config = fsx.LustreConfiguration(
            deployment_type=_DEPLOYMENT[config.deployment_type],
            per_unit_storage_throughput=config.throughput_mib_per_tib if persistent else None,
            data_compression_type=fsx.LustreDataCompressionType.LZ4 if config.data_compression else None,
            import_path=f"s3://{bucket.bucket_name}" if legacy_link else None,
            export_path=f"s3://{bucket.bucket_name}" if legacy_link else None,
            auto_import_policy=fsx.LustreAutoImportPolicy.NEW_CHANGED_DELETED if legacy_link else None,
        )
        self.file_system = fsx.LustreFileSystem(
            self,
            "FileSystem",
            vpc=vpc,
            vpc_subnet=subnet,
            storage_capacity_gib=config.storage_capacity_gib,
            lustre_configuration=lustre_config,
            security_group=self.server_security_group,
            kms_key=key if persistent else None,  # scratch types are encrypted with an AWS key
            removal_policy=removal_policy,
        )
        if not legacy_link:
            self.association = fsx.CfnDataRepositoryAssociation(
                self,
                "DatasetsLink",
                file_system_id=self.file_system.file_system_id,
                file_system_path=config.datasets_path,
                data_repository_path=f"s3://{bucket.bucket_name}/",
                # Metadata is imported up front; file contents load lazily on first read.
                batch_import_meta_data_on_create=True,
                s3=fsx.CfnDataRepositoryAssociation.S3Property(
                    auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(
                        events=["NEW", "CHANGED", "DELETED"]
                    ),
                    auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(
                        events=["NEW", "CHANGED", "DELETED"]
                    ),
                ),
            )
        self.mount_name = self.file_system.mount_name
        self.dns_name = self.file_system.dns_name
