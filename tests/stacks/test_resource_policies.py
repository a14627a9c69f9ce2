"""Resource policies that let a service or another principal in: each is as narrow as the service allows.

The job-alerts topic lets EventBridge publish for the failed-jobs rule of this account only
(aws:SourceAccount, aws:SourceArn) and CloudWatch for this account's alarms; the HpcStack key lets
both use it for that topic's messages only (SNS's encryption context); EFS lets this account's principals mount and
write through a mount target and only the node role's IAM path mount as root.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_cdk.assertions import Template

from mlhpc.config import parse_config
from stacks.assembly import HPC, STORAGE, build_app

pytestmark = pytest.mark.synth

EVENTS = {"Service": "events.amazonaws.com"}
ACCOUNT = {"Ref": "AWS::AccountId"}
# Every resource-policy document the stacks write, by resource type and property.
POLICY_DOCUMENTS = {
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::EFS::FileSystem": "FileSystemPolicy",
    "AWS::Logs::ResourcePolicy": "PolicyDocument",
}


def templates(yaml_text: str = "") -> dict[str, Template]:
    config, _ = parse_config(yaml_text)
    assembly = build_app(config, nag=False)
    return {name: Template.from_stack(stack) for name, stack in assembly.stacks.items()}


@pytest.fixture(scope="module")
def default() -> dict[str, Template]:
    return templates()


def statements(template: Template, kind: str) -> Iterator[dict[str, Any]]:
    """Yield every statement of the resource policies of ``kind`` in a template."""
    for resource in template.find_resources(kind).values():
        document = resource["Properties"].get(POLICY_DOCUMENTS[kind])
        if isinstance(document, str):  # AWS::Logs::ResourcePolicy holds JSON text
            document = json.loads(document)
        yield from (document or {}).get("Statement", [])


def joined(value: Any) -> str:
    """Return an Fn::Join of literals and Refs as text (``${AWS::AccountId}`` for a Ref; ``aws`` the partition)."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::Partition"}:
        return "aws"  # CDK writes the partition out where the region is known, a Ref elsewhere
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return str(separator).join(joined(part) for part in parts)


def failed_rule_arn(template: Template) -> str:
    (rule,) = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"Description": "A job in an mlhpc queue FAILED"}}
    ).values()
    name = rule["Properties"]["Name"]
    assert name == "mlhpc-hpc-job-failed"
    return f"arn:aws:events:us-east-1:${{AWS::AccountId}}:rule/{name}"


def assert_tied_to_the_rule(statement: dict[str, Any], rule_arn: str) -> None:
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": ACCOUNT}, statement
    assert joined(condition["ArnEquals"]["aws:SourceArn"]) == rule_arn, statement


def test_alerts_topic_lets_eventbridge_publish_for_the_failed_jobs_rule_only(
    default: dict[str, Template],
) -> None:
    hpc = default[HPC]
    allowed = [
        s
        for s in statements(hpc, "AWS::SNS::TopicPolicy")
        if s["Effect"] == "Allow" and s["Principal"] == EVENTS
    ]
    (statement,) = allowed  # CDK's unconditioned grant (Sid "1") is gone
    assert statement["Principal"] == EVENTS and statement["Action"] == "sns:Publish"
    assert statement["Sid"] == "AllowEventBridgeRuleToPublish"
    assert_tied_to_the_rule(statement, failed_rule_arn(hpc))
    (rule,) = hpc.find_resources(
        "AWS::Events::Rule", {"Properties": {"Name": "mlhpc-hpc-job-failed"}}
    ).values()
    (topic,) = hpc.find_resources("AWS::SNS::Topic")
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Ref": topic}]
    assert "RoleArn" not in rule["Properties"]["Targets"][0]  # SNS targets use the topic policy


def test_hpc_key_lets_eventbridge_encrypt_for_the_failed_jobs_rule_only(default: dict[str, Template]) -> None:
    hpc = default[HPC]
    events = [s for s in statements(hpc, "AWS::KMS::Key") if s.get("Principal") == EVENTS]
    (statement,) = events  # one statement, with its sid; no second unconditioned grant
    assert statement["Sid"] == "AllowEventBridgeRuleToPublishEncrypted"
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert_for_the_alerts_topic(hpc, statement)


def assert_for_the_alerts_topic(hpc: Template, statement: dict[str, Any]) -> None:
    """The grant is the data keys of the job-alerts topic's messages: SNS's encryption context, its ARN."""
    (topic,) = hpc.find_resources("AWS::SNS::Topic").values()
    name = topic["Properties"]["TopicName"]
    assert name == "mlhpc-hpc-job-alerts"
    (context,) = statement["Condition"]["StringEquals"].items()
    assert context[0] == "kms:EncryptionContext:aws:sns:topicArn"
    assert joined(context[1]) == f"arn:aws:sns:us-east-1:${{AWS::AccountId}}:{name}"
    assert set(statement["Condition"]) == {"StringEquals"}  # no source key: KMS is reached through SNS


