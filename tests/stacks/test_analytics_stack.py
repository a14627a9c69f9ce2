"""AnalyticsStack and StudioStack, asserted on synthesized templates (never on hashed logical ids)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from mlhpc.config import load_config, parse_config
from mlhpc_app.guardrails.template_checks import KNOWN_WEAK, check_no_secrets
from stacks.assembly import ANALYTICS, STUDIO, build_app

pytestmark = pytest.mark.synth

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "analytics-studio.yaml"
VARIANT = """
analytics:
  enabled: true
  emr: {query_engine: prestodb}
  tls:
    certificate_bundle_s3_uri: s3://corp-pki/emr/bundle.zip
    ca_certificate_s3_uri: s3://corp-pki/emr/ca.pem
  ldap:
    existing:
      url: ldaps://dc1.corp.example:636
      user_bind_pattern: uid=${USER},ou=people,dc=corp,dc=example
      ca_certificate_s3_uri: s3://corp-pki/ldap/ca.pem
      query_user_secret_arns: ["arn:aws:secretsmanager:us-east-1:111122223333:secret:dw-alice-AbCdEf"]
studio:
  enabled: true
"""


def stacks(config: Any) -> dict[str, Template]:
    assembly = build_app(config, nag=False, specs={})
    return {name: Template.from_stack(stack) for name, stack in assembly.stacks.items()}


@pytest.fixture(scope="module")
def example() -> dict[str, Template]:
    return stacks(load_config(EXAMPLE))


@pytest.fixture(scope="module")
def variant() -> dict[str, Template]:
    return stacks(parse_config(VARIANT)[0])


def one(template: Template, kind: str) -> dict[str, Any]:
    found = template.find_resources(kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return next(iter(found.values()))


def classifications(template: Template) -> dict[str, dict[str, Any]]:
    cluster = one(template, "AWS::EMR::Cluster")["Properties"]
    return {c["Classification"]: c["ConfigurationProperties"] for c in cluster["Configurations"]}


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def test_default_config_builds_neither_costly_stack() -> None:
    assembly = build_app(load_config(EXAMPLE.parents[1] / "default.yaml"), nag=False, specs={})
    assert ANALYTICS not in assembly.stacks and STUDIO not in assembly.stacks


# --- EMR -------------------------------------------------------------------------------------


def test_emr_7_with_hive_spark_trino_in_a_private_subnet(example: dict[str, Template]) -> None:
    props = one(example[ANALYTICS], "AWS::EMR::Cluster")["Properties"]
    assert re.fullmatch(r"emr-7\.\d+\.\d+", props["ReleaseLabel"])
    assert [a["Name"] for a in props["Applications"]] == ["Hadoop", "Hive", "Spark", "Trino"]
    assert props["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert props["ManagedScalingPolicy"]["ComputeLimits"]["MaximumCapacityUnits"] == 6
    assert props["Instances"]["Ec2SubnetId"]["Fn::ImportValue"].startswith("mlhpc-ana-network:")
    assert "ServiceAccessSecurityGroup" in props["Instances"]


def test_glue_is_the_metastore_of_hive_spark_and_trino(example: dict[str, Template]) -> None:
    found = classifications(example[ANALYTICS])
    factory = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
    assert found["hive-site"]["hive.metastore.client.factory.class"] == factory
    assert found["spark-hive-site"]["hive.metastore.client.factory.class"] == factory
    assert found["trino-connector-hive"] == {"hive.metastore": "glue"}


def test_hiveserver2_and_trino_authenticate_with_ldaps(example: dict[str, Template]) -> None:
    found = classifications(example[ANALYTICS])
    url = "ldaps://ldap.analytics.mlhpc.internal:636"
    hive = found["hive-site"]
    assert hive["hive.server2.authentication"] == "LDAP"
    assert hive["hive.server2.authentication.ldap.url"] == url
    assert hive["hive.server2.authentication.ldap.userDNPattern"] == "uid=%s,ou=people,dc=mlhpc,dc=internal"
    assert hive["hive.server2.authentication.ldap.groupFilter"] == "analysts"
    assert found["trino-config"] == {"http-server.authentication.type": "PASSWORD"}
    trino = found["trino-password-authenticator"]
    assert trino["password-authenticator.name"] == "ldap"
    assert trino["ldap.url"] == url
    assert trino["ldap.user-bind-pattern"] == "uid=${USER},ou=people,dc=mlhpc,dc=internal"
    assert "(cn=analysts)" in trino["ldap.group-auth-pattern"]
    for value in strings(found):
        assert "ldap://" not in value  # never plain LDAP


def test_security_configuration_encrypts_at_rest_and_in_transit(example: dict[str, Template]) -> None:
    template = example[ANALYTICS]
    config = one(template, "AWS::EMR::SecurityConfiguration")["Properties"]["SecurityConfiguration"]
    enc = config["EncryptionConfiguration"]
    assert enc["EnableAtRestEncryption"] is True and enc["EnableInTransitEncryption"] is True
    tls = enc["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]
    assert tls["CertificateProviderType"] == "PEM"
    assert tls["S3Object"]["Fn::GetAtt"][1] == "BundleUri"  # the generated self-signed bundle
    at_rest = enc["AtRestEncryptionConfiguration"]
    assert at_rest["S3EncryptionConfiguration"]["EncryptionMode"] == "SSE-KMS"
    assert at_rest["LocalDiskEncryptionConfiguration"]["EncryptionKeyProviderType"] == "AwsKms"
    assert at_rest["LocalDiskEncryptionConfiguration"]["EnableEbsEncryption"] is True
    assert config["InstanceMetadataServiceConfiguration"]["MinimumInstanceMetadataServiceVersion"] == 2
    cluster = one(template, "AWS::EMR::Cluster")["Properties"]
    assert cluster["SecurityConfiguration"]["Ref"].startswith("EmrSecurityConfiguration")
    assert "LogEncryptionKmsKeyId" in cluster
    generator = one(template, "Custom::SelfSignedTlsBundle")["Properties"]
    assert generator["DnsNames"] == [
        "*.ec2.internal", "query.analytics.mlhpc.internal", "*.analytics.mlhpc.internal",
    ]  # fmt: skip


def test_a_real_bundle_and_an_existing_directory_replace_the_generated_ones(
    variant: dict[str, Template],
) -> None:
    template = variant[ANALYTICS]
    assert template.find_resources("Custom::SelfSignedTlsBundle") == {}
    assert template.find_resources("AWS::EC2::Instance") == {}  # no LDAP host
    config = one(template, "AWS::EMR::SecurityConfiguration")["Properties"]["SecurityConfiguration"]
    s3_object = config["EncryptionConfiguration"]["InTransitEncryptionConfiguration"][
        "TLSCertificateConfiguration"
    ]
    assert s3_object["S3Object"] == "s3://corp-pki/emr/bundle.zip"
    found = classifications(template)
    assert found["presto-password-authenticator"]["ldap.url"] == "ldaps://dc1.corp.example:636"
    assert (
        found["hive-site"]["hive.server2.authentication.ldap.userDNPattern"]
        == "uid=%s,ou=people,dc=corp,dc=example"
    )
    assert found["presto-connector-hive"] == {"hive.metastore": "glue"}
    apps = [a["Name"] for a in one(template, "AWS::EMR::Cluster")["Properties"]["Applications"]]
    assert apps[-1] == "Presto"
    lifecycle = one(variant[STUDIO], "AWS::SageMaker::StudioLifecycleConfig")["Properties"]
    assert "presto-python-client==0.8.4" in json.dumps(lifecycle)


def test_the_airports_step_creates_the_table_in_the_datasets_bucket(example: dict[str, Template]) -> None:
    (step,) = one(example[ANALYTICS], "AWS::EMR::Cluster")["Properties"]["Steps"]
    assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    text = json.dumps(step)
    assert "create-airports-table.sh" in text and "DatasetsBucketArn" in text and "tables/airports/" in text


# --- LDAP host -------------------------------------------------------------------------------


def test_ldap_host_is_private_imdsv2_ssm_and_open_only_to_emr_on_636(example: dict[str, Template]) -> None:
    template = example[ANALYTICS]
    instance = one(template, "AWS::EC2::Instance")
    assert instance["CreationPolicy"]["ResourceSignal"] == {"Count": 1, "Timeout": "PT30M"}
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["Properties"]["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    ingress = [
        r["Properties"] for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("FromPort") == 636
    ]  # fmt: skip
    assert len(ingress) == 1 and "SourceSecurityGroupId" in ingress[0] and "CidrIp" not in ingress[0]
    for group in template.find_resources("AWS::EC2::SecurityGroup").values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") not in ("0.0.0.0/0",) and "CidrIpv6" not in rule


def test_user_data_names_secrets_but_holds_no_password(example: dict[str, Template]) -> None:
    template = example[ANALYTICS]
    user_data = json.dumps(one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"])
    user_data += json.dumps(one(template, "AWS::EC2::Instance")["Properties"].get("UserData", {}))
    assert "LDAP_USER_SECRETS" in user_data and "LDAP_ADMIN_SECRET" in user_data
    assert "ldap-bootstrap.sh" in user_data and "signal SUCCESS" in user_data
    assert not re.search(r"(?i)password\s*=", user_data)


def test_every_generated_secret_is_referenced_and_none_is_inlined(example: dict[str, Template]) -> None:
    template = example[ANALYTICS]
    body = template.to_json()
    secrets = template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 3  # the directory manager and the two users of the example
    for logical_id, secret in secrets.items():
        props = secret["Properties"]
        assert "SecretString" not in props
        generated = props["GenerateSecretString"]
        assert generated["GenerateStringKey"] == "password" and generated["PasswordLength"] >= 32
        assert "KmsKeyId" in props
        others = {k: v for k, v in body["Resources"].items() if k != logical_id}
        assert json.dumps({"Ref": logical_id}) in json.dumps([others, body.get("Outputs", {})]), logical_id
    users = [
        json.loads(s["Properties"]["GenerateSecretString"]["SecretStringTemplate"]) for s in secrets.values()
    ]
    shaped = [u for u in users if "jdbcURL" in u]
    assert sorted(u["username"] for u in shaped) == ["data-engineer", "studio-user"]
    assert {u["jdbcURL"] for u in shaped} == {
        "jdbc:trino://query.analytics.mlhpc.internal:8446/hive/default?SSL=true"
    }


@pytest.mark.parametrize("which", ["example", "variant"])
def test_no_password_like_literal_and_no_known_password_anywhere(
    which: str, example: dict[str, Template], variant: dict[str, Template]
) -> None:
    for name in (ANALYTICS, STUDIO):
        body = (example if which == "example" else variant)[name].to_json()
        assert check_no_secrets(body) == []
        text = json.dumps(body).lower()
        for weak in KNOWN_WEAK:
            assert weak.lower() not in text


def test_outputs_cluster_jdbc_and_data_wrangler_secrets(example: dict[str, Template]) -> None:
    outputs = example[ANALYTICS].to_json()["Outputs"]
    assert {"ClusterId", "JdbcUrl", "HiveJdbcUrl", "DataWranglerSecretStudioUser"} <= set(outputs)
    assert (
        outputs["JdbcUrl"]["Value"]
        == "jdbc:trino://query.analytics.mlhpc.internal:8446/hive/default?SSL=true"
    )


def test_query_ports_open_only_to_the_query_clients_group(example: dict[str, Template]) -> None:
    ports = sorted(
        r["Properties"]["FromPort"]
        for r in example[ANALYTICS].find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["FromPort"] in (8446, 10000)
    )
    assert ports == [8446, 10000]


# --- Studio ----------------------------------------------------------------------------------


def test_studio_domain_is_vpc_only_iam_and_kms(example: dict[str, Template]) -> None:
    props = one(example[STUDIO], "AWS::SageMaker::Domain")["Properties"]
    assert props["AppNetworkAccessType"] == "VpcOnly"
    assert props["AuthMode"] == "IAM"
    assert "KmsKeyId" in props and len(props["SubnetIds"]) == 2
    settings = props["DefaultUserSettings"]
    assert len(settings["SecurityGroups"]) == 2  # the domain's own and AnalyticsStack's query clients
    idle = settings["JupyterLabAppSettings"]["AppLifecycleManagement"]["IdleSettings"]
    assert idle["LifecycleManagement"] == "ENABLED" and idle["IdleTimeoutInMinutes"] == 60


def test_lifecycle_config_installs_the_pinned_trino_client(example: dict[str, Template]) -> None:
    props = one(example[STUDIO], "AWS::SageMaker::StudioLifecycleConfig")["Properties"]
    assert props["StudioLifecycleConfigAppType"] == "JupyterLab"
    text = json.dumps(props["StudioLifecycleConfigContent"])
    assert "Fn::Base64" in text and "trino==0.340.0" in text and "emr-ca.pem" in text


def test_user_profiles_from_config(example: dict[str, Template]) -> None:
    profiles = example[STUDIO].find_resources("AWS::SageMaker::UserProfile")
    assert [p["Properties"]["UserProfileName"] for p in profiles.values()] == ["studio-user"]


def test_execution_role_is_limited_to_emr_secrets_buckets_and_sagemaker(example: dict[str, Template]) -> None:
    template = example[STUDIO]
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::IAM::Policy").values()
    ]
    (statements,) = policies
    assert {s["Sid"] for s in statements} == {
        "ListEmrClusters", "DescribeEmrCluster", "ReadQuerySecrets", "ReadCoordinatorCa", "DecryptAnalyticsSecrets",
        "UseSageMaker", "PassOwnRoleToSageMaker", "WriteSageMakerLogs",
    }  # fmt: skip
    actions = [
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    services = {a.split(":")[0] for a in actions}
    assert services == {"elasticmapreduce", "secretsmanager", "s3", "kms", "sagemaker", "iam", "logs"}
    assert "*" not in actions and not any(a.endswith(":*") for a in actions)
    (wildcard,) = [s for s in statements if s["Resource"] == "*"]
    assert wildcard["Action"] == "elasticmapreduce:ListClusters"
    role = one(template, "AWS::IAM::Role")["Properties"]
    assert len(role["ManagedPolicyArns"]) == 1  # StorageStack's project-bucket policy


def test_studio_reaches_endpoints_from_its_own_group(example: dict[str, Template]) -> None:
    template = example[STUDIO]
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 443,
            "ToPort": 443,
            "GroupId": {"Fn::ImportValue": Match.string_like_regexp("Endpoints")},
        },
    )
