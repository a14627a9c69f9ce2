"""Cost lines of `mlhpc submit --dry-run` (the spec's limit) and `mlhpc results` (the real run), on moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from mlhpc import pricing
from mlhpc.pricing import PriceTable
from mlhpc_app.aws import batch as batch_adapter
from mlhpc_app.aws import sagemaker as sagemaker_adapter
from tests.aws.harness import MOTO_CONFIG, default_stacks, deploy, register_multi_node
from tests.cli.conftest import Cli

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STOP_MS = START_MS + 90 * 60 * 1000  # 1.5 hours later


def us_east_1(key: str) -> float:
    price = PriceTable.load().get("us-east-1", key)
    assert price is not None
    return price.usd


def test_submit_pinn_dry_run_shows_the_most_it_can_cost(node_properties_described: None) -> None:
    from moto import mock_aws

    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        deploy(default_stacks(workloads={"pinn": register_multi_node("pinn")}))
        data = Cli().json("submit", "pinn", "--dry-run")
        cost = data["cost"]
        # pinn: 2 nodes x every GPU, timeout_s 4 h; HpcStack sizes it for the default's g5.12xlarge
        hourly = us_east_1(pricing.instance_hour("g5.12xlarge"))
        assert (cost["instance_type"], cost["nodes"], cost["seconds"]) == ("g5.12xlarge", 2, 4 * 3600)
        assert cost["market"] == "On-Demand" and cost["usd"] == pytest.approx(2 * hourly * 4)
        table = Cli()("submit", "pinn", "--dry-run")
        assert table.exit_code == 0, table.output
        assert (
            "cost: 2 x g5.12xlarge (the type its job definition is sized for) x 4.00 h (the spec's timeout_s, "
            f"the most it may run) at ${hourly:.3f}/h = ${2 * hourly * 4:,.2f}" in table.stdout
        )


def test_sagemaker_dry_run_names_an_unknown_price(cli: Cli, stacks: dict) -> None:
    data = cli.json("submit", "hello", "--backend", "sagemaker", "--dry-run")
    cost = data["cost"]
    assert cost["instance_type"].startswith("ml.") and cost["usd"] is None and cost["known"] is False
    table = cli("submit", "hello", "--backend", "sagemaker", "--dry-run")
    assert (
        f"unknown (no sagemaker/{cost['instance_type']}/hour price for us-east-1) = unknown" in table.stdout
    )


def fixed_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every Batch job the same start and stop (moto stamps its own clock)."""
    real = batch_adapter.describe_raw

    def describe_raw(aws: Any, job_id: str) -> dict[str, Any] | None:
        raw = real(aws, job_id)
        return None if raw is None else {**raw, "startedAt": START_MS, "stoppedAt": STOP_MS}

    monkeypatch.setattr(batch_adapter, "describe_raw", describe_raw)


def put_metrics(prefix: str) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="mlhpc-results-123", Key=prefix + "metrics.json", Body=json.dumps({"total": 1})
    )


def test_results_cost_from_the_batch_jobs_start_and_stop(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = cli.json("submit", "hello", "--detach")
    put_metrics(f"hello/{job['run_id']}/")
    fixed_times(monkeypatch)
    data = cli.json("results", job["job_id"])
    cost = data["cost"]
    # hello is a CPU job: the CPU queue (Spot in the default), sized for the smallest type, c6i.large
    hourly = us_east_1(pricing.instance_hour("c6i.large"))
    assert (cost["instance_type"], cost["nodes"], cost["seconds"]) == ("c6i.large", 1, 5400.0)
    assert cost["usd"] == pytest.approx(1.5 * hourly) and cost["market"] == "Spot"
    table = cli("results", job["job_id"])
    assert (
        "cost: 1 x c6i.large (the type its job definition is sized for; ECS named none) x 1.50 h (from its start "
        f"to its stop) at ${hourly:.3f}/h = at most ${1.5 * hourly:,.2f} (Spot, capped at On-Demand)"
    ) in table.stdout


def test_results_cost_from_the_training_jobs_times(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = cli.json("submit", "hello", "--backend", "sagemaker", "--detach")
    real = sagemaker_adapter.describe

    def describe(aws: Any, name: str) -> Any:
        info = real(aws, name)
        info.started = datetime.fromtimestamp(START_MS / 1000, tz=UTC)
        info.stopped = datetime.fromtimestamp(STOP_MS / 1000, tz=UTC)
        info.instance_type = "g5.xlarge"  # priced in the table (the ml. types are not): the arithmetic shows
        return info

    monkeypatch.setattr(sagemaker_adapter, "describe", describe)
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = stacks["mlhpc-storage"]["ResultsBucketName"]
    s3.put_object(Bucket=bucket, Key=f"hello/{job['run_id']}/{job['job_id']}/output/metrics.json", Body=b"{}")
    data = cli.json("results", job["job_id"])
    assert data["cost"]["seconds"] == 5400.0 and data["cost"]["instance_basis"] == "its ResourceConfig"
    assert data["cost"]["usd"] == pytest.approx(1.5 * us_east_1(pricing.instance_hour("g5.xlarge")))
