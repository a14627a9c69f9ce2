"""Where a workload's Batch jobs go, and what each node asks there: pure functions, no AWS.

A spec says what a run needs (:class:`mlhpc.spec.Resources`); a queue's compute
environment offers instance types, a vCPU ceiling, Spot or On-Demand capacity and EFA or
not. :func:`route` picks the queue a workload goes to (HpcStack and ``mlhpc submit`` both
call it, so the stack sizes a job definition for the queue the CLI sends it to), and
:func:`size` turns the needs into a per-node ask that Batch can place, or a
:class:`Refusal` with a stable code, the numbers, and the instance types that would fit.

The rules Batch enforces, checked here before AWS does:

- one node's vCPUs, memory and GPUs must fit one instance of the environment, with the
  memory the ECS agent registers (less than installed: :func:`usable_memory_mib`);
- a multi-node job needs ``nodes`` instances at once, each counting its full vCPUs against
  the environment's ``maxvCpus``;
- no multi-node parallel job on an environment of Spot Instances (AWS Batch User Guide,
  "Compute environment considerations for MNP with AWS Batch",
  https://docs.aws.amazon.com/batch/latest/userguide/mnp-ce.html);
- a workload that requires EFA only on an environment whose nodes have it.

Which type a job is sized for: among the environment's types that can host one node, the
smallest (fewest GPUs, then vCPUs, then memory). A ``gpus_per_node="all"`` job then asks
for all of that type's GPUs and vCPUs and its usable memory, which any larger allowed type
also satisfies; with ``BEST_FIT_PROGRESSIVE`` Batch may place it on any allowed type that
fits, so the ask must be valid on the smallest one. Jobs asking for a number of GPUs (or
none) ask for exactly what their needs add up to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlhpc.config.hpc import HpcConfig
from mlhpc.contract import QueueKind
from mlhpc.errors import MlhpcError
from mlhpc.instances import INSTANCE_TYPES, InstanceType, lookup
from mlhpc.spec import Backend, Efa, WorkloadSpec

# The ECS agent registers the memory the kernel reports (MemTotal), which is less than the
# installed memory because of platform overhead and the kernel itself: the AWS Batch User
# Guide's example is an m4.large with 8 GiB (8192 MiB) installed that registers 7985 MiB, and
# the Batch AMI keeps a further 32 MiB back (ECS_RESERVED_MEMORY) for the agent and system
# processes. A job asking for the installed amount is never placed. Sources: "Compute resource
# memory management" and "Reserve system memory",
# https://docs.aws.amazon.com/batch/latest/userguide/memory-management.html and
# https://docs.aws.amazon.com/batch/latest/userguide/ecs-reserved-memory.html.
# AWS publishes no formula, and the kernel's share grows with the instance; mlhpc counts 5 % of
# the installed memory as the agent's share (the m4.large example loses 2.9 % with the
# reservation), which also leaves the system processes room beside a job that takes the node.
AGENT_MEMORY_SHARE = 0.05


def usable_memory_mib(instance: InstanceType) -> int:
    """Return the memory (MiB) a job may ask of one instance: installed less the agent's share."""
    return int(instance.memory_gib * 1024 * (1 - AGENT_MEMORY_SHARE))


@dataclass(frozen=True)
class Environment:
    """What one queue's compute environment offers, as placement sees it."""

    kind: QueueKind
    instance_types: tuple[str, ...]
    max_vcpus: int
    spot: bool
    efa: bool
    path: str  # the config section it comes from, for messages: "hpc.gpu" or "hpc.cpu"


