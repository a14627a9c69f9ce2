"""The PINN workload's contract: its arguments, resources and backends."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from mlhpc.spec import Backend, Efa, Resources, WorkloadArgs, WorkloadSpec
from workloads.pinn import problems


class Args(WorkloadArgs):
    """Options of a PINN run. Options left unset take the problem's own default (README lists them)."""

    problem: str = Field(default="burgers", description="Problem to solve (see the README for the list).")
    width: int | None = Field(default=None, ge=1, le=1024, description="Neurons per hidden layer.")
    depth: int | None = Field(default=None, ge=1, le=32, description="Hidden layers.")
    points: int | None = Field(
        default=None, ge=1, le=50_000_000, description="Collocation points in total (shared among ranks)."
    )
    adam_steps: int | None = Field(default=None, ge=0, le=10_000_000, description="Adam steps.")
    lbfgs_steps: int | None = Field(
        default=None, ge=0, le=10_000_000, description="L-BFGS iterations after Adam."
    )
    lr: float | None = Field(default=None, gt=0, le=1, description="Adam's initial learning rate.")
    lr_decay: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Factor the learning rate shrinks by over the Adam phase (exponential).",
    )
    precision: Literal["float32", "float64", "mixed"] = Field(
        default="mixed",
        description="Float type; mixed = Adam in float32, L-BFGS in float64 (it stalls in float32).",
    )
    rar_every: int | None = Field(
        default=None, ge=0, le=10_000_000, description="Steps between adaptive refinements (0: off)."
    )
    rar_points: int = Field(default=100, ge=1, le=1_000_000, description="Points added by each refinement.")
    rar_candidates: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Random candidates a refinement picks its points from.",
    )
    rar_lbfgs: bool = Field(
        default=True,
        description="Keep refining during L-BFGS (restarting its history) rather than in the Adam phase only.",
    )
    noise_std: float | None = Field(default=None, ge=0, le=1, description="Noise added to observations.")
    observations: int | None = Field(
        default=None, ge=2, le=1_000_000, description="Observed points (problems that fit data)."
    )
    checkpoint_every: int = Field(default=500, ge=1, le=10_000_000, description="Steps between checkpoints.")
    eval_every: int = Field(default=100, ge=1, le=10_000_000, description="Steps between error evaluations.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of weights, points and noise.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: a GPU when present.")
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="CPU threads per rank (default: torch's choice; 1 suits small nets).",
    )
    progress: bool = Field(default=True, description="Show a progress bar on the main rank.")

    @field_validator("problem")
    @classmethod
    def _known_problem(cls, value: str) -> str:
        problems.get(value)  # raises UnknownProblemError (a ValueError) listing the known problems
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Args:
        if self.rar_points > self.rar_candidates:
            raise ValueError(
                f"rar_points={self.rar_points} is more than rar_candidates={self.rar_candidates}; "
                "a refinement picks its points among the candidates"
            )
        defaults = problems.get(self.problem).defaults
        adam = defaults.adam_steps if self.adam_steps is None else self.adam_steps
        lbfgs = defaults.lbfgs_steps if self.lbfgs_steps is None else self.lbfgs_steps
        if adam + lbfgs == 0:
            raise ValueError(
                "adam_steps and lbfgs_steps are both 0: nothing to train; give either a positive value"
            )
        return self


SPEC = WorkloadSpec(
    name="pinn",
    description="Physics-informed neural networks (oscillator, Burgers, Poisson), distributed and resumable.",
    module="workloads.pinn",
    args=Args,
    # A multi-node GPU job: 2 nodes, every GPU of each (one rank per GPU), sized per queue by
    # mlhpc.placement (4 x A10G on the default g5.12xlarge, 8 x H100 on p5.48xlarge). EFA is
    # preferred, not required: the network is small (width <= 1024, depth <= 32, the defaults far
    # smaller), so a step's gradient all-reduce is at most a few MB and NCCL over TCP sockets still
    # keeps the GPUs busy where a queue's nodes have no EFA.
    resources=Resources(
        nodes=2,
        gpus_per_node="all",
        vcpus_per_gpu=4,  # the rank's Python thread plus torch's intra-op threads; no data loaders
        memory_per_gpu_mib=8_192,  # collocation points and checkpoints live on the GPU; host memory is small
        min_memory_per_node_mib=16_384,  # room for the 16 GiB /dev/shm NCCL and torch may fill
        shm_size_mib=16_384,
        efa=Efa.PREFERRED,
        timeout_s=4 * 3600,
    ),
    image="mlhpc/pinn",
    backends=frozenset({Backend.LOCAL, Backend.BATCH, Backend.SAGEMAKER}),
    default_backend=Backend.BATCH,
    distributed=True,
    outputs=("metrics.json", "prediction.npz", "prediction.png"),
    demo_args={"problem": "oscillator", "adam_steps": 300, "lbfgs_steps": 700, "threads": 1},
)
