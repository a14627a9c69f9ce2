"""Where this process sits in a distributed job, read from the environment.

Three launchers set the same facts under different names:

* torchrun (and the local Ray runner, which imitates it): ``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``;
* AWS Batch multi-node parallel jobs, one container per node:
  ``AWS_BATCH_JOB_NODE_INDEX``, ``AWS_BATCH_JOB_NUM_NODES``,
  ``AWS_BATCH_JOB_MAIN_NODE_INDEX`` and, on every node but the main one,
  ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``;
* SageMaker training: ``SM_HOSTS`` (JSON list) and ``SM_CURRENT_HOST``.

Nothing set means a single process.

:func:`init_process_group` is how every workload joins its ranks: a long rendezvous (ranks of a
multi-node job start minutes apart) and then collectives that give up after the spec's
``resources.collective_timeout_s`` (``MLHPC_COLLECTIVE_TIMEOUT_S`` overrides it), so one hung,
stopped or dead rank ends the job within minutes; :func:`lost_peer` turns the error a survivor
then gets into a message naming the rank.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from mlhpc.invocation import RENDEZVOUS_PORT as DEFAULT_PORT
from mlhpc.spec import WorkloadSpec

if TYPE_CHECKING:
    import torch

# Overrides the spec's resources.collective_timeout_s (tests set a few seconds; a cluster may want more).
COLLECTIVE_TIMEOUT_ENV = "MLHPC_COLLECTIVE_TIMEOUT_S"
# How long the ranks may take to meet at all: on Batch the nodes of one job start (and pull their image)
# minutes apart, which must not count against the collectives' much shorter timeout.
RENDEZVOUS_TIMEOUT_S = 600
# Every launcher exports these to its ranks. TORCH_NCCL_ASYNC_ERROR_HANDLING=1: NCCL's watchdog aborts
# the communicator and ends the process when a collective passes the timeout (or a peer's error is
# seen), instead of leaving the rank blocked in a CUDA stream; gloo raises on its own. Blocking wait
# (TORCH_NCCL_BLOCKING_WAIT) is not needed: the watchdog ends the process either way.
RANK_ERROR_ENV = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}
# torch modules whose functions take ``group=group.WORLD`` as a default, evaluated when the module is
# first imported: imported after a rank joined, they hold the live default group, which
# destroy_process_group can then not free; gloo's threads outlive it and, at interpreter exit, one
# that still drops a finished collective's tensors takes the GIL during finalization and the rank
# ends in std::terminate (SIGABRT, 134) after it had finished. torch imports the first one lazily
# with torch._dynamo, that is, with the first optimizer a workload builds. They are imported before
# joining, so that the default they bind is "no group". The others in torch (ZeroRedundancyOptimizer,
# ShardedGradScaler) would cost a second or more per rank and no workload imports them;
# tests/workloads/common/test_dist_teardown.py finds every such module in the installed torch.
BINDS_WORLD_AT_IMPORT = ("torch.distributed.nn.functional",)
NOT_PRELOADED = {
    "torch.distributed.optim.zero_redundancy_optimizer": "no workload uses ZeRO",
    "torch.distributed.fsdp.sharded_grad_scaler": "no workload uses FSDP's grad scaler",
}


@dataclass(frozen=True)
class Rendezvous:
    """Rank, world size and the address every rank meets at."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_PORT
    source: str = "single"

    @property
    def distributed(self) -> bool:
        """True when more than one rank takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes outputs."""
        return self.rank == 0

    @property
    def init_method(self) -> str:
        """Return the TCP URL torch.distributed.init_process_group meets at."""
        return f"tcp://{self.master_addr}:{self.master_port}"

    def torch_env(self) -> dict[str, str]:
        """Return the torchrun variables describing this rank (what the local runner exports)."""
        return {
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }


class RendezvousError(RuntimeError):
    """The environment describes an impossible job layout."""


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError as err:
        raise RendezvousError(f"{key}={env[key]!r} is not an integer") from err


