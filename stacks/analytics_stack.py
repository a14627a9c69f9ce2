"""AnalyticsStack: EMR (Hive, Spark, Trino or PrestoDB) on the Glue Data Catalog behind LDAP over TLS.

Nothing here is reachable from the internet: the cluster and the LDAP host live in one
private subnet, DNS names come from a private hosted zone (ldap.<zone>, query.<zone>), and
clients (Studio) get in through ``query_clients_security_group``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from mlhpc.config.analytics import AnalyticsConfig, LdapConfig
from mlhpc.config.common import RemovalPolicyName
from stacks.constructs.buckets import AccessLogBucket, SecureBucket
from stacks.constructs.emr import EmrCluster
from stacks.constructs.emr_configs import (
    HIVESERVER2_PORT,
    TRINO_HTTPS_PORT,
    Directory,
    emr_configurations,
    existing_directory,
    hive_jdbc_url,
    managed_directory,
    trino_jdbc_url,
)
from stacks.constructs.ldap import LdapServer
from stacks.constructs.nag import acknowledge
from stacks.constructs.stateful import removal_policy
from stacks.constructs.tls_bundle import SelfSignedTlsBundle
from stacks.refs import NetworkRefs, StorageRefs

ASSETS = Path(__file__).resolve().parent / "assets" / "analytics"
LDAP_CA_KEY = "ldap/ca.pem"


def _pascal(name: str) -> str:
    """Return a user name as a construct-id part ('data-analyst' -> 'DataAnalyst')."""
    return "".join(p.capitalize() for p in re.split("[-_]", name))


def _s3_object_arn(uri: str) -> str:
    """Return the ARN of the object an s3:// URI names (a config value, already validated)."""
    match = re.fullmatch(r"s3://([^/]+)/(.+)", uri)
    assert match, uri
    return f"arn:{Aws.PARTITION}:s3:::{match.group(1)}/{match.group(2)}"