def test_cloudwatch_alarms_can_publish_to_the_encrypted_alerts_topic(default: dict[str, Template]) -> None:
    hpc = default[HPC]
    cloudwatch = {"Service": "cloudwatch.amazonaws.com"}
    (publish,) = [s for s in statements(hpc, "AWS::SNS::TopicPolicy") if s.get("Principal") == cloudwatch]
    assert publish["Sid"] == "AllowAlarmsToPublish" and publish["Action"] == "sns:Publish"
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert joined(publish["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:aws:cloudwatch:us-east-1:${AWS::AccountId}:alarm:*"
    )
    (encrypt,) = [s for s in statements(hpc, "AWS::KMS::Key") if s.get("Principal") == cloudwatch]
    assert encrypt["Sid"] == "AllowAlarmsToPublishEncrypted"
    assert sorted(encrypt["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert_for_the_alerts_topic(hpc, encrypt)
    # the alarm that needs them: it publishes to that topic
    (alarm,) = hpc.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"Threshold": 5}}).values()
    ((topic_id, _),) = hpc.find_resources("AWS::SNS::Topic").items()
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


def test_efs_policy_mount_and_write_for_this_account_root_for_the_node_role_path(
    default: dict[str, Template],
) -> None:
    by_sid = {s["Sid"]: s for s in statements(default[STORAGE], "AWS::EFS::FileSystem")}
    assert set(by_sid) == {"DenyWithoutTls", "MountAndWriteFromThisAccount", "RootAccessForNodeRoles"}
    assert by_sid["DenyWithoutTls"]["Effect"] == "Deny"
    assert by_sid["DenyWithoutTls"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    through_mount_target = {"elasticfilesystem:AccessedViaMountTarget": "true"}
    mount = by_sid["MountAndWriteFromThisAccount"]
    assert joined(mount["Principal"]["AWS"]) == "arn:aws:iam::${AWS::AccountId}:root"
    assert sorted(mount["Action"]) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert mount["Condition"] == {"Bool": through_mount_target}
    root = by_sid["RootAccessForNodeRoles"]
    assert root["Principal"] == mount["Principal"] and root["Action"] == "elasticfilesystem:ClientRootAccess"
    assert root["Condition"]["Bool"] == through_mount_target
    role_pattern = joined(root["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert role_pattern == "arn:aws:iam::${AWS::AccountId}:role/mlhpc/efs-root/*"


def test_only_the_node_role_is_under_the_efs_root_path_and_it_asks_for_root(
    default: dict[str, Template],
) -> None:
    roles = {
        logical: r
        for stack in default.values()
        for logical, r in stack.find_resources("AWS::IAM::Role").items()
    }
    under = [r for r in roles.values() if r["Properties"].get("Path") == "/mlhpc/efs-root/"]
    (node,) = under
    assert node["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    mount = [
        s
        for policy in default[HPC].find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "MountEfs"
    ]
    assert len(mount) == 1 and "elasticfilesystem:ClientRootAccess" in mount[0]["Action"]


def test_the_efs_root_path_follows_the_project_name() -> None:
    stacks = templates("project:\n  name: demo\n")
    (root,) = [
        s for s in statements(stacks[STORAGE], "AWS::EFS::FileSystem") if s["Sid"] == "RootAccessForNodeRoles"
    ]
    assert joined(root["Condition"]["ArnLike"]["aws:PrincipalArn"]).endswith(":role/demo/efs-root/*")
    paths = [r["Properties"].get("Path") for r in stacks[HPC].find_resources("AWS::IAM::Role").values()]
    assert paths.count("/demo/efs-root/") == 1


def test_no_resource_policy_allows_everyone_or_a_service_without_a_condition(
    default: dict[str, Template],
) -> None:
    """Anyone (``*``, ``{"AWS": "*"}``) or a service principal, allowed in without a condition, is too wide."""
    wide = []
    for name, template in default.items():
        for kind in POLICY_DOCUMENTS:
            for statement in statements(template, kind):
                principal = statement.get("Principal")
                anyone = principal in ("*", {"AWS": "*"})
                service = isinstance(principal, dict) and "Service" in principal
                if statement["Effect"] == "Allow" and (anyone or service) and not statement.get("Condition"):
                    wide.append((name, kind, statement))
    assert wide == []