def from_env(env: Mapping[str, str] | None = None) -> Rendezvous:
    """Read the rendezvous from torchrun, AWS Batch multi-node or SageMaker variables."""
    env = os.environ if env is None else env
    port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else DEFAULT_PORT
    if "RANK" in env and "WORLD_SIZE" in env:
        rdzv = Rendezvous(
            rank=_int(env, "RANK"),
            world_size=_int(env, "WORLD_SIZE"),
            local_rank=_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0,
            local_world_size=_int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else 1,
            master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
            master_port=port,
            source="torchrun",
        )
    elif "AWS_BATCH_JOB_NUM_NODES" in env:
        nodes = _int(env, "AWS_BATCH_JOB_NUM_NODES")
        index = _int(env, "AWS_BATCH_JOB_NODE_INDEX") if "AWS_BATCH_JOB_NODE_INDEX" in env else 0
        main_index = (
            _int(env, "AWS_BATCH_JOB_MAIN_NODE_INDEX") if "AWS_BATCH_JOB_MAIN_NODE_INDEX" in env else 0
        )
        # Batch gives the main node's address to the other nodes only; the main node
        # listens on its own interface.
        main_addr = env.get("AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS") or (
            _own_address() if index == main_index else ""
        )
        if not main_addr:
            raise RendezvousError(
                "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS is not set on a child node; "
                "the job must be a multi-node parallel job"
            )
        # Ranks are numbered from the main node so rank 0 is where the store listens.
        rank = (index - main_index) % nodes
        rdzv = Rendezvous(
            rank=rank, world_size=nodes, master_addr=main_addr, master_port=port, source="batch"
        )
    elif "SM_HOSTS" in env and "SM_CURRENT_HOST" in env:
        hosts = sorted(json.loads(env["SM_HOSTS"]))
        current = env["SM_CURRENT_HOST"]
        if current not in hosts:
            raise RendezvousError(f"SM_CURRENT_HOST={current!r} is not in SM_HOSTS={hosts}")
        rdzv = Rendezvous(
            rank=hosts.index(current),
            world_size=len(hosts),
            master_addr=hosts[0],
            master_port=port,
            source="sagemaker",
        )
    else:
        return Rendezvous()
    if not 0 <= rdzv.rank < rdzv.world_size:
        raise RendezvousError(
            f"rank {rdzv.rank} is outside a world of {rdzv.world_size} (from {rdzv.source})"
        )
    return rdzv


