"""Bring resources that CDK itself generates up to the project's guardrails.

:class:`FrameworkTidy` is the one entry point: ``stacks.assembly.build_app`` registers it once on
the app, and it finds CDK's own constructs (the default-SG provider, an EKS cluster's roles and
providers) by type and construct path wherever a stack created them. Nothing calls the tidy
functions by hand, so a stack cannot forget one.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, Stack
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import IConstruct

# CDK's provider that empties the VPC default security group (restrictDefaultSecurityGroup).
RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
# The construct-id prefix of aws-eks's own nested stacks (ClusterResourceProvider, KubectlProvider).
EKS_PROVIDER_PREFIX = "@aws-cdk--aws-eks"
KUBECTL_PROVIDER = f"{EKS_PROVIDER_PREFIX}.KubectlProvider"
# The sids of the statements aws-eks writes into its roles' default policies, in CDK's order.
KUBECTL_SIDS = ("KubectlDescribeCluster", "KubectlAssumeCreationRole")
CREATION_SIDS = (
    "PassClusterRole", "ManageCluster", "ManageFargateProfiles", "DescribeNetworkAndRoles", "UseSecretsKey",
)  # fmt: skip


@jsii.implements(IAspect)
class FrameworkTidy:
    """Apply the project's guardrail fixes to every CDK-generated construct in the app."""

    def visit(self, node: IConstruct) -> None:
        """Tidy ``node`` if it is one of the CDK constructs this module knows."""
        if isinstance(node, Stack):
            tidy_restrict_default_sg_provider(node)
        if isinstance(node, eks.Cluster):
            tidy_eks_cluster(node)
        if is_eks_provider(node):
            tidy_generated_providers(node)


def is_eks_provider(node: IConstruct) -> bool:
    """Return whether ``node`` is one of aws-eks's provider nested stacks (a direct child of a stack)."""
    return (
        isinstance(node, Stack)
        and isinstance(node.node.scope, Stack)
        and node.node.id.startswith(EKS_PROVIDER_PREFIX)
    )


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


def tidy_eks_cluster(cluster: eks.Cluster) -> None:
    """Give the EKS construct's own policy statements sids and drop DependsOn that a GetAtt already implies."""
    stack = Stack.of(cluster)
    creation_policy = (
        cluster.node.find_child("Resource").node.find_child("CreationRole").node.find_child("DefaultPolicy")
    )
    kubectl_policy = cluster.node.find_child("KubectlHandlerRole").node.find_child("DefaultPolicy")
    for policy, names in ((kubectl_policy, KUBECTL_SIDS), (creation_policy, CREATION_SIDS)):
        cfn = policy.node.default_child
        assert isinstance(cfn, CfnResource)
        for index, sid in enumerate(names):
            cfn.add_property_override(f"PolicyDocument.Statement.{index}.Sid", sid)
    # cfn-lint W3005: the cluster resource already reaches its creation role through Fn::GetAtt,
    # and the kubectl nested stack its handler role through a parameter. What the cluster was
    # told to wait for (its control-plane log group) stays.
    cluster_resource = cluster.node.find_child("Resource").node.find_child("Resource").node.default_child
    assert isinstance(cluster_resource, CfnResource)
    waits_for = [creation_policy, *cluster.node.dependencies]
    cluster_resource.add_override(
        "DependsOn", [stack.get_logical_id(_cfn(construct)) for construct in waits_for]
    )
    provider = stack.node.try_find_child(KUBECTL_PROVIDER)
    if provider is not None:
        nested = provider.nested_stack_resource  # type: ignore[attr-defined]
        nested.add_override("DependsOn", [stack.get_logical_id(_cfn(kubectl_policy))])


def _cfn(construct: IConstruct) -> CfnResource:
    """Return the CloudFormation resource of an L2 construct (or the resource itself)."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    assert isinstance(resource, CfnResource), construct.node.path
    return resource
