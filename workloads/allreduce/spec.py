"""The allreduce workload's contract: its arguments, resources and backends, declared once."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from mlhpc.spec import Backend, Efa, Resources, WorkloadArgs, WorkloadSpec
from workloads.allreduce.expectations import REFERENCES

Collective = Literal["all_reduce", "reduce_scatter", "all_gather", "broadcast"]
Variant = Literal[
    "plain", "fp16", "bf16", "no_overlap", "small_buckets", "large_buckets", "accumulate", "no_comm"
]

Mode = Literal["collective", "scaling", "both", "nccl-tests"]

GIB = 1024**3

# What each mode writes in --out (the entrypoint adds metrics.json); the spec declares the default mode's.
METRICS = "metrics.json"
SWEEP_CSV, SWEEP_PNG = "allreduce.csv", "allreduce.png"
SCALING_CSV, SCALING_PNG = "scaling.csv", "scaling.png"
OUTPUTS: dict[str, tuple[str, ...]] = {
    "collective": (METRICS, SWEEP_CSV, SWEEP_PNG),
    "nccl-tests": (METRICS, SWEEP_CSV, SWEEP_PNG),
    "scaling": (METRICS, SCALING_CSV, SCALING_PNG),
    "both": (METRICS, SWEEP_CSV, SWEEP_PNG, SCALING_CSV, SCALING_PNG),
}

# Element types MPI can carry for the sweep. MPI (4.1 included) defines no bfloat16 datatype, and
# numpy has no bfloat16 array type to hand to mpi4py either.
MPI_DTYPES = ("float32", "float16")


def no_mpi_dtype(dtype: str) -> str:
    """Return the refusal of a dtype the MPI backend cannot carry, naming what would work."""
    return (
        f"dtype={dtype} has no MPI datatype (MPI defines none for bfloat16, and mpi4py's numpy buffers "
        f"have no bfloat16 either); with backend=mpi use dtype {' or '.join(MPI_DTYPES)}, or keep "
        f"dtype={dtype} with backend gloo (CPUs) or nccl (GPUs)"
    )


class Args(WorkloadArgs):
    """Options of a collective sweep (nccl-tests names in brackets) and of the training-scaling study."""

    mode: Mode = Field(
        default="collective",
        description="collective: bandwidth sweep; scaling: DDP throughput at 1..n workers; both; "
        "nccl-tests: the same sweep by the image's nccl-tests binaries (<collective>_perf) under mpirun",
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
        default="auto",
        description="auto: nccl on GPUs, gloo on CPUs (torch.distributed); mpi: mpi4py on host (numpy) "
        "buffers, ranks started by mpirun",
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

    @field_validator("backend")
    @classmethod
    def _backend_fits(cls, backend: str, info: ValidationInfo) -> str:
        mode, dtype = info.data.get("mode"), info.data.get("dtype")
        if backend == "mpi" and mode in ("scaling", "both"):
            raise ValueError(
                f"mode={mode} trains with torch DDP, which needs a torch.distributed backend; backend=mpi "
                "(mpi4py) runs the collective sweep only: use mode=collective with backend=mpi, or "
                "backend gloo/nccl for the scaling study"
            )
        if backend in ("gloo", "mpi") and mode == "nccl-tests":
            raise ValueError(
                f"mode=nccl-tests runs NVIDIA's nccl-tests binaries, which always use NCCL; backend={backend} "
                "does not apply: leave backend auto (or nccl), or use mode=collective to sweep with "
                f"{backend}"
            )
        if backend == "mpi" and dtype is not None and dtype not in MPI_DTYPES:
            raise ValueError(no_mpi_dtype(dtype))
        return backend

    @field_validator("device")
    @classmethod
    def _device_fits(cls, device: str, info: ValidationInfo) -> str:
        if device == "cuda" and info.data.get("backend") == "mpi":
            raise ValueError(
                "backend=mpi times host memory (numpy buffers, no GPU); use device cpu (or auto) with "
                "backend=mpi, or backend=nccl for GPUs"
            )
        return device

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
    # backend=mpi and the nccl-tests binaries are MPI programs: mpirun starts their ranks, not torchrun
    mpi_when={"backend": "mpi"},
    outputs=OUTPUTS[Args.model_fields["mode"].default],
    demo_args={
        "min_bytes": 1024,
        "max_bytes": 4 * 1024 * 1024,
        "step_factor": 4,
        "iters": 10,
        "warmup_iters": 2,
    },
)