def environments(hpc: HpcConfig) -> dict[QueueKind, Environment]:
    """Return the environment behind each queue HpcStack creates for this config."""
    envs: dict[QueueKind, Environment] = {}
    gpu = hpc.gpu
    if gpu.enabled:
        # The same rule as HpcStack's launch template: EFA interfaces only when hpc.gpu.efa is on
        # and a listed type has them.
        efa = gpu.efa and any((t := lookup(name)) is not None and t.efa for name in gpu.instance_types)
        for kind, enabled, spot in (
            (QueueKind.GPU, gpu.on_demand, False),
            (QueueKind.GPU_SPOT, gpu.spot, True),
        ):
            if enabled:
                envs[kind] = Environment(kind, gpu.instance_types, gpu.max_vcpus, spot, efa, "hpc.gpu")
    cpu = hpc.cpu
    envs[QueueKind.CPU] = Environment(
        QueueKind.CPU, cpu.instance_types, cpu.max_vcpus, cpu.spot, False, "hpc.cpu"
    )
    return envs


class NoRoute(MlhpcError):
    """The deployment has no queue the workload's Batch jobs may go to."""

    def __init__(self, message: str, *, code: str, fix: str, absent: bool) -> None:
        super().__init__(message, fix=fix)
        self.code = code
        self.absent = absent


def preferred_queues(spec: WorkloadSpec) -> tuple[QueueKind, ...]:
    """Return the queues a workload may go to, most preferred first.

    GPU workloads go to the GPU queues, On-Demand first; multi-node ones never to Spot. CPU
    workloads go to the CPU queue.
    """
    if not spec.resources.uses_gpus:
        return (QueueKind.CPU,)
    if spec.multi_node:
        return (QueueKind.GPU,)
    return (QueueKind.GPU, QueueKind.GPU_SPOT)


def route(spec: WorkloadSpec, available: Iterable[str]) -> QueueKind:
    """Return the queue a workload's Batch jobs go to, among the queues a deployment has.

    The one place the route is decided: HpcStack sizes the job definition for this queue
    and ``mlhpc submit`` sends the job there unless told otherwise. Raise :class:`NoRoute`
    when none fits.
    """
    if Backend.BATCH not in spec.backends:
        raise NoRoute(
            f"{spec.name} does not run on Batch", code="HPC016", absent=True,
            fix=f"use one of its backends: {', '.join(sorted(b.value for b in spec.backends))}",
        )  # fmt: skip
    have = {QueueKind(k) for k in available}
    for kind in preferred_queues(spec):
        if kind in have:
            return kind
    if spec.multi_node and QueueKind.GPU_SPOT in have:
        raise NoRoute(
            f"{spec.name} is a {spec.resources.nodes}-node job, but the only GPU queue uses Spot Instances: "
            "Batch does not run multi-node parallel jobs on Spot compute environments",
            code="HPC014", absent=False,
            fix="set hpc.gpu.on_demand: true (On-Demand or reserved capacity) for multi-node jobs",
        )  # fmt: skip
    if spec.resources.uses_gpus:
        raise NoRoute(
            f"{spec.name} needs GPUs and this cluster has no GPU queue (hpc.gpu.enabled is false)",
            code="HPC016", absent=True,
            fix="set hpc.gpu.enabled: true with GPU instance types (e.g. g5.12xlarge) to run it on Batch, "
            f"or run it elsewhere: `mlhpc run {spec.name}` or `mlhpc submit {spec.name} --backend sagemaker`",
        )  # fmt: skip
    raise NoRoute(
        f"{spec.name} needs a CPU queue and the deployment has none",
        code="HPC016", absent=True, fix="deploy HpcStack (it always has a CPU queue): `cdk deploy HpcStack`",
    )  # fmt: skip


def check_queue(spec: WorkloadSpec, kind: str, nodes: int) -> None:
    """Raise NoRoute when a queue chosen by hand can never start this run (multi-node on Spot)."""
    if nodes > 1 and QueueKind(kind) is QueueKind.GPU_SPOT:
        raise NoRoute(
            f"--queue {kind} with {nodes} nodes: Batch does not run multi-node parallel jobs on Spot "
            "compute environments, so the job would stay RUNNABLE forever",
            code="HPC014", absent=False,
            fix=f"use --queue {QueueKind.GPU.value} (On-Demand) for multi-node runs, or --nodes 1 on Spot",
        )  # fmt: skip


