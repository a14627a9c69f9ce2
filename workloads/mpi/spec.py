"""The mpi workload's contract: the user's program, started by mpirun over the job's nodes."""

from __future__ import annotations

from pydantic import Field

from mlhpc.spec import Backend, Efa, Launcher, Resources, WorkloadArgs, WorkloadSpec

MAX_PROGRAM_CHARS = 8192  # a command line, not a script: ship scripts on /efs or in the image


class MpiArgs(WorkloadArgs):
    """An MPI program of your own: every rank runs it, mpirun starts them over the job's nodes."""

    program: str = Field(
        default="",
        max_length=MAX_PROGRAM_CHARS,
        description="The program every rank runs, shell-quoted (on the CLI: the words after --).",
    )
    slots_per_node: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="Ranks per node; 0: one per GPU (the job definition's --nproc-per-node), else one per core.",
    )


SPEC = WorkloadSpec(
    name="mpi",
    description="Your own MPI program on every GPU of N nodes: hostfile, per-job SSH and mpirun, as "
    "`mpiexec -n 32 -N 8 python train.py` on the seeds' cluster.",
    module="workloads.mpi",
    args=MpiArgs,
    # Two nodes, every GPU of each (one rank per GPU, as `mpiexec -N 8` on 8-GPU nodes), EFA when the
    # queue's nodes have it: the program is the user's, so it is sized like the other GPU jobs.
    resources=Resources(
        nodes=2,
        gpus_per_node="all",
        vcpus_per_gpu=4,
        memory_per_gpu_mib=8_192,
        min_memory_per_node_mib=16_384,
        shm_size_mib=16_384,
        efa=Efa.PREFERRED,
        timeout_s=12 * 3600,
    ),
    image="mlhpc/mpi",
    backends=frozenset({Backend.LOCAL, Backend.BATCH}),
    default_backend=Backend.BATCH,
    distributed=True,
    launcher=Launcher.MPI,
    program_arg="program",
    outputs=("metrics.json",),
    demo_args={"program": "python -m workloads.mpi.demo"},
)
