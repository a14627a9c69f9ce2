"""The hpc domain: the Batch cluster's GPU and CPU compute, and the HPC rules.

Rules that need another section live here when the thing being checked is the cluster: HPC006 reads
``network.az_count`` (the GPU nodes' zone indexes), HPC010 suggests ``storage.fsx`` for EFA training.
HPC012-HPC017 check every workload's Batch job against the cluster; they need the workload specs, so
:func:`workload_placement` is not in the registry; its caller passes the specs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field

from mlhpc.config.common import ECS_GPU_AMI_PARAMETER, RetentionDays, Section
from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.instances import efa_types, lookup

if TYPE_CHECKING:
    from mlhpc.config.model import Config
    from mlhpc.placement import Refusal
    from mlhpc.spec import WorkloadSpec


class CapacityKind(StrEnum):
    """How On-Demand capacity is reserved."""

    RESERVATION = "reservation"
    CAPACITY_BLOCK = "capacity_block"


class CapacityConfig(Section):
    """An On-Demand Capacity Reservation or a Capacity Block for ML the GPU nodes launch into."""

    kind: CapacityKind
    id: str = Field(pattern=r"^cr-[0-9a-f]{8,17}$", description="The reservation id, cr-...")


class AmiConfig(Section):
    """The machine image of the GPU nodes: an id, or an SSM parameter holding one."""

    image_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    ssm_parameter: str = Field(default=ECS_GPU_AMI_PARAMETER, pattern=r"^/[\w./-]+$")


class GpuComputeConfig(Section):
    """The GPU compute environments (On-Demand and Spot) for distributed training."""

    enabled: bool = Field(
        default=True, description="false: a CPU-only cluster (no GPU environments or queues)."
    )
    instance_types: tuple[str, ...] = Field(default=("g5.12xlarge",), min_length=1)
    efa: bool = True
    zone_indexes: tuple[int, ...] = Field(
        default=(0,), min_length=1, description="Private subnets (by zone index) the GPU nodes may use."
    )
    placement_group: bool = True
    min_vcpus: int = Field(default=0, ge=0)
    max_vcpus: int = Field(default=96, ge=1)
    on_demand: bool = True
    spot: bool = True
    capacity: CapacityConfig | None = None
    root_volume_gib: int = Field(default=200, ge=30, le=16384)
    hugepages_2mib: int = Field(default=5128, ge=0, le=1_000_000, description="2 MiB huge pages for EFA.")
    ami: AmiConfig = AmiConfig()


class CpuComputeConfig(Section):
    """The CPU compute environment for light jobs (sweeps, preprocessing)."""

    instance_types: tuple[str, ...] = Field(default=("c6i.large", "c6i.xlarge", "c6i.2xlarge", "m6i.xlarge"))
    min_vcpus: int = Field(default=0, ge=0)
    max_vcpus: int = Field(default=64, ge=1)
    spot: bool = True


class HpcConfig(Section):
    """HpcStack: the Batch cluster, its queues, job definitions, images and alarms."""

    gpu: GpuComputeConfig = GpuComputeConfig()
    cpu: CpuComputeConfig = CpuComputeConfig()
    job_log_retention_days: RetentionDays = 30
    retry_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per job; only host/Spot loss retries."
    )
    blocked_job_timeout_s: int = Field(
        default=3600,
        ge=600,
        le=86400,
        description="Seconds a RUNNABLE job may block the head of a queue for a reason Batch can remedy "
        "(no capacity, or a job that no environment can hold) before the queue cancels it "
        "(jobStateTimeLimitActions: 600 to 86,400).",
    )
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    image_tag: str = Field(
        default="0.1.0",
        pattern=r"^[\w][\w.-]{0,127}$",
        description="Image tag the job definitions run (ECR tags are immutable).",
    )


# --- rules ------------------------------------------------------------------------------------


def gpu_instance_types(config: Config) -> Iterator[ConfigIssue]:
    """HPC001/HPC005/HPC008: GPU types must be GPU types, with EFA when EFA is on."""
    gpu = config.hpc.gpu
    if not gpu.enabled:
        return
    for index, name in enumerate(gpu.instance_types):
        path = f"hpc.gpu.instance_types[{index}]"
        facts = lookup(name)
        if facts is None:
            yield ConfigIssue(
                code="HPC005",
                level=Level.WARNING,
                path=path,
                value=name,
                message=f"mlhpc does not know {name}, so it cannot check GPUs or EFA offline",
                fix="check it with `mlhpc validate FILE --online`, or use a type from mlhpc/instances.py",
            )
            continue
        if facts.gpus == 0 and facts.accelerator != "neuron":
            yield ConfigIssue(
                code="HPC008",
                path=path,
                value=name,
                message=f"{name} has no GPU, but it is listed for the GPU compute environment",
                fix="move it to hpc.cpu.instance_types, or choose a GPU type such as g5.12xlarge or p5.48xlarge",
            )
        elif gpu.efa and not facts.efa:
            suggestions = (
                ", ".join(
                    t
                    for t in efa_types()
                    if (lookup(t) or facts).gpu == facts.gpu and (lookup(t) or facts).gpus > 0
                )
                or "p4d.24xlarge, p5.48xlarge"
            )
            yield ConfigIssue(
                code="HPC001",
                path=path,
                value=name,
                message=f"{name} does not support EFA, but hpc.gpu.efa is true",
                fix=f"choose an EFA type ({suggestions}), or set hpc.gpu.efa: false",
            )


def efa_counts_agree(config: Config) -> Iterator[ConfigIssue]:
    """HPC011: one launch template attaches a fixed number of EFA interfaces, so the types must agree."""
    gpu = config.hpc.gpu
    if not gpu.enabled or not gpu.efa:
        return
    counts = {
        t: facts.efa_interfaces for t in gpu.instance_types if (facts := lookup(t)) is not None and facts.efa
    }
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{t} {n}" for t, n in counts.items())
        largest = max(counts, key=lambda t: counts[t])
        same = sorted(
            (t for t in efa_types() if (f := lookup(t)) is not None and f.efa_interfaces == counts[largest]),
            key=lambda t: -difflib.SequenceMatcher(None, t, largest).ratio(),
        )
        yield ConfigIssue(
            code="HPC011",
            path="hpc.gpu.instance_types",
            value=list(gpu.instance_types),
            message="one launch template serves the GPU environment, but these types have different EFA "
            f"interface counts: {listed}",
            fix=f"list types with the same count (e.g. only {' and '.join(same[:2])}), or set hpc.gpu.efa: false",
        )


def gpu_zones(config: Config) -> Iterator[ConfigIssue]:
    """HPC002/HPC006: zone indexes exist; EFA and cluster placement groups stay in one zone."""
    gpu, net = config.hpc.gpu, config.network
    for index, zone in enumerate(gpu.zone_indexes):
        if not 0 <= zone < net.az_count:
            yield ConfigIssue(
                code="HPC006",
                path=f"hpc.gpu.zone_indexes[{index}]",
                value=zone,
                message=f"zone index {zone} does not exist: the VPC has {net.az_count} zones (0-{net.az_count - 1})",
                fix=f"use an index from 0 to {net.az_count - 1}",
            )
    if len(set(gpu.zone_indexes)) > 1 and (gpu.efa or gpu.placement_group):
        why = (
            "EFA traffic cannot cross Availability Zones"
            if gpu.efa
            else "a cluster placement group is one zone"
        )
        yield ConfigIssue(
            code="HPC002",
            path="hpc.gpu.zone_indexes",
            value=list(gpu.zone_indexes),
            message=f"GPU compute spans {len(set(gpu.zone_indexes))} zones, but {why}",
            fix=f"keep one zone (e.g. zone_indexes: [{gpu.zone_indexes[0]}]), or set efa: false and "
            "placement_group: false for independent single-node jobs",
        )


def capacity_conflicts(config: Config) -> Iterator[ConfigIssue]:
    """HPC003/HPC004: a Capacity Block cannot take a placement group or Spot."""
    gpu = config.hpc.gpu
    if gpu.capacity is None or gpu.capacity.kind is not CapacityKind.CAPACITY_BLOCK:
        return
    if gpu.placement_group:
        yield ConfigIssue(
            code="HPC003",
            path="hpc.gpu.placement_group",
            value=True,
            message="a Capacity Block is already placed in an UltraCluster; launches with a placement group fail",
            fix="set hpc.gpu.placement_group: false while hpc.gpu.capacity is a capacity_block",
        )
    if gpu.spot:
        yield ConfigIssue(
            code="HPC004",
            path="hpc.gpu.spot",
            value=True,
            message="a Capacity Block is reserved On-Demand capacity; a Spot environment cannot use it",
            fix="set hpc.gpu.spot: false while hpc.gpu.capacity is a capacity_block",
        )


def vcpu_limits(config: Config) -> Iterator[ConfigIssue]:
    """HPC007: max_vcpus must fit at least one instance of the largest type, and exceed min_vcpus."""
    for section, compute in (("gpu", config.hpc.gpu), ("cpu", config.hpc.cpu)):
        known = [lookup(t) for t in compute.instance_types]
        largest = max((t.vcpus for t in known if t is not None), default=0)
        if largest and compute.max_vcpus < largest:
            yield ConfigIssue(
                code="HPC007",
                path=f"hpc.{section}.max_vcpus",
                value=compute.max_vcpus,
                message=f"max_vcpus {compute.max_vcpus} cannot fit one {largest}-vCPU instance, so Batch never scales",
                fix=f"set hpc.{section}.max_vcpus to at least {largest} (a multiple of it for several nodes)",
            )
        if compute.min_vcpus > compute.max_vcpus:
            yield ConfigIssue(
                code="HPC007",
                path=f"hpc.{section}.min_vcpus",
                value=compute.min_vcpus,
                message=f"min_vcpus {compute.min_vcpus} is above max_vcpus {compute.max_vcpus}",
                fix="set min_vcpus to 0 (an idle cluster then costs nothing) or raise max_vcpus",
            )
    if config.hpc.gpu.enabled and not config.hpc.gpu.on_demand and not config.hpc.gpu.spot:
        yield ConfigIssue(
            code="HPC009",
            path="hpc.gpu",
            message="neither on_demand nor spot is enabled, so there is no GPU queue",
            fix="set hpc.gpu.on_demand: true (or spot: true), or hpc.gpu.enabled: false for a CPU-only cluster",
        )
    if config.hpc.gpu.enabled and config.hpc.gpu.efa and not config.storage.fsx.enabled:
        yield ConfigIssue(
            code="HPC010",
            level=Level.INFO,
            path="storage.fsx.enabled",
            value=False,
            message="EFA training without FSx for Lustre reads data from S3 or EFS, which is usually the bottleneck",
            fix="set storage.fsx.enabled: true for multi-node training",
        )


# --- workloads on the cluster -----------------------------------------------------------------
# These rules need the workload specs as well as the config, so they are not in RULES (which every
# load of a config runs, and which must not import every workload): `mlhpc validate`, `app.py`
# and HpcStack call them.


def placement_issue(refusal: Refusal) -> ConfigIssue:
    """Return the config issue of a workload Batch could never start (HPC012-HPC017).

    HPC016 (the cluster has no queue of the kind the workload needs, e.g. a GPU workload on
    a CPU-only cluster) is an INFO: HpcStack emits no job definition for it. The others are
    errors: the workload has a queue but could never start there, so synthesis stops.
    """
    fit = f" Instance types that would fit: {', '.join(refusal.would_fit[:8])}." if refusal.would_fit else ""
    return ConfigIssue(
        code=refusal.code,
        level=Level.INFO if refusal.absent else Level.ERROR,
        path=refusal.path,
        message=refusal.message
        + ("; no Batch job definition is made for it" if refusal.absent else "")
        + ("" if refusal.absent else "." + fit),
        fix=refusal.fix,
    )


def workload_placement(config: Config, specs: Mapping[str, WorkloadSpec]) -> list[ConfigIssue]:
    """HPC012-HPC017: every workload's Batch job fits the queue it is routed to (mlhpc.placement).

    The caller passes the specs (``workloads.registry.all_specs()``): the foundation never imports the
    workloads that sit above it.
    """
    from mlhpc import placement

    envs = placement.environments(config.hpc)
    issues = []
    for spec in specs.values():
        result = placement.place(spec, envs)
        if isinstance(result, placement.Refusal):
            issues.append(placement_issue(result))
    return issues
