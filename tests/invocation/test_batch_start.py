"""Batch job definitions and `mlhpc submit` overrides, run the way the container runtime runs them.

The container runs the image's ENTRYPOINT (read from the workload's Dockerfile) followed by the
job's command: the job definition's, or the submit request's containerOverrides, which replaces
it (Batch's command is the container's CMD). Nothing here asks the codec what to expect; the
commands come from the construct, the synthesized template and the CLI, as AWS would see them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli
from tests.conftest import load_template
from tests.invocation.dockerfile import container_argv
from workloads import registry

REPO = Path(__file__).resolve().parents[2]
TINY = ["problem=oscillator", "adam_steps=20", "lbfgs_steps=0", "points=32", "width=8", "threads=1"]
# What a test process must not pass on to a job: its own rank, or a real Batch layout.
NOT_INHERITED = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def dockerfile(workload: str) -> Path:
    return REPO / "workloads" / workload / "Dockerfile"


def runnable(argv: list[str]) -> list[str]:
    """The image's `python` is this interpreter here."""
    assert argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


def job_environment(*layers: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED and not k.startswith("AWS_BATCH_")}
    for layer in layers:
        env.update(layer)
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"
    return env


def substitute(command: list[str], parameters: dict[str, str]) -> list[str]:
    """Replace Ref::name placeholders as Batch does (submit-time parameters over the definition's)."""
    return [parameters.get(part[5:], part) if part.startswith("Ref::") else part for part in command]


# --- a multi-node pinn job, from `mlhpc submit` to two trained ranks -----------------------


def pinn_job_definition(gpus_per_node: int) -> dict[str, Any]:
    """Return the CloudFormation properties HpcStack's construct makes for pinn with this many GPUs."""
    from aws_cdk import App, Stack, assertions
    from aws_cdk import aws_ecr as ecr
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_logs as logs

    from mlhpc.contract import QueueKind
    from mlhpc.placement import Sizing
    from stacks.constructs.job_definitions import JobContext, WorkloadJobDefinition

    spec = registry.get("pinn")
    # a node of this many GPUs (the sizing HpcStack's placement would give on such a type)
    sizing = Sizing(
        workload="pinn", queue=QueueKind.GPU, instance_type="test.2gpu", nodes=2, gpus=gpus_per_node,
        vcpus=4 * gpus_per_node, memory_mib=8192 * gpus_per_node, efa=True, fits_on=("test.2gpu",),
    )  # fmt: skip
    stack = Stack(App(), "Bare")
    ecs_tasks = iam.ServicePrincipal("ecs-tasks.amazonaws.com")
    context = JobContext(
        job_role=iam.Role(stack, "JobRole", assumed_by=ecs_tasks),
        execution_role=iam.Role(stack, "ExecutionRole", assumed_by=ecs_tasks),
        log_group=logs.LogGroup(stack, "Logs"),
        results_uri="s3://mlhpc-results-123",
        checkpoints_uri="s3://mlhpc-checkpoints-123",
        image_tag="0.1.0",
        fsx=False,
        efs=False,
        efa_devices=1,
        gpudirect_rdma=False,
        retry_attempts=3,
    )
    WorkloadJobDefinition(
        stack, "JobPinn", spec=spec, sizing=sizing, repository=ecr.Repository(stack, "Repo"), context=context
    )
    found = assertions.Template.from_stack(stack).find_resources("AWS::Batch::JobDefinition")
    (props,) = [r["Properties"] for r in found.values()]
    assert props["Type"] == "multinode"
    return dict(props)


@pytest.mark.synth
def test_submitted_multi_node_pinn_trains_on_two_local_ranks(
    moto_server: str, node_properties_described: None, tmp_path: Path
) -> None:
    from tests.aws.cfn_moto import register_multi_node
    from tests.aws.harness import default_stacks, deploy
    from workloads.common.dist import free_port

    props = pinn_job_definition(gpus_per_node=2)
    arn = register_multi_node("JobPinnDefinition", props)
    deploy(default_stacks(efa=True, workloads={"pinn": arn}))
    sets = [arg for pair in TINY for arg in ("--set", pair)]
    request = Cli().json("submit", "pinn", "--nodes", "1", "--dry-run", *sets)["request"]
    (node,) = request["nodeOverrides"]["nodePropertyOverrides"]
    overrides = node["containerOverrides"]

    argv = runnable(container_argv(dockerfile("pinn"), overrides["command"]))
    container = props["NodeProperties"]["NodeRangeProperties"][0]["Container"]
    env = job_environment(
        {e["Name"]: e["Value"] for e in container["Environment"]},
        {e["name"]: e["value"] for e in overrides["environment"]},
        # Batch's multi-node variables on the main node of a one-node job: no main-node address
        # (Batch gives it to the other nodes only), so the main node listens on its own address.
        {
            "AWS_BATCH_JOB_NODE_INDEX": "0",
            "AWS_BATCH_JOB_NUM_NODES": "1",
            "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
        },
        # Batch leaves the port to torch's default (29500); a free one keeps parallel tests apart.
        {"MASTER_PORT": str(free_port()), "TMPDIR": str(tmp_path)},
    )
    done = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    import boto3

    run_id = request["tags"]["mlhpc:run-id"]
    body = boto3.client("s3").get_object(Bucket="mlhpc-results-123", Key=f"pinn/{run_id}/metrics.json")[
        "Body"
    ]
    metrics = json.loads(body.read())
    assert metrics["workload"] == "pinn"
    assert metrics["world_size"] == 2  # one node x --nproc-per-node 2: it trained on two ranks


# --- every job definition HpcStack synthesizes starts its workload --------------------------


def synthesized_job_definitions(synth_config: Any) -> dict[str, dict[str, Any]]:
    """Return the default config's job definitions by workload: container properties and parameters."""
    from stacks.assembly import HPC

    template = load_template(synth_config(REPO / "config" / "default.yaml"), HPC)
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Batch::JobDefinition":
            continue
        props = resource["Properties"]
        container = (
            props.get("ContainerProperties") or props["NodeProperties"]["NodeRangeProperties"][0]["Container"]
        )
        env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        found[env["MLHPC_WORKLOAD"]] = {"container": container, "parameters": props.get("Parameters", {})}
    return found


@pytest.mark.synth
@pytest.mark.parametrize("workload", registry.names())
def test_job_definition_command_is_accepted_by_the_image(
    synth_config: Any, workload: str, tmp_path: Path
) -> None:
    definition = synthesized_job_definitions(synth_config)[workload]
    parameters = {"out": str(tmp_path / "out"), "checkpoint": str(tmp_path / "checkpoints")}
    argv = container_argv(dockerfile(workload), substitute(definition["container"]["Command"], parameters))
    spec = registry.get(workload)
    # The image's entrypoint decodes the rest strictly: what it does not know is an error (exit 2).
    assert argv[:3] == ["python", "-m", spec.module]
    from workloads.common.entry import parse_args

    _, run = parse_args(spec, argv[3:])
    assert (run.out, run.checkpoint_dir) == (parameters["out"], parameters["checkpoint"])
    # And the container's own process starts on it: --help where a run would be long.
    env = job_environment({e["Name"]: e["Value"] for e in definition["container"]["Environment"]})
    cheap = workload == "hello"
    done = subprocess.run(
        runnable(argv if cheap else [*argv, "--help"]),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    if cheap:
        assert (
            json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))["total"] == 50005000
        )
