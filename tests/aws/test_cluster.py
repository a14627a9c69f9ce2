"""The submit-time check against the deployed cluster: Batch's placement rules on what DescribeComputeEnvironments says."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlhpc_app.aws import cluster
from mlhpc_app.aws.cluster import Ask, CannotStart, DeployedEnvironment
from mlhpc_app.aws.session import Aws

G5 = DeployedEnvironment("gpu-od", ("g5.12xlarge",), 96, spot=False, usable=True, state="ENABLED/VALID")
G5_SPOT = DeployedEnvironment("gpu-spot", ("g5.12xlarge",), 96, spot=True, usable=True, state="ENABLED/VALID")
CPU = DeployedEnvironment(
    "cpu", ("c6i.2xlarge", "m6i.xlarge"), 64, spot=True, usable=True, state="ENABLED/VALID"
)


def test_ask_is_read_from_resource_requirements_of_either_kind_of_definition() -> None:
    single = {"containerProperties": {"resourceRequirements": [
        {"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "12288"}]}}  # fmt: skip
    assert cluster.ask_of(single, 1) == Ask(4, 12288, 0, 1)
    multi = {"nodeProperties": {"nodeRangeProperties": [{"container": {"resourceRequirements": [
        {"type": "VCPU", "value": "48"}, {"type": "MEMORY", "value": "186777"}, {"type": "GPU", "value": "4"}]}}]}}  # fmt: skip
    assert cluster.ask_of(multi, 2) == Ask(48, 186777, 4, 2)
    legacy = {"containerProperties": {"vcpus": 2, "memory": 2048}}
    assert cluster.ask_of(legacy, 1) == Ask(2, 2048, 0, 1)


def test_what_the_default_cluster_can_place() -> None:
    # g5.12xlarge: 48 vCPU, 192 GiB installed, 186,777 MiB usable after the agent's 5 %, 4 GPU
    assert cluster.problems(Ask(48, 186777, 4, 2), G5) == []
    (too_big,) = cluster.problems(Ask(96, 737280, 8, 2), G5)  # the old pinn definition
    assert "each node asks 96 vCPU, 737280 MiB, 8 GPU, and no instance type of gpu-od has that" in too_big
    assert "g5.12xlarge (48 vCPU, 186,777 MiB usable, 4 GPU)" in too_big
    (installed,) = cluster.problems(Ask(4, 16384, 0, 1), CPU)  # asks the installed 16 GiB
    assert "no instance type of cpu has that" in installed


def test_multi_node_rules_spot_and_max_vcpus() -> None:
    (spot,) = cluster.problems(Ask(48, 1024, 4, 2), G5_SPOT)
    assert "Batch runs no multi-node parallel job on Spot" in spot
    (vcpus,) = cluster.problems(Ask(48, 1024, 4, 3), G5)
    assert "3 nodes of g5.12xlarge take 144 vCPUs, more than gpu-od's max vCPUs (96)" in vcpus
    assert cluster.problems(Ask(48, 1024, 4, 1), G5_SPOT) == []  # one node on Spot is fine


def test_disabled_environments_and_types_batch_resolves_itself() -> None:
    off = DeployedEnvironment(
        "gpu-od", ("g5.12xlarge",), 96, spot=False, usable=False, state="DISABLED/VALID"
    )
    assert cluster.problems(Ask(1, 512, 0, 1), off) == ["gpu-od is DISABLED/VALID, so it starts nothing"]
    optimal = DeployedEnvironment("cpu", ("optimal",), 64, spot=False, usable=True, state="ENABLED/VALID")
    assert cluster.problems(Ask(500, 10**7, 0, 1), optimal) == []  # unknown to us: never refused


def test_refusal_names_every_environment_and_the_fix() -> None:
    with pytest.raises(CannotStart) as err:
        cluster.check_can_start(Ask(96, 737280, 8, 2), [G5, G5_SPOT], queue="gpu", workload="pinn")
    text = str(err.value)
    assert text.startswith(
        "Batch would accept pinn on the gpu queue and never start it: each node asks 96 vCPU"
    )
    assert "Spot" in text and "fewer --nodes (this asks 2)" in err.value.fix
    assert err.value.next_command == "mlhpc validate"
    cluster.check_can_start(Ask(48, 1024, 4, 2), [G5_SPOT, G5], queue="gpu", workload="pinn")  # one is enough


def _managed_environment(batch: Any, ec2: Any, iam: Any, *, name: str, kind: str, types: list[str]) -> str:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=name, Description="x", VpcId=vpc)["GroupId"]
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName=f"{name}-profile")["InstanceProfile"]["Arn"]
    return str(
        batch.create_compute_environment(
            computeEnvironmentName=name,
            type="MANAGED",
            state="ENABLED",
            computeResources={
                "type": kind,
                "minvCpus": 0,
                "maxvCpus": 96,
                "instanceTypes": types,
                "subnets": [subnet],
                "securityGroupIds": [sg],
                "instanceRole": profile,
            },
            serviceRole=role,
        )["computeEnvironmentArn"]
    )


def test_deployed_environments_are_read_from_the_queue_in_order() -> None:
    with mock_aws():
        batch, ec2, iam = (boto3.client(s, region_name="us-east-1") for s in ("batch", "ec2", "iam"))
        spot = _managed_environment(batch, ec2, iam, name="gpu-spot", kind="SPOT", types=["g5.12xlarge"])
        queue = batch.create_job_queue(
            jobQueueName="q", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": spot}],
        )["jobQueueArn"]  # fmt: skip
        envs = cluster.deployed_environments(Aws.connect(region="us-east-1"), queue)
    assert [(e.name, e.instance_types, e.max_vcpus, e.spot, e.usable) for e in envs] == [
        ("gpu-spot", ("g5.12xlarge",), 96, True, True)
    ]
    with pytest.raises(CannotStart, match="Spot"):
        cluster.check_can_start(Ask(48, 1024, 4, 2), envs, queue="gpu-spot", workload="pinn")
