"""`mlhpc status | logs | cancel | list | results | outputs` against moto."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.aws.harness import put_logs
from tests.cli.conftest import Cli


def submitted(cli: Cli, *extra: str) -> dict:
    return cli.json("submit", "hello", "--detach", *extra)


def test_status_of_one_job_and_of_active_jobs(cli: Cli, stacks: dict) -> None:
    job = submitted(cli)
    data = cli.json("status", job["job_id"])
    assert data["status"] == "SUCCEEDED" and data["workload"] == "hello" and data["run_id"] == job["run_id"]
    table = cli("status", job["job_id"])
    assert f"job {job['job_id']}" in table.stdout and "SUCCEEDED" in table.stdout
    assert cli.json("status") == []  # the job ended: nothing active
    assert "no active jobs of mlhpc in us-east-1" in cli("status").stdout


def test_status_of_an_unknown_job(cli: Cli, stacks: dict) -> None:
    result = cli("status", "00000000-0000-0000-0000-000000000000")
    assert result.exit_code == 1
    assert "error: no Batch job '00000000-0000-0000-0000-000000000000' in us-east-1" in result.stderr
    assert "next: mlhpc list" in result.stderr


def test_logs_prints_the_stream_and_tails(cli: Cli, stacks: dict) -> None:
    job = submitted(cli)
    stream = cli.json("status", job["job_id"])["log_stream"]
    put_logs(stream, [f"step {i}" for i in range(5)])
    result = cli("logs", job["job_id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"step {i}" for i in range(5)]
    assert cli.json("logs", job["job_id"], "--tail", "2")["lines"] == ["step 3", "step 4"]
    followed = cli("logs", job["job_id"], "--follow", "--poll-s", "0")
    assert followed.stdout.splitlines()[-1] == "step 4"
    assert f"job {job['job_id']} SUCCEEDED" in followed.stderr


def test_list_shows_the_projects_jobs(cli: Cli, stacks: dict) -> None:
    first, second = submitted(cli), submitted(cli, "--set", "n=3")
    rows = cli.json("list")
    assert {r["job_id"] for r in rows} == {first["job_id"], second["job_id"]}
    table = cli("list")
    assert "jobs of mlhpc in us-east-1" in table.stdout and first["job_id"] in table.stdout
    # A job not made by mlhpc for this project is not listed.
    queue = stacks["mlhpc-hpc"]["JobQueueCpu"]
    boto3.client("batch", region_name="us-east-1").submit_job(
        jobName="someone-else", jobQueue=queue, jobDefinition=stacks["mlhpc-hpc"]["JobDefinitionHello"]
    )
    assert len(cli.json("list")) == 2


def test_list_workloads_needs_no_aws(cli: Cli) -> None:
    data = cli.json("list", "--workloads")
    hello = next(w for w in data if w["name"] == "hello")
    assert hello["backends"] == ["batch", "eks", "local", "sagemaker"]
    assert hello["arguments"] == {"n": 10000, "chunk": 1000, "stop_after_chunks": 0}


def test_cancel_a_queued_job_and_refuse_an_ended_one(
    cli: Cli, stacks: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlhpc_app.aws import batch as adapter
    from mlhpc_app.aws.jobs import JobInfo

    job = submitted(cli)
    ended = cli("cancel", job["job_id"])
    assert ended.exit_code == 1
    assert f"error: job {job['job_id']} already ended SUCCEEDED; there is nothing to cancel" in ended.stderr
    # moto ends jobs at once; pretend the first describe saw it RUNNABLE to reach TerminateJob.
    real = adapter.describe
    seen: list[str] = []

    def runnable_once(aws: object, job_id: str) -> JobInfo:
        info = real(aws, job_id)  # type: ignore[arg-type]
        if not seen:
            seen.append(job_id)
            info.status = "RUNNABLE"
        return info

    monkeypatch.setattr(adapter, "describe", runnable_once)
    result = cli("cancel", job["job_id"], "--reason", "wrong n")
    assert result.exit_code == 0, result.output
    assert f"cancel requested for {job['job_id']} (was RUNNABLE, now " in result.stdout
    assert result.stdout.rstrip().endswith("): wrong n")


def test_results_downloads_and_shows_metrics(cli: Cli, stacks: dict, tmp_path: Path) -> None:
    job = submitted(cli)
    missing = cli("results", job["job_id"])
    assert missing.exit_code == 1
    assert f"error: no outputs under s3://mlhpc-results-123/hello/{job['run_id']}/" in missing.stderr
    s3 = boto3.client("s3", region_name="us-east-1")
    prefix = f"hello/{job['run_id']}/"
    s3.put_object(
        Bucket="mlhpc-results-123",
        Key=prefix + "metrics.json",
        Body=json.dumps({"total": 50005000, "n": 10000}),
    )
    s3.put_object(Bucket="mlhpc-results-123", Key=prefix + "plot.png", Body=b"\x89PNG")
    result = cli("results", job["job_id"])
    assert result.exit_code == 0, result.output
    local = Path("results") / "hello" / job["run_id"]
    assert f"2 file(s) from s3://mlhpc-results-123/{prefix} -> {local}/" in result.stdout
    assert "50005000" in result.stdout
    assert f"plot: {local / 'plot.png'}" in result.stdout
    data = cli.json("results", job["job_id"], "--dest", str(tmp_path / "elsewhere"))
    assert data["metrics"] == {"total": 50005000, "n": 10000}
    assert (tmp_path / "elsewhere" / "hello" / job["run_id"] / "metrics.json").is_file()


def test_outputs_shows_both_stacks(cli: Cli, stacks: dict) -> None:
    data = cli.json("outputs")
    assert data["mlhpc-storage"]["ResultsBucketName"] == "mlhpc-results-123"
    assert data["mlhpc-hpc"]["JobDefinitionHello"] == stacks["mlhpc-hpc"]["JobDefinitionHello"]
    table = cli("outputs")
    assert "mlhpc-hpc (us-east-1)" in table.stdout and "JobQueueGpuSpot" in table.stdout


def test_every_command_has_examples_in_help(cli: Cli) -> None:
    for command in ("run", "submit", "status", "logs", "cancel", "list", "results", "outputs", "validate"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "Examples" in result.stdout and f"mlhpc {command}" in result.stdout, command
    top = cli("--help").stdout
    assert "mlhpc submit pinn --nodes 2 --detach" in top


def test_no_help_example_sends_a_multi_node_job_to_spot(cli: Cli) -> None:
    """Batch runs no multi-node parallel job on a Spot compute environment: never show one."""
    help_text = cli("submit", "--help").stdout
    examples = [line.strip() for line in help_text.splitlines() if line.strip().startswith("mlhpc submit ")]
    assert any("--nodes 2" in e for e in examples)
    for example in examples:
        if "--nodes" in example:
            assert "gpu-spot" not in example, example


def test_results_refuses_a_key_that_would_land_outside_dest(cli: Cli, stacks: dict, tmp_path: Path) -> None:
    """Any job role may write the results bucket; `mlhpc results` on a workstation must not follow its keys out."""
    job = submitted(cli)
    s3 = boto3.client("s3", region_name="us-east-1")
    prefix = f"hello/{job['run_id']}/"
    s3.put_object(Bucket="mlhpc-results-123", Key=prefix + "metrics.json", Body=b"{}")
    s3.put_object(Bucket="mlhpc-results-123", Key=prefix + "../../../../.bashrc", Body=b"planted")
    result = cli("results", job["job_id"], "--dest", str(tmp_path / "dest"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "would be written outside" in result.stderr and ".bashrc" in result.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
