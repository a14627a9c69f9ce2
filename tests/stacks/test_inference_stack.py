"""InferenceStack, asserted on the synthesized template of the example config that enables it."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from aws_cdk.assertions import Match, Template

from mlhpc import contract
from mlhpc.config import parse_config
from stacks.assembly import INFERENCE, build_app
from stacks.constructs import cluster_autoscaler, serving_metrics
from stacks.inference_stack import DEVICE_PLUGIN, NEURON_SCHEDULER, load_manifest
from tests.conftest import REPO
from workloads.bert.k8s import KEDA_API, NEURON_CORE_RESOURCE, ServiceSettings, service_objects

pytestmark = pytest.mark.synth

EXAMPLE = (REPO / "config" / "examples" / "inferentia-bert.yaml").read_text(encoding="utf-8")
INF1_EXAMPLE = (REPO / "config" / "examples" / "inferentia1-bert.yaml").read_text(encoding="utf-8")
K8S_VERSION = "1.35"  # the cluster's version (InferenceConfig.kubernetes_version)


def template(yaml_text: str) -> Template:
    config, _ = parse_config(yaml_text)
    return Template.from_stack(build_app(config, nag=False).stacks[INFERENCE])


@pytest.fixture(scope="module")
def example() -> Template:
    return template(EXAMPLE)


@pytest.fixture(scope="module")
def inf1_example() -> Template:
    return template(INF1_EXAMPLE)


def manifests(t: Template) -> list[dict[str, Any]]:
    """Return every Kubernetes object the stack applies (manifests with tokens are joined strings)."""
    objects: list[dict[str, Any]] = []
    for res in t.find_resources("Custom::AWSCDK-EKS-KubernetesResource").values():
        body = res["Properties"]["Manifest"]
        if isinstance(body, dict):  # Fn::Join of literal parts and tokens: keep the literal text
            body = "".join(p if isinstance(p, str) else "TOKEN" for p in body["Fn::Join"][1])
        objects += json.loads(body)
    return objects


def test_default_config_builds_no_inference_stack() -> None:
    config, _ = parse_config("")
    assert INFERENCE not in build_app(config, nag=False).stacks


def test_cluster_private_endpoint_kms_secrets_and_every_log_type(example: Template) -> None:
    cluster = example.find_resources("Custom::AWSCDK-EKS-Cluster")
    (props,) = [r["Properties"]["Config"] for r in cluster.values()]
    assert props["version"] == K8S_VERSION
    assert props["resourcesVpcConfig"]["endpointPrivateAccess"] is True
    assert props["resourcesVpcConfig"]["endpointPublicAccess"] is False
    assert props["encryptionConfig"][0]["resources"] == ["secrets"]
    types = props["logging"]["clusterLogging"][0]["types"]
    assert sorted(types) == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert props["accessConfig"]["authenticationMode"] == "API"
    example.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/aws/eks/mlhpc-infer-inference/cluster", "KmsKeyId": Match.any_value()},
    )


def test_public_endpoint_only_from_configured_cidrs_and_admin_access_entry() -> None:
    t = template(
        EXAMPLE.replace("public_endpoint_cidrs: []", "public_endpoint_cidrs: ['203.0.113.0/24']").replace(
            "admin_role_arns: []", "admin_role_arns: ['arn:aws:iam::123456789012:role/Admin']"
        )
    )
    (props,) = [r["Properties"]["Config"] for r in t.find_resources("Custom::AWSCDK-EKS-Cluster").values()]
    assert props["resourcesVpcConfig"]["endpointPublicAccess"] is True
    assert props["resourcesVpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    # the admin's entry (the metrics collector has one of its own, see test_collector_...)
    (entry,) = [
        e
        for e in t.find_resources("AWS::EKS::AccessEntry").values()
        if e["Properties"]["PrincipalArn"] == "arn:aws:iam::123456789012:role/Admin"
    ]
    assert entry["Properties"]["PrincipalArn"] == "arn:aws:iam::123456789012:role/Admin"
    (policy,) = entry["Properties"]["AccessPolicies"]
    assert policy["AccessScope"] == {"Type": "cluster"}
    assert json.dumps(policy["PolicyArn"]).endswith(
        ':eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"]]}'
    )


def test_inferentia_node_group_has_neuron_ami_label_and_taint(example: Template) -> None:
    example.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "InstanceTypes": ["inf2.xlarge"],
            "AmiType": "AL2023_x86_64_NEURON",
            "Labels": {"mlhpc.io/accelerator": "neuron"},
            "Taints": [{"Effect": "NO_SCHEDULE", "Key": "aws.amazon.com/neuron", "Value": "true"}],
            "ScalingConfig": {"MinSize": 0, "DesiredSize": 1, "MaxSize": 2},
        },
    )
    example.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {"InstanceTypes": ["m6i.large"], "AmiType": "AL2023_x86_64_STANDARD", "Taints": Match.absent()},
    )
    # Both groups launch from templates that require IMDSv2 and encrypt the root volume.
    found = example.find_resources("AWS::EC2::LaunchTemplate")
    assert len(found) == 2
    for res in found.values():
        data = res["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_inf1_is_allowed_and_pins_an_ami_release() -> None:
    t = template(
        EXAMPLE.replace(
            "instance_types: [inf2.xlarge]",
            "instance_types: [inf1.xlarge]\n    ami_release_version: 1.35.0-20260101",
        )
    )
    t.has_resource_properties(
        "AWS::EKS::Nodegroup", {"InstanceTypes": ["inf1.xlarge"], "ReleaseVersion": "1.35.0-20260101"}
    )


def test_exactly_one_neuron_device_plugin(example: Template) -> None:
    daemonsets = [o for o in manifests(example) if o["kind"] == "DaemonSet"]
    plugins = [
        d
        for d in daemonsets
        if "neuron-device-plugin" in d["spec"]["template"]["spec"]["containers"][0]["image"]
    ]
    assert len(plugins) == 1, [d["metadata"]["name"] for d in daemonsets]
    spec = plugins[0]["spec"]["template"]["spec"]
    assert {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert spec["containers"][0]["image"].endswith(":2.16.18.0")  # pinned, never :latest


def test_scheduler_extension_is_optional(example: Template) -> None:
    names = {o["metadata"]["name"] for o in manifests(example)}
    assert "k8s-neuron-scheduler" in names
    off = template(EXAMPLE.replace("neuron_scheduler: true", "neuron_scheduler: false"))
    assert "k8s-neuron-scheduler" not in {o["metadata"]["name"] for o in manifests(off)}


def test_service_requests_neuroncores_and_tolerates_the_taint(example: Template) -> None:
    objects = manifests(example)
    kinds = {o["kind"] for o in objects if o["metadata"].get("namespace") == "bert"}
    assert kinds >= {
        "Deployment",
        "Service",
        "ScaledObject",
        "TriggerAuthentication",
        "PodDisruptionBudget",
        "ServiceAccount",
    }
    # KEDA makes the HPA from the ScaledObject; a second, CPU one would fight it
    assert "HorizontalPodAutoscaler" not in kinds
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "bert"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"][NEURON_CORE_RESOURCE] == "1"
    assert container["resources"]["requests"][NEURON_CORE_RESOURCE] == "1"
    assert pod["nodeSelector"] == {"mlhpc.io/accelerator": "neuron"}
    assert pod["tolerations"][0]["key"] == "aws.amazon.com/neuron"
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)


def test_service_role_reads_only_the_model_prefix(example: Template) -> None:
    example.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "bert", "ServiceAccount": "bert"}
    )
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in example.find_resources("AWS::IAM::Policy").values()
        if any(s.get("Sid") == "ReadModelObjects" for s in r["Properties"]["PolicyDocument"]["Statement"])
    ]
    by_sid = {s["Sid"]: s for s in policy}
    assert by_sid["ReadModelObjects"]["Action"] == "s3:GetObject"
    resource = json.dumps(by_sid["ReadModelObjects"]["Resource"])
    assert resource.endswith('/models/bert/*"]]}') and "mlhpc-infer-model-bucket-arn" in resource
    assert by_sid["ListModelPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["models/bert/", "models/bert/*"]}
    }
    assert set(by_sid) == {"ReadModelObjects", "ListModelPrefix", "DecryptModelObjects"}


def test_workload_jobs_get_the_job_role_through_their_service_account(example: Template) -> None:
    from mlhpc import contract

    example.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": contract.EKS_JOB_NAMESPACE, "ServiceAccount": contract.EKS_JOB_SERVICE_ACCOUNT},
    )
    accounts = [
        o
        for o in manifests(example)
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "mlhpc-jobs"
    ]
    assert [a["metadata"]["namespace"] for a in accounts] == [contract.EKS_JOB_NAMESPACE]
    (role,) = [
        r["Properties"]
        for r in example.find_resources("AWS::IAM::Role").values()
        if "Jobs on EKS" in r["Properties"].get("Description", "")
    ]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert principal["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(principal["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    # the data access policy StorageStack owns, the same the Batch job role has, and nothing inline
    assert len(role["ManagedPolicyArns"]) == 1 and "Policies" not in role


SETTINGS = ServiceSettings(
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/mlhpc/bert:0.1.0", model_uri="s3://b/models/bert/"
)


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param(service_objects(SETTINGS), id="bert-neuron"),
        pytest.param(
            service_objects(ServiceSettings(image="x:1", model_uri="minilm", accelerator="cpu")),
            id="bert-cpu",
        ),
        pytest.param(load_manifest(DEVICE_PLUGIN), id="device-plugin"),
        pytest.param(load_manifest(NEURON_SCHEDULER), id="scheduler"),
    ],
)
def test_manifests_validate_against_the_cluster_version_schemas(objects: list[dict[str, Any]]) -> None:
    # kubernetes-validate ships the JSON schemas of each Kubernetes release (offline); strict mode
    # also rejects fields the schema does not define (a typo such as "tolerationz").
    for obj in objects:
        kubernetes_validate.validate(obj, f"{K8S_VERSION}.0", strict=True)


def test_a_misspelt_field_fails_validation() -> None:
    bad = service_objects(SETTINGS)[2]
    bad = json.loads(json.dumps(bad).replace('"tolerations"', '"tolerationz"'))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, f"{K8S_VERSION}.0", strict=True)


# --- the image follows the Neuron node group's family ------------------------------------------


def _service_image(t: Template) -> str:
    (deployment,) = [o for o in manifests(t) if o["kind"] == "Deployment" and o["metadata"]["name"] == "bert"]
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def _neuron_family(t: Template) -> str:
    (group,) = [
        g["Properties"]
        for g in t.find_resources("AWS::EKS::Nodegroup").values()
        if g["Properties"]["AmiType"] == "AL2023_x86_64_NEURON"
    ]
    families = {i.split(".")[0] for i in group["InstanceTypes"]}
    assert len(families) == 1, families
    return families.pop()


# The Dockerfile stage each variant builds, and the Neuron framework it installs (one per family).
FRAMEWORK_OF_VARIANT = {"neuron": "torch-neuronx", "inf1": "torch-neuron"}
FRAMEWORK_OF_FAMILY = {"inf2": "torch-neuronx", "trn1": "torch-neuronx", "inf1": "torch-neuron"}


@pytest.mark.parametrize("which", ["inf2", "inf1"])
def test_the_service_image_is_the_variant_of_the_node_groups_family(
    which: str, example: Template, inf1_example: Template
) -> None:
    t = example if which == "inf2" else inf1_example
    family = _neuron_family(t)
    assert family == which
    tag = _service_image(t).rsplit(":", 1)[1]
    variant = tag.rsplit("-", 1)[1]
    assert FRAMEWORK_OF_VARIANT[variant] == FRAMEWORK_OF_FAMILY[family], (tag, family)
    assert tag == f"{contract.image_tag(parse_config(EXAMPLE)[0].hpc)}-{variant}"


def test_a_mismatched_image_and_family_is_caught() -> None:
    # the check above, fed an inf2 image for an inf1 group, must fail
    inf2_variant = contract.image_variant("inf2.xlarge")
    assert inf2_variant is not None
    assert FRAMEWORK_OF_VARIANT[inf2_variant] != FRAMEWORK_OF_FAMILY["inf1"]
    with pytest.raises(ValueError, match="unknown image variant 'gpu'"):
        contract.image_reference("repo", "0.1.0", "gpu")


# --- node autoscaling: Cluster Autoscaler ---------------------------------------------------------


def _policy_statements(t: Template, role_description: str) -> dict[str, dict[str, Any]]:
    (role_id,) = [
        rid
        for rid, r in t.find_resources("AWS::IAM::Role").items()
        if role_description in r["Properties"].get("Description", "")
    ]
    statements: dict[str, dict[str, Any]] = {}
    for policy in t.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements |= {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    return statements


def test_cluster_autoscaler_may_resize_only_this_clusters_groups(example: Template) -> None:
    by_sid = _policy_statements(example, "Cluster Autoscaler")
    assert set(by_sid) == {
        "ResizeThisClustersGroups",
        "DiscoverGroupsAndInstanceTypes",
        "ReadNodeGroupTemplates",
    }
    resize = by_sid["ResizeThisClustersGroups"]
    assert resize["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/mlhpc-infer-inference": "owned"}
    }
    assert all(
        a.split(":")[1].startswith(("Describe", "Get"))
        for a in by_sid["DiscoverGroupsAndInstanceTypes"]["Action"]
    )
    assert "nodegroup/mlhpc-infer-inference/*/*" in json.dumps(by_sid["ReadNodeGroupTemplates"]["Resource"])
    example.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {"Namespace": "kube-system", "ServiceAccount": "cluster-autoscaler"},
    )
    (deployment,) = [
        o
        for o in manifests(example)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "cluster-autoscaler"
    ]
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert (
        "--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,"
        "k8s.io/cluster-autoscaler/mlhpc-infer-inference" in command
    )
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"mlhpc.io/accelerator": "none"}


@pytest.mark.parametrize(("which", "cores"), [("inf2", "2"), ("inf1", "4")])
def test_neuron_group_tells_the_autoscaler_what_a_node_offers_at_zero(
    which: str, cores: str, example: Template, inf1_example: Template
) -> None:
    t = example if which == "inf2" else inf1_example
    prefix = "k8s.io/cluster-autoscaler/node-template"
    t.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "AmiType": "AL2023_x86_64_NEURON",
            "Tags": {
                f"{prefix}/resources/aws.amazon.com/neuroncore": cores,
                f"{prefix}/label/mlhpc.io/accelerator": "neuron",
                f"{prefix}/taint/aws.amazon.com/neuron": "true:NoSchedule",
            },
        },
    )


# --- pod autoscaling: KEDA on the server's own metrics ------------------------------------------


def test_pods_scale_on_queue_depth_and_p99_from_the_workspace(example: Template) -> None:
    objects = manifests(example)
    (scaled,) = [o for o in objects if o["kind"] == "ScaledObject"]
    assert scaled["apiVersion"] == KEDA_API
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "bert"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    triggers = {tr["name"]: tr for tr in spec["triggers"]}
    assert set(triggers) == {"queue-depth", "p99-latency"}
    for trigger in triggers.values():
        assert trigger["type"] == "prometheus"
        assert trigger["metadata"]["serverAddress"] == "TOKEN"  # the workspace's endpoint attribute
        assert trigger["metadata"]["awsRegion"] == "us-east-1"
        assert trigger["authenticationRef"] == {"name": "bert-prometheus"}
    assert "bert_queued_pairs" in triggers["queue-depth"]["metadata"]["query"]
    assert triggers["queue-depth"]["metadata"]["threshold"] == "16"
    assert "histogram_quantile(0.99" in triggers["p99-latency"]["metadata"]["query"]
    assert triggers["p99-latency"]["metadata"]["threshold"] == "0.25"
    assert "cpu" not in json.dumps(spec)
    (auth,) = [o for o in objects if o["kind"] == "TriggerAuthentication"]
    assert auth["spec"] == {"podIdentity": {"provider": "aws"}}
    (pdb,) = [o for o in objects if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "bert"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_keda_is_a_pinned_chart_whose_operator_may_only_query_the_workspace(example: Template) -> None:
    (chart,) = example.find_resources("Custom::AWSCDK-EKS-HelmChart").values()
    props = chart["Properties"]
    assert props["Chart"] == "keda" and props["Repository"] == "https://kedacore.github.io/charts"
    assert props["Version"] == serving_metrics.KEDA_VERSION
    by_sid = _policy_statements(example, "KEDA operator")
    assert set(by_sid) == {"QueryServingMetrics"}
    (workspace_id,) = example.find_resources("AWS::APS::Workspace")
    assert by_sid["QueryServingMetrics"]["Resource"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    example.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation", {"Namespace": "keda", "ServiceAccount": "keda-operator"}
    )


# --- metrics: AMP workspace, managed collector, neuron-monitor; alarms ---------------------------


def test_collector_scrapes_the_service_and_neuron_monitor_into_the_workspace(example: Template) -> None:
    (workspace_id, workspace) = next(iter(example.find_resources("AWS::APS::Workspace").items()))
    assert "KmsKeyArn" in workspace["Properties"]
    (scraper,) = example.find_resources("AWS::APS::Scraper").values()
    props = scraper["Properties"]
    assert props["Destination"]["AmpConfiguration"]["WorkspaceArn"] == {"Fn::GetAtt": [workspace_id, "Arn"]}
    blob = props["ScrapeConfiguration"]["ConfigurationBlob"]["Fn::Base64"]
    import yaml

    config = yaml.safe_load(blob)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"bert", "neuron-monitor"}
    assert jobs["bert"]["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["bert"]
    targets = {r.get("target_label") for job in jobs.values() for r in job["relabel_configs"]}
    assert {"namespace", "app", "pod", "node"} <= targets  # what the queries select by
    # the collector's role gets in through an access entry as the user the RBAC binding names
    (scraper_id,) = example.find_resources("AWS::APS::Scraper")
    example.has_resource_properties(
        "AWS::EKS::AccessEntry",
        {"PrincipalArn": {"Fn::GetAtt": [scraper_id, "RoleArn"]}, "Username": serving_metrics.COLLECTOR_USER},
    )
    (binding,) = [
        o
        for o in manifests(example)
        if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == "aps-collector-role"
    ]
    assert binding["subjects"][0]["name"] == serving_metrics.COLLECTOR_USER
    (monitor,) = [
        o
        for o in manifests(example)
        if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "neuron-monitor"
    ]
    pod = monitor["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"mlhpc.io/accelerator": "neuron"}
    assert pod["tolerations"][0]["key"] == "aws.amazon.com/neuron"


def test_alarms_on_unschedulable_pods_and_api_errors_notify_the_topic(example: Template) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in example.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) >= {"scheduler_pending_pods_UNSCHEDULABLE", "apiserver_request_total_5XX"}
    pending = alarms["scheduler_pending_pods_UNSCHEDULABLE"]
    assert pending["Namespace"] == "AWS/EKS"
    assert pending["Dimensions"] == [{"Name": "ClusterName", "Value": "mlhpc-infer-inference"}]
    assert pending["EvaluationPeriods"] == 15 and pending["Threshold"] == 0
    (topic_id,) = example.find_resources("AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


# --- every manifest the stack applies validates ----------------------------------------------------


# KEDA's kinds are custom resources: kubernetes-validate has no schema for them (they are asserted
# field by field in test_pods_scale_on_queue_depth_and_p99_from_the_workspace).
CUSTOM_KINDS = {(KEDA_API, "ScaledObject"), (KEDA_API, "TriggerAuthentication")}


@pytest.mark.parametrize("which", ["inf2", "inf1"])
def test_every_rendered_manifest_validates_against_the_cluster_version(
    which: str, example: Template, inf1_example: Template
) -> None:
    t = example if which == "inf2" else inf1_example
    objects = manifests(t)
    assert {(o["apiVersion"], o["kind"]) for o in objects} >= CUSTOM_KINDS
    checked = 0
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, f"{K8S_VERSION}.0", strict=True)
        checked += 1
    assert checked >= 20, checked


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param(
            cluster_autoscaler.objects("c", "us-east-1", {"mlhpc.io/accelerator": "none"}), id="autoscaler"
        ),
        pytest.param(serving_metrics.collector_rbac(), id="collector-rbac"),
        pytest.param([serving_metrics.neuron_monitor("kube-system", {"a": "b"})], id="neuron-monitor"),
    ],
)
def test_the_new_objects_validate_on_their_own(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, f"{K8S_VERSION}.0", strict=True)
