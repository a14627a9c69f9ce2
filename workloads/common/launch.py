"""Start N local ranks of a workload as subprocesses with torchrun's variables.

This is the process layout every launcher produces (torchrun, AWS Batch multi-node
through :mod:`workloads.common.dist`, the CLI's Ray runner): each rank is a process
that reads RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT. Tests use it to run a 2-rank job
on this machine without Ray.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from workloads.common.dist import Rendezvous, with_error_handling


def rank_env(rank: int, world_size: int, port: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment of one local rank."""
    env = dict(os.environ if base is None else base)
    env.update(
        Rendezvous(
            rank=rank,
            world_size=world_size,
            local_rank=rank,
            local_world_size=world_size,
            master_addr="127.0.0.1",
            master_port=port,
            source="local",
        ).torch_env()
    )
    # One thread per rank: ranks share this machine's cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    return dict(with_error_handling(env))


def spawn_local(
    module: str,
    argv: Sequence[str],
    *,
    workers: int,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 600,
) -> list[int]:
    """Run `python -m module argv` as `workers` ranks; return each rank's exit code.

    This process hosts the rendezvous store, as torchrun's agent does: it binds port 0 itself and
    every rank connects as a client (``TORCHELASTIC_USE_AGENT_STORE``). A port picked by
    :func:`free_port` and bound later by rank 0 can be taken in between by another local job (two
    test workers starting ranks at once), whose ranks then meet the wrong store and wait forever.
    """
    from torch.distributed import TCPStore

    store = TCPStore("127.0.0.1", 0, world_size=workers, is_master=True, wait_for_workers=False)
    base = dict(os.environ if env is None else env)
    base["TORCHELASTIC_USE_AGENT_STORE"] = "True"
    procs = [
        subprocess.Popen([sys.executable, "-m", module, *argv], env=rank_env(rank, workers, store.port, base))
        for rank in range(workers)
    ]
    codes = []
    try:
        for proc in procs:
            codes.append(proc.wait(timeout=timeout_s))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        del store
    return codes
