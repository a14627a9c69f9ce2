"""Nested stacks' templates (e.g. aws-eks's providers) are checked as part of their parent stack."""

from __future__ import annotations

import json
from pathlib import Path

from mlhpc_app.guardrails import nested_templates_of, run_guardrails

NESTED = "ParentStackProvider1234.nested.template.json"


def write_assembly(root: Path, nested_statement: dict[str, object]) -> Path:
    """Write a minimal cloud assembly: one stack whose assets include one nested template."""
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Sid": "Assume", "Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}}}  # fmt: skip
    parent = {"Resources": {"Role": role}}
    nested = {"Resources": {"Role": role, "Policy": {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": "p", "Roles": [{"Ref": "Role"}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [nested_statement]}}}}}  # fmt: skip
    (root / "ParentStack.template.json").write_text(json.dumps(parent))
    (root / NESTED).write_text(json.dumps(nested))
    (root / "ParentStack.assets.json").write_text(json.dumps({"files": {
        "a": {"source": {"path": "ParentStack.template.json", "packaging": "file"}},
        "b": {"source": {"path": NESTED, "packaging": "file"}},
        "c": {"source": {"path": "asset.123.zip", "packaging": "file"}}}}))  # fmt: skip
    (root / "validation-report.json").write_text(json.dumps({"pluginReports": []}))
    (root / "manifest.json").write_text(json.dumps({"artifacts": {"ParentStack": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "ParentStack.template.json"}}}}))  # fmt: skip
    return root


def test_nested_templates_are_found_from_the_stack_assets(tmp_path: Path) -> None:
    root = write_assembly(
        tmp_path, {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    )
    assert nested_templates_of(root, "ParentStack") == [root / NESTED]
    assert nested_templates_of(root, "OtherStack") == []


def test_a_finding_inside_a_nested_template_fails_the_parent_stack(tmp_path: Path) -> None:
    root = write_assembly(
        tmp_path,
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:*:*:function:x"},
    )
    report = run_guardrails(root, checkov=False)
    (stack,) = report.stacks
    assert stack.stack == "ParentStack" and stack.nested == [root / NESTED]
    assert stack.resources == 3  # the parent's role, the nested role and policy
    messages = [str(f) for f in stack.findings["mlhpc"]]
    assert any(
        m.startswith("[IAM001] ParentStackProvider1234/Policy:") and "has no Sid" in m for m in messages
    )
    assert not report.passed


def test_a_clean_nested_template_passes(tmp_path: Path) -> None:
    root = write_assembly(
        tmp_path,
        {
            "Sid": "Invoke",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": "arn:aws:lambda:*:*:function:x",
        },
    )
    (stack,) = run_guardrails(root, checkov=False).stacks
    assert stack.findings["mlhpc"] == []
