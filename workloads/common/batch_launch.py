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
stopped (SIGTERM, SIGKILL after a grace period) and the launcher exits with that rank's code;
otherwise 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from types import FrameType

from mlhpc.invocation import LAUNCH_OPTION
from workloads.common import dist

# How long the other ranks get to stop (a checkpoint in flight) after one has failed.
STOP_GRACE_S = 30.0


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
        envs.append(env)
    return envs


def main(argv: Sequence[str] | None = None) -> int:
    """Launch the ranks of this node and wait for them."""
    parser = argparse.ArgumentParser(prog="python -m workloads.common.batch_launch", description=__doc__)
    parser.add_argument(
        LAUNCH_OPTION, dest="nproc_per_node", type=int, required=True, help="ranks (GPUs) on this node"
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
    procs = [
        subprocess.Popen(command, env=env) for env in rank_environments(node, args.nproc_per_node, os.environ)
    ]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return supervise(procs)


def supervise(procs: Sequence[subprocess.Popen[bytes]], *, grace_s: float = STOP_GRACE_S) -> int:
    """Wait for the ranks; when one fails, stop the others (SIGTERM, then SIGKILL) and return its code.

    Waiting on each rank in turn would leave the job hanging on a rank blocked in a collective
    whose peer has died, until the job's timeout; here the first failure ends the node.
    """
    while True:
        codes = [proc.poll() for proc in procs]
        failed = next((code for code in codes if code not in (None, 0)), None)
        if failed is not None:
            alive = [proc for proc in procs if proc.poll() is None]
            for proc in alive:
                proc.terminate()
            deadline = time.monotonic() + grace_s
            for proc in alive:
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            return failed
        if all(code == 0 for code in codes):
            return 0
        time.sleep(0.1)


if __name__ == "__main__":
    raise SystemExit(main())
