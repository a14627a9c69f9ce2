"""ImageStack, asserted on a synthesized template (never on hashed logical ids)."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from mlhpc.ami.manifest import load_manifest
from mlhpc.config import parse_config
from stacks.assembly import IMAGE, build_app

pytestmark = pytest.mark.synth

BASE = "image:\n  enabled: true\n  allow_unverified_downloads: true\n"


def template(extra: str = "") -> Template:
    config, _ = parse_config(BASE + extra)
    return Template.from_stack(build_app(config, nag=False, specs={}).stacks[IMAGE])


@pytest.fixture(scope="module")
def gpu() -> Template:
    return template()


def recipe_parameters(template: Template) -> dict[str, dict[str, str]]:
    """Return {component document name: {parameter: value}} of the one recipe."""
    (recipe,) = template.find_resources("AWS::ImageBuilder::ImageRecipe").values()
    components = template.find_resources("AWS::ImageBuilder::Component")
    by_id = {logical: res["Properties"]["Name"] for logical, res in components.items()}
    found = {}
    for entry in recipe["Properties"]["Components"]:
        name = by_id[entry["ComponentArn"]["Fn::GetAtt"][0]]
        found[name.split("-", 1)[1].rsplit("-", 1)[0]] = {
            p["Name"]: p["Value"][0] for p in entry.get("Parameters", [])
        }
    return found


def test_image_stack_is_absent_unless_enabled() -> None:
    config, _ = parse_config("")
    assert IMAGE not in build_app(config, nag=False, specs={}).stacks


def test_gpu_recipe_runs_every_component_in_order_with_manifest_versions(gpu: Template) -> None:
    params = recipe_parameters(gpu)
    assert list(params) == [
        "base", "nvidia-driver", "cuda", "efa", "gdrcopy", "nccl", "aws-ofi-nccl", "nccl-tests", "dcgm",
        "cloudwatch-agent",
    ]  # fmt: skip
    manifest = load_manifest()
    assert params["nccl"]["Version"] == manifest.artifact("nccl").version
    assert params["nccl"]["Sha256"] == manifest.artifact("nccl").sha256
    assert params["nccl"]["CudaArchitectures"] == " ".join(manifest.cuda_architectures)
    assert params["efa"]["OpenMpiVersion"] == manifest.artifact("openmpi").version
    assert params["cloudwatch-agent"]["Sha256"] == "none"  # null in the manifest
    assert params["cloudwatch-agent"]["AllowUnverified"] == "true"
    assert params["nvidia-driver"]["Policy"] == "keep_base"
    assert params["base"]["ScriptsS3Uri"]  # the scripts asset


def test_parent_image_comes_from_an_ssm_parameter_and_root_is_encrypted(gpu: Template) -> None:
    gpu.has_resource_properties(
        "AWS::ImageBuilder::ImageRecipe",
        {
            "ParentImage": "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id",
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": Match.object_like({"Encrypted": True, "VolumeType": "gp3"}),
                }
            ],
            "AdditionalInstanceConfiguration": {"SystemsManagerAgent": {"UninstallAfterBuild": False}},
        },
    )


def test_build_instances_are_private_imdsv2_only_and_https_out_only(gpu: Template) -> None:
    gpu.has_resource_properties(
        "AWS::ImageBuilder::InfrastructureConfiguration",
        {
            "InstanceMetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
            "InstanceTypes": ["g5.12xlarge"],
            "TerminateInstanceOnFailure": True,
            "SubnetId": Match.any_value(),
        },
    )
    (group,) = gpu.find_resources("AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]
    assert [(r["IpProtocol"], r["FromPort"]) for r in group["Properties"]["SecurityGroupEgress"]] == [
        ("tcp", 443)
    ]


def test_instance_profile_reads_only_the_scripts_asset(gpu: Template) -> None:
    (policy,) = gpu.find_resources("AWS::IAM::Policy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Sid"] == "ReadImageScripts" and statement["Action"] == "s3:GetObject"
    assert "Fn::Join" in json.dumps(statement["Resource"]) and ".zip" in json.dumps(statement["Resource"])
    (role,) = gpu.find_resources("AWS::IAM::Role").values()
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "EC2InstanceProfileForImageBuilder" in managed and "AmazonSSMManagedInstanceCore" in managed


def test_pipeline_is_unscheduled_by_default_and_tests_the_image(gpu: Template) -> None:
    (pipeline,) = gpu.find_resources("AWS::ImageBuilder::ImagePipeline").values()
    assert "Schedule" not in pipeline["Properties"]
    assert pipeline["Properties"]["ImageTestsConfiguration"] == {
        "ImageTestsEnabled": True,
        "TimeoutMinutes": 360,
    }
    assert gpu.find_resources("AWS::ImageBuilder::Image") == {}


def test_a_schedule_is_added_only_when_configured() -> None:
    t = template("  schedule_cron: cron(0 6 ? * sun *)\n")
    t.has_resource_properties(
        "AWS::ImageBuilder::ImagePipeline",
        {
            "Schedule": {
                "ScheduleExpression": "cron(0 6 ? * sun *)",
                "PipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY",
            }
        },
    )


def test_distribution_writes_the_ami_id_to_the_parameter_hpc_can_take(gpu: Template) -> None:
    (dist,) = gpu.find_resources("AWS::ImageBuilder::DistributionConfiguration").values()
    (first,) = dist["Properties"]["Distributions"]
    assert first["SsmParameterConfigurations"] == [
        {"ParameterName": "/mlhpc/ami/gpu", "DataType": "aws:ec2:image"}
    ]
    assert "{{ imagebuilder:buildDate }}" in first["AmiDistributionConfiguration"]["Name"]
    outputs = gpu.find_outputs("*")
    assert outputs["GpuImageSsmParameter"]["Value"] == "/mlhpc/ami/gpu"
    assert "GpuPipelineArn" in outputs


def test_other_regions_get_copies_but_only_the_home_region_writes_the_parameter() -> None:
    t = template("  distribution_regions: [us-west-2]\n")
    (dist,) = t.find_resources("AWS::ImageBuilder::DistributionConfiguration").values()
    copies = dist["Properties"]["Distributions"]
    assert [d["Region"] for d in copies][1:] == ["us-west-2"]
    assert "SsmParameterConfigurations" not in copies[1]


def test_build_on_deploy_bakes_one_image_and_outputs_its_arn() -> None:
    t = template("  build_on_deploy: true\n")
    assert len(t.find_resources("AWS::ImageBuilder::Image")) == 1
    assert {"GpuImageArn", "GpuImageId"} <= set(t.find_outputs("*"))


def test_inferentia_recipe_installs_the_inf1_set_on_request() -> None:
    t = template(
        "  gpu: {enabled: false}\n  inferentia:\n    enabled: true\n    target: inf1\n    build_instance_types: [inf1.xlarge]\n"
    )
    params = recipe_parameters(t)
    assert list(params) == ["base", "neuron", "cloudwatch-agent"]
    assert "aws-neuronx-dkms-2.24." in params["neuron"]["Packages"]
    assert params["cloudwatch-agent"]["Gpu"] == "false"
    t.has_resource_properties(
        "AWS::ImageBuilder::ImageRecipe",
        {"ParentImage": "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"},
    )


def test_changing_a_pin_renames_the_recipe_so_immutable_versions_never_clash() -> None:
    before = template().find_resources("AWS::ImageBuilder::ImageRecipe")
    t2 = template("  gpu: {driver: install_pinned}\n")
    after = t2.find_resources("AWS::ImageBuilder::ImageRecipe")
    name = lambda res: next(iter(res.values()))["Properties"]["Name"]  # noqa: E731
    assert name(before) != name(after)
    assert name(before).startswith("mlhpc-gpu-") and name(after).startswith("mlhpc-gpu-")
