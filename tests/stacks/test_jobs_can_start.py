"""Every Batch job definition HpcStack synthesizes can start on the queue the CLI sends it to.

This plays Batch's side and reads the synthesized template as Batch would, independently of
:mod:`mlhpc.placement`'s sizing: per node range, the vCPUs, memory and GPUs of the
``ResourceRequirements`` must fit one instance of a compute environment behind the queue (the
instance facts from :mod:`mlhpc.instances`, the memory the ECS agent registers rather than
the installed amount); a multi-node job needs ``NumNodes`` instances within the
environment's ``MaxvCpus`` and no Spot environment; a container that maps EFA devices needs
nodes whose launch template attaches EFA interfaces. The queue is the one
``mlhpc_app.aws.batch.default_queue_kind`` picks from the stack's outputs, as ``mlhpc submit`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlhpc import contract
from mlhpc.instances import lookup
from mlhpc_app.aws import batch as batch_adapter
from mlhpc_app.aws.stacks import Deployment
from tests.conftest import CONFIG_FILES, REPO, config_id, load_template
from workloads.registry import all_specs

# The ECS agent registers the memory the kernel reports, less than installed (AWS Batch User
# Guide, "Compute resource memory management": an m4.large with 8 GiB registers 7985 MiB, and
# the Batch AMI reserves 32 MiB more). The check counts 95 % of the installed memory as what a
# job may ask: the documented example leaves 97 %, and larger instances lose more to the kernel.
REGISTERED_FRACTION = 0.95


@dataclass(frozen=True)
class Node:
    """One node range of a job definition, as Batch reads it."""

    target: str
    vcpus: float
    memory_mib: int
    gpus: int
    efa_devices: int


def _requirements(container: dict[str, Any]) -> tuple[float, int, int]:
    reqs = {r["Type"]: r["Value"] for r in container.get("ResourceRequirements", [])}
    vcpus = float(reqs.get("VCPU", container.get("Vcpus", 0)))
    memory = int(reqs.get("MEMORY", container.get("Memory", 0)))
    return vcpus, memory, int(reqs.get("GPU", 0))


def _node(target: str, container: dict[str, Any]) -> Node:
    vcpus, memory, gpus = _requirements(container)
    devices = (container.get("LinuxParameters") or {}).get("Devices") or []
    efa = sum(1 for d in devices if str(d.get("HostPath", "")).startswith("/dev/infiniband/"))
    return Node(target, vcpus, memory, gpus, efa)


def nodes_of(definition: dict[str, Any]) -> tuple[int, list[Node]]:
    """Return (number of nodes, node ranges) of a job definition resource."""
    props = definition["Properties"]
    if props["Type"] == "multinode":
        node_props = props["NodeProperties"]
        ranges = [_node(r["TargetNodes"], r["Container"]) for r in node_props["NodeRangeProperties"]]
        return int(node_props["NumNodes"]), ranges
    return 1, [_node("0", props["ContainerProperties"])]


def _ref(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference to a resource of this template: {value!r}")


@dataclass(frozen=True)
class ComputeEnvironment:
    """A compute environment behind a queue, as Batch sees it."""

    logical_id: str
    instance_types: tuple[str, ...]
    max_vcpus: int
    spot: bool
    efa_interfaces: int


def environments_of(template: dict[str, Any], queue_id: str) -> list[ComputeEnvironment]:
    """Return the compute environments of a job queue resource, in order."""
    resources = template["Resources"]
    order = sorted(resources[queue_id]["Properties"]["ComputeEnvironmentOrder"], key=lambda o: o["Order"])
    found = []
    for entry in order:
        lid = _ref(entry["ComputeEnvironment"])
        compute = resources[lid]["Properties"]["ComputeResources"]
        launch = compute.get("LaunchTemplate", {}).get("LaunchTemplateId")
        interfaces = 0
        if launch is not None:
            data = resources[_ref(launch)]["Properties"]["LaunchTemplateData"]
            interfaces = sum(
                1 for n in data.get("NetworkInterfaces", []) if n.get("InterfaceType") in ("efa", "efa-only")
            )
        found.append(
            ComputeEnvironment(
                logical_id=lid,
                instance_types=tuple(compute["InstanceTypes"]),
                max_vcpus=int(compute["MaxvCpus"]),
                spot=compute["Type"] == "SPOT",
                efa_interfaces=interfaces,
            )
        )
    return found


def why_not(num_nodes: int, ranges: list[Node], env: ComputeEnvironment) -> list[str]:
    """Return why Batch could never start the job on this environment (empty: it can)."""
    problems = []
    if num_nodes > 1 and env.spot:
        problems.append(
            f"{env.logical_id}: a {num_nodes}-node job on Spot Instances (MNP is not supported on Spot)"
        )
    for node in ranges:
        hosts = []
        for name in env.instance_types:
            facts = lookup(name)
            assert facts is not None, f"{name} is not in mlhpc/instances.py; the check cannot judge it"
            registered = facts.memory_gib * 1024 * REGISTERED_FRACTION
            if node.vcpus <= facts.vcpus and node.memory_mib <= registered and node.gpus <= facts.gpus:
                hosts.append(facts)
        if not hosts:
            offers = ", ".join(
                f"{n} ({f.vcpus} vCPU, {int(f.memory_gib * 1024 * REGISTERED_FRACTION)} MiB, {f.gpus} GPU)"
                for n in env.instance_types
                if (f := lookup(n)) is not None
            )
            problems.append(
                f"{env.logical_id}: node {node.target} asks {node.vcpus:g} vCPU, {node.memory_mib} MiB, "
                f"{node.gpus} GPU; no instance type fits: {offers}"
            )
            continue
        smallest = min(h.vcpus for h in hosts)
        if num_nodes * smallest > env.max_vcpus:
            problems.append(
                f"{env.logical_id}: {num_nodes} nodes x {smallest} vCPU instances > MaxvCpus {env.max_vcpus}"
            )
        if node.efa_devices > env.efa_interfaces:
            problems.append(
                f"{env.logical_id}: node {node.target} maps {node.efa_devices} EFA devices, the nodes have "
                f"{env.efa_interfaces} EFA interfaces"
            )
    return problems


def placement_problems(template: dict[str, Any]) -> list[str]:
    """Return every job definition of an HpcStack template that could never start where the CLI sends it."""
    resources = template["Resources"]
    outputs = {
        k: _ref(v["Value"])
        for k, v in template.get("Outputs", {}).items()
        if k.startswith(("JobQueue", "JobDefinition"))
    }
    deployment = Deployment(project="mlhpc", region="us-east-1", storage={}, hpc=outputs)
    queue_ids = {k.value: outputs[k.output.key] for k in contract.QueueKind if k.output.key in outputs}
    by_output = {contract.job_definition_output(name).key: spec for name, spec in all_specs().items()}
    definitions = {lid for lid, r in resources.items() if r["Type"] == "AWS::Batch::JobDefinition"}
    problems = []
    named = {outputs[key]: spec for key, spec in by_output.items() if key in outputs}
    for lid in sorted(definitions - set(named)):
        problems.append(f"{lid}: no JobDefinition<Workload> output names it, so no submit can route it")
    for lid, spec in sorted(named.items(), key=lambda kv: kv[1].name):
        kind = batch_adapter.default_queue_kind(spec, deployment)
        if kind not in queue_ids:
            problems.append(f"{spec.name}: routed to the {kind} queue, which this stack does not have")
            continue
        num_nodes, ranges = nodes_of(resources[lid])
        envs = environments_of(template, queue_ids[kind])
        reasons = [why_not(num_nodes, ranges, env) for env in envs]
        # Batch tries the queue's environments in order: one that can host it is enough,
        # except that a multi-node job must not meet a Spot one at all.
        if not any(not r for r in reasons) or (num_nodes > 1 and any(e.spot for e in envs)):
            problems.append(f"{spec.name} on the {kind} queue: " + "; ".join(p for r in reasons for p in r))
    return problems


def test_the_check_runs_this_worktrees_code() -> None:
    import mlhpc

    assert Path(mlhpc.__file__).resolve().is_relative_to(REPO)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_every_job_definition_can_start_on_its_queue(path: Path, synth_config: Any) -> None:
    template = load_template(synth_config(path), "HpcStack")
    assert template["Resources"], "HpcStack was not synthesized"
    assert placement_problems(template) == []


def test_the_check_refuses_what_batch_refuses() -> None:
    """The checker itself: the three definitions issue 17 found on the default config, as they were."""
    env = ComputeEnvironment("Gpu", ("g5.12xlarge",), 96, spot=False, efa_interfaces=1)
    old_pinn = [Node("0:1", 96, 737_280, 8, 1)]
    assert any("no instance type fits" in p for p in why_not(2, old_pinn, env))
    cpu = ComputeEnvironment("Cpu", ("c6i.large", "c6i.xlarge", "c6i.2xlarge", "m6i.xlarge"), 64, True, 0)
    assert why_not(1, [Node("0", 4, 16_384, 0, 0)], cpu)  # superradiance's old ask: 16 GiB installed
    assert why_not(1, [Node("0", 4, 15_564, 0, 0)], cpu) == []  # 95 % of 16 GiB
    spot = ComputeEnvironment("GpuSpot", ("g5.12xlarge",), 96, spot=True, efa_interfaces=1)
    assert any("Spot" in p for p in why_not(2, [Node("0:1", 48, 186_777, 4, 1)], spot))
    assert any("MaxvCpus" in p for p in why_not(3, [Node("0:2", 48, 186_777, 4, 1)], env))
    no_efa = ComputeEnvironment("Gpu", ("g5.12xlarge",), 96, spot=False, efa_interfaces=0)
    assert any("EFA" in p for p in why_not(1, [Node("0", 48, 186_777, 4, 1)], no_efa))