class AnalyticsStack(Stack):
    """EMR + LDAP + TLS. What StudioStack uses of it (``stacks.refs.AnalyticsRefs``): ``engine``, ``cluster``,
    ``query_clients_security_group``, ``query_secrets`` (name -> secret), ``client_ca_uri`` and
    ``client_ca_object_arn``, ``key``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AnalyticsConfig,
        project: str,
        network: NetworkRefs,
        storage: StorageRefs,
        bucket_removal: RemovalPolicyName = RemovalPolicyName.RETAIN,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        vpc, subnet = network.vpc, network.single_zone_subnet
        self.datasets = self._import_datasets(storage.datasets)
        self._add_key_and_artifacts(config, project, removal_policy(bucket_removal))
        zone = route53.PrivateHostedZone(
            self,
            "Zone",
            zone_name=config.dns_zone,
            vpc=vpc,
            comment=f"{project} analytics: ldap and query names",
        )
        ldap_host, query_host = f"ldap.{config.dns_zone}", f"query.{config.dns_zone}"
        self.engine = config.emr.query_engine
        self.jdbc_url = trino_jdbc_url(engine=self.engine, host=query_host)

        directory, ldap_ca_uri, ldap_ca_arn = self._add_directory(
            config.ldap, vpc=vpc, subnet=subnet, zone=zone, hostname=ldap_host
        )
        bundle_uri, bundle_arn = self._add_tls(config, query_host)
        self.cluster = self._add_cluster(
            config, project, vpc=vpc, subnet=subnet, directory=directory, ldap_ca_uri=ldap_ca_uri,
            readable_objects=[ldap_ca_arn, bundle_arn], tls_bundle_uri=bundle_uri, storage_key=storage.key,
        )  # fmt: skip
        self._acknowledge_wildcards()
        if self.ldap is not None:
            self.ldap.allow_ldaps_from(self.cluster.primary_security_group, "LDAPS from the EMR primary node")
            # HiveServer2 and Trino/Presto need a working directory when they start.
            self.cluster.cluster.node.add_dependency(self.ldap.instance)
        self._add_query_access(vpc, zone, query_host)
        self._add_outputs(config, directory=directory, query_host=query_host)

    def _import_datasets(self, datasets: s3.IBucket) -> s3.IBucket:
        """Return the datasets bucket through an explicit export (named, not hashed).

        The IAM5 acknowledgment of the tables/ wildcard names the export, so it must not carry a hash.
        """
        producer = Stack.of(datasets)
        self.datasets_export = f"{producer.stack_name}-DatasetsBucketArn"
        return s3.Bucket.from_bucket_arn(
            self, "DatasetsBucket", producer.export_value(datasets.bucket_arn, name=self.datasets_export)
        )

    def _add_key_and_artifacts(self, config: AnalyticsConfig, project: str, removal: RemovalPolicy) -> None:
        """Create the stack's key and the artifacts bucket (EMR logs, TLS bundle, LDAP CA) with its access logs."""
        self.key = kms.Key(
            self, "Key", description=f"{project} analytics: EMR local disks and logs, LDAP secrets, TLS bundle",
            enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        access_logs = AccessLogBucket(self, "AccessLogs", removal_policy=removal, expiry_days=365)
        self.artifacts = SecureBucket(
            self, "Artifacts", key=self.key, access_logs=access_logs.bucket, removal_policy=removal, versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireEmrLogs", prefix="emr-logs/",
                                 expiration=Duration.days(config.emr.log_expiry_days)),
                s3.LifecycleRule(id="ExpireOldVersions", noncurrent_version_expiration=Duration.days(30),
                                 abort_incomplete_multipart_upload_after=Duration.days(7)),
            ],
        ).bucket  # fmt: skip

    def _add_directory(
        self,
        ldap_config: LdapConfig,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        zone: route53.IPrivateHostedZone,
        hostname: str,
    ) -> tuple[Directory, str, str]:
        """Create the query users' secrets and the LDAP host, or import an existing directory's secrets.

        Return the directory EMR authenticates against, and the URI and object ARN of its CA.
        """
        self.query_secrets: dict[str, secretsmanager.ISecret] = {}
        if ldap_config.existing is not None:
            self.ldap: LdapServer | None = None
            for index, arn in enumerate(ldap_config.existing.query_user_secret_arns):
                self.query_secrets[f"existing{index}"] = secretsmanager.Secret.from_secret_complete_arn(
                    self, f"ExistingSecret{index}", arn
                )
            ca_uri = ldap_config.existing.ca_certificate_s3_uri
            return existing_directory(ldap_config.existing), ca_uri, _s3_object_arn(ca_uri)
        for user in ldap_config.users:
            self.query_secrets[user.name] = self._add_user_secret(user.name)
        self.ldap = LdapServer(
            self, "Ldap", vpc=vpc, subnet=subnet, config=ldap_config, key=self.key, zone=zone,
            hostname=hostname, user_secrets=self.query_secrets, ca_bucket=self.artifacts,
            ca_object_key=LDAP_CA_KEY,
        )  # fmt: skip
        directory = managed_directory(
            host=hostname, base_dn=ldap_config.base_dn, query_group=ldap_config.query_group
        )
        return directory, self.ldap.ca_uri, self.artifacts.arn_for_objects(LDAP_CA_KEY)

    def _add_user_secret(self, user: str) -> secretsmanager.Secret:
        """Create one query user's secret: a generated password, in the shape Data Wrangler reads."""
        secret = secretsmanager.Secret(
            self,
            f"User{_pascal(user)}Secret",
            description=f"LDAP user {user}: username, generated password and the JDBC URL "
            "(the SageMaker Data Wrangler EMR connection shape)",
            encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"username": user, "jdbcURL": self.jdbc_url}),
                generate_string_key="password",
                password_length=32,
                exclude_punctuation=True,
            ),
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Rotation-ready (JSON with a generated password) but not rotated automatically: rotating must "
            "also change the user's hash in slapd (ldappasswd over LDAPS), which no rotation Lambda does yet.",
        )
        return secret

    def _add_tls(self, config: AnalyticsConfig, query_host: str) -> tuple[str, str]:
        """Use the configured TLS bundle or generate a SELF-SIGNED one; return the bundle's URI and object ARN.

        Also sets ``client_ca_uri`` and ``client_ca_object_arn``: the CA clients verify the coordinator with.
        """
        if config.tls.certificate_bundle_s3_uri is not None:
            bundle_uri = config.tls.certificate_bundle_s3_uri
            assert config.tls.ca_certificate_s3_uri is not None  # rule ANA006
            self.client_ca_uri = config.tls.ca_certificate_s3_uri
            self.client_ca_object_arn = _s3_object_arn(self.client_ca_uri)
            return bundle_uri, _s3_object_arn(bundle_uri)
        node_domain = "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal"
        tls = SelfSignedTlsBundle(
            self, "SelfSignedTls", bucket=self.artifacts, key=self.key, prefix="tls/",
            dns_names=[f"*.{node_domain}", query_host, f"*.{config.dns_zone}"],
        )  # fmt: skip
        self.client_ca_uri, self.client_ca_object_arn = tls.ca_uri, tls.ca_object_arn
        return tls.bundle_uri, tls.bundle_object_arn

    def _add_cluster(
        self,
        config: AnalyticsConfig,
        project: str,
        *,
        vpc: ec2.IVpc,
        subnet: ec2.ISubnet,
        directory: Directory,
        ldap_ca_uri: str,
        readable_objects: list[str],
        tls_bundle_uri: str,
        storage_key: kms.IKey,
    ) -> EmrCluster:
        """Upload the bootstrap files and create the EMR cluster that trusts the LDAP CA and loads airports."""
        assets = {
            name: s3_assets.Asset(self, f"{label}Asset", path=str(ASSETS / name))
            for label, name in (
                ("TrustCa", "emr-trust-ca.sh"),
                ("AirportsStep", "create-airports-table.sh"),
                ("AirportsDdl", "airports.hql"),
                ("AirportsSample", "airports-sample.csv"),
            )
        }
        uri = {name: f"s3://{a.s3_bucket_name}/{a.s3_object_key}" for name, a in assets.items()}
        table_location = f"s3://{self.datasets.bucket_name}/{config.airports_prefix}"
        step_args = [
            "bash", "-c",
            f"aws s3 cp {uri['create-airports-table.sh']} /tmp/create-airports-table.sh && "
            f"bash /tmp/create-airports-table.sh {table_location} {uri['airports-sample.csv']} {uri['airports.hql']}",
        ]  # fmt: skip
        bootstrap_files = [
            f"arn:{Aws.PARTITION}:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in assets.values()
        ]
        statements = self._instance_statements([*bootstrap_files, *readable_objects], storage_key)
        return EmrCluster(
            self, "Emr", name=f"{project}-analytics", vpc=vpc, subnet=subnet, config=config.emr,
            disk_key=self.key, s3_key=storage_key, log_uri=f"s3://{self.artifacts.bucket_name}/emr-logs/",
            tls_bundle_uri=tls_bundle_uri, configurations=emr_configurations(engine=self.engine, directory=directory),
            bootstrap_actions=[("Trust the LDAP CA", uri["emr-trust-ca.sh"], [ldap_ca_uri])],
            steps=[("Create the airports table", step_args)], instance_statements=statements,
        )  # fmt: skip

    def _instance_statements(
        self, readable_objects: list[str], data_key: kms.IKey
    ) -> list[iam.PolicyStatement]:
        """Return the EMR nodes' statements: bootstrap files, logs, tables, both keys, the Glue catalog."""
        glue_arns = [
            f"arn:{Aws.PARTITION}:glue:{self.region}:{Aws.ACCOUNT_ID}:{kind}"
            for kind in ("catalog", "database/*", "table/*/*", "userDefinedFunction/*/*")
        ]
        return [
            iam.PolicyStatement(sid="ReadBootstrapFiles", actions=["s3:GetObject"], resources=readable_objects),
            iam.PolicyStatement(
                sid="WriteClusterLogs",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[self.artifacts.arn_for_objects("emr-logs/*")],
            ),
            iam.PolicyStatement(
                sid="ListBuckets",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self.datasets.bucket_arn, self.artifacts.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadWriteTables",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self.datasets.arn_for_objects("tables/*")],
            ),
            iam.PolicyStatement(
                sid="UseKeys",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[self.key.key_arn, data_key.key_arn],
            ),
            iam.PolicyStatement(
                sid="GlueDataCatalog",
                actions=[
                    "glue:GetDatabase", "glue:GetDatabases", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables",
                    "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartition",
                    "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
                    "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:DeletePartition",
                    "glue:BatchDeletePartition", "glue:GetUserDefinedFunction", "glue:GetUserDefinedFunctions",
                ],
                resources=glue_arns,
            ),
        ]  # fmt: skip

    def _add_query_access(self, vpc: ec2.IVpc, zone: route53.IPrivateHostedZone, query_host: str) -> None:
        """Create the query clients' group, admit it to the query ports and name the coordinator query.<zone>."""
        self.query_clients_security_group = ec2.SecurityGroup(
            self, "QueryClientsSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="Clients of Trino/Presto and HiveServer2 (SageMaker Studio apps)",
        )  # fmt: skip
        for port, what in (
            (TRINO_HTTPS_PORT, "Trino/Presto HTTPS"),
            (HIVESERVER2_PORT, "HiveServer2 over TLS"),
        ):
            self.query_clients_security_group.add_egress_rule(
                self.cluster.primary_security_group, ec2.Port.tcp(port), f"{what} on the EMR primary node"
            )
        self.cluster.allow_query_clients(self.query_clients_security_group)
        route53.CnameRecord(
            self, "QueryDnsRecord", zone=zone, record_name=query_host, domain_name=self.cluster.primary_dns,
            ttl=Duration.minutes(5),
        )  # fmt: skip

    def _add_outputs(self, config: AnalyticsConfig, *, directory: Directory, query_host: str) -> None:
        """Output the cluster id, JDBC URLs, directory, CA, bucket, table prefix and our users' secrets."""
        outputs: dict[str, tuple[str, str]] = {
            "ClusterId": (self.cluster.cluster_id, "EMR cluster id"),
            "JdbcUrl": (self.jdbc_url, f"{self.engine.value} JDBC URL (HTTPS, LDAP password)"),
            "HiveJdbcUrl": (hive_jdbc_url(host=query_host), "HiveServer2 JDBC URL (TLS, LDAP password)"),
            "LdapUrl": (directory.url, "Directory HiveServer2 and Trino/Presto authenticate against"),
            "ClientCaUri": (self.client_ca_uri, "PEM of the CA clients verify the coordinator with"),
            "ArtifactsBucketName": (self.artifacts.bucket_name, "EMR logs, TLS bundle, LDAP CA"),
            "AirportsTablePrefix": (
                config.airports_prefix,
                "Prefix in the datasets bucket of the airports table: put the full CSV there (same columns)",
            ),
        }
        # Existing directories bring their own secrets (config lists them); only ours are output.
        for name, user_secret in (self.query_secrets if self.ldap is not None else {}).items():
            outputs[f"DataWranglerSecret{_pascal(name)}"] = (
                user_secret.secret_arn,
                f"Secret for {name}: username, password, jdbcURL (Data Wrangler EMR connection)",
            )
        if self.ldap is not None:
            outputs["LdapInstanceId"] = (
                self.ldap.instance.instance_id,
                "OpenLDAP host (SSM Session Manager)",
            )
        for key, (value, description) in outputs.items():
            CfnOutput(self, key, value=value, description=description)

    def _acknowledge_wildcards(self) -> None:
        """Acknowledge each wildcard of the EMR nodes' policy with the reason it cannot be narrower."""
        policy = self.cluster.node.find_child("InstancePolicy")
        reasons = {
            f"Resource::arn:<AWS::Partition>:glue:{self.region}:<AWS::AccountId>:database/*": "Hive, Spark and "
            "Trino create and read databases of this account's Glue catalog by name at query time.",
            f"Resource::arn:<AWS::Partition>:glue:{self.region}:<AWS::AccountId>:table/*/*": "Tables are created by "
            "users' DDL at query time; the catalog of this account and region only.",
            f"Resource::arn:<AWS::Partition>:glue:{self.region}:<AWS::AccountId>:userDefinedFunction/*/*": "Hive "
            "resolves user-defined functions from the catalog by name at query time.",
        }
        artifacts = self.get_logical_id(self.artifacts.node.default_child)  # type: ignore[arg-type]
        reasons[f"Resource::<{artifacts}.Arn>/emr-logs/*"] = (
            "EMR writes its logs under one prefix of our bucket."
        )
        reasons[f"Resource::{self.datasets_export}/tables/*"] = (
            "Hive tables (and the airports sample the step copies) live under tables/ of the datasets bucket."
        )
        for finding, reason in reasons.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
