"""The in-account image build: a privileged CodeBuild project on the uploaded source, encrypted, least privilege."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Capture, Match, Template

from stacks.constructs.image_build import BUILD_SPEC, REPO_ROOT, SOURCE_EXCLUDE, ImageBuildProject


@pytest.fixture(scope="module")
def template() -> Template:
    stack = Stack(App(), "Bare", env={"account": "123456789012", "region": "us-east-1"})
    key = kms.Key(stack, "Key")
    repos = [ecr.Repository(stack, f"Repo{name}", repository_name=f"mlhpc/{name}") for name in ("a", "b")]
    ImageBuildProject(
        stack, "ImageBuild", repositories=repos, key=key, image_tag="1.2.3",
        log_retention=logs.RetentionDays.ONE_MONTH,
    )  # fmt: skip
    return Template.from_stack(stack)


def _key_ref(template: Template) -> dict[str, Any]:
    (key_id,) = template.find_resources("AWS::KMS::Key")
    return {"Fn::GetAtt": [key_id, "Arn"]}


def test_privileged_docker_build_with_the_tag_and_overridable_variables(template: Template) -> None:
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like(
                {
                    "PrivilegedMode": True,
                    "Image": Match.string_like_regexp(r"^aws/codebuild/standard:"),
                    "EnvironmentVariables": Match.array_with(
                        [{"Name": "IMAGE_TAG", "Type": "PLAINTEXT", "Value": "1.2.3"}]
                    ),
                }
            ),
        },
    )


def test_encrypted_with_the_given_key_and_logging_to_its_encrypted_group(template: Template) -> None:
    group = Capture()
    template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "EncryptionKey": _key_ref(template),
            "LogsConfig": {"CloudWatchLogs": {"Status": "ENABLED", "GroupName": {"Ref": group}}},
        },
    )
    found = template.find_resources("AWS::Logs::LogGroup")
    assert found[group.as_string()]["Properties"]["KmsKeyId"] == _key_ref(template)


def test_source_is_an_s3_asset_of_the_build_folders_only(template: Template) -> None:
    location = Capture()
    template.has_resource_properties(
        "AWS::CodeBuild::Project", {"Source": {"Type": "S3", "Location": location}}
    )
    # the bootstrap assets bucket of the stack's (fixed) account and region, object <hash>.zip
    assert re.fullmatch(
        r"cdk-hnb659fds-assets-123456789012-us-east-1/[0-9a-f]{64}\.zip", location.as_string()
    )
    # what every Dockerfile COPYs is in; environments, tests and caches are not
    assert SOURCE_EXCLUDE[:3] == ("*", "!mlhpc/", "!workloads/")
    for dockerfile in REPO_ROOT.glob("workloads/*/Dockerfile"):
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY"):
                source = line.split()[-2]
                assert source.startswith(("mlhpc/", "workloads/")), (dockerfile, line)


def test_build_spec_builds_then_pushes_in_one_phase_and_logs_in_through_stdin() -> None:
    text = json.dumps(BUILD_SPEC)
    assert "--password-stdin" in text and "get-login-password" in text
    build = BUILD_SPEC["phases"]["build"]["commands"]  # type: ignore[index]
    assert build[0].startswith('docker build -f "workloads/$WORKLOAD/Dockerfile"')
    assert build[1] == 'docker push "$REPOSITORY_URI:$IMAGE_TAG"'
    assert "post_build" not in BUILD_SPEC["phases"]  # type: ignore[operator]


def test_role_has_a_sid_on_every_statement_and_pushes_only_to_the_repositories(template: Template) -> None:
    policies = template.find_resources("AWS::IAM::Policy")
    (policy,) = policies.values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert all(s.get("Sid") for s in statements), statements
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"ReadSource", "WriteBuildLogs", "EcrLogin", "PushWorkloadImages", "UseStackKey"}
    repo_ids = sorted(template.find_resources("AWS::ECR::Repository"))
    assert by_sid["PushWorkloadImages"]["Resource"] == [{"Fn::GetAtt": [r, "Arn"]} for r in repo_ids]
    assert "ecr:PutImage" in by_sid["PushWorkloadImages"]["Action"]
    assert by_sid["UseStackKey"]["Resource"] == _key_ref(template)
    assert by_sid["EcrLogin"] == {
        "Action": "ecr:GetAuthorizationToken",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "EcrLogin",
    }
    # the only wildcard resource is the registry login, and no action is a wildcard
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in a for a in actions), statement
        if statement["Resource"] == "*":
            assert statement["Sid"] == "EcrLogin"
    source = json.dumps(by_sid["ReadSource"]["Resource"])
    assert "cdk-hnb659fds-assets" in source and ".zip" in source


def test_role_is_assumed_by_codebuild_of_this_account_only(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "codebuild.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    )
                ],
                "Version": "2012-10-17",
            }
        },
    )


def test_staged_source_holds_the_dockerfiles_and_no_environment(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Bare", env={"account": "123456789012", "region": "us-east-1"})
    ImageBuildProject(
        stack, "ImageBuild", repositories=[], key=kms.Key(stack, "Key"), image_tag="t",
        log_retention=logs.RetentionDays.ONE_WEEK,
    )  # fmt: skip
    app.synth()
    (staged,) = [p for p in tmp_path.glob("asset.*") if p.is_dir()]
    top = {p.name for p in staged.iterdir()}
    assert top == {"mlhpc", "workloads"}
    assert (staged / "workloads" / "pinn" / "Dockerfile").is_file()
    assert not list(staged.rglob("__pycache__"))


@pytest.mark.parametrize(("variant", "expected"), [("", []), ("neuron", ["--build-arg", "VARIANT=neuron"])])
def test_the_build_command_passes_the_variant_as_codebuild_runs_it(variant: str, expected: list[str]) -> None:
    # CodeBuild runs each command in bash (env.shell): play it, with docker printing its argv
    build = BUILD_SPEC["phases"]["build"]["commands"][0]  # type: ignore[index]
    script = 'docker() { printf "%s\\n" "$@"; }\n' + build
    env = {
        "PATH": "/usr/bin:/bin",
        "WORKLOAD": "bert",
        "REPOSITORY_URI": "r/mlhpc/bert",
        "IMAGE_TAG": "1.2-x",
    }
    ran = subprocess.run(
        ["bash", "-c", script],
        env={**env, "IMAGE_VARIANT": variant},
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.splitlines() == [
        "build", "-f", "workloads/bert/Dockerfile", *expected, "-t", "r/mlhpc/bert:1.2-x", ".",
    ]  # fmt: skip
