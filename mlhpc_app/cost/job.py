"""What one job costs: nodes x the instance's price x a duration (the spec's limit before, the real run after).

Before a submit (`mlhpc submit ... --dry-run`) the duration is the most the job may run, its spec's
``timeout_s`` (Batch's attempt timeout; SageMaker's MaxRuntimeInSeconds), and the instance is the one
its request names (SageMaker) or the type HpcStack sized its job definition for (Batch, which may
place it on a larger type of the queue). After a run (`mlhpc results JOB`) the duration is the job's
own start and stop times and the instance the one ECS reports the job ran on (Batch) or the training
job's ResourceConfig (SageMaker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlhpc import placement, pricing
from mlhpc.config import load_config
from mlhpc.contract import QueueKind
from mlhpc.pricing import Price, PriceTable
from mlhpc.spec import Backend
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.aws.target import Target
from mlhpc_app.cost.money import usd

ON_DEMAND = "On-Demand"
SPOT = "Spot"


@dataclass(frozen=True)
class JobCost:
    """nodes x instance-hour price x hours, with where each number came from."""

    instance_type: str
    instance_basis: str  # "the request", "ECS: the instance it ran on", "sized for by HpcStack"
    nodes: int
    seconds: float
    duration_basis: str  # "the spec's timeout_s (the most it may run)", "from start to stop"
    market: str  # On-Demand or Spot
    price: Price | None
    region: str

    @property
    def usd(self) -> float | None:
        """Return the cost (at most, for Spot: On-Demand is Batch's default cap); None when unknown."""
        return None if self.price is None else self.nodes * self.price.usd * self.seconds / 3600

    def line(self) -> str:
        """Return the line `mlhpc submit --dry-run` and `mlhpc results` print."""
        hours = self.seconds / 3600
        rate = (
            f"{usd(self.price.usd, digits=3)}/h"
            if self.price
            else f"unknown (no {self._key} price for {self.region})"
        )
        total = usd(self.usd)
        if self.market == SPOT and self.usd is not None:
            total = f"at most {total} (Spot, capped at On-Demand)"
        return (
            f"cost: {self.nodes} x {self.instance_type} ({self.instance_basis}) x {hours:,.2f} h "
            f"({self.duration_basis}) at {rate} = {total}"
        )

    @property
    def _key(self) -> str:
        return self.price.key if self.price else _key(self.instance_type)

    def to_dict(self) -> dict[str, Any]:
        """Return the cost as JSON-ready data."""
        return {
            "instance_type": self.instance_type,
            "instance_basis": self.instance_basis,
            "nodes": self.nodes,
            "seconds": round(self.seconds, 1),
            "duration_basis": self.duration_basis,
            "market": self.market,
            "region": self.region,
            "instance_usd_per_hour": self.price.usd if self.price else None,
            "usd": None if self.usd is None else round(self.usd, 4),
            "known": self.usd is not None,
            "source": self.price.source if self.price else None,
        }


def _key(instance_type: str) -> str:
    return (
        pricing.sagemaker_hour(instance_type)
        if instance_type.startswith("ml.")
        else pricing.instance_hour(instance_type)
    )


def _cost(
    table: PriceTable, region: str, instance_type: str, *, instance_basis: str, nodes: int, seconds: float,
    duration_basis: str, market: str,
) -> JobCost:  # fmt: skip
    return JobCost(instance_type, instance_basis, nodes, seconds, duration_basis, market,
                   table.get(region, _key(instance_type)), region)  # fmt: skip


def _sizing(tgt: Target, workload: str, queue: str | None) -> tuple[str, str] | None:
    """Return (instance type, market) HpcStack sized the workload's job definition for on a queue."""
    from workloads import registry

    spec = registry.get(workload)
    envs = placement.environments(load_config(tgt.config_path).hpc)
    kind = QueueKind(queue) if queue else None
    result = placement.size(spec, envs[kind]) if kind in envs else placement.place(spec, envs)
    if not isinstance(result, placement.Sizing):
        return None
    return result.instance_type, SPOT if envs[result.queue].spot else ON_DEMAND


def for_dry_run(
    tgt: Target, backend: Backend, request: dict[str, Any], workload: str, queue: str | None, *,
    table: PriceTable | None = None,
) -> JobCost | None:  # fmt: skip
    """Return the most a prepared request can cost (its spec's limit), or None where mlhpc cannot tell."""
    from workloads import registry

    table = table or PriceTable.load()
    region = tgt.aws.region
    timeout = float(registry.get(workload).resources.timeout_s)
    limit = "the spec's timeout_s, the most it may run"
    if backend is Backend.SAGEMAKER:
        config = request.get("ResourceConfig") or {}
        seconds = float((request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", timeout))
        market = SPOT if request.get("EnableManagedSpotTraining") else ON_DEMAND
        return _cost(
            table, region, str(config.get("InstanceType")), instance_basis="the request",
            nodes=int(config.get("InstanceCount", 1)), seconds=seconds,
            duration_basis="MaxRuntimeInSeconds, the most it may run", market=market,
        )  # fmt: skip
    if backend is Backend.BATCH:
        sized = _sizing(tgt, workload, queue)
        if sized is None:
            return None
        nodes = int((request.get("nodeOverrides") or {}).get("numNodes", 1))
        return _cost(
            table, region, sized[0], instance_basis="the type its job definition is sized for", nodes=nodes,
            seconds=timeout, duration_basis=limit, market=sized[1],
        )  # fmt: skip
    return None  # EKS pods run on the node groups, whose cost `mlhpc cost` counts


def _ecs_instance_type(tgt: Target, job_id: str) -> str | None:
    """Return the instance type ECS reports for the container instance a Batch job's last attempt ran on."""
    from mlhpc_app.aws import batch

    raw = batch.describe_raw(tgt.aws, job_id) or {}
    attempts = raw.get("attempts") or []
    arn = str(((attempts[-1] if attempts else raw).get("container") or {}).get("containerInstanceArn", ""))
    if not arn.startswith("arn:"):
        return None
    cluster = arn.split(":container-instance/", 1)[-1].split("/", 1)[0]
    described = tgt.aws.client("ecs").describe_container_instances(cluster=cluster, containerInstances=[arn])
    for instance in described.get("containerInstances", []):
        for attribute in instance.get("attributes", []):
            if attribute.get("name") == "ecs.instance-type" and attribute.get("value"):
                return str(attribute["value"])
    return None


def for_job(tgt: Target, info: JobInfo, table: PriceTable | None = None) -> JobCost | None:
    """Return what a job cost from its real start and stop (so far, while it runs); None before it starts."""
    if info.started is None:
        return None
    table = table or PriceTable.load()
    end = info.stopped or datetime.now(UTC)
    seconds = max((end - info.started).total_seconds(), 0.0)
    duration = "from its start to its stop" if info.stopped else "since it started (still running)"
    region = tgt.aws.region
    if info.backend == Backend.SAGEMAKER.value:
        if not info.instance_type:
            return None
        return _cost(
            table, region, info.instance_type, instance_basis="its ResourceConfig", nodes=info.nodes,
            seconds=seconds, duration_basis=duration, market=ON_DEMAND,
        )  # fmt: skip
    if info.backend != Backend.BATCH.value:
        return None
    queue = next((k for k, arn in tgt.deployment.queues().items() if arn == info.queue), None)
    sized = _sizing(tgt, info.workload, queue) if info.workload else None
    ran_on = _ecs_instance_type(tgt, info.job_id.split("#")[0] if info.nodes == 1 else f"{info.job_id}#0")
    if ran_on is None and sized is None:
        return None
    market = sized[1] if sized else ON_DEMAND
    basis = (
        "ECS: the instance it ran on"
        if ran_on
        else "the type its job definition is sized for; ECS named none"
    )
    return _cost(
        table, region, ran_on or sized[0], instance_basis=basis, nodes=info.nodes,  # type: ignore[index]
        seconds=seconds, duration_basis=duration, market=market,
    )  # fmt: skip
