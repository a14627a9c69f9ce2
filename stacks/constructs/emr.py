"""An EMR cluster in a private subnet: roles, security groups, security configuration, cluster.

EMR has no L2 construct; this wraps the L1 resources behind one small API. At rest: EMRFS
(S3) with SSE-KMS and local disks (instance store and EBS) with a KMS key. In transit: TLS
from a PEM bundle in S3. IMDSv2 on every node. Glue is the metastore (see emr_configs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Aws, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_emr as emr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlhpc.config.analytics import EmrConfig
from stacks.constructs.emr_configs import ENGINES, HIVESERVER2_PORT, TRINO_HTTPS_PORT
from stacks.constructs.nag import acknowledge

# AmazonEMRServicePolicy_v2 acts only on resources carrying this tag.
EMR_MANAGED_TAG = ("for-use-with-amazon-emr-managed-policies", "true")


class EmrCluster(Construct):
    """EMR with Hadoop, Hive, Spark and Trino/Presto; ``primary_security_group`` guards the query ports."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        config: EmrConfig,
        disk_key: kms.IKey,
        s3_key: kms.IKey,
        log_uri: str,
        tls_bundle_uri: str,
        configurations: Sequence[dict[str, Any]],
        bootstrap_actions: Sequence[tuple[str, str, Sequence[str]]],
        steps: Sequence[tuple[str, Sequence[str]]],
        instance_statements: Sequence[iam.PolicyStatement],
    ) -> None:
        super().__init__(scope, construct_id)
        self._add_security_groups(vpc)
        instance_policy = self._add_instance_role(name, instance_statements)
        service_policy = self._add_service_role(name, disk_key)
        self.security_configuration = self._add_security_configuration(
            tls_bundle_uri=tls_bundle_uri, s3_key=s3_key, disk_key=disk_key
        )
        self.cluster = self._add_cluster(
            name, subnet=subnet, config=config, disk_key=disk_key, log_uri=log_uri,
            configurations=configurations, bootstrap_actions=bootstrap_actions, steps=steps,
        )  # fmt: skip
        # The roles' inline policies must exist before EMR uses the roles.
        self.cluster.node.add_dependency(instance_policy, service_policy)
        acknowledge(
            self.cluster,
            "AwsSolutions-EMR6",
            "Users authenticate to HiveServer2 and Trino/Presto with LDAP passwords over TLS (ldaps:// to the "
            "directory, HTTPS to the coordinator); nodes are reached only through SSM, so Kerberos adds a KDC "
            "without closing a gap.",
        )
        self.cluster_id = self.cluster.ref
        self.primary_dns = self.cluster.attr_master_public_dns

    def _add_security_groups(self, vpc: ec2.IVpc) -> None:
        """Create the primary, core and service-access groups (EMR adds its own intra-cluster rules)."""
        self.primary_security_group = ec2.SecurityGroup(
            self, "PrimarySecurityGroup", vpc=vpc, description="EMR primary node (managed by EMR)",
            allow_all_outbound=True,
        )  # fmt: skip
        self.core_security_group = ec2.SecurityGroup(
            self, "CoreSecurityGroup", vpc=vpc, description="EMR core and task nodes (managed by EMR)",
            allow_all_outbound=True,
        )  # fmt: skip
        self.service_access_security_group = ec2.SecurityGroup(
            self, "ServiceAccessSecurityGroup", vpc=vpc, description="EMR service access (private subnet)",
            allow_all_outbound=False,
        )  # fmt: skip
        # What EMR needs in a private subnet (Management Guide, "Amazon EMR-managed security groups").
        self.service_access_security_group.add_ingress_rule(
            self.primary_security_group, ec2.Port.tcp(9443), "EMR service from the primary node"
        )
        self.service_access_security_group.add_egress_rule(
            self.primary_security_group, ec2.Port.tcp(8443), "EMR service to the primary node"
        )
        self.service_access_security_group.add_egress_rule(
            self.core_security_group, ec2.Port.tcp(8443), "EMR service to core and task nodes"
        )
        for managed in (
            self.primary_security_group,
            self.core_security_group,
            self.service_access_security_group,
        ):
            Tags.of(managed).add(*EMR_MANAGED_TAG)

    def _add_instance_role(self, name: str, statements: Sequence[iam.PolicyStatement]) -> iam.Policy:
        """Create the nodes' role, its inline policy and instance profile; return the policy."""
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"{name}: EMR nodes (EMRFS, Glue catalog, KMS, bootstrap files)",
        )
        instance_policy = iam.Policy(self, "InstancePolicy", statements=list(statements))
        self.instance_role.attach_inline_policy(instance_policy)
        self.instance_profile = iam.CfnInstanceProfile(
            self, "InstanceProfile", roles=[self.instance_role.role_name]
        )
        return instance_policy

    def _add_service_role(self, name: str, disk_key: kms.IKey) -> iam.Policy:
        """Create the EMR service role and its inline policy (pass the node role, the disk key); return it."""
        self.service_role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal(
                "elasticmapreduce.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description=f"{name}: the EMR service",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEMRServicePolicy_v2")
            ],
        )
        acknowledge(
            self.service_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2]",
            "AWS's scoped EMR service policy: it acts only on resources tagged "
            "for-use-with-amazon-emr-managed-policies, and AWS keeps it in step with the service.",
        )
        service_policy = iam.Policy(
            self,
            "ServicePolicy",
            statements=[
                iam.PolicyStatement(
                    sid="PassInstanceRole",
                    actions=["iam:PassRole"],
                    resources=[self.instance_role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="EncryptLocalDisks",
                    actions=[
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:DescribeKey",
                    ],
                    resources=[disk_key.key_arn],
                ),
                iam.PolicyStatement(
                    sid="GrantLocalDiskKeyToEbs",
                    actions=["kms:CreateGrant"],
                    resources=[disk_key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
            ],
        )
        self.service_role.attach_inline_policy(service_policy)
        acknowledge(
            service_policy,
            "AwsSolutions-IAM5[Action::kms:ReEncrypt*]",
            "EBS encryption of EMR's local disks re-encrypts and generates data keys of this one key.",
        )
        acknowledge(
            service_policy,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "EBS encryption of EMR's local disks re-encrypts and generates data keys of this one key.",
        )
        return service_policy

    def _add_security_configuration(
        self, *, tls_bundle_uri: str, s3_key: kms.IKey, disk_key: kms.IKey
    ) -> emr.CfnSecurityConfiguration:
        """Create the security configuration: TLS in transit, SSE-KMS and local-disk KMS at rest, IMDSv2."""
        security = emr.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            security_configuration=(
                {
                    "EncryptionConfiguration": {
                        "EnableInTransitEncryption": True,
                        "EnableAtRestEncryption": True,
                        "InTransitEncryptionConfiguration": {
                            "TLSCertificateConfiguration": {
                                "CertificateProviderType": "PEM",
                                "S3Object": tls_bundle_uri,
                            }
                        },
                        "AtRestEncryptionConfiguration": {
                            "S3EncryptionConfiguration": {
                                "EncryptionMode": "SSE-KMS",
                                "AwsKmsKey": s3_key.key_arn,
                            },
                            "LocalDiskEncryptionConfiguration": {
                                "EncryptionKeyProviderType": "AwsKms",
                                "AwsKmsKey": disk_key.key_arn,
                                "EnableEbsEncryption": True,
                            },
                        },
                    },
                    "InstanceMetadataServiceConfiguration": {
                        "MinimumInstanceMetadataServiceVersion": 2,
                        "HttpPutResponseHopLimit": 1,
                    },
                }
            ),
        )
        for rule, what in (
            ("EMR4", "EnableAtRestEncryption with LocalDiskEncryptionConfiguration"),
            ("EMR5", "EnableInTransitEncryption with InTransitEncryptionConfiguration"),
        ):
            acknowledge(
                self,
                f"AwsSolutions-{rule}",
                f"Enabled: this cluster's security configuration sets {what} under EncryptionConfiguration, "
                "where EMR's schema puts them; cdk-nag 3.0.2 looks for them at the top level "
                "(tests/stacks/test_analytics_stack.py asserts the real setting).",
            )
        return security

    def _add_cluster(
        self,
        name: str,
        *,
        subnet: ec2.ISubnet,
        config: EmrConfig,
        disk_key: kms.IKey,
        log_uri: str,
        configurations: Sequence[dict[str, Any]],
        bootstrap_actions: Sequence[tuple[str, str, Sequence[str]]],
        steps: Sequence[tuple[str, Sequence[str]]],
    ) -> emr.CfnCluster:
        """Create the cluster: its applications, instance groups, managed scaling and idle termination."""
        application = ENGINES[config.query_engine][0]
        return emr.CfnCluster(
            self,
            "Cluster",
            name=name,
            release_label=config.release_label,
            applications=[
                emr.CfnCluster.ApplicationProperty(name=app)
                for app in ("Hadoop", "Hive", "Spark", application)
            ],
            instances=emr.CfnCluster.JobFlowInstancesConfigProperty(
                ec2_subnet_id=subnet.subnet_id,
                emr_managed_master_security_group=self.primary_security_group.security_group_id,
                emr_managed_slave_security_group=self.core_security_group.security_group_id,
                service_access_security_group=self.service_access_security_group.security_group_id,
                master_instance_group=_instance_group(config, config.primary_instance_type, 1, "Primary"),
                core_instance_group=_instance_group(
                    config, config.core_instance_type, config.core_instance_count, "Core"
                ),
                keep_job_flow_alive_when_no_steps=True,
                termination_protected=False,
            ),
            job_flow_role=self.instance_profile.ref,
            service_role=self.service_role.role_arn,
            security_configuration=self.security_configuration.ref,
            log_uri=log_uri,
            log_encryption_kms_key_id=disk_key.key_arn,
            visible_to_all_users=True,
            configurations=[
                emr.CfnCluster.ConfigurationProperty(
                    classification=c["classification"], configuration_properties=c["configurationProperties"]
                )
                for c in configurations
            ],
            bootstrap_actions=[
                emr.CfnCluster.BootstrapActionConfigProperty(
                    name=label,
                    script_bootstrap_action=emr.CfnCluster.ScriptBootstrapActionConfigProperty(
                        path=path, args=list(args)
                    ),
                )
                for label, path, args in bootstrap_actions
            ],
            steps=[
                emr.CfnCluster.StepConfigProperty(
                    name=label,
                    action_on_failure="CONTINUE",
                    hadoop_jar_step=emr.CfnCluster.HadoopJarStepConfigProperty(
                        jar="command-runner.jar", args=list(args)
                    ),
                )
                for label, args in steps
            ],
            managed_scaling_policy=emr.CfnCluster.ManagedScalingPolicyProperty(
                compute_limits=emr.CfnCluster.ComputeLimitsProperty(
                    unit_type="Instances",
                    minimum_capacity_units=config.core_instance_count,
                    maximum_capacity_units=config.max_instance_count,
                    maximum_core_capacity_units=config.max_instance_count,
                )
            ),
            auto_termination_policy=emr.CfnCluster.AutoTerminationPolicyProperty(
                idle_timeout=config.idle_timeout_s
            ),
            tags=[{"key": EMR_MANAGED_TAG[0], "value": EMR_MANAGED_TAG[1]}],
        )

    def allow_query_clients(self, peer: ec2.ISecurityGroup) -> None:
        """Admit Trino/Presto HTTPS and HiveServer2 (TLS) on the primary node from one security group."""
        self.primary_security_group.add_ingress_rule(
            peer, ec2.Port.tcp(TRINO_HTTPS_PORT), "Trino/Presto HTTPS"
        )
        self.primary_security_group.add_ingress_rule(
            peer, ec2.Port.tcp(HIVESERVER2_PORT), "HiveServer2 over TLS"
        )


def _instance_group(
    config: EmrConfig, instance_type: str, count: int, label: str
) -> emr.CfnCluster.InstanceGroupConfigProperty:
    """Return an On-Demand instance group with one gp3 volume of the configured size per node."""
    return emr.CfnCluster.InstanceGroupConfigProperty(
        name=label,
        instance_count=count,
        instance_type=instance_type,
        market="ON_DEMAND",
        ebs_configuration=emr.CfnCluster.EbsConfigurationProperty(
            ebs_block_device_configs=[
                emr.CfnCluster.EbsBlockDeviceConfigProperty(
                    volume_specification=emr.CfnCluster.VolumeSpecificationProperty(
                        size_in_gb=config.ebs_volume_gib, volume_type="gp3"
                    ),
                    volumes_per_instance=1,
                )
            ],
            ebs_optimized=True,
        ),
    )
