"""StudioStack: a VPC-only SageMaker Studio domain whose apps reach Trino/Hive on EMR privately.

Tear-down: CloudFormation deletes the domain only after every app and space in it is deleted,
and it never deletes the home EFS file system Studio creates (nor, while apps run, their ENIs).
docs/analytics-studio.md ("Tear down") lists the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlhpc.config.analytics import QueryEngine
from mlhpc.config.studio import StudioConfig
from stacks.constructs.nag import acknowledge
from stacks.refs import AnalyticsRefs, NetworkRefs, StorageRefs

LIFECYCLE_SCRIPT = Path(__file__).resolve().parent / "assets" / "studio" / "install-query-client.sh"
# Pinned clients (PyPI): the one matching the cluster's engine is installed in JupyterLab.
CLIENT_PACKAGES = {QueryEngine.TRINO: "trino==0.340.0", QueryEngine.PRESTODB: "presto-python-client==0.8.4"}
STUDIO_APP_PORTS = ec2.Port.tcp_range(8192, 65535)  # JupyterLab <-> kernel gateway (Studio VPC docs)


class StudioStack(Stack):
    """A Studio domain (IAM auth, VpcOnly, KMS), its execution role, lifecycle config and user profiles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StudioConfig,
        project: str,
        network: NetworkRefs,
        storage: StorageRefs,
        analytics: AnalyticsRefs | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(
            self, "Key", description=f"{project} Studio: home EFS and space volumes", enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        self._add_security_group(network)
        app_groups = [self.security_group.security_group_id]
        if analytics is not None:
            app_groups.append(analytics.query_clients_security_group.security_group_id)
        execution_policy = self._add_execution_role(project, storage, analytics)
        lifecycle_arn = self._add_lifecycle_config(project, analytics)
        self._add_domain(config, project, network=network, app_groups=app_groups, lifecycle_arn=lifecycle_arn)
        self.domain.node.add_dependency(execution_policy)  # permissions in place before apps start
        self.profiles = {
            name: sagemaker.CfnUserProfile(
                self,
                f"Profile{''.join(p.capitalize() for p in name.split('-'))}",
                domain_id=self.domain.attr_domain_id,
                user_profile_name=name,
            )
            for name in config.user_profiles
        }
        self._add_outputs()

    def _add_security_group(self, network: NetworkRefs) -> None:
        """Create the apps' group: to each other, to the home EFS, to the endpoints and out via NAT."""
        endpoints_security_group = network.endpoints_security_group
        self.security_group = ec2.SecurityGroup(
            self, "DomainSecurityGroup", vpc=network.vpc, allow_all_outbound=False,
            description="SageMaker Studio domain and its apps (VpcOnly)",
        )  # fmt: skip
        for port, what in (
            (ec2.Port.tcp(2049), "NFS to the home EFS"),
            (STUDIO_APP_PORTS, "Studio app traffic"),
        ):
            self.security_group.add_ingress_rule(self.security_group, port, what)
            self.security_group.add_egress_rule(self.security_group, port, what)
        ec2.CfnSecurityGroupEgress(
            self,
            "StudioToEndpoints",
            group_id=self.security_group.security_group_id,
            destination_security_group_id=endpoints_security_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to the VPC interface endpoints",
        )
        # The rule lives in this stack (on NetworkStack's group) so NetworkStack never depends on Studio.
        ec2.CfnSecurityGroupIngress(
            self,
            "EndpointsFromStudio",
            group_id=endpoints_security_group.security_group_id,
            source_security_group_id=self.security_group.security_group_id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS from Studio apps to the interface endpoints",
        )
        # pip (the lifecycle config installs the query client) and AWS APIs without an endpoint, via NAT.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS via NAT (PyPI, AWS)"
        )

    def _add_execution_role(
        self, project: str, storage: StorageRefs, analytics: AnalyticsRefs | None
    ) -> iam.Policy:
        """Create the users' execution role: EMR discovery, its secrets, project buckets, SageMaker; return its policy."""
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"{project} Studio users: EMR list/describe, query secrets, project buckets, SageMaker",
        )
        self.execution_role.add_managed_policy(storage.data_access_policy)
        statements = self._statements(project, analytics)
        execution_policy = iam.Policy(self, "ExecutionPolicy", statements=statements)
        self.execution_role.attach_inline_policy(execution_policy)
        self._acknowledge(project)
        return execution_policy

    def _add_lifecycle_config(self, project: str, analytics: AnalyticsRefs | None) -> str:
        """Create the JupyterLab lifecycle config (query client, coordinator CA); return its ARN."""
        engine = analytics.engine if analytics is not None else QueryEngine.TRINO
        script = (
            LIFECYCLE_SCRIPT.read_text(encoding="utf-8")
            .replace("@CLIENT_PACKAGE@", CLIENT_PACKAGES[engine])
            .replace("@REGION@", self.region)
        )
        head, tail = script.split("@CA_URI@")
        ca_uri = analytics.client_ca_uri if analytics is not None else ""
        lifecycle = sagemaker.CfnStudioLifecycleConfig(
            self,
            "QueryClientLifecycle",
            studio_lifecycle_config_app_type="JupyterLab",
            studio_lifecycle_config_name=f"{project}-query-client",
            studio_lifecycle_config_content=Fn.base64(Fn.join("", [head, ca_uri, tail])),
        )
        return lifecycle.attr_studio_lifecycle_config_arn

    def _add_domain(
        self,
        config: StudioConfig,
        project: str,
        *,
        network: NetworkRefs,
        app_groups: list[str],
        lifecycle_arn: str,
    ) -> None:
        """Create the domain: IAM auth, VpcOnly in the private subnets, KMS, idle shutdown, EBS sizes."""
        jupyter = sagemaker.CfnDomain.JupyterLabAppSettingsProperty(
            default_resource_spec=sagemaker.CfnDomain.ResourceSpecProperty(
                instance_type=config.default_instance_type.value, lifecycle_config_arn=lifecycle_arn
            ),
            lifecycle_config_arns=[lifecycle_arn],
            app_lifecycle_management=sagemaker.CfnDomain.AppLifecycleManagementProperty(
                idle_settings=sagemaker.CfnDomain.IdleSettingsProperty(
                    lifecycle_management="ENABLED",
                    idle_timeout_in_minutes=config.idle_timeout_minutes,
                    min_idle_timeout_in_minutes=60,
                    max_idle_timeout_in_minutes=max(config.idle_timeout_minutes, 240),
                )
            ),
        )
        self.domain = sagemaker.CfnDomain(
            self,
            "Domain",
            domain_name=f"{project}-studio",
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=network.vpc.vpc_id,
            subnet_ids=[s.subnet_id for s in network.private_subnets],
            kms_key_id=self.key.key_arn,
            domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                security_group_ids=[self.security_group.security_group_id]
            ),
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.execution_role.role_arn,
                security_groups=app_groups,
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                jupyter_lab_app_settings=jupyter,
                space_storage_settings=sagemaker.CfnDomain.DefaultSpaceStorageSettingsProperty(
                    default_ebs_storage_settings=sagemaker.CfnDomain.DefaultEbsStorageSettingsProperty(
                        default_ebs_volume_size_in_gb=config.ebs_volume_gib,
                        maximum_ebs_volume_size_in_gb=max(config.ebs_volume_gib, 100),
                    )
                ),
            ),
            default_space_settings=sagemaker.CfnDomain.DefaultSpaceSettingsProperty(
                execution_role=self.execution_role.role_arn,
                security_groups=app_groups,
                jupyter_lab_app_settings=jupyter,
            ),
        )

    def _add_outputs(self) -> None:
        """Output the domain's id, URL and home EFS, the execution role and the apps' security group."""
        outputs = {
            "DomainId": (self.domain.attr_domain_id, "SageMaker Studio domain id"),
            "DomainUrl": (self.domain.attr_url, "Studio URL (open through the console or a presigned URL)"),
            "HomeEfsFileSystemId": (
                self.domain.attr_home_efs_file_system_id,
                "Studio's home EFS: NOT deleted with the stack (see the README)",
            ),
            "ExecutionRoleArn": (self.execution_role.role_arn, "Execution role of Studio users and spaces"),
            "DomainSecurityGroupId": (self.security_group.security_group_id, "Security group of Studio apps"),
        }
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)

    def _statements(self, project: str, analytics: AnalyticsRefs | None) -> list[iam.PolicyStatement]:
        """Return the execution role's statements: SageMaker, EMR discovery, and with analytics its secrets."""
        sagemaker_arn = f"arn:{Aws.PARTITION}:sagemaker:{self.region}:{Aws.ACCOUNT_ID}"
        statements = [
            iam.PolicyStatement(
                sid="ListEmrClusters",
                # ListClusters has no resource-level permissions (Service Authorization Reference).
                actions=["elasticmapreduce:ListClusters"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="UseSageMaker",
                actions=[
                    "sagemaker:Describe*", "sagemaker:List*", "sagemaker:Search", "sagemaker:AddTags",
                    "sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:CreateSpace", "sagemaker:UpdateSpace",
                    "sagemaker:DeleteSpace", "sagemaker:CreatePresignedDomainUrl",
                    "sagemaker:CreateTrainingJob", "sagemaker:StopTrainingJob",
                    "sagemaker:CreateProcessingJob", "sagemaker:StopProcessingJob",
                ],
                resources=[f"{sagemaker_arn}:*"],
            ),
            iam.PolicyStatement(
                sid="PassOwnRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="WriteSageMakerLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[f"arn:{Aws.PARTITION}:logs:{self.region}:{Aws.ACCOUNT_ID}:log-group:/aws/sagemaker/*"],
            ),
        ]  # fmt: skip
        if analytics is not None:
            cluster_arn = (
                f"arn:{Aws.PARTITION}:elasticmapreduce:{self.region}:{Aws.ACCOUNT_ID}:cluster/"
                f"{analytics.cluster_id}"
            )
            statements += [
                iam.PolicyStatement(
                    sid="DescribeEmrCluster",
                    actions=[
                        "elasticmapreduce:DescribeCluster",
                        "elasticmapreduce:ListInstances",
                        "elasticmapreduce:ListInstanceGroups",
                    ],
                    resources=[cluster_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadQuerySecrets",
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=[s.secret_arn for s in analytics.query_secrets],
                ),
                iam.PolicyStatement(
                    sid="ReadCoordinatorCa",
                    actions=["s3:GetObject"],
                    resources=[analytics.client_ca_object_arn],
                ),
                iam.PolicyStatement(
                    sid="DecryptAnalyticsSecrets", actions=["kms:Decrypt"], resources=[analytics.key.key_arn]
                ),
            ]
        return statements

    def _acknowledge(self, project: str) -> None:
        """Acknowledge each wildcard of the execution policy with the reason it cannot be narrower."""
        policy = self.node.find_child("ExecutionPolicy")
        for finding, reason in {
            "Resource::*": "elasticmapreduce:ListClusters supports no resource-level permission; it lists "
            "cluster ids and states only.",
            "Action::sagemaker:Describe*": "Studio's UI and SDK describe domains, apps, spaces and jobs of "
            "this account and region.",
            "Action::sagemaker:List*": "Studio's UI and SDK list domains, apps, spaces and jobs of this account "
            "and region.",
            f"Resource::arn:<AWS::Partition>:sagemaker:{self.region}:<AWS::AccountId>:*": "SageMaker resources "
            "(apps, spaces, jobs) are named by users at run time; scoped to this account and region.",
            f"Resource::arn:<AWS::Partition>:logs:{self.region}:<AWS::AccountId>:log-group:/aws/sagemaker/*": ""
            "SageMaker jobs log to groups under /aws/sagemaker/ named per job.",
        }.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
