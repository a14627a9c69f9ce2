"""EKS Pod Identity: the role a service account's pods assume, and the association that gives it to them.

One owner for the two facts every such role shares: the trust (``pods.eks.amazonaws.com``, with
``sts:TagSession``, which Pod Identity needs for its session tags) and the association's dependency
on the cluster's Pod Identity agent (without it the pods start before they can get credentials).
"""

from __future__ import annotations

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct, IDependable

PODS = "pods.eks.amazonaws.com"


def pod_role(scope: Construct, construct_id: str, *, description: str) -> iam.Role:
    """Return a role that pods assume through EKS Pod Identity (statements are the caller's)."""
    return iam.Role(
        scope,
        construct_id,
        description=description,
        assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal(PODS)),
    )


def associate(
    scope: Construct,
    construct_id: str,
    *,
    cluster: eks.Cluster,
    namespace: str,
    service_account: str,
    role: iam.IRole,
    after: tuple[IDependable, ...] = (),
) -> eks.CfnPodIdentityAssociation:
    """Give ``role`` to the pods of ``namespace/service_account``; return the association."""
    association = eks.CfnPodIdentityAssociation(
        scope, construct_id, cluster_name=cluster.cluster_name, namespace=namespace,
        service_account=service_account, role_arn=role.role_arn,
    )  # fmt: skip
    association.node.add_dependency(cluster.eks_pod_identity_agent, *after)
    return association
