"""InferenceStack: EKS with a CPU and an Inferentia node group, the Neuron device plugin and the BERT service.

Nodes scale with the Cluster Autoscaler on the managed node groups (stacks/constructs/cluster_autoscaler.py
says why not Karpenter); pods scale with KEDA on the server's own queue depth and p99 latency, read
from Amazon Managed Service for Prometheus, which AMP's managed collector fills from the pods and
neuron-monitor (stacks/constructs/serving_metrics.py). The BERT image is the variant of the Neuron
node group's family (Inf2/Trn1: torch-neuronx; Inf1: torch-neuron), see mlhpc.contract.IMAGE_VARIANTS.

The API endpoint is private (public only from configured CIDRs), Kubernetes secrets are
envelope-encrypted with a KMS key, every control-plane log type goes to a KMS-encrypted log
group, and admins get in through EKS access entries (no aws-auth ConfigMap). The Neuron device
plugin is the manifest pinned in stacks/manifests/, applied once: the node groups are built with
``eks.Nodegroup`` directly, because ``Cluster.add_nodegroup_capacity`` would add CDK's own
(older) copy of the plugin for Inferentia instance types.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from aws_cdk import CfnCondition, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct, IConstruct

from mlhpc import contract
from mlhpc.config.inference import NEURON_CORES, InferenceConfig
from stacks.constructs.cluster_autoscaler import ClusterAutoscaler, node_template_tags
from stacks.constructs.framework import is_eks_provider
from stacks.constructs.keys import allow_cloudwatch_logs
from stacks.constructs.nag import acknowledge
from stacks.constructs.pod_identity import associate, pod_role
from stacks.constructs.retention import retention
from stacks.constructs.serving_metrics import ServingMetrics
from stacks.refs import NetworkRefs, StorageRefs
from workloads.bert.k8s import (
    ACCELERATOR_LABEL,
    MANIFEST_ID,
    NEURON_CORE_RESOURCE,
    NEURON_TAINT_KEY,
    service_objects,
    settings_for,
)

MANIFESTS = Path(__file__).resolve().parent / "manifests"
DEVICE_PLUGIN = MANIFESTS / "neuron-device-plugin.yaml"
NEURON_SCHEDULER = MANIFESTS / "neuron-scheduler.yaml"
# What AWS documents for managed node groups, plus SSM sessions instead of SSH.
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
)  # fmt: skip
CONTROL_PLANE_LOGS = [
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
]


def load_manifest(path: Path) -> list[dict[str, Any]]:
    """Return the Kubernetes objects of a pinned multi-document YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


