"""`mlhpc run --workers 2`: a rank killed or frozen fails the job within seconds, named, exit 1 (never 70).

The ranks are Ray actors running the ring workload (tests/workloads/common/ring.py: gloo all-reduces
in a loop) over real gloo; one sends itself SIGKILL or SIGSTOP. The collective timeout is set small
(MLHPC_COLLECTIVE_TIMEOUT_S), so each job must end within TIMEOUT_S + START_S.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cli.conftest import Cli
from tests.workloads.common import ring
from workloads import registry
from workloads.common import dist, local_ray

TIMEOUT_S = 5  # the collectives' limit in these tests
START_S = 40  # Ray's start and stop, two ranks importing torch on a shared 2-core machine
LIMIT_S = TIMEOUT_S + START_S  # under the 60 s the issue asks for


@pytest.fixture(autouse=True)
def _ring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `ring` a workload the CLI knows, with a short collective timeout."""
    real = registry.get
    monkeypatch.setattr(registry, "get", lambda name: ring.SPEC if name == "ring" else real(name))
    monkeypatch.setenv(dist.COLLECTIVE_TIMEOUT_ENV, str(TIMEOUT_S))


def run_ring(cli: Cli, *sets: str) -> tuple[object, float]:
    argv = ["run", "ring", "--workers", "2", "--out", "out", "--set", "steps=100000"]
    for pair in sets:
        argv += ["--set", pair]
    start = time.monotonic()
    result = cli(*argv)
    return result, time.monotonic() - start


def test_a_killed_rank_fails_the_job_naming_it(cli: Cli) -> None:
    result, elapsed = run_ring(cli, "fault=kill", "fault_rank=1")
    assert result.exit_code == 1, result.output  # the job's failure: not a bug (70)
    assert elapsed < LIMIT_S
    err = result.stderr
    assert "error: ring run " in err and ": rank 1 died: its process (pid " in err
    assert "rank 0 exited 1" in err  # its peer, which lost it
    assert "last log lines:" in err and "ring: rank 1 sends itself SIGKILL at step 3" in err
    assert "fix: read rank 1's log out/logs/rank-1.log (every rank's is in out/logs)" in err
    assert "Traceback" not in result.output


def test_a_frozen_rank_fails_the_job_within_the_collective_timeout(cli: Cli) -> None:
    result, elapsed = run_ring(cli, "fault=stop", "fault_rank=0")
    assert result.exit_code == 1, result.output
    assert TIMEOUT_S <= elapsed < LIMIT_S
    err = result.stderr
    # The survivor's collective gave up; the runner names it and sees the frozen one.
    assert ": rank 1 exited 1" in err
    assert "rank 0 is frozen (stopped by a signal" in err
    assert (
        f"rank 1 waited {TIMEOUT_S} s in a collective for rank 0: that rank hung, was stopped or died" in err
    )
    assert "Traceback" not in result.output


def test_ranks_that_succeed_keep_their_logs(cli: Cli) -> None:
    data = cli.json("run", "ring", "--workers", "2", "--out", "out", "--set", "steps=20")
    assert data["exit_codes"] == [0, 0]
    assert data["metrics"]["total"] == 40  # exact: 20 steps x 2 ranks x 1
    assert "ring: 20 all-reduces over 2 ranks, total 40" in Path("out/logs/rank-0.log").read_text()
    assert Path("out/logs/rank-1.log").is_file()


def test_ray_registers_on_loopback() -> None:
    import ray

    local_ray.init(num_cpus=1, object_store_memory=80 * 1024 * 1024)
    try:
        assert local_ray.node_address() == "127.0.0.1"
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    finally:
        ray.shutdown()
