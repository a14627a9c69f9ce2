"""Will Batch ever start this job? The request against the compute environments really deployed.

Synthesis sizes every job definition for the configured cluster (:mod:`mlhpc.placement`), but the
deployed cluster can differ: an older HpcStack, environments edited by hand, a disabled or
invalid environment, or a ``--nodes`` that outgrows max vCPUs. Batch accepts such a job and
leaves it RUNNABLE at the head of the queue. So before submitting, the CLI reads the queue's
environments (DescribeJobQueues, DescribeComputeEnvironments) and applies the rules Batch
applies when it places a job:

* each node's vCPUs, memory and GPUs must fit one instance type the environment allows, with
  memory less the ECS agent's share (:func:`mlhpc.placement.usable_memory_mib`);
* a multi-node job needs nodes x that instance's vCPUs within the environment's max vCPUs;
* multi-node parallel jobs never run on Spot environments (AWS Batch user guide, "Compute
  environment considerations for multi-node parallel jobs");
* the environment must be ENABLED and VALID.

Instance types Batch resolves itself (``optimal``, a family such as ``c6i``) are not in the
instance table; a job is never refused on their account, only on what is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlhpc.errors import MlhpcError
from mlhpc.instances import lookup
from mlhpc.placement import offer, usable_memory_mib
from mlhpc_app.aws.session import Aws, with_backoff


class CannotStart(MlhpcError):
    """A request Batch would accept and never start on the deployed cluster."""


@dataclass(frozen=True)
class Ask:
    """What a submission asks of each node, read from its job definition as Batch reads it."""

    vcpus: int
    memory_mib: int
    gpus: int
    nodes: int


@dataclass(frozen=True)
class DeployedEnvironment:
    """One compute environment behind a queue, as DescribeComputeEnvironments returns it."""

    name: str
    instance_types: tuple[str, ...]
    max_vcpus: int
    spot: bool
    usable: bool  # ENABLED and VALID
    state: str


def _requirements(container: dict[str, Any]) -> dict[str, int]:
    found = {r["type"]: int(float(r["value"])) for r in container.get("resourceRequirements") or []}
    # the legacy top-level fields, which old definitions (and some tools) still use
    found.setdefault("VCPU", int(container.get("vcpus") or 0))
    found.setdefault("MEMORY", int(container.get("memory") or 0))
    return found


def ask_of(job_definition: dict[str, Any], nodes: int) -> Ask:
    """Return the per-node ask of a described job definition for a run of ``nodes`` nodes."""
    node_props = job_definition.get("nodeProperties") or {}
    ranges = node_props.get("nodeRangeProperties") or []
    container = ranges[0].get("container", {}) if ranges else job_definition.get("containerProperties", {})
    req = _requirements(container)
    return Ask(vcpus=req.get("VCPU", 0), memory_mib=req.get("MEMORY", 0), gpus=req.get("GPU", 0), nodes=nodes)


def deployed_environments(aws: Aws, queue_arn: str) -> list[DeployedEnvironment]:
    """Return the compute environments of a job queue, in the queue's order."""
    batch = aws.client("batch")
    queues = with_backoff(
        lambda: batch.describe_job_queues(jobQueues=[queue_arn])["jobQueues"], what="batch:DescribeJobQueues"
    )
    if not queues:
        return []
    order = sorted(queues[0].get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
    arns = [o["computeEnvironment"] for o in order]
    if not arns:
        return []
    described = with_backoff(
        lambda: batch.describe_compute_environments(computeEnvironments=arns)["computeEnvironments"],
        what="batch:DescribeComputeEnvironments",
    )
    by_arn = {ce["computeEnvironmentArn"]: ce for ce in described}
    envs = []
    for arn in arns:
        ce = by_arn.get(arn)
        if ce is None:
            continue
        res = ce.get("computeResources") or {}
        state, status = ce.get("state", "ENABLED"), ce.get("status", "VALID")
        envs.append(
            DeployedEnvironment(
                name=ce.get("computeEnvironmentName", arn),
                instance_types=tuple(res.get("instanceTypes") or ()),
                max_vcpus=int(res.get("maxvCpus") or 0),
                spot=res.get("type") in ("SPOT", "FARGATE_SPOT"),
                usable=state == "ENABLED" and status == "VALID",
                state=f"{state}/{status}",
            )
        )
    return envs


def problems(ask: Ask, env: DeployedEnvironment) -> list[str]:
    """Return why Batch would never place the ask on this environment (empty: it can)."""
    if not env.usable:
        return [f"{env.name} is {env.state}, so it starts nothing"]
    if ask.nodes > 1 and env.spot:
        return [f"{env.name} is a Spot environment, and Batch runs no multi-node parallel job on Spot"]
    known = [t for t in map(lookup, env.instance_types) if t is not None]
    if len(known) < len(env.instance_types) or not known:
        return []  # Batch resolves 'optimal' or families itself: nothing here says it cannot
    fitting = sorted(
        (
            t
            for t in known
            if ask.vcpus <= t.vcpus and ask.memory_mib <= usable_memory_mib(t) and ask.gpus <= t.gpus
        ),
        key=lambda t: (t.vcpus, t.memory_gib),
    )
    if not fitting:
        offers = ", ".join(offer(t.name) for t in known)
        return [
            f"each node asks {ask.vcpus} vCPU, {ask.memory_mib} MiB, {ask.gpus} GPU, and no instance type of "
            f"{env.name} has that: {offers}"
        ]
    if ask.nodes > 1 and ask.nodes * fitting[0].vcpus > env.max_vcpus:
        return [
            f"{ask.nodes} nodes of {fitting[0].name} take {ask.nodes * fitting[0].vcpus} vCPUs, more than "
            f"{env.name}'s max vCPUs ({env.max_vcpus})"
        ]
    return []


def check_can_start(
    ask: Ask, envs: Iterable[DeployedEnvironment], *, queue: str, workload: str, config_hint: str = ""
) -> None:
    """Raise CannotStart unless some environment of the queue could place the ask."""
    envs = list(envs)
    if not envs:
        raise CannotStart(
            f"the {queue} queue has no compute environment: {workload} would wait forever",
            fix="run `cdk deploy HpcStack` to restore the queue's environments",
            next_command="cdk deploy HpcStack",
        )
    reasons = [reason for env in envs for reason in problems(ask, env)]
    if len(reasons) < len(envs):
        return  # at least one environment can place it
    fix = "size the job for this cluster: `mlhpc validate` shows what each queue can hold"
    if ask.nodes > 1:
        fix += f"; fewer --nodes (this asks {ask.nodes}), or raise max_vcpus in the config"
    fix += "; then `cdk deploy HpcStack` so the job definitions and environments agree" + (
        f" ({config_hint})" if config_hint else ""
    )
    raise CannotStart(
        f"Batch would accept {workload} on the {queue} queue and never start it: " + "; ".join(reasons),
        fix=fix,
        next_command="mlhpc validate",
    )


# What Batch puts in statusReason when a RUNNABLE job blocks the head of its queue, and the fix.
# The codes are AWS's (user guide, "Jobs stuck in a RUNNABLE status"). HpcStack's queues also
# cancel JOB_RESOURCE_REQUIREMENT and COMPUTE_ENVIRONMENT_MAX_RESOURCE jobs (and ones waiting for
# capacity) after hpc.blocked_job_timeout_s; the follow ends at once, with the fix.
MISCONFIGURATION = "MISCONFIGURATION:"
BLOCKED_FIXES = {
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT": "the job asks more vCPU, memory or GPUs than any instance of the "
    "queue's environments has: `mlhpc validate` shows what fits; redeploy HpcStack so its definitions are sized "
    "for the cluster",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE": "the job needs more vCPUs than the environments' max vCPUs: "
    "submit fewer --nodes, or raise max_vcpus in the config and `cdk deploy HpcStack`",
    "MISCONFIGURATION:EC2_INSTANCE_CONFIGURATION_UNSUPPORTED": "the environment's instance types, AMI or launch "
    "template do not work together: check hpc.gpu.instance_types and hpc.gpu.ami, then `cdk deploy HpcStack`",
    "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS": "Batch's service role lacks a permission: `cdk deploy HpcStack` "
    "restores the role it defines",
}


def blocked_fix(reason: str) -> str | None:
    """Return the fix for a statusReason that means the job can never start as is (None otherwise)."""
    if not reason.startswith(MISCONFIGURATION):
        return None
    code = reason.split(" ", 1)[0].rstrip("-").strip()
    return BLOCKED_FIXES.get(
        code, "Batch reports a misconfiguration: read the reason, fix it, and submit again"
    )
