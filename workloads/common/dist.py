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
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from mlhpc.invocation import RENDEZVOUS_PORT as DEFAULT_PORT


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
