"""Start one rank per GPU on a node of an AWS Batch multi-node job (what torchrun does elsewhere).

Batch runs one container per node and gives the node's place in
``AWS_BATCH_JOB_NODE_INDEX``/``AWS_BATCH_JOB_NUM_NODES``; NCCL wants one process per
GPU. This launcher turns the node layout into per-rank torchrun variables and runs::

    python -m workloads.common.batch_launch --nproc-per-node 8 -- python -m workloads.pinn ...

On Batch it is reached through the image's entry point: the multi-node job definition's
command is ``--nproc-per-node 8 --out ...``, and ``python -m workloads.pinn`` given that
option calls :func:`main` with the argv :func:`mlhpc.invocation.launch_argv` builds.

Ranks are node_rank * nproc + local_rank, so rank 0 is on the main node. SIGTERM is
forwarded to every rank (they checkpoint and exit 143). When a rank fails, the others are
stopped (SIGTERM, SIGKILL after ``--stop-grace-s``; a frozen rank is woken with SIGCONT so it
can take the SIGTERM) and the launcher exits with that rank's status, naming it; otherwise 0.
A rank that hangs instead of failing is ended by its peers: their collectives give up after the
spec's ``collective_timeout_s`` (:func:`workloads.common.dist.init_process_group`) and they exit 1.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from mlhpc.invocation import LAUNCH_OPTION
from workloads.common import dist, rank_status

# How long the other ranks get to stop (a checkpoint in flight) after one has failed.
STOP_GRACE_S = 30.0
# After the first failure, how long to look for others before stopping the rest: a rank killed by a
# signal and the peer that lost it fail together, and the report should name both.
SETTLE_S = 0.5


def rank_environments(node: dist.Rendezvous, nproc: int, base: Mapping[str, str]) -> list[dict[str, str]]:
    """Return the environment of each local rank on this node."""
    envs = []
    for local in range(nproc):
        env = dict(base)
        env.update(
            dist.Rendezvous(
                rank=node.rank * nproc + local,
                world_size=node.world_size * nproc,
                local_rank=local,
                local_world_size=nproc,
                master_addr=node.master_addr,
                master_port=node.master_port,
                source=node.source,
            ).torch_env()
        )
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", ",".join(str(i) for i in range(nproc)))
        envs.append(dict(dist.with_error_handling(env)))
    return envs


def main(argv: Sequence[str] | None = None) -> int:
    """Launch the ranks of this node and wait for them."""
    parser = argparse.ArgumentParser(prog="python -m workloads.common.batch_launch", description=__doc__)
    parser.add_argument(
        LAUNCH_OPTION, dest="nproc_per_node", type=int, required=True, help="ranks (GPUs) on this node"
    )
    parser.add_argument(
        "--stop-grace-s",
        type=float,
        default=STOP_GRACE_S,
        help="when a rank fails, seconds the others get to stop before SIGKILL (default: %(default)s)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command each rank runs")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.nproc_per_node < 1:
        parser.error(f"give {LAUNCH_OPTION} N (N >= 1) and, after --, the command to run")
    try:
        node = dist.from_env()
    except dist.RendezvousError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    envs = rank_environments(node, args.nproc_per_node, os.environ)
    procs = [subprocess.Popen(command, env=env) for env in envs]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return supervise(procs, grace_s=args.stop_grace_s, ranks=[int(env["RANK"]) for env in envs])


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def supervise(
    procs: Sequence[subprocess.Popen[bytes]],
    *,
    grace_s: float = STOP_GRACE_S,
    ranks: Sequence[int] | None = None,
    report: Callable[[str], None] = _stderr,
) -> int:
    """Wait for the ranks; when one fails, stop the others (SIGTERM, then SIGKILL) and return its status.

    Waiting on each rank in turn would leave the job hanging on a rank blocked in a collective
    whose peer has died, until the job's timeout; here the first failure ends the node. ``report``
    gets one line per failed rank (the first is the one whose status is returned) and one per rank
    stopped; ``ranks`` are the global ranks of ``procs`` (default: their positions).
    """
    ranks = list(range(len(procs))) if ranks is None else list(ranks)
    while True:
        codes = [proc.poll() for proc in procs]
        failing = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failing:
            # Of ranks that failed together, one killed by a signal is the cause, the others its peers.
            first = min(failing, key=lambda i: (codes[i] or 0) >= 0)
            return _stop_after(procs, ranks, first, grace_s=grace_s, report=report)
        if all(code == 0 for code in codes):
            return 0
        time.sleep(0.1)


def _stop_after(
    procs: Sequence[subprocess.Popen[bytes]],
    ranks: Sequence[int],
    first: int,
    *,
    grace_s: float,
    report: Callable[[str], None],
) -> int:
    """Report the failed ranks, stop the others and return the first failure's exit status."""
    time.sleep(SETTLE_S)
    failed = [first] + [i for i, p in enumerate(procs) if i != first and p.poll() not in (None, 0)]
    for i in failed:
        code = procs[i].returncode
        report(f"batch_launch: rank {ranks[i]} {rank_status.describe(code)}")
    alive = [i for i, p in enumerate(procs) if p.poll() is None]
    if alive:
        report(
            f"batch_launch: stopping rank(s) {', '.join(str(ranks[i]) for i in alive)} "
            f"(SIGTERM, SIGKILL after {grace_s:g} s)"
        )
    for i in alive:
        if rank_status.is_frozen(procs[i].pid):
            report(f"batch_launch: rank {ranks[i]} {rank_status.FROZEN}")
        procs[i].terminate()
        # A stopped process keeps a SIGTERM pending until it runs again.
        procs[i].send_signal(signal.SIGCONT)
    deadline = time.monotonic() + grace_s
    for i in alive:
        try:
            procs[i].wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            procs[i].kill()
            procs[i].wait()
            report(f"batch_launch: rank {ranks[i]} did not stop within {grace_s:g} s: killed")
    return rank_status.exit_status(procs[first].returncode)


if __name__ == "__main__":
    raise SystemExit(main())
