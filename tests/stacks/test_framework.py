"""FrameworkTidy: one Aspect, registered once by build_app, fixes CDK's own constructs in any stack."""

from __future__ import annotations

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from mlhpc.config import parse_config
from stacks.assembly import build_app
from stacks.constructs.framework import FrameworkTidy

pytestmark = pytest.mark.synth


def test_build_app_registers_the_tidy_aspect_once_on_the_app() -> None:
    config, _ = parse_config("")
    app = build_app(config, nag=False, specs={}).app
    assert sum(isinstance(a, FrameworkTidy) for a in Aspects.of(app).all) == 1
    for stack in app.node.children:  # no stack adds its own copy
        assert not any(isinstance(a, FrameworkTidy) for a in Aspects.of(stack).all)


def test_the_aspect_tidies_the_default_sg_provider_of_a_bare_stack() -> None:
    app = App()
    stack = Stack(app, "Bare")
    ec2.Vpc(stack, "Vpc", restrict_default_security_group=True, max_azs=1, nat_gateways=0)
    Aspects.of(app).add(FrameworkTidy())
    template = Template.from_stack(stack)
    (role,) = template.find_resources(
        "AWS::IAM::Role", {"Properties": {"Policies": [{"PolicyName": "Inline"}]}}
    ).values()
    assert role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Sid"] == (
        "RevokeDefaultSecurityGroupRules"
    )
    (handler,) = template.find_resources("AWS::Lambda::Function").values()
    assert "DependsOn" not in handler