@dataclass(frozen=True)
class Sizing:
    """What each node of a workload's job asks on one queue, and where that can be placed."""

    workload: str
    queue: QueueKind
    instance_type: str  # the type it was sized for (the smallest that hosts one node)
    nodes: int
    gpus: int
    vcpus: int
    memory_mib: int
    efa: bool  # EFA devices attached (the queue's nodes have them and the workload uses them)
    fits_on: tuple[str, ...]  # the queue's types one node fits on

    @property
    def ranks_per_node(self) -> int:
        """Return the ranks each node runs: one per GPU, or one on a CPU node."""
        return self.gpus or 1

    @property
    def multi_node(self) -> bool:
        """Whether Batch runs it as a multi-node parallel job."""
        return self.nodes > 1


@dataclass(frozen=True)
class Refusal:
    """A workload Batch could never start on a queue: stable code, the numbers, and what would fit."""

    workload: str
    code: str
    message: str
    fix: str
    path: str  # the config key to change
    would_fit: tuple[str, ...] = ()
    absent: bool = False  # the cluster has no queue of the kind at all (nothing is emitted; not an error)


def _ask(spec: WorkloadSpec, instance: InstanceType) -> tuple[int, int, int] | None:
    """Return (GPUs, vCPUs, memory MiB) one node asks on this type, or None when it cannot host it."""
    res = spec.resources
    if res.uses_gpus and instance.gpus == 0:
        return None
    gpus = instance.gpus if res.whole_node else int(res.gpus_per_node)
    vcpus, memory = res.vcpus_for(gpus), res.memory_mib_for(gpus)
    usable = usable_memory_mib(instance)
    if gpus > instance.gpus or vcpus > instance.vcpus or memory > usable:
        return None
    if res.whole_node:
        return gpus, instance.vcpus, usable
    return gpus, vcpus, memory


def _order(instance: InstanceType) -> tuple[int, int, int, str]:
    return instance.gpus, instance.vcpus, instance.memory_gib, instance.name


def would_fit(spec: WorkloadSpec, *, efa: bool = False, nodes_within: int | None = None) -> tuple[str, ...]:
    """Return the known instance types one node of the workload fits on, smallest first."""
    res = spec.resources
    fits = [
        t
        for t in INSTANCE_TYPES.values()
        if _ask(spec, t) is not None
        and (res.uses_gpus or (t.gpus == 0 and not t.accelerator))
        and (t.efa or not efa)
        and (nodes_within is None or res.nodes * t.vcpus <= nodes_within)
    ]
    return tuple(t.name for t in sorted(fits, key=_order))


def describe_need(spec: WorkloadSpec) -> str:
    """Return one node's need in words: 'all GPUs of the node, >= 4 vCPUs and 8,192 MiB per GPU'."""
    res = spec.resources
    if not res.uses_gpus:
        return f"{res.min_vcpus_per_node} vCPUs and {res.min_memory_per_node_mib:,} MiB"
    gpus = "all GPUs of the node" if res.whole_node else f"{res.gpus_per_node} GPU(s)"
    per_gpu = (
        f", {res.vcpus_per_gpu} vCPUs and {res.memory_per_gpu_mib:,} MiB per GPU"
        if res.vcpus_per_gpu or res.memory_per_gpu_mib
        else ""
    )
    return f"{gpus}{per_gpu}, at least {res.min_vcpus_per_node} vCPUs and {res.min_memory_per_node_mib:,} MiB"


def offer(name: str) -> str:
    """Return what one instance of a type offers a job: vCPUs, usable memory, GPUs."""
    t = lookup(name)
    if t is None:
        return f"{name} (unknown)"
    gpus = f", {t.gpus} GPU" if t.gpus else ""
    return f"{name} ({t.vcpus} vCPU, {usable_memory_mib(t):,} MiB usable{gpus})"


