"""The allreduce workload's contract: its arguments, resources and backends, declared once."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mlhpc.spec import Backend, Efa, Resources, WorkloadArgs, WorkloadSpec
from workloads.allreduce.expectations import REFERENCES

Collective = Literal["all_reduce", "reduce_scatter", "all_gather", "broadcast"]
Variant = Literal[
    "plain", "fp16", "bf16", "no_overlap", "small_buckets", "large_buckets", "accumulate", "no_comm"
]

GIB = 1024**3


class Args(WorkloadArgs):
    """Options of a collective sweep (nccl-tests names in brackets) and of the training-scaling study."""

    mode: Literal["collective", "scaling", "both"] = Field(
        default="collective",
        description="collective: bandwidth sweep; scaling: DDP throughput at 1..n workers; both",
    )
    collective: Collective = Field(default="all_reduce", description="which collective to time")
    min_bytes: int = Field(default=8, ge=1, le=16 * GIB, description="smallest message in bytes [-b]")
    max_bytes: int = Field(default=2 * GIB, ge=1, le=16 * GIB, description="largest message in bytes [-e]")
    step_factor: int = Field(default=2, ge=2, le=1024, description="size multiplier between rows [-f]")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        default="float32", description="element type [-d]"
    )
    op: Literal["sum", "max", "min"] = Field(default="sum", description="reduction operation [-o]")
    places: Literal["both", "out_of_place", "in_place"] = Field(
        default="both", description="which buffer layouts to time (nccl-tests prints both)"
    )
    warmup_iters: int = Field(default=5, ge=0, le=10_000, description="untimed iterations per size [-w]")
    iters: int = Field(default=20, ge=1, le=100_000, description="timed iterations per size [-n]")
    blocking: bool = Field(
        default=False, description="wait for each collective before starting the next [-z]"
    )
    check: bool = Field(default=True, description="verify the reduced values, count #wrong [-c]")
    expect: str = Field(
        default="",
        description="compare with a published figure: " + ", ".join(sorted(REFERENCES)) + " ('' = none)",
    )
    expect_fraction: float = Field(
        default=0.8, gt=0, le=1, description="flag the cluster when busbw < this fraction of the reference"
    )
    backend: Literal["auto", "nccl", "gloo", "mpi"] = Field(
        default="auto", description="torch.distributed backend; auto: nccl on GPUs, gloo on CPUs"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: a GPU when present")
    threads: int | None = Field(
        default=None, ge=1, le=256, description="CPU threads per rank (default: torch's choice)"
    )
    # --- training-scaling study ---
    model: Literal["auto", "resnet50", "resnet_small"] = Field(
        default="auto", description="auto: resnet50 on GPUs, resnet_small (CPU-sized) on CPUs"
    )
    batch_per_worker: int = Field(
        default=0, ge=0, le=4096, description="samples per worker per step (0: model's)"
    )
    steps: int = Field(default=20, ge=1, le=100_000, description="timed training steps per measurement")
    warmup_steps: int = Field(default=3, ge=0, le=10_000, description="untimed steps before each measurement")
    variants: list[Variant] = Field(
        default=[
            "plain",
            "fp16",
            "bf16",
            "no_overlap",
            "small_buckets",
            "large_buckets",
            "accumulate",
            "no_comm",
        ],
        min_length=1,
        description="DDP variants: plain, fp16/bf16 (compression hooks), no_overlap, small/large_buckets, "
        "accumulate, no_comm (control: no gradient exchange)",
    )
    bucket_cap_mib: float = Field(
        default=25.0, gt=0, le=4096, description="DDP bucket size of the plain variant"
    )
    accumulate_steps: int = Field(
        default=4, ge=2, le=1024, description="micro-batches per all-reduce (accumulate)"
    )
    channels_last: bool = Field(default=True, description="NHWC memory format on GPUs (faster convolutions)")
    amp: bool = Field(default=True, description="bf16 autocast for the forward pass on GPUs")

    @model_validator(mode="after")
    def _consistent(self) -> Args:
        if self.min_bytes > self.max_bytes:
            raise ValueError(
                f"min_bytes={self.min_bytes} is larger than max_bytes={self.max_bytes}; "
                "give min_bytes <= max_bytes"
            )
        if self.expect and self.expect not in REFERENCES:
            raise ValueError(
                f"expect={self.expect!r} is not a published reference; use one of: {', '.join(sorted(REFERENCES))}"
            )
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants={self.variants} names a variant twice; list each once")
        return self


SPEC = WorkloadSpec(
    name="allreduce",
    description="Collective bandwidth sweep (nccl-tests conventions) and DDP training-scaling study.",
    module="workloads.allreduce",
    args=Args,
    # The job this workload exists for: 2 nodes, every GPU of each, talking NCCL over EFA. EFA is
    # required: the sweep measures the fabric and compares it with EFA references (--expect), so a
    # run over TCP sockets would only report a misleading number.
    resources=Resources(
        nodes=2,
        gpus_per_node="all",
        vcpus_per_gpu=2,  # one rank per GPU; the collectives run on the GPU and the NIC
        memory_per_gpu_mib=8_192,  # host staging of up to 2 GiB buffers (more without GPUDirect RDMA)
        min_memory_per_node_mib=16_384,
        shm_size_mib=16_384,
        efa=Efa.REQUIRED,
        timeout_s=3600,
    ),
    image="mlhpc/allreduce",
    backends=frozenset({Backend.LOCAL, Backend.BATCH}),
    default_backend=Backend.BATCH,
    distributed=True,
    outputs=("metrics.json", "allreduce.csv", "allreduce.png", "scaling.csv", "scaling.png"),
    demo_args={
        "min_bytes": 1024,
        "max_bytes": 4 * 1024 * 1024,
        "step_factor": 4,
        "iters": 10,
        "warmup_iters": 2,
    },
)
