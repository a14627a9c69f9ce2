"""Bring resources that CDK itself generates up to the project's guardrails."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import IConstruct

# CDK's provider that empties the VPC default security group (restrictDefaultSecurityGroup).
RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"


def tidy_restrict_default_sg_provider(stack: Stack) -> None:
    """Give the default-SG provider's IAM statement a sid and drop its redundant DependsOn.

    The provider's Lambda already references its role through Fn::GetAtt, so the extra
    DependsOn only triggers cfn-lint W3005; the inline statement lacks the ``sid`` every
    statement in this project carries.
    """
    provider = stack.node.try_find_child(RESTRICT_DEFAULT_SG_PROVIDER)
    if provider is None:
        return
    role = provider.node.try_find_child("Role")
    handler = provider.node.try_find_child("Handler")
    if isinstance(role, CfnResource):
        role.add_property_override(
            "Policies.0.PolicyDocument.Statement.0.Sid", "RevokeDefaultSecurityGroupRules"
        )
    if isinstance(handler, CfnResource):
        handler.add_deletion_override("DependsOn")


def _sid_for(statement: dict[str, object], taken: set[str]) -> str:
    """Return a unique sid from a statement's first action ('lambda:InvokeFunction' -> 'LambdaInvokeFunction')."""
    actions = statement.get("Action", "Statement")
    first = actions[0] if isinstance(actions, list) else actions
    base = "".join(part[:1].upper() + part[1:] for part in str(first).replace("*", "All").split(":"))
    base = "".join(ch for ch in base if ch.isalnum()) or "Statement"
    sid, n = base, 2
    while sid in taken:
        sid, n = f"{base}{n}", n + 1
    taken.add(sid)
    return sid


def tidy_generated_providers(scope: IConstruct) -> None:
    """Bring CDK-generated provider resources under ``scope`` (e.g. aws-eks's nested stacks) up to our guards.

    - every IAM statement gets a ``sid`` (named after its first action) where CDK wrote none; the
      statements are read from the resolved document, after CDK's own policy minimisation;
    - a function or state machine that reaches its role through Fn::GetAtt no longer also lists the
      role in DependsOn (cfn-lint W3005); the dependency on the role's DefaultPolicy stays, so the
      permissions exist before the first invocation.
    """
    for child in scope.node.find_all():
        if isinstance(child, iam.CfnPolicy):
            document = Stack.of(child).resolve(child.policy_document)
            statements = document.get("Statement", []) if isinstance(document, dict) else []
            taken = {str(s["Sid"]) for s in statements if "Sid" in s}
            for index, statement in enumerate(statements):
                if "Sid" not in statement:
                    child.add_property_override(
                        f"PolicyDocument.Statement.{index}.Sid", _sid_for(statement, taken)
                    )
        elif isinstance(child, (lambda_.CfnFunction, sfn.CfnStateMachine)):
            _depend_on_policy_only(child)


def _depend_on_policy_only(resource: CfnResource) -> None:
    """Replace DependsOn [role, role's DefaultPolicy] by the policy alone (the role is a GetAtt already).

    The role is the sibling construct CDK names ``ServiceRole`` (functions) or ``Role`` (state
    machines); a role passed in from another stack has no sibling here and is left alone.
    """
    owner = resource.node.scope
    role = (
        None
        if owner is None
        else owner.node.try_find_child("ServiceRole") or owner.node.try_find_child("Role")
    )
    if not isinstance(role, iam.Role):
        return
    policy = role.node.try_find_child("DefaultPolicy")
    if isinstance(policy, iam.Policy) and isinstance(policy.node.default_child, CfnResource):
        resource.add_override("DependsOn", [Stack.of(resource).get_logical_id(policy.node.default_child)])
    else:
        resource.add_deletion_override("DependsOn")