def size(spec: WorkloadSpec, env: Environment) -> Sizing | Refusal:
    """Size one node of the workload's job for a queue's environment, or refuse with the reason."""
    res = spec.resources
    nodes = res.nodes if spec.multi_node else 1

    def refuse(code: str, what: str, fix: str, path: str, fit: tuple[str, ...] = ()) -> Refusal:
        return Refusal(spec.name, code, f"{spec.name} {what}", fix, path, fit)

    if spec.multi_node and env.spot:
        return refuse(
            "HPC014",
            f"is a {nodes}-node job, but the {env.kind.value} queue uses Spot Instances and Batch does not run "
            "multi-node parallel jobs on Spot compute environments",
            f"route it to an On-Demand queue (set {env.path}.on_demand: true)",
            f"{env.path}.spot",
        )
    if res.efa is Efa.REQUIRED and not env.efa:
        efa_fit = would_fit(spec, efa=True)
        return refuse(
            "HPC015",
            f"requires EFA, but the {env.kind.value} queue's nodes have none",
            f"set {env.path}.efa: true with an EFA instance type (e.g. {', '.join(efa_fit[:3])})",
            f"{env.path}.efa",
            efa_fit,
        )
    known = [t for name in env.instance_types if (t := lookup(name)) is not None]
    if not known:
        return refuse(
            "HPC017",
            f"cannot be sized: mlhpc knows none of the {env.kind.value} queue's instance types "
            f"({', '.join(env.instance_types)})",
            "add the type's facts to mlhpc/instances.py, or use a type it lists",
            f"{env.path}.instance_types",
            would_fit(spec),
        )
    hosts = sorted((t for t in known if _ask(spec, t) is not None), key=_order)
    if not hosts:
        offers = "; ".join(offer(t.name) for t in known)
        fit = would_fit(spec, efa=res.efa is Efa.REQUIRED)
        return refuse(
            "HPC012",
            f"needs per node {describe_need(spec)}, and no instance type of the {env.kind.value} queue "
            f"offers that after the agent's {AGENT_MEMORY_SHARE:.0%} memory share: {offers}",
            f"add a type that fits to {env.path}.instance_types (e.g. {', '.join(fit[:4]) or 'none known'})",
            f"{env.path}.instance_types",
            fit,
        )
    within = [t for t in hosts if nodes * t.vcpus <= env.max_vcpus]
    if not within:
        smallest = hosts[0]
        return refuse(
            "HPC013",
            f"needs {nodes} x {smallest.name} ({smallest.vcpus} vCPUs each) at once = {nodes * smallest.vcpus} "
            f"vCPUs, above the {env.kind.value} queue's max_vcpus {env.max_vcpus}",
            f"set {env.path}.max_vcpus to at least {nodes * smallest.vcpus}, or run fewer nodes",
            f"{env.path}.max_vcpus",
            tuple(t.name for t in hosts),
        )
    chosen = within[0]
    ask = _ask(spec, chosen)
    assert ask is not None
    gpus, vcpus, memory = ask
    fits_on = tuple(
        t.name for t in known if t.gpus >= gpus and t.vcpus >= vcpus and usable_memory_mib(t) >= memory
    )
    return Sizing(
        workload=spec.name,
        queue=env.kind,
        instance_type=chosen.name,
        nodes=nodes,
        gpus=gpus,
        vcpus=vcpus,
        memory_mib=memory,
        efa=env.efa and res.efa is not Efa.NONE,
        fits_on=fits_on,
    )


def place(spec: WorkloadSpec, envs: Mapping[QueueKind, Environment]) -> Sizing | Refusal:
    """Route the workload to a queue and size it there (what HpcStack and `mlhpc validate` do)."""
    try:
        kind = route(spec, envs)
    except NoRoute as err:
        return Refusal(
            workload=spec.name, code=err.code, message=err.message, fix=err.fix,
            path="hpc.gpu" if spec.resources.uses_gpus else "hpc.cpu", absent=err.absent,
        )  # fmt: skip
    return size(spec, envs[kind])
