"""The hello workload's spec: a sum of 1..n split over ranks, small enough for any machine."""

from __future__ import annotations

from pydantic import Field

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec


class HelloArgs(WorkloadArgs):
    """Sum the integers 1..n in chunks, each rank taking every world_size-th number."""

    n: int = Field(default=10_000, ge=1, le=10**9, description="Sum the integers 1..n.")
    chunk: int = Field(
        default=1_000, ge=1, le=10**8, description="Numbers per chunk; a checkpoint after each."
    )
    stop_after_chunks: int = Field(
        default=0,
        ge=0,
        description="Stop (as on SIGTERM) after this many chunks; 0: never. For resume tests.",
    )


SPEC = WorkloadSpec(
    name="hello",
    description="Sums 1..n over the ranks with torch.distributed and checkpoints per chunk (the CLI's test job).",
    module="workloads.hello",
    args=HelloArgs,
    resources=Resources(nodes=1, min_vcpus_per_node=1, min_memory_per_node_mib=512, timeout_s=600),
    image="mlhpc/hello",
    backends=frozenset({Backend.LOCAL, Backend.BATCH, Backend.SAGEMAKER, Backend.EKS}),
    default_backend=Backend.BATCH,
    distributed=True,
    outputs=("metrics.json",),
    demo_args={"n": 100_000, "chunk": 10_000},
)
