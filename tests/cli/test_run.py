"""`mlhpc run`: the hello workload in this process and as 2 Ray actors, checked against n(n+1)/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlhpc_app.cli.main import app
from tests.cli.conftest import Cli


def test_one_worker_in_process(cli: Cli) -> None:
    data = cli.json("run", "hello", "--set", "n=1000", "--set", "chunk=300")
    # Exact: the sum of 1..n is n(n+1)/2 in integers.
    assert data["metrics"]["total"] == 1000 * 1001 // 2
    assert data["metrics"]["chunks"] == 4
    assert data["exit_codes"] == [0]
    assert Path(data["out"]).parent == Path("results") / "hello"
    assert (Path(data["out"]) / "metrics.json").is_file()


def test_stopped_run_resumes_from_its_checkpoint(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    stopped = cli(
        "run",
        "hello",
        "--set",
        "n=100",
        "--set",
        "chunk=10",
        "--set",
        "stop_after_chunks=3",
        "--out",
        str(out),
    )
    assert stopped.exit_code == 1
    assert (
        "exited 143: stopped after a checkpoint; run again with the same --out or --checkpoint-dir to resume"
        in stopped.stderr
    )
    again = cli.json("run", "hello", "--set", "n=100", "--set", "chunk=10", "--out", str(out))
    assert again["metrics"]["resumed_from_chunk"] == 3
    assert again["metrics"]["total"] == 5050


def test_workers_for_a_workload_that_is_not_distributed(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads import registry

    spec = registry.get("hello").model_copy(update={"distributed": False})
    monkeypatch.setattr(registry, "get", lambda name: spec)
    result = cli("run", "hello", "--workers", "2")
    assert result.exit_code == 1
    assert (
        "error: hello is not a distributed workload; --workers 2 would run 2 copies of one job"
        in result.stderr
    )


def test_two_ray_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks as Ray actors meet over gloo and all-reduce: one Ray start for the whole check."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["run", "hello", "--workers", "2", "--demo", "--set", "n=999", "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["exit_codes"] == [0, 0]
    assert data["metrics"]["world_size"] == 2
    assert data["metrics"]["total"] == 999 * 1000 // 2
    assert data["metrics"]["chunks"] == 1  # demo chunk=10000 kept, n overridden by --set


def test_an_s3_out_is_a_uri_not_a_local_folder(cli: Cli, tmp_path: Path) -> None:
    """`--out s3://b/p` once became ./s3:/b/p (the option was typed as a path, which folds //)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mine")
        result = cli("run", "hello", "--out", "s3://mine/runs/one", "--set", "n=100", "--set", "chunk=50")
        assert result.exit_code == 0, result.output
        keys = [
            o["Key"]
            for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="mine")["Contents"]
        ]
    assert "runs/one/metrics.json" in keys
    assert not (tmp_path / "s3:").exists()


def test_an_out_that_cannot_be_made_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("run", "hello", "--out", str(blocker / "sub"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot use --out '{blocker / 'sub'}'" in result.stderr and "s3://" in result.stderr
    assert f"'{blocker}' is not a directory" in result.stderr
