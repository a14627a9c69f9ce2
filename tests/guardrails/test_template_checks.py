"""Our own template checks, on small hand-written templates: each one catches what it claims to."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mlhpc_app.guardrails.template_checks import (
    check_buckets,
    check_imdsv2,
    check_no_secrets,
    check_statement_sids,
    run_checks,
)


def template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


def launch_template(tokens: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"InstanceType": "p5.48xlarge"}
    if tokens is not None:
        data["MetadataOptions"] = {"HttpTokens": tokens, "HttpPutResponseHopLimit": 2}
    return {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": data}}


def test_imdsv2_required_passes() -> None:
    assert check_imdsv2(template(Lt=launch_template("required"))) == []


@pytest.mark.parametrize("tokens", ["optional", None])
def test_imdsv2_optional_or_missing_fails(tokens: str | None) -> None:
    (finding,) = check_imdsv2(template(Lt=launch_template(tokens)))
    assert finding.code == "IMDS001"
    assert finding.resource == "Lt"


def test_instance_without_launch_template_fails() -> None:
    (finding,) = check_imdsv2(
        template(Box={"Type": "AWS::EC2::Instance", "Properties": {"ImageId": "ami-1"}})
    )
    assert "no launch template" in finding.message


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"MasterUserPassword": "hunter2hunter2"}, "Properties.MasterUserPassword holds a literal"),
        ({"SecretString": "x"}, None),  # a key we allow by name, but its value is scanned below
        ({"Environment": {"API_KEY": "abc123"}}, "Properties.Environment.API_KEY holds a literal"),
        ({"Description": "uses AKIAABCDEFGHIJKLMNOP for access"}, "contains an AWS access key id"),
        ({"Config": "-----BEGIN RSA PRIVATE KEY-----\nMII..."}, "contains a PEM private key"),
        ({"Script": "ldap_password=welcome123"}, "contains the known password 'welcome123'"),
        ({"Script": "db password: s3cr3tvalue"}, "contains a password assignment"),
        ({"ConfigurationProperties": {"password-authenticator.name": "ldap"}}, None),  # EMR's plugin name
        (
            {"Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:dw-alice-AbCdEf"},
            None,
        ),  # an ARN
        (
            {"ConfigurationProperties": {"ldap.bind-password": "hunter2hunter2"}},
            "ldap.bind-password holds a literal",
        ),
    ],
)
def test_secret_literals_are_found(props: dict[str, Any], expected: str | None) -> None:
    findings = check_no_secrets(template(R={"Type": "AWS::Any::Thing", "Properties": props}))
    if expected is None:
        assert findings == []
    else:
        assert any(expected in f.message for f in findings), findings


def test_secret_hidden_in_base64_user_data_is_found() -> None:
    script = "#!/bin/bash\necho 'password=welcome123' > /etc/app.conf\n"
    props = {"LaunchTemplateData": {"UserData": base64.b64encode(script.encode()).decode()}}
    findings = check_no_secrets(template(Lt={"Type": "AWS::EC2::LaunchTemplate", "Properties": props}))
    assert any("(base64)" in f.message for f in findings)


def test_references_to_secrets_are_fine() -> None:
    props = {
        "MasterUserPassword": {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": "Secret"}, "}}"]]},
        "GenerateSecretString": {"PasswordLength": 32, "ExcludePunctuation": True},
        "MetadataOptions": {"HttpTokens": "required"},
        "Script": "PASSWORD=$(aws secretsmanager get-secret-value --secret-id $SECRET_ARN)",
    }
    assert check_no_secrets(template(R={"Type": "AWS::Any::Thing", "Properties": props})) == []


def test_outputs_are_scanned_too() -> None:
    tmpl = {"Resources": {}, "Outputs": {"Pw": {"Value": "password=welcome123"}}}
    assert [f.resource for f in check_no_secrets(tmpl)] == ["Pw"]


def bucket(block: bool = True) -> dict[str, Any]:
    flags = {
        k: block
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    }
    return {"Type": "AWS::S3::Bucket", "Properties": {"PublicAccessBlockConfiguration": flags}}


def tls_policy(target: str, effect: str = "Deny", secure: str = "false") -> dict[str, Any]:
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": target},
            "PolicyDocument": {
                "Statement": [
                    {
                        "Effect": effect,
                        "Action": "s3:*",
                        "Condition": {"Bool": {"aws:SecureTransport": secure}},
                    }
                ]
            },
        },
    }


def test_bucket_blocked_and_tls_enforced_passes() -> None:
    assert check_buckets(template(B=bucket(), P=tls_policy("B"))) == []


def test_bucket_without_tls_policy_fails() -> None:
    assert [f.code for f in check_buckets(template(B=bucket()))] == ["S3002"]


def test_bucket_with_allow_instead_of_deny_fails() -> None:
    assert [f.code for f in check_buckets(template(B=bucket(), P=tls_policy("B", effect="Allow")))] == [
        "S3002"
    ]


def test_policy_on_another_bucket_does_not_count() -> None:
    assert [f.resource for f in check_buckets(template(A=bucket(), B=bucket(), P=tls_policy("B")))] == ["A"]


def test_public_bucket_fails() -> None:
    findings = check_buckets(template(B=bucket(block=False), P=tls_policy("B")))
    assert [f.code for f in findings] == ["S3001"]
    assert "BlockPublicAcls" in findings[0].message


def test_statement_without_sid_fails_in_policies_and_inline_role_policies() -> None:
    policy = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyDocument": {"Statement": [{"Sid": "Ok", "Effect": "Allow"}, {"Effect": "Allow"}]}
        },
    }
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Policies": [{"PolicyName": "x", "PolicyDocument": {"Statement": {"Effect": "Allow"}}}]
        },
    }
    findings = check_statement_sids(template(P=policy, R=role))
    assert [(f.code, f.resource) for f in findings] == [("IAM001", "P"), ("IAM001", "R")]


def test_run_checks_combines_everything() -> None:
    findings = run_checks(template(Lt=launch_template("optional"), B=bucket()))
    assert sorted(f.code for f in findings) == ["IMDS001", "S3002"]