class InferenceStack(Stack):
    """EKS serving BERT on Inferentia: cluster, node groups, Neuron device plugin, the service and its role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InferenceConfig,
        project: str,
        network: NetworkRefs,
        storage: StorageRefs,
        image_tag: str,
        repository: ecr.IRepository | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        cluster_name = f"{project}-inference"
        subnets = ec2.SubnetSelection(subnets=list(network.private_subnets))
        self._add_key_and_logs(config, cluster_name)
        self._add_cluster(config, cluster_name, network.vpc, subnets)
        self._add_node_groups(config, subnets)
        self._add_neuron_plugins(config)
        self.autoscaler = ClusterAutoscaler(
            self, "ClusterAutoscaler", cluster=self.cluster, cluster_name=cluster_name,
            node_selector={ACCELERATOR_LABEL: "none"},
        )  # fmt: skip
        self.metrics = ServingMetrics(
            self, "ServingMetrics", cluster=self.cluster, cluster_name=cluster_name,
            subnets=network.private_subnets, key=self.key, service_namespace=config.service.namespace,
            neuron_selector={ACCELERATOR_LABEL: "neuron"}, system_selector={ACCELERATOR_LABEL: "none"},
            alarm_email=config.alarm_email,
        )  # fmt: skip
        self._add_service(config, project, storage, image_tag=image_tag, repository=repository)
        self._add_job_identity(storage)
        self._acknowledge_framework(cluster_name)

    def _add_key_and_logs(self, config: InferenceConfig, cluster_name: str) -> None:
        """The stack's key and the control-plane log group (made before the cluster, to own retention and KMS)."""
        self.key = kms.Key(
            self, "Key", description="Encrypts EKS secrets and control-plane logs", enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        allow_cloudwatch_logs(self.key, resource=f"log-group:/aws/eks/{cluster_name}/*")
        # EKS writes control-plane logs to this group name; creating it first sets retention and KMS.
        self.control_plane_logs = logs.LogGroup(
            self, "ControlPlaneLogs", log_group_name=f"/aws/eks/{cluster_name}/cluster",
            retention=retention(config.control_plane_log_retention_days), encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip

    def _add_cluster(
        self, config: InferenceConfig, cluster_name: str, vpc: ec2.IVpc, subnets: ec2.SubnetSelection
    ) -> None:
        """The EKS cluster (private endpoint unless CIDRs are listed, API authentication) and its admins."""
        endpoint = (
            eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*config.public_endpoint_cidrs)
            if config.public_endpoint_cidrs
            else eks.EndpointAccess.PRIVATE
        )
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=eks.KubernetesVersion.of(config.kubernetes_version),
            kubectl_layer=KubectlV35Layer(self, "KubectlLayer"),
            vpc=vpc,
            vpc_subnets=[subnets],
            endpoint_access=endpoint,
            secrets_encryption_key=self.key,
            cluster_logging=CONTROL_PLANE_LOGS,
            default_capacity=0,
            authentication_mode=eks.AuthenticationMode.API,
            place_cluster_handler_in_vpc=True,
        )
        self.cluster.node.add_dependency(self.control_plane_logs)
        admin = eks.AccessPolicy.from_access_policy_name(
            "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER
        )
        for index, arn in enumerate(config.admin_role_arns):
            self.cluster.grant_access(f"Admin{index}", arn, [admin])

    def _add_node_groups(self, config: InferenceConfig, subnets: ec2.SubnetSelection) -> None:
        """The system node group and the tainted Neuron node group."""
        self.system_nodes = self._nodegroup(
            "SystemNodes",
            instance_types=config.system_nodes.instance_types,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            sizes=(
                config.system_nodes.min_size,
                config.system_nodes.desired_size,
                config.system_nodes.max_size,
            ),
            disk_gib=config.system_nodes.disk_size_gib,
            subnets=subnets,
            labels={ACCELERATOR_LABEL: "none"},
        )
        neuron = config.neuron_nodes
        neuron_labels = {ACCELERATOR_LABEL: "neuron"}
        # What a Neuron node offers, as tags the Cluster Autoscaler builds its template node from when
        # the group is at zero (the smallest type: a pending pod must fit whichever type EC2 gives).
        cores = min(NEURON_CORES[t] for t in neuron.instance_types)
        self.neuron_nodes = self._nodegroup(
            "NeuronNodes",
            instance_types=neuron.instance_types,
            # The EKS accelerated AMI for Inferentia/Trainium: Neuron driver and runtime installed.
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_NEURON,
            sizes=(neuron.min_size, neuron.desired_size, neuron.max_size),
            disk_gib=neuron.disk_size_gib,
            subnets=subnets,
            labels=neuron_labels,
            taints=[eks.TaintSpec(effect=eks.TaintEffect.NO_SCHEDULE, key=NEURON_TAINT_KEY, value="true")],
            release_version=neuron.ami_release_version,
            tags=node_template_tags(
                labels=neuron_labels,
                taints=[(NEURON_TAINT_KEY, "true", "NoSchedule")],
                resources={NEURON_CORE_RESOURCE: cores},
            ),
        )

    def _add_neuron_plugins(self, config: InferenceConfig) -> None:
        """The Neuron device plugin (one copy) and, when configured, the Neuron scheduler extension."""
        # The one copy of the device plugin. The id is the one CDK uses for its own copy, so a later
        # add_nodegroup_capacity(inf*) would fail at synthesis instead of installing a second plugin.
        self.device_plugin = self.cluster.add_manifest("NeuronDevicePlugin", *load_manifest(DEVICE_PLUGIN))
        self.scheduler = (
            self.cluster.add_manifest("NeuronScheduler", *load_manifest(NEURON_SCHEDULER))
            if config.neuron_scheduler
            else None
        )

    def _add_service(
        self,
        config: InferenceConfig,
        project: str,
        storage: StorageRefs,
        *,
        image_tag: str,
        repository: ecr.IRepository | None,
    ) -> None:
        """The BERT service: its role (model prefix only), manifest and pod identity association."""
        model_bucket, key = storage.datasets, storage.key  # the model lives in the datasets bucket
        service = config.service
        # The bucket ARN arrives through an export with a fixed name, so the IAM5 acknowledgement of the
        # model-prefix wildcard names a stable resource (an automatic export name carries a hash).
        export = f"{project}-model-bucket-arn"
        bucket_arn = Stack.of(model_bucket).export_value(model_bucket.bucket_arn, name=export)
        self.service_role = self._service_role(bucket_arn, export, key, service.model_prefix)
        image_repo = repository or ecr.Repository.from_repository_name(
            self, "BertRepository", f"{project}/bert"
        )
        # the builder `mlhpc emulate eks` renders with too, so the two cannot drift
        self.settings = settings_for(
            service,
            # the deployment's one tag (hpc.image_tag), the one Batch, SageMaker and `mlhpc image push` use
            # and the variant of the Neuron group's family: torch-neuronx (inf2) or torch-neuron (inf1)
            image=contract.image_reference(
                image_repo.repository_uri,
                image_tag,
                contract.image_variant(config.neuron_nodes.instance_types[0]),
            ),
            model_bucket=model_bucket.bucket_name,
            metrics_query_url=self.metrics.query_url,
            metrics_region=self.region,
        )
        self.service = self.cluster.add_manifest(MANIFEST_ID, *service_objects(self.settings))
        self.service.node.add_dependency(self.device_plugin)
        # KEDA's custom resources (ScaledObject, TriggerAuthentication) exist once its chart is installed.
        self.service.node.add_dependency(self.metrics.keda)
        associate(
            self, "BertPodIdentity", cluster=self.cluster, namespace=service.namespace,
            service_account=self.settings.service_account, role=self.service_role,
        )  # fmt: skip

    def _add_job_identity(self, storage: StorageRefs) -> None:
        """The service account workload Jobs run as, given the job role (the data, nothing else) by Pod Identity."""
        self.job_role = pod_role(
            self, "EksJobRole",
            description="mlhpc workload Jobs on EKS (Pod Identity): read datasets, write results and checkpoints",
        )  # fmt: skip
        self.job_role.add_managed_policy(storage.data_access_policy)
        account = self.cluster.add_manifest(
            "JobServiceAccount",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": contract.EKS_JOB_SERVICE_ACCOUNT,
                    "namespace": contract.EKS_JOB_NAMESPACE,
                    "labels": {"app.kubernetes.io/managed-by": "mlhpc"},
                },
            },
        )
        associate(
            self, "JobPodIdentity", cluster=self.cluster, namespace=contract.EKS_JOB_NAMESPACE,
            service_account=contract.EKS_JOB_SERVICE_ACCOUNT, role=self.job_role, after=(account,),
        )  # fmt: skip

    def _nodegroup(
        self,
        construct_id: str,
        *,
        instance_types: Sequence[str],
        ami_type: eks.NodegroupAmiType,
        sizes: tuple[int, int, int],
        disk_gib: int,
        subnets: ec2.SubnetSelection,
        labels: dict[str, str],
        taints: list[eks.TaintSpec] | None = None,
        release_version: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> eks.Nodegroup:
        # A launch template for IMDSv2 (hop limit 1: pods get credentials from Pod Identity, not
        # from the node's metadata) and an encrypted root volume.
        template = ec2.LaunchTemplate(
            self, f"{construct_id}Template", require_imdsv2=True, http_put_response_hop_limit=1,
            block_devices=[ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume.ebs(
                disk_gib, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True))],
        )  # fmt: skip
        role = iam.Role(
            self, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in NODE_POLICIES],
        )  # fmt: skip
        _acknowledge_each(
            role, "AwsSolutions-IAM4", [f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}" for name in NODE_POLICIES],
            "The EKS worker, VPC CNI, ECR read-only and SSM core managed policies are what AWS documents "
            "for managed node groups; AWS keeps them current with the services' APIs.",
        )  # fmt: skip
        min_size, desired, max_size = sizes
        group = eks.Nodegroup(
            self, construct_id, cluster=self.cluster,  # type: ignore[arg-type]  # jsii stubs: Cluster is an ICluster
            instance_types=[ec2.InstanceType(t) for t in instance_types],
            ami_type=ami_type, min_size=min_size, desired_size=desired, max_size=max_size, subnets=subnets,
            labels=labels, taints=taints, node_role=role, release_version=release_version, tags=tags,
            launch_template_spec=eks.LaunchTemplateSpec(
                id=template.launch_template_id or "", version=template.latest_version_number),
        )  # fmt: skip
        return group

    def _service_role(self, bucket_arn: str, export: str, key: kms.IKey, prefix: str) -> iam.Role:
        """Return the role the BERT pods assume through EKS Pod Identity: read the model prefix, nothing else."""
        role = pod_role(
            self,
            "BertServiceRole",
            description="BERT pods (EKS Pod Identity): read the model prefix of the datasets bucket",
        )
        policy = iam.Policy(
            self,
            "BertModelRead",
            statements=[
                iam.PolicyStatement(
                    sid="ReadModelObjects",
                    actions=["s3:GetObject"],
                    resources=[f"{bucket_arn}/{prefix}*"],
                ),
                iam.PolicyStatement(
                    sid="ListModelPrefix",
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
                ),
                iam.PolicyStatement(
                    sid="DecryptModelObjects",
                    actions=["kms:Decrypt"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
                ),
            ],
        )
        policy.attach_to_role(role)
        acknowledge(
            policy,
            f"AwsSolutions-IAM5[Resource::{export}/{prefix}*]",
            "The wildcard is the model prefix of the datasets bucket (objects under models/...): the pods "
            "read the model files under it and nothing else in the bucket.",
        )
        return role

    def _acknowledge_framework(self, cluster_name: str) -> None:
        """Acknowledge, finding by finding, what the EKS L2 construct's own roles and providers trigger."""
        lambda_policies = (
            "service-role/AWSLambdaBasicExecutionRole",
            "service-role/AWSLambdaVPCAccessExecutionRole",
        )
        managed = [f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}" for name in lambda_policies]
        for child in self.node.children:
            if is_eks_provider(child):  # ClusterResourceProvider, KubectlProvider
                _acknowledge_each(
                    child, "AwsSolutions-IAM4", managed,
                    "CDK's EKS provider functions run in the VPC: the Lambda basic and VPC-access execution "
                    "policies are the documented minimum for a VPC function writing its own logs.",
                )  # fmt: skip
                _acknowledge_each(
                    child, "AwsSolutions-IAM5", [f"Resource::<{fn}.Arn>:*" for fn in _function_ids(child)],
                    "CDK's provider framework may invoke any version of its own handler functions "
                    "(function ARN followed by :*); the functions are named, only the version is open.",
                )  # fmt: skip
                acknowledge(
                    child, "AwsSolutions-L1",
                    "The kubectl handler's runtime is chosen by aws-cdk-lib (pinned 2.275.0) to match the "
                    "kubectl layer it runs; it moves with CDK upgrades, not with our code.",
                )  # fmt: skip
                acknowledge(
                    child, "AwsSolutions-SF1",
                    "CDK's provider-framework state machine only polls the cluster's creation a few times per "
                    "deployment; its failures surface on the CloudFormation stack event itself.",
                )  # fmt: skip
                acknowledge(
                    child, "AwsSolutions-SF2",
                    "CDK's provider-framework state machine runs a few polling steps per deployment; X-Ray "
                    "traces of it would hold nothing a reviewer needs beyond the stack events.",
                )  # fmt: skip
        _acknowledge_each(
            self.cluster, "AwsSolutions-IAM4",
            [*managed, "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
             "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy",
             f"Policy::{self._ecr_public_policy()}"],
            "The EKS cluster role needs AmazonEKSClusterPolicy (AWS's documented service policy); CDK's kubectl "
            "handler runs in the VPC and pulls its layer images read-only from ECR.",
        )  # fmt: skip
        partition = (
            "aws-us-gov"
            if self.region.startswith("us-gov")
            else "aws-cn"
            if self.region.startswith("cn-")
            else "aws"
        )
        arn = f"arn:{partition}:eks:{self.region}:<AWS::AccountId>"
        _acknowledge_each(
            self.cluster, "AwsSolutions-IAM5",
            ["Resource::*", f"Resource::{arn}:cluster/{cluster_name}/*", f"Resource::{arn}:fargateprofile/{cluster_name}/*"],
            "CDK's cluster-creation role: EKS sub-resources (add-ons, access entries, Fargate profiles) of this "
            "one named cluster get generated names; iam:PassRole and ec2:Describe* need '*' by API design.",
        )  # fmt: skip

    def _ecr_public_policy(self) -> str:
        """Return the kubectl role's conditional ECR Public policy as cdk-nag prints it (compact JSON).

        The condition is reached through the construct tree (``Cluster/HasEcrPublic``), so its
        logical id follows whatever hash the installed CDK gives it.
        """
        condition = self.cluster.node.find_child("HasEcrPublic")
        assert isinstance(condition, CfnCondition), condition.node.path
        policy = {"Fn::If": [
            self.get_logical_id(condition),
            {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                               ":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},
            {"Ref": "AWS::NoValue"},
        ]}  # fmt: skip
        return json.dumps(policy, separators=(",", ":"))


def _function_ids(provider: IConstruct) -> list[str]:
    """Return the logical ids of the Lambda functions in one of aws-eks's provider nested stacks.

    Its framework policies grant ``lambda:InvokeFunction`` on ``<function>.Arn:*``; the ids are read
    from the construct tree, so an upgrade that renames or rehashes a function moves the
    acknowledgment with it (and one that drops a function drops its acknowledgment).
    """
    functions = [c for c in provider.node.find_all() if isinstance(c, lambda_.CfnFunction)]
    assert functions, f"{provider.node.path} has no Lambda function: has aws-eks changed its providers?"
    return [Stack.of(fn).get_logical_id(fn) for fn in functions]


def _acknowledge_each(construct: IConstruct, rule: str, finding_ids: Sequence[str], reason: str) -> None:
    for finding in finding_ids:
        acknowledge(construct, f"{rule}[{finding}]", reason)
