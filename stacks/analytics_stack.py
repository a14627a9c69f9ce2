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

from mlhpc.config.model import AnalyticsConfig, RemovalPolicyName
from stacks.constructs.buckets import AccessLogBucket, SecureBucket
from stacks.constructs.emr import EmrCluster
from stacks.constructs.emr_configs import (
    HIVESERVER2_PORT,
    TRINO_HTTPS_PORT,
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
        datasets, data_key = storage.datasets, storage.key
        # An explicit export (named, not hashed) so the IAM5 acknowledgement below can name it.
        producer = Stack.of(datasets)
        self.datasets_export = f"{producer.stack_name}-DatasetsBucketArn"
        datasets = s3.Bucket.from_bucket_arn(
            self, "DatasetsBucket", producer.export_value(datasets.bucket_arn, name=self.datasets_export)
        )
        removal = removal_policy(bucket_removal)
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

        zone = route53.PrivateHostedZone(
            self,
            "Zone",
            zone_name=config.dns_zone,
            vpc=vpc,
            comment=f"{project} analytics: ldap and query names",
        )
        ldap_host, query_host = f"ldap.{config.dns_zone}", f"query.{config.dns_zone}"
        engine = config.emr.query_engine
        self.engine = engine
        jdbc_url = trino_jdbc_url(engine=engine, host=query_host)

        # --- users: one generated secret each, in the shape Data Wrangler reads ------------------
        self.query_secrets: dict[str, secretsmanager.ISecret] = {}
        ldap_config = config.ldap
        if ldap_config.existing is None:
            for user in ldap_config.users:
                secret = secretsmanager.Secret(
                    self,
                    f"User{''.join(p.capitalize() for p in re.split('[-_]', user.name))}Secret",
                    description=f"LDAP user {user.name}: username, generated password and the JDBC URL "
                    "(the SageMaker Data Wrangler EMR connection shape)",
                    encryption_key=self.key,
                    generate_secret_string=secretsmanager.SecretStringGenerator(
                        secret_string_template=json.dumps({"username": user.name, "jdbcURL": jdbc_url}),
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
                self.query_secrets[user.name] = secret
            self.ldap: LdapServer | None = LdapServer(
                self, "Ldap", vpc=vpc, subnet=subnet, config=ldap_config, key=self.key, zone=zone,
                hostname=ldap_host, user_secrets=self.query_secrets, ca_bucket=self.artifacts,
                ca_object_key=LDAP_CA_KEY,
            )  # fmt: skip
            directory = managed_directory(
                host=ldap_host, base_dn=ldap_config.base_dn, query_group=ldap_config.query_group
            )
            ldap_ca_uri, ldap_ca_arn = self.ldap.ca_uri, self.artifacts.arn_for_objects(LDAP_CA_KEY)
        else:
            self.ldap = None
            for index, arn in enumerate(ldap_config.existing.query_user_secret_arns):
                self.query_secrets[f"existing{index}"] = secretsmanager.Secret.from_secret_complete_arn(
                    self, f"ExistingSecret{index}", arn
                )
            directory = existing_directory(ldap_config.existing)
            ldap_ca_uri = ldap_config.existing.ca_certificate_s3_uri
            ldap_ca_arn = _s3_object_arn(ldap_ca_uri)

        # --- TLS for EMR: the configured bundle, or a generated SELF-SIGNED one -----------------
        if config.tls.certificate_bundle_s3_uri is None:
            node_domain = "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal"
            tls = SelfSignedTlsBundle(
                self, "SelfSignedTls", bucket=self.artifacts, key=self.key, prefix="tls/",
                dns_names=[f"*.{node_domain}", query_host, f"*.{config.dns_zone}"],
            )  # fmt: skip
            bundle_uri, bundle_arn = tls.bundle_uri, tls.bundle_object_arn
            self.client_ca_uri, self.client_ca_object_arn = tls.ca_uri, tls.ca_object_arn
        else:
            bundle_uri = config.tls.certificate_bundle_s3_uri
            bundle_arn = _s3_object_arn(bundle_uri)
            assert config.tls.ca_certificate_s3_uri is not None  # rule ANA006
            self.client_ca_uri = config.tls.ca_certificate_s3_uri
            self.client_ca_object_arn = _s3_object_arn(self.client_ca_uri)

        # --- the airports dataset step -----------------------------------------------------------
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
        table_location = f"s3://{datasets.bucket_name}/{config.airports_prefix}"
        step_args = [
            "bash", "-c",
            f"aws s3 cp {uri['create-airports-table.sh']} /tmp/create-airports-table.sh && "
            f"bash /tmp/create-airports-table.sh {table_location} {uri['airports-sample.csv']} {uri['airports.hql']}",
        ]  # fmt: skip

        glue_arns = [
            f"arn:{Aws.PARTITION}:glue:{self.region}:{Aws.ACCOUNT_ID}:{kind}"
            for kind in ("catalog", "database/*", "table/*/*", "userDefinedFunction/*/*")
        ]
        statements = [
            iam.PolicyStatement(
                sid="ReadBootstrapFiles",
                actions=["s3:GetObject"],
                resources=[
                    *[f"arn:{Aws.PARTITION}:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in assets.values()],
                    ldap_ca_arn,
                    bundle_arn,
                ],
            ),
            iam.PolicyStatement(
                sid="WriteClusterLogs",
                actions=["s3:PutObject", "s3:GetObject"],
                resources=[self.artifacts.arn_for_objects("emr-logs/*")],
            ),
            iam.PolicyStatement(
                sid="ListBuckets",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[datasets.bucket_arn, self.artifacts.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadWriteTables",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[datasets.arn_for_objects("tables/*")],
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
        configurations = emr_configurations(engine=engine, directory=directory)
        self.cluster = EmrCluster(
            self, "Emr", name=f"{project}-analytics", vpc=vpc, subnet=subnet, config=config.emr,
            disk_key=self.key, s3_key=data_key, log_uri=f"s3://{self.artifacts.bucket_name}/emr-logs/",
            tls_bundle_uri=bundle_uri, configurations=configurations,
            bootstrap_actions=[("Trust the LDAP CA", uri["emr-trust-ca.sh"], [ldap_ca_uri])],
            steps=[("Create the airports table", step_args)], instance_statements=statements,
        )  # fmt: skip
        self._acknowledge_wildcards()
        if self.ldap is not None:
            self.ldap.allow_ldaps_from(self.cluster.primary_security_group, "LDAPS from the EMR primary node")
            # HiveServer2 and Trino/Presto need a working directory when they start.
            self.cluster.cluster.node.add_dependency(self.ldap.instance)

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
        self.jdbc_url = jdbc_url

        outputs: dict[str, tuple[str, str]] = {
            "ClusterId": (self.cluster.cluster_id, "EMR cluster id"),
            "JdbcUrl": (jdbc_url, f"{engine.value} JDBC URL (HTTPS, LDAP password)"),
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
            key = "".join(p.capitalize() for p in re.split("[-_]", name))
            outputs[f"DataWranglerSecret{key}"] = (
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
