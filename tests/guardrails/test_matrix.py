"""Every config in config/ synthesizes and passes every guardrail: cdk-nag, cfn-lint, checkov, ours, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlhpc_app.guardrails import run_guardrails, templates_in
from mlhpc_app.guardrails.tools import MAX_RESOURCES, MAX_TEMPLATE_BYTES, load_skips, nag_findings
from tests.conftest import CONFIG_FILES, config_id

pytestmark = [pytest.mark.synth, pytest.mark.guardrails]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_cdk_nag_has_no_unacknowledged_finding(path: Path, synth_config: Any) -> None:
    result = synth_config(path)
    open_, acknowledged = nag_findings(result.outdir)
    assert not result.nag_failed
    assert open_ == [], "\n".join(map(str, open_))
    assert all(len(a["reason"]) >= 20 for a in acknowledged)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_every_guardrail_passes(path: Path, synth_config: Any) -> None:
    report = run_guardrails(synth_config(path).outdir)
    assert {s.stack for s in report.stacks} >= {"NetworkStack"}
    assert report.passed, "\n".join(report.failures())


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_templates_stay_well_under_cloudformation_limits(path: Path, synth_config: Any) -> None:
    for stack, template in templates_in(synth_config(path).outdir).items():
        import json

        body = json.loads(template.read_text(encoding="utf-8"))
        # Half the limit leaves room for the stacks to grow before anyone has to split them.
        assert len(body["Resources"]) < MAX_RESOURCES / 2, stack
        assert template.stat().st_size < MAX_TEMPLATE_BYTES / 2, stack


def test_checkov_skips_each_have_a_reason_and_narrow_patterns() -> None:
    skips = load_skips()
    assert skips, "the skip file should not be empty while CDK framework resources need it"
    for skip in skips:
        assert skip.check.startswith("CKV_")
        assert all(p != "*" for p in skip.resources), f"{skip.check} skips every resource"
        if any(p.endswith(".*") for p in skip.resources):  # every resource of a type: only in named templates
            assert "*" not in skip.templates, f"{skip.check} skips a whole resource type in every template"
        assert len(skip.reason) >= 40


def test_a_skip_covers_only_matching_resources() -> None:
    (skip,) = [
        s
        for s in load_skips()
        if s.check == "CKV_AWS_117" and any("RestrictDefaultSG" in p for p in s.resources)
    ]
    assert skip.matches(
        "CKV_AWS_117", "AWS::Lambda::Function.CustomVpcRestrictDefaultSGCustomResourceProviderHandler1"
    )
    assert not skip.matches("CKV_AWS_117", "AWS::Lambda::Function.MyOwnFunction")
    assert not skip.matches(
        "CKV_AWS_116", "AWS::Lambda::Function.CustomVpcRestrictDefaultSGCustomResourceProviderX"
    )


def test_a_template_scoped_skip_covers_only_those_templates() -> None:
    (skip,) = [s for s in load_skips() if s.check == "CKV_AWS_158" and s.templates != ("*",)]
    nested = "InferenceStackawscdkawseksKubectlProvider5C0D0AC1.nested.template.json"
    assert skip.matches("CKV_AWS_158", "AWS::Logs::LogGroup.HandlerLogGroup50A7B41D", nested)
    assert not skip.matches(
        "CKV_AWS_158", "AWS::Logs::LogGroup.HandlerLogGroup50A7B41D", "InferenceStack.template.json"
    )
    assert not skip.matches("CKV_AWS_158", "AWS::Logs::LogGroup.AnyGroup", "HpcStack.template.json")
