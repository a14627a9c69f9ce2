"""Following a RUNNABLE job: Batch's statusReason is shown, and a MISCONFIGURATION: reason ends the follow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlhpc.errors import JobBlocked
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.cli.follow import follow

# statusReason texts as AWS Batch writes them for a job blocking the head of its queue
CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - There is no Spot capacity available that meets the job requirements."
RESOURCES = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is higher than "
    "that can be met by the CE(s) attached to the job queue."
)


def _states(*states: tuple[str, str]) -> Iterator[JobInfo]:
    for status, reason in states:
        yield JobInfo(
            job_id="j-1", name="mlhpc-pinn-x", backend="batch", status=status, workload="pinn", reason=reason
        )


def test_capacity_waits_and_shows_why(capsys: pytest.CaptureFixture[str]) -> None:
    states = _states(("RUNNABLE", ""), ("RUNNABLE", CAPACITY), ("RUNNABLE", CAPACITY), ("SUCCEEDED", ""))
    info = follow(lambda: next(states), lambda _i: None, poll_s=0, sleep=lambda _s: None)
    assert info.status == "SUCCEEDED"
    out = capsys.readouterr().out
    assert out.count("waiting: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY") == 1  # once per change, not per poll


def test_a_misconfigured_queue_ends_the_follow_with_the_fix() -> None:
    states = _states(("RUNNABLE", ""), ("RUNNABLE", RESOURCES))
    with pytest.raises(JobBlocked) as err:
        follow(lambda: next(states), lambda _i: None, poll_s=0, sleep=lambda _s: None, quiet=True)
    assert str(err.value).startswith(
        "job j-1 (pinn) can never start as submitted: MISCONFIGURATION:JOB_RESOURCE"
    )
    assert "`mlhpc validate` shows what fits" in err.value.fix and "stays RUNNABLE" in err.value.fix
    assert err.value.next_command == "mlhpc cancel j-1"
