"""The Kubernetes Cluster Autoscaler on EKS managed node groups: its role (Pod Identity) and its manifest.

Why the Cluster Autoscaler and not Karpenter: the node groups are EKS managed node groups already
(launch templates with IMDSv2 and encrypted disks, the Neuron AMI, labels and taints), and EKS tags
their Auto Scaling groups for the autoscaler's auto-discovery (``k8s.io/cluster-autoscaler/enabled``
and ``k8s.io/cluster-autoscaler/<cluster>``). The autoscaler then needs one narrow role — resize
and terminate only the ASGs carrying this cluster's tag — and plain Kubernetes objects that
kubernetes-validate checks offline. Karpenter would replace the node groups with its own
NodePools/EC2NodeClasses (custom resources no offline schema checks), and needs its controller
chart, an SQS interruption queue with EventBridge rules, an instance profile and a controller
policy that can launch instances and pass the node role: more to keep least-privilege, for
bin-packing this one-model service does not need.

Scaling a Neuron group up from zero: the autoscaler builds a template node from the group when no
node exists, and reads the group's labels, taints and extended resources from the
``k8s.io/cluster-autoscaler/node-template/*`` tags (it reads managed node groups' tags with
``eks:DescribeNodegroup``); :func:`node_template_tags` writes them, so a pending pod that asks
for NeuronCores makes the autoscaler add an Inferentia node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.constructs.pod_identity import associate, pod_role

# The autoscaler's minor version follows the cluster's (its compatibility rule); pinned, never :latest.
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0"
NAMESPACE = "kube-system"
NAME = "cluster-autoscaler"
TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template"


def discovery_tag(cluster_name: str) -> str:
    """Return the ASG tag EKS puts on a managed node group's ASG of this cluster (value ``owned``)."""
    return f"k8s.io/cluster-autoscaler/{cluster_name}"


def node_template_tags(
    *, labels: Mapping[str, str], taints: Sequence[tuple[str, str, str]], resources: Mapping[str, int]
) -> dict[str, str]:
    """Return the node-template tags of a node group: labels, taints (key, value, effect), extended resources."""
    tags = {f"{TEMPLATE_TAG}/label/{k}": v for k, v in labels.items()}
    tags |= {f"{TEMPLATE_TAG}/taint/{key}": f"{value}:{effect}" for key, value, effect in taints}
    tags |= {f"{TEMPLATE_TAG}/resources/{k}": str(v) for k, v in resources.items()}
    return tags


class ClusterAutoscaler(Construct):
    """The Cluster Autoscaler Deployment on the system nodes, with a Pod Identity role scoped to this cluster's ASGs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.Cluster,
        cluster_name: str,
        node_selector: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.role = pod_role(
            self,
            "Role",
            description="Cluster Autoscaler (EKS Pod Identity): resize this cluster's managed node groups",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ResizeThisClustersGroups",
                actions=["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                # ASG ARNs carry a generated id; the tag EKS puts on this cluster's groups is the scope.
                resources=["*"],
                conditions={"StringEquals": {f"aws:ResourceTag/{discovery_tag(cluster_name)}": "owned"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DiscoverGroupsAndInstanceTypes",
                actions=[
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                ],
                resources=[
                    "*"
                ],  # Describe/Get calls of Auto Scaling and EC2 have no resource-level permissions
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadNodeGroupTemplates",
                actions=["eks:DescribeNodegroup"],
                resources=[
                    stack.format_arn(service="eks", resource="nodegroup", resource_name=f"{cluster_name}/*/*")
                ],
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Auto Scaling and EC2 Describe calls have no resource-level permissions; SetDesiredCapacity and "
            "TerminateInstanceInAutoScalingGroup are limited by condition to ASGs tagged as this cluster's.",
        )
        acknowledge(
            self.role,
            # as cdk-nag prints the ARN: the stack's region and partition are concrete, the account a token
            f"AwsSolutions-IAM5[Resource::arn:{_partition(stack.region)}:eks:{stack.region}:<AWS::AccountId>:"
            f"nodegroup/{cluster_name}/*/*]",
            "Node group ARNs end in a name and a generated id; the wildcard is this one cluster's node groups, "
            "read (DescribeNodegroup) for the labels, taints and template tags of a group scaled to zero.",
        )
        self.manifest = cluster.add_manifest("Manifest", *objects(cluster_name, stack.region, node_selector))
        associate(
            self, "PodIdentity", cluster=cluster, namespace=NAMESPACE, service_account=NAME, role=self.role,
            after=(self.manifest,),
        )  # fmt: skip


def _partition(region: str) -> str:
    return "aws-us-gov" if region.startswith("us-gov") else "aws-cn" if region.startswith("cn-") else "aws"


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "mlhpc"}


def _rule(
    groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def objects(cluster_name: str, region: str, node_selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """Return the autoscaler's Kubernetes objects (account, RBAC, Deployment), as its upstream AWS example has them."""
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": _labels()}
    read = ["get", "list", "watch"]
    cluster_rules = [
        _rule([""], ["events", "endpoints"], ["create", "patch"]),
        _rule([""], ["pods/eviction"], ["create"]),
        _rule([""], ["pods/status"], ["update"]),
        _rule([""], ["endpoints"], ["get", "update"], [NAME]),
        _rule([""], ["nodes"], ["get", "list", "watch", "update"]),
        _rule(
            [""],
            [
                "namespaces",
                "pods",
                "services",
                "replicationcontrollers",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
            read,
        ),
        _rule(["apps"], ["statefulsets", "replicasets", "daemonsets"], read),
        _rule(["policy"], ["poddisruptionbudgets"], ["list", "watch"]),
        _rule(
            ["storage.k8s.io"],
            ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities", "volumeattachments"],
            read,
        ),
        _rule(["batch"], ["jobs", "cronjobs"], [*read, "patch"]),
        _rule(["coordination.k8s.io"], ["leases"], ["create"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "update"], [NAME]),
        _rule(["resource.k8s.io"], ["resourceclaims", "resourceslices", "deviceclasses"], read),
    ]
    status_maps = ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"]
    role_rules = [
        _rule([""], ["configmaps"], ["create", "list", "watch"]),
        _rule([""], ["configmaps"], ["delete", "get", "update", "watch"], status_maps),
    ]
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    command = [
        "./cluster-autoscaler",
        "--cloud-provider=aws",
        # managed node groups' ASGs carry both tags (EKS adds them)
        f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,{discovery_tag(cluster_name)}",
        # least-waste: of the groups that fit a pending pod, the one that idles the least CPU/memory
        "--expander=least-waste",
        "--balance-similar-node-groups",
        "--skip-nodes-with-local-storage=false",  # the BERT pods' emptyDir model cache is disposable
        # A Neuron node takes minutes to join and a model minutes to load: keep an emptied node 10
        # minutes before removing it, so a burst after a lull does not pay both again.
        "--scale-down-unneeded-time=10m",
        "--stderrthreshold=info",
        "--v=2",
    ]
    container = {
        "name": NAME,
        "image": IMAGE,
        "command": command,
        "env": [{"name": "AWS_REGION", "value": region}],
        "resources": {"requests": {"cpu": "100m", "memory": "600Mi"}, "limits": {"memory": "600Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": NAME, "labels": _labels()}, "rules": cluster_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": NAME, "labels": _labels()},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME}, "subjects": subject},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}, "subjects": subject},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                "template": {
                    "metadata": {"labels": _labels()},
                    "spec": {
                        "serviceAccountName": NAME,
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": dict(node_selector),
                        "containers": [container],
                    },
                },
            },
        },
    ]  # fmt: skip
