"""Bring resources that CDK itself generates up to the project's guardrails."""

from __future__ import annotations

from aws_cdk import CfnResource, Stack

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
