"""The workload contract: what a job needs and accepts, declared once.

Every workload package ``workloads/<name>/`` exposes ``SPEC: WorkloadSpec`` in its
``spec.py``. HpcStack turns specs into Batch job definitions, the CLI validates
``--set key=value`` against ``SPEC.args`` and the entrypoint parses its options from
the same model, so a new argument is declared in exactly one place. How arguments
travel (argv, SageMaker hyperparameters, environment, the image's entry point) is
:mod:`mlhpc.invocation`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlhpc.compat import StrEnum


class Backend(StrEnum):
    """Where a job can run."""

    LOCAL = "local"
    BATCH = "batch"
    SAGEMAKER = "sagemaker"
    EKS = "eks"


class Launcher(StrEnum):
    """How a workload's ranks start on a node."""

    TORCH = "torch"  # one process per rank: torchrun's variables (batch_launch, Ray actors, Indexed pods)
    MPI = "mpi"  # one process per node, which starts the ranks with mpirun (workloads.common.mpi_launch)


class WorkloadArgs(BaseModel):
    """Base class of a workload's arguments: frozen, no unknown keys, typed ranges.

    Each field becomes an option ``--field-name`` of the entrypoint and a key of
    ``--set field_name=value`` on the CLI. Give every field a default and a
    ``description``; put units in names (``timeout_s``, ``size_mib``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


ALL_GPUS = "all"


class Efa(StrEnum):
    """What a workload needs of the Elastic Fabric Adapter between its nodes."""

    NONE = "none"  # no inter-node traffic worth a fabric
    PREFERRED = "preferred"  # use EFA where the queue's nodes have it; NCCL falls back to TCP elsewhere
    REQUIRED = "required"  # only meaningful on EFA nodes: never placed on a queue without EFA


class Resources(BaseModel):
    """What one run needs of the cluster, independent of any instance type.

    The per-node ask is derived from these needs for the instance types of the queue a
    job goes to (:mod:`mlhpc.placement`): ``gpus_per_node="all"`` takes every GPU of
    the node Batch places it on (and then its vCPUs and memory less the agent's share);
    a number asks for that many GPUs and only what the per-GPU and per-node minimums add
    up to, so several such jobs can share one instance. A GPU job runs one rank per GPU;
    a CPU job runs one rank per node.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: int = Field(
        default=1, ge=1, le=256, description="Default nodes of a Batch multi-node job (1: single node)."
    )
    gpus_per_node: int | Literal["all"] = Field(
        default=0, description="GPUs (ranks) per node: a number (0: a CPU job), or 'all' of the node's."
    )
    vcpus_per_gpu: int = Field(default=0, ge=0, le=96, description="vCPUs each GPU's rank needs.")
    memory_per_gpu_mib: int = Field(default=0, ge=0, description="Host memory each GPU's rank needs (MiB).")
    min_vcpus_per_node: int = Field(default=1, ge=1, le=192, description="vCPUs a node needs at least.")
    min_memory_per_node_mib: int = Field(
        default=512, ge=512, description="Memory a node needs at least (MiB), whatever its GPUs."
    )
    shm_size_mib: int = Field(
        default=1024, ge=64, description="/dev/shm for the container (NCCL, dataloaders)."
    )
    efa: Efa = Field(default=Efa.NONE, description="none, preferred or required (multi-node NCCL traffic).")
    timeout_s: int = Field(default=4 * 3600, ge=60, description="Wall-clock limit of one attempt.")
    collective_timeout_s: int = Field(
        default=300,
        ge=10,
        le=24 * 3600,
        description="Longest one collective may wait for the other ranks (rank 0's solo work between "
        "collectives included) before the job fails naming the rank; MLHPC_COLLECTIVE_TIMEOUT_S overrides it.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Resources:
        if isinstance(self.gpus_per_node, int) and not 0 <= self.gpus_per_node <= 16:
            raise ValueError(
                f"gpus_per_node={self.gpus_per_node}: give 0 to 16, or 'all' (every GPU of the node)"
            )
        if self.efa is not Efa.NONE and not self.uses_gpus:
            raise ValueError(
                f"efa={self.efa.value} needs gpus_per_node >= 1 or 'all': EFA carries NCCL traffic between GPUs"
            )
        if not self.uses_gpus and (self.vcpus_per_gpu or self.memory_per_gpu_mib):
            raise ValueError(
                "vcpus_per_gpu/memory_per_gpu_mib on a CPU job (gpus_per_node=0): "
                "give min_vcpus_per_node/min_memory_per_node_mib instead"
            )
        return self

    @property
    def uses_gpus(self) -> bool:
        """Whether the job needs GPUs at all."""
        return self.gpus_per_node != 0

    @property
    def whole_node(self) -> bool:
        """Whether the job takes every GPU of its node (and so the node's vCPUs and memory)."""
        return self.gpus_per_node == ALL_GPUS

    def vcpus_for(self, gpus: int) -> int:
        """Return the vCPUs one node needs when it runs ``gpus`` GPUs."""
        return max(self.min_vcpus_per_node, self.vcpus_per_gpu * gpus)

    def memory_mib_for(self, gpus: int) -> int:
        """Return the memory (MiB) one node needs when it runs ``gpus`` GPUs."""
        return max(self.min_memory_per_node_mib, self.memory_per_gpu_mib * gpus)


class WorkloadSpec(BaseModel):
    """A workload's single source of truth: identity, arguments, resources, image, backends, outputs."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    description: str
    module: str = Field(description="Python module run as `python -m MODULE`.")
    args: type[WorkloadArgs]
    resources: Resources = Resources()
    image: str = Field(description="ECR repository name of the workload's container, e.g. 'mlhpc/pinn'.")
    backends: frozenset[Backend] = frozenset({Backend.LOCAL, Backend.BATCH})
    default_backend: Backend = Backend.BATCH
    distributed: bool = Field(default=False, description="Runs as several ranks through torch.distributed.")
    outputs: tuple[str, ...] = ("metrics.json",)
    input_arg: str | None = Field(
        default=None,
        description="The argument that takes the job's input (a path or s3:// URI): `mlhpc submit --input URI` "
        "sets it on Batch and EKS and mounts it as SageMaker's `training` channel.",
    )
    input_required: bool = Field(default=False, description="The job cannot run without an input.")
    launcher: Launcher = Field(
        default=Launcher.TORCH,
        description="torch: the runner starts each rank; mpi: it starts one process per node with the ranks "
        "per node as --nproc-per-node (`mlhpc run --workers N`: one node of N), which runs mpirun.",
    )
    mpi_when: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments that make a run an MPI one (e.g. {'backend': 'mpi'}): its ranks then start "
        "as launcher=mpi's do. Empty: always `launcher`.",
    )
    program_arg: str | None = Field(
        default=None,
        description="The argument that takes the words after `--` on the command line (`mlhpc run|submit "
        "WORKLOAD -- PROGRAM ...`), shell-quoted into one string: the user's own program.",
    )
    demo_args: dict[str, Any] = Field(default_factory=dict, description="Overrides for `make demo` size.")

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
        if self.input_arg is not None and self.input_arg not in self.args.model_fields:
            raise ValueError(f"input_arg {self.input_arg!r} is not an argument of {self.name}")
        unknown = [key for key in self.mpi_when if key not in self.args.model_fields]
        if unknown:
            raise ValueError(f"mpi_when names {unknown}, which are not arguments of {self.name}")
        if self.program_arg is not None and self.program_arg not in self.args.model_fields:
            raise ValueError(f"program_arg {self.program_arg!r} is not an argument of {self.name}")
        if self.input_required and self.input_arg is None:
            raise ValueError("input_required needs input_arg: the argument the input is given in")
        if self.default_backend not in self.backends:
            raise ValueError(
                f"default_backend {self.default_backend} is not in backends {sorted(self.backends)}"
            )
        self.args.model_validate(self.demo_args)
        return self

    def launcher_for(self, args: WorkloadArgs) -> Launcher:
        """Return how the ranks of a run with these arguments start (``launcher``, or MPI per ``mpi_when``)."""
        if self.mpi_when and all(getattr(args, key) == value for key, value in self.mpi_when.items()):
            return Launcher.MPI
        return self.launcher

    @property
    def multi_node(self) -> bool:
        """Whether Batch runs it as a multi-node parallel job."""
        return self.distributed and self.resources.nodes > 1

    def defaults(self) -> dict[str, Any]:
        """Return every argument's default value."""
        return self.args().model_dump(mode="json")

    def parse_sets(self, pairs: list[str] | tuple[str, ...]) -> WorkloadArgs:
        """Validate ``key=value`` strings (shorthand for :func:`mlhpc.invocation.from_pairs`)."""
        from mlhpc import invocation

        return invocation.from_pairs(self, pairs)

    def command(self, args: WorkloadArgs | None = None) -> list[str]:
        """Return the argv a container runs (shorthand for :func:`mlhpc.invocation.command`)."""
        from mlhpc import invocation

        return invocation.command(self, args)

    def validate_args(self, values: dict[str, Any]) -> WorkloadArgs:
        """Validate a mapping of argument values; raise SpecError naming each bad key, value and range."""
        try:
            return self.args.model_validate(values)
        except ValidationError as err:
            raise SpecError.from_validation(self, err) from None


class SpecError(ValueError):
    """Arguments that do not fit a workload's spec; the message names key, value, range and fix."""

    def __init__(self, message: str, *, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}"

    @classmethod
    def from_validation(cls, spec: WorkloadSpec, err: ValidationError) -> SpecError:
        """Describe every failed argument of a validation error in one message."""
        from mlhpc.errors import KEY_LIMIT, did_you_mean, echo, shorten

        known = sorted(spec.args.model_fields)
        lines, fixes = [], []
        for e in err.errors(include_url=False):
            key = ".".join(str(p) for p in e["loc"]) or "?"
            if e["type"] == "extra_forbidden":
                guess = did_you_mean(key, known)
                lines.append(
                    f"{spec.name} has no argument {echo(key, KEY_LIMIT)}"
                    + (f" (did you mean '{guess}'?)" if guess else "")
                )
                fixes.append(f"use one of: {', '.join(known)}")
                continue
            field = spec.args.model_fields.get(key)
            allowed = describe_range(field) if field is not None else ""
            msg = shorten(e["msg"].removeprefix("Value error, "))
            lines.append(f"{spec.name}: {key}={echo(e.get('input'))} is not valid: {msg}")
            fixes.append(f"give {key} {allowed}".strip() if allowed else f"correct {key}")
        return cls("\n".join(lines), fix="; ".join(dict.fromkeys(fixes)))


def describe_range(field: Any) -> str:
    """Return 'a value >= 1 and <= 10' (or similar) from a pydantic field's constraints."""
    parts = []
    for meta in getattr(field, "metadata", []):
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{symbol} {bound}")
    annotation = getattr(field, "annotation", None)
    choices = getattr(annotation, "__args__", None) if "Literal" in str(annotation) else None
    if choices:
        return "one of: " + ", ".join(map(str, choices))
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return "one of: " + ", ".join(m.value for m in annotation)
    return ("a value " + " and ".join(parts)) if parts else ""
