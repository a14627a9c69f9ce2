"""Run as N ranks: the harness's timed loop against a bare timed loop of the same collective.

``python -m workloads.allreduce.overhead --json PATH [--sizes B,B,...] [--iters N] [--repeats R]``

For each size and each mode (blocking, non-blocking), alternately R times: the harness
(:meth:`Collective.run`, what the sweep times) and a bare loop written out here with nothing but
``torch.distributed.all_reduce`` and a clock. Both use the same in-place float32 buffer on the same
process group, so the difference is the harness's own cost. Rank 0 writes the times as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as tdist

from workloads.allreduce import comm
from workloads.allreduce.collective import Collective
from workloads.allreduce.spec import SPEC
from workloads.common import dist


def bare_loop(buf: torch.Tensor, iters: int, *, blocking: bool) -> float:
    """Return the seconds of one all-reduce over `iters` back-to-back calls, nothing else.

    On a GPU the loop ends with one device synchronisation (NCCL calls return once enqueued);
    in blocking mode it synchronises after every call, as the harness does.
    """
    sync = torch.cuda.synchronize if buf.is_cuda else (lambda: None)
    tdist.barrier()
    sync()
    t0 = time.perf_counter()
    if blocking:
        for _ in range(iters):
            tdist.all_reduce(buf)
            sync()
    else:
        works = [tdist.all_reduce(buf, async_op=True) for _ in range(iters)]
        for w in works:
            w.wait()
        sync()
    return (time.perf_counter() - t0) / iters


def main(argv: list[str] | None = None) -> int:
    """Measure and write the comparison; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m workloads.allreduce.overhead", description=__doc__)
    parser.add_argument("--json", required=True, type=Path)
    parser.add_argument("--sizes", default="65536,1048576,4194304")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="gloo on cpu, NCCL on cuda")
    args = parser.parse_args(argv)
    rdzv = dist.from_env()
    device = torch.device("cuda", rdzv.local_rank) if args.device == "cuda" else torch.device("cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    # The sweep's own set-up (device binding included), with the workload's collective timeout.
    comm.init(rdzv, backend=backend, device=device, timeout_s=dist.collective_timeout_s(SPEC))
    coll = Collective("all_reduce", dtype="float32", op="sum", device=device)
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        send, recv = coll.buffers(size // 4, "in_place")
        send.fill_(0.0)
        for blocking in (True, False):
            coll.run(send, recv, 5, blocking=blocking)  # warm-up, untimed
            harness, bare = [], []
            for _ in range(args.repeats):  # interleaved: drifts in machine load hit both alike
                harness.append(coll.mean_over_ranks(coll.run(send, recv, args.iters, blocking=blocking)))
                t = torch.tensor(
                    [bare_loop(recv, args.iters, blocking=blocking)], dtype=torch.float64, device=device
                )
                tdist.all_reduce(t)
                bare.append(float(t.item()) / coll.ranks)
            results.append(
                {
                    "size_bytes": size,
                    "blocking": blocking,
                    "harness_us": [1e6 * v for v in harness],
                    "bare_us": [1e6 * v for v in bare],
                    # Interference from other processes only ever adds time: the best of the repeats is
                    # the estimate least disturbed by it; the median of paired ratios is shown beside it.
                    "overhead_best_pct": 100 * (min(harness) / min(bare) - 1),
                    "overhead_median_pct": 100
                    * (statistics.median(h / b for h, b in zip(harness, bare, strict=True)) - 1),
                }
            )
    if rdzv.is_main:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"ranks": rdzv.world_size, "backend": backend, "iters": args.iters, "rows": results}, indent=1
            )
        )
    comm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
