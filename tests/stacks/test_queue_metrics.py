"""The queue-metrics function: counts from a real (moto) Batch, published as CloudWatch metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.lambdas import queue_metrics


class FakeBatch:
    """ListJobs answers from a fixed table, two jobs per page (so pagination is exercised)."""

    def __init__(self, jobs: dict[tuple[str, str], int]) -> None:
        self.jobs = jobs

    def get_paginator(self, name: str) -> Any:
        assert name == "list_jobs"
        jobs = self.jobs

        class Paginator:
            def paginate(self, *, jobQueue: str, jobStatus: str) -> Any:  # noqa: N803 - boto3's names
                count = jobs.get((jobQueue, jobStatus), 0)
                ids = [f"{jobQueue}-{jobStatus}-{i}" for i in range(count)]
                for start in range(0, max(count, 1), 2):
                    yield {"jobSummaryList": [{"jobId": j} for j in ids[start : start + 2]]}

        return Paginator()


@pytest.fixture
def cloudwatch() -> Any:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def test_counts_jobs_per_queue_and_status_and_publishes_them(
    cloudwatch: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = {("arn:cpu", "RUNNABLE"): 5, ("arn:cpu", "RUNNING"): 2, ("arn:gpu", "SUBMITTED"): 1}
    fake = FakeBatch(jobs)
    monkeypatch.setattr(queue_metrics.boto3, "client", lambda name: fake if name == "batch" else cloudwatch)
    monkeypatch.setenv("QUEUES", json.dumps({"Cpu": "arn:cpu", "GpuOnDemand": "arn:gpu"}))
    counts = queue_metrics.handler({}, None)
    assert counts["Cpu"] == {"SUBMITTED": 0, "PENDING": 0, "RUNNABLE": 5, "STARTING": 0, "RUNNING": 2}
    assert counts["GpuOnDemand"]["SUBMITTED"] == 1
    metrics = cloudwatch.list_metrics(Namespace=queue_metrics.NAMESPACE)["Metrics"]
    published = {tuple(d["Value"] for d in sorted(m["Dimensions"], key=lambda d: d["Name"])) for m in metrics}
    assert published == {(q, s) for q in ("Cpu", "GpuOnDemand") for s in queue_metrics.STATUSES}
    depth = cloudwatch.get_metric_statistics(
        Namespace=queue_metrics.NAMESPACE, MetricName="Jobs", Statistics=["Maximum"], Period=60,
        Dimensions=[{"Name": "Queue", "Value": "Cpu"}, {"Name": "Status", "Value": "RUNNABLE"}],
        StartTime=datetime.now(UTC) - timedelta(minutes=5), EndTime=datetime.now(UTC) + timedelta(minutes=1),
    )["Datapoints"]  # fmt: skip
    assert [d["Maximum"] for d in depth] == [5.0]


def test_inline_code_fits_cloudformation_limit() -> None:
    from stacks.constructs.queue_metrics import HANDLER

    assert len(HANDLER.read_bytes()) < 4096  # ZipFile code in a template is limited to 4 KiB