def _own_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on loopback that is free right now (for local multi-worker runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_error_handling(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the collective error-handling variables to a rank's environment (values already there win)."""
    for key, value in RANK_ERROR_ENV.items():
        env.setdefault(key, value)
    return env


def collective_timeout_s(spec: WorkloadSpec, env: Mapping[str, str] | None = None) -> float:
    """Return how long a collective may wait: MLHPC_COLLECTIVE_TIMEOUT_S, else the spec's value."""
    env = os.environ if env is None else env
    raw = env.get(COLLECTIVE_TIMEOUT_ENV, "").strip()
    if not raw:
        return float(spec.resources.collective_timeout_s)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise RendezvousError(
            f"{COLLECTIVE_TIMEOUT_ENV}={raw!r} is not a positive number of seconds; give e.g. "
            f"{spec.resources.collective_timeout_s} (the spec's value) or unset it"
        )
    return value


def init_process_group(
    rdzv: Rendezvous,
    *,
    backend: str,
    timeout_s: float,
    device_id: torch.device | None = None,
) -> None:
    """Join the default process group: a rendezvous of RENDEZVOUS_TIMEOUT_S, collectives of timeout_s.

    The store comes from torch's own rendezvous for ``init_method`` (so a launcher's agent store,
    ``TORCHELASTIC_USE_AGENT_STORE``, is honoured) with the long timeout; the process group gets the
    short one, which gloo applies to every collective and NCCL's watchdog enforces. One rank uses an
    in-memory store, so a single process runs the same code.
    """
    import importlib
    import importlib.util

    import torch.distributed as tdist

    with_error_handling(os.environ)  # a rank started by a launcher that is not ours (torchrun, mpirun)
    for module in BINDS_WORLD_AT_IMPORT:  # before the group exists: see BINDS_WORLD_AT_IMPORT
        if importlib.util.find_spec(module) is not None:  # an older torch (the Inf1 image's) may lack it
            importlib.import_module(module)
    store: Any
    if rdzv.world_size == 1:
        store = tdist.HashStore()
    else:
        store, _, _ = next(
            tdist.rendezvous(
                rdzv.init_method,
                rdzv.rank,
                rdzv.world_size,
                timeout=timedelta(seconds=RENDEZVOUS_TIMEOUT_S),
            )
        )
    tdist.init_process_group(
        backend,
        store=store,
        rank=rdzv.rank,
        world_size=rdzv.world_size,
        timeout=timedelta(seconds=timeout_s),
        device_id=device_id,
    )


def leave() -> None:
    """Destroy the default process group if this process joined one (also after a failed collective).

    Exiting with a gloo group still alive can end in std::terminate (SIGABRT) from one of its
    threads, which would hide the exit code the rank chose; destroying it joins them (as long as
    nothing else holds the group: see BINDS_WORLD_AT_IMPORT).
    """
    tdist = sys.modules.get("torch.distributed")
    if tdist is not None and tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


# What gloo (and NCCL through torch) say when a peer stops answering or goes away.
_TIMED_OUT = re.compile(r"timed out|timeout|watchdog", re.IGNORECASE)
_PEER_GONE = re.compile(
    r"connection (reset|closed) by peer|broken pipe|read error|write error|socket closed|"
    r"connection refused|ncclRemoteError",
    re.IGNORECASE,
)
_SOURCE_PREFIX = re.compile(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*")


def _from_collectives(err: BaseException) -> bool:
    """Return True for an error torch.distributed raised (gloo raises plain RuntimeErrors naming itself)."""
    tdist = sys.modules.get("torch.distributed")
    if tdist is not None and isinstance(err, tdist.DistError):
        return True
    return isinstance(err, RuntimeError) and "gloo" in str(err)


def lost_peer(err: BaseException, rdzv: Rendezvous, *, timeout_s: float) -> str | None:
    """Describe a collective that failed because another rank hung, stopped or died (None: another error).

    gloo names no rank in its errors; with two ranks the one waited on is the other one, with more
    the message names this rank and the timeout (the launcher's report names the rank that failed first).
    """
    if not rdzv.distributed or not _from_collectives(err):
        return None
    text = str(err).strip()
    first = _SOURCE_PREFIX.sub("", text.splitlines()[0] if text else "")
    tdist = sys.modules.get("torch.distributed")
    if tdist is not None and isinstance(err, tdist.DistStoreError):
        return (
            f"rank {rdzv.rank} gave up waiting for the other ranks at {rdzv.init_method} "
            f"after {RENDEZVOUS_TIMEOUT_S} s: one of them never started or cannot reach rank 0 ({first})"
        )
    if _PEER_GONE.search(text):
        what = "lost its connection to"
        why = "that rank died or was killed (see its log)"
    elif _TIMED_OUT.search(text):
        what = f"waited {timeout_s:g} s in a collective for"
        why = (
            "that rank hung, was stopped or died; the limit is the spec's resources.collective_timeout_s"
            f" or {COLLECTIVE_TIMEOUT_ENV}"
        )
    else:
        return None
    peer = f"rank {1 - rdzv.rank}" if rdzv.world_size == 2 else f"another of the {rdzv.world_size} ranks"
    return f"rank {rdzv.rank} {what} {peer}: {why} ({first})"
