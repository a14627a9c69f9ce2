"""The hello job: a checkpointed, distributed sum of 1..n (exact answer n(n+1)/2)."""

from __future__ import annotations

from typing import Any

from workloads.common.checkpoint import Preempted
from workloads.common.entry import RunContext, run
from workloads.hello.spec import SPEC, HelloArgs


def partial_sum(start: int, stop: int, *, rank: int, world_size: int) -> int:
    """Return the sum of the integers k in [start, stop) with (k - 1) % world_size == rank."""
    first = start + (rank - (start - 1)) % world_size
    if first >= stop:
        return 0
    count = (stop - 1 - first) // world_size + 1
    last = first + (count - 1) * world_size
    return count * (first + last) // 2


def job(args: HelloArgs, ctx: RunContext) -> dict[str, Any]:
    """Sum 1..n chunk by chunk; all-reduce each chunk so every rank holds the running total."""
    rdzv = ctx.rendezvous
    reduce = _all_reduce(ctx)
    ckpt = ctx.checkpointer({"workload": "hello", "n": args.n, "chunk": args.chunk})
    done, total = 0, 0
    loaded = ckpt.load() if ctx.resume else None
    if loaded is not None:
        done, state = loaded
        total = int(state["total"])
        ctx.log(f"hello: resuming after chunk {done} (total so far {total})")
    chunks = -(-args.n // args.chunk)
    for index in range(done, chunks):
        start = 1 + index * args.chunk
        stop = min(args.n + 1, start + args.chunk)
        total += reduce(partial_sum(start, stop, rank=rdzv.rank, world_size=rdzv.world_size))
        if ctx.is_main:
            ckpt.save({"total": total}, step=index + 1)
        if args.stop_after_chunks and index + 1 == args.stop_after_chunks:
            ctx.stop.request("stop_after_chunks")
        if ctx.stop.requested:
            raise Preempted()
    ctx.log(f"hello: sum of 1..{args.n} over {rdzv.world_size} rank(s) = {total}")
    return {"n": args.n, "total": total, "chunks": chunks, "resumed_from_chunk": done}


def _all_reduce(ctx: RunContext) -> Any:
    """Return a function summing an int over every rank (the identity on one rank)."""
    rdzv = ctx.rendezvous
    if not rdzv.distributed:
        return lambda value: value
    import torch
    import torch.distributed as tdist

    from workloads.common import dist

    if not tdist.is_initialized():
        dist.init_process_group(rdzv, backend="gloo", timeout_s=ctx.collective_timeout_s)

    def reduce(value: int) -> int:
        tensor = torch.tensor([value], dtype=torch.int64)
        tdist.all_reduce(tensor)
        return int(tensor.item())

    return reduce


def main(argv: list[str] | None = None) -> int:
    """Run the hello workload."""
    return run(SPEC, job, argv)
