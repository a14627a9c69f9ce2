"""InferenceStack, asserted on the synthesized template of the example config that enables it."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from aws_cdk.assertions import Match, Template

from mlhpc.config import parse_config
from stacks.assembly import INFERENCE, build_app
from stacks.inference_stack import DEVICE_PLUGIN, NEURON_SCHEDULER, load_manifest
from tests.conftest import REPO
from workloads.bert.k8s import NEURON_CORE_RESOURCE, ServiceSettings, service_objects

pytestmark = pytest.mark.synth

EXAMPLE = (REPO / "config" / "examples" / "inferentia-bert.yaml").read_text(encoding="utf-8")
K8S_VERSION = "1.35"  # the cluster's version (InferenceConfig.kubernetes_version)


def template(yaml_text: str) -> Template:
    config, _ = parse_config(yaml_text)
    return Template.from_stack(build_app(config, nag=False).stacks[INFERENCE])


@pytest.fixture(scope="module")
def example() -> Template:
    return template(EXAMPLE)


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
    (entry,) = t.find_resources("AWS::EKS::AccessEntry").values()
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
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
    }
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
