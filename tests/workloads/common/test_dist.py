"""Rendezvous from the three launchers' variables."""

from __future__ import annotations

import json

import pytest

from workloads.common.dist import Rendezvous, RendezvousError, from_env


def test_nothing_set_is_a_single_process() -> None:
    assert from_env({}) == Rendezvous()
    assert not from_env({}).distributed


def test_torchrun_variables() -> None:
    rdzv = from_env(
        {
            "RANK": "3",
            "WORLD_SIZE": "4",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "10.0.0.5",
            "MASTER_PORT": "29400",
        }
    )
    assert (rdzv.rank, rdzv.world_size, rdzv.local_rank, rdzv.master_addr, rdzv.master_port) == (
        3, 4, 1, "10.0.0.5", 29400,
    )  # fmt: skip
    assert rdzv.init_method == "tcp://10.0.0.5:29400"
    assert rdzv.source == "torchrun"


def test_batch_child_node_meets_the_main_node() -> None:
    rdzv = from_env(
        {
            "AWS_BATCH_JOB_NUM_NODES": "4",
            "AWS_BATCH_JOB_NODE_INDEX": "2",
            "AWS_BATCH_JOB_MAIN_NODE_INDEX": "0",
            "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "10.0.3.7",
        }
    )
    assert (rdzv.rank, rdzv.world_size, rdzv.master_addr, rdzv.source) == (2, 4, "10.0.3.7", "batch")


def test_batch_ranks_count_from_the_main_node() -> None:
    env = {"AWS_BATCH_JOB_NUM_NODES": "3", "AWS_BATCH_JOB_MAIN_NODE_INDEX": "1"}
    main = from_env({**env, "AWS_BATCH_JOB_NODE_INDEX": "1"})
    child = from_env(
        {**env, "AWS_BATCH_JOB_NODE_INDEX": "0", "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "1.2.3.4"}
    )
    assert main.rank == 0 and main.master_addr  # the main node listens on its own address
    assert child.rank == 2


def test_batch_child_without_main_address_is_refused() -> None:
    with pytest.raises(RendezvousError, match="multi-node parallel job"):
        from_env({"AWS_BATCH_JOB_NUM_NODES": "2", "AWS_BATCH_JOB_NODE_INDEX": "1"})


def test_sagemaker_hosts() -> None:
    rdzv = from_env({"SM_HOSTS": json.dumps(["algo-2", "algo-1"]), "SM_CURRENT_HOST": "algo-2"})
    assert (rdzv.rank, rdzv.world_size, rdzv.master_addr) == (1, 2, "algo-1")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "4", "WORLD_SIZE": "4"}, "rank 4 is outside a world of 4"),
        ({"RANK": "one", "WORLD_SIZE": "4"}, "RANK='one' is not an integer"),
        ({"SM_HOSTS": '["a"]', "SM_CURRENT_HOST": "b"}, "SM_CURRENT_HOST='b' is not in SM_HOSTS"),
    ],
)
def test_impossible_layouts_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(RendezvousError, match=message):
        from_env(env)


def test_batch_launch_stops_the_other_ranks_when_one_fails() -> None:
    """A rank blocked in a collective whose peer died would otherwise hang the node until the job's timeout."""
    import subprocess
    import sys
    import time

    from workloads.common import batch_launch

    blocked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    failing = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(5)"])
    start = time.monotonic()
    code = batch_launch.supervise([blocked, failing], grace_s=5)
    assert code == 5
    assert time.monotonic() - start < 10
    assert blocked.poll() is not None  # stopped, not left running


def test_batch_launch_waits_for_every_rank_that_succeeds() -> None:
    import subprocess
    import sys

    from workloads.common import batch_launch

    procs = [subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({t})"]) for t in (0.2, 0.6)]
    assert batch_launch.supervise(procs) == 0
    assert all(p.returncode == 0 for p in procs)
