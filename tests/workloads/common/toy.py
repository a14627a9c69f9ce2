"""A tiny workload used to test the shared runtime end to end (and the CLI's local runner)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec
from workloads.common.checkpoint import Preempted
from workloads.common.entry import RunContext, WorkloadError, run


class ToyArgs(WorkloadArgs):
    """Count to `steps`, checkpointing every `every` steps."""

    steps: int = Field(default=5, ge=1, le=1000, description="How far to count.")
    every: int = Field(default=2, ge=1, description="Checkpoint interval in steps.")
    stop_at: int = Field(
        default=0, ge=0, description="Ask to stop (as SIGTERM would) at this step; 0: never."
    )
    mode: Literal["sum", "fail", "usage"] = Field(default="sum", description="What the job does.")
    weights: list[float] = Field(default_factory=lambda: [1.0], description="Values summed each step.")


SPEC = WorkloadSpec(
    name="toy",
    description="Counts steps; the shared runtime's test workload.",
    module="tests.workloads.common.toy",
    args=ToyArgs,
    resources=Resources(nodes=1, min_vcpus_per_node=1, min_memory_per_node_mib=512),
    image="mlhpc/toy",
    backends=frozenset({Backend.LOCAL, Backend.BATCH, Backend.SAGEMAKER}),
    distributed=True,
    demo_args={"steps": 3},
)


def job(args: ToyArgs, ctx: RunContext) -> dict[str, Any]:
    """Count, checkpoint, obey stop requests; return what happened."""
    if args.mode == "usage":
        raise WorkloadError(f"mode=usage always refuses; got steps={args.steps}")
    if args.mode == "fail":
        raise RuntimeError("boom")
    ckpt = ctx.checkpointer({"workload": "toy", "weights": list(args.weights)})
    start, total = 0, 0.0
    loaded = ckpt.load() if ctx.resume else None
    if loaded is not None:
        start, state = loaded
        total = float(state["total"])
    for step in range(start + 1, args.steps + 1):
        total += sum(args.weights)
        if step % args.every == 0 and ctx.is_main:
            ckpt.save({"total": total}, step=step)
        if args.stop_at and step == args.stop_at:
            ctx.stop.request("test")
        if ctx.stop.requested:
            ckpt.save({"total": total}, step=step)
            raise Preempted()
    return {"total": total, "resumed_from": start, "rank": ctx.rendezvous.rank}


def main(argv: list[str] | None = None) -> int:
    """Run the toy workload."""
    return run(SPEC, job, argv)


if __name__ == "__main__":
    raise SystemExit(main())
