"""A tiny distributed workload for fail-fast tests: gloo all-reduces in a loop, one rank may fault on purpose.

``--fault kill`` has rank ``--fault-rank`` send itself SIGKILL at step ``--fault-step``, ``--fault stop``
SIGSTOP (frozen: alive, never answering its collectives). The signal is real and the process is the
rank itself, exactly what an OOM kill or a hung driver leaves behind; nothing in the workload's own
code path then knows of it, so what ends the job is the launcher and the collective timeout.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Literal

from pydantic import Field

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec
from workloads.common import dist
from workloads.common.checkpoint import Preempted
from workloads.common.entry import RunContext, run


class RingArgs(WorkloadArgs):
    """All-reduce a one every step; a rank may fault on purpose."""

    steps: int = Field(default=10, ge=1, description="All-reduces to run.")
    pause_s: float = Field(default=0.01, ge=0, description="Sleep between steps.")
    fault: Literal["none", "kill", "stop"] = Field(default="none", description="What the faulty rank does.")
    fault_rank: int = Field(default=1, ge=0, description="The rank that faults.")
    fault_step: int = Field(default=3, ge=1, description="The step it faults at.")


SPEC = WorkloadSpec(
    name="ring",
    description="All-reduces in a loop; the fail-fast tests' workload.",
    module="tests.workloads.common.ring",
    args=RingArgs,
    resources=Resources(min_vcpus_per_node=1, min_memory_per_node_mib=512, timeout_s=600),
    image="mlhpc/ring",
    backends=frozenset({Backend.LOCAL, Backend.BATCH}),
    distributed=True,
)

SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}


def job(args: RingArgs, ctx: RunContext) -> dict[str, Any]:
    """Sum a one over every rank `steps` times; return the total (steps * world_size when all is well)."""
    import torch
    import torch.distributed as tdist

    rdzv = ctx.rendezvous
    dist.init_process_group(rdzv, backend="gloo", timeout_s=ctx.collective_timeout_s)
    total = 0
    for step in range(1, args.steps + 1):
        if args.fault != "none" and rdzv.rank == args.fault_rank and step == args.fault_step:
            print(
                f"ring: rank {rdzv.rank} sends itself {SIGNALS[args.fault].name} at step {step}", flush=True
            )
            os.kill(os.getpid(), SIGNALS[args.fault])
        if ctx.stop.requested:
            raise Preempted(saved=False)  # nothing to resume from: the retry starts over
        tensor = torch.ones(1, dtype=torch.int64)
        tdist.all_reduce(tensor)
        total += int(tensor.item())
        time.sleep(args.pause_s)
    ctx.log(f"ring: {args.steps} all-reduces over {rdzv.world_size} ranks, total {total}")
    return {"total": total, "steps": args.steps}


def main(argv: list[str] | None = None) -> int:
    """Run the ring workload."""
    return run(SPEC, job, argv)


if __name__ == "__main__":
    raise SystemExit(main())
