"""Fail fast and whole under the Batch node launcher: a killed or frozen rank ends the node, named.

Real processes, real gloo over loopback: ``python -m workloads.common.batch_launch --nproc-per-node 2``
runs the ring workload (tests/workloads/common/ring.py) as a one-node multi-node job would, and one
rank sends itself SIGKILL or SIGSTOP. The collective timeout is set small (MLHPC_COLLECTIVE_TIMEOUT_S)
and so is the launcher's stop grace, so each job must fail within TIMEOUT_S + GRACE_S + START_S.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workloads.common import dist, rank_status

REPO = Path(__file__).resolve().parents[3]
TIMEOUT_S = 5  # the collectives' limit in these tests (MLHPC_COLLECTIVE_TIMEOUT_S)
GRACE_S = 3  # the launcher's stop grace (--stop-grace-s)
START_S = 30  # two ranks importing torch on a shared 2-core machine, and the rendezvous
LIMIT_S = TIMEOUT_S + GRACE_S + START_S  # well under the 60 s the issue asks for


def launch(tmp_path: Path, *ring_args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run one node of two ranks of the ring workload under batch_launch; return it and its wall time."""
    from torch.distributed import TCPStore

    # This process hosts the store (as Batch's main node would host it in rank 0): a port bound here
    # cannot be taken by another test's job in between (see workloads.common.launch.spawn_local).
    store = TCPStore("127.0.0.1", 0, world_size=2, is_master=True, wait_for_workers=False)
    env = {
        **os.environ,
        "AWS_BATCH_JOB_NUM_NODES": "1",
        "AWS_BATCH_JOB_NODE_INDEX": "0",
        "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS": "127.0.0.1",
        "MASTER_PORT": str(store.port),
        "TORCHELASTIC_USE_AGENT_STORE": "True",
        dist.COLLECTIVE_TIMEOUT_ENV: str(TIMEOUT_S),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    start = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workloads.common.batch_launch",
            "--nproc-per-node",
            "2",
            "--stop-grace-s",
            str(GRACE_S),
            "--",
            sys.executable,
            "-m",
            "tests.workloads.common.ring",
            "--out",
            str(tmp_path / "out"),
            *ring_args,
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=4 * LIMIT_S,
        cwd=tmp_path,
    )
    del store
    return done, time.monotonic() - start


def test_two_ranks_all_reduce_and_exit_0(tmp_path: Path) -> None:
    done, _ = launch(tmp_path, "--steps", "20")
    assert done.returncode == 0, done.stderr
    assert "ring: 20 all-reduces over 2 ranks, total 40" in done.stdout  # exact: 20 steps x 2 ranks x 1


def test_a_killed_rank_ends_the_node_with_its_status(tmp_path: Path) -> None:
    done, elapsed = launch(tmp_path, "--steps", "100000", "--fault", "kill", "--fault-rank", "0")
    assert elapsed < LIMIT_S, done.stderr
    assert done.returncode == 128 + 9, done.stderr  # the status a shell gives a SIGKILLed process
    assert "batch_launch: rank 0 was killed by SIGKILL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_frozen_rank_ends_the_node_within_the_collective_timeout(tmp_path: Path) -> None:
    done, elapsed = launch(tmp_path, "--steps", "100000", "--fault", "stop", "--fault-rank", "1")
    assert TIMEOUT_S <= elapsed < LIMIT_S, done.stderr
    assert done.returncode == 1, done.stderr  # the survivor's code: its collective gave up
    assert (
        f"error: ring: rank 0 waited {TIMEOUT_S} s in a collective for rank 1: that rank hung, was stopped "
        "or died" in done.stderr
    )
    assert "batch_launch: rank 0 exited 1" in done.stderr
    assert f"batch_launch: rank 1 {rank_status.FROZEN}" in done.stderr
    assert "Traceback" not in done.stderr


def test_supervise_wakes_and_stops_a_frozen_rank(tmp_path: Path) -> None:
    """A SIGSTOPped process keeps SIGTERM pending: the launcher sends SIGCONT with it, so grace is enough."""
    import signal

    from workloads.common import batch_launch

    frozen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    frozen.send_signal(signal.SIGSTOP)
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    lines: list[str] = []
    start = time.monotonic()
    assert batch_launch.supervise([frozen, failing], grace_s=30, ranks=[4, 5], report=lines.append) == 3
    assert time.monotonic() - start < 10  # SIGTERM took effect at once: no wait for the 30 s grace
    assert frozen.returncode == -signal.SIGTERM
    assert lines[0] == "batch_launch: rank 5 exited 3"
    assert f"batch_launch: rank 4 {rank_status.FROZEN}" in lines


@pytest.mark.parametrize(("value", "expected"), [(None, 300.0), ("7.5", 7.5), ("", 300.0)])
def test_collective_timeout_from_the_spec_or_the_environment(value: str | None, expected: float) -> None:
    from tests.workloads.common.ring import SPEC

    env = {} if value is None else {dist.COLLECTIVE_TIMEOUT_ENV: value}
    assert SPEC.resources.collective_timeout_s == 300
    assert dist.collective_timeout_s(SPEC, env) == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "inf", "nan"])
def test_a_bad_collective_timeout_override_is_refused(value: str) -> None:
    from tests.workloads.common.ring import SPEC

    with pytest.raises(dist.RendezvousError) as caught:
        dist.collective_timeout_s(SPEC, {dist.COLLECTIVE_TIMEOUT_ENV: value})
    assert str(caught.value) == (
        f"{dist.COLLECTIVE_TIMEOUT_ENV}={value!r} is not a positive number of seconds; give e.g. 300 "
        "(the spec's value) or unset it"
    )


def test_a_bad_override_is_a_usage_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.workloads.common import ring

    monkeypatch.setenv(dist.COLLECTIVE_TIMEOUT_ENV, "soon")
    assert ring.main(["--out", str(tmp_path)]) == 2
    assert not (tmp_path / "metrics.json").exists()


def test_every_launcher_rank_gets_nccl_async_error_handling() -> None:
    from workloads.common import batch_launch
    from workloads.common.launch import rank_env

    node = dist.Rendezvous(world_size=1, source="batch")
    for env in [*batch_launch.rank_environments(node, 2, {}), rank_env(0, 2, 1234, base={})]:
        assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1"
    # A value the user set wins.
    kept = batch_launch.rank_environments(node, 1, {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "3"})
    assert kept[0]["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "3"


def test_lost_peer_names_the_rank_only_for_collective_errors() -> None:
    two = dist.Rendezvous(rank=1, world_size=2)
    timed_out = RuntimeError(
        "[/x/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 5000ms for recv"
    )
    assert dist.lost_peer(timed_out, two, timeout_s=5) == (
        "rank 1 waited 5 s in a collective for rank 0: that rank hung, was stopped or died; the limit is the "
        f"spec's resources.collective_timeout_s or {dist.COLLECTIVE_TIMEOUT_ENV} "
        "(Timed out waiting 5000ms for recv)"
    )
    reset = RuntimeError(
        "[/x/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:1: Connection reset by peer"
    )
    four = dist.Rendezvous(rank=2, world_size=4)
    assert dist.lost_peer(reset, four, timeout_s=5) == (
        "rank 2 lost its connection to another of the 4 ranks: that rank died or was killed (see its log) "
        "(Read error [127.0.0.1]:1: Connection reset by peer)"
    )
    assert dist.lost_peer(RuntimeError("timed out reading the input file"), two, timeout_s=5) is None
    assert dist.lost_peer(timed_out, dist.Rendezvous(), timeout_s=5) is None  # one process has no peer
