"""`mlhpc status | logs | cancel | list | results | outputs`: everything after a submit."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlhpc.errors import MlhpcError
from mlhpc_app.aws import batch
from mlhpc_app.cli import jobs
from mlhpc_app.cli.aws_options import (
    CONFIG_OPTION,
    POLL_OPTION,
    PROFILE_OPTION,
    REGION_OPTION,
    Target,
    target,
)
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.follow import summary_table
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.cli.run import metrics_table
from mlhpc_app.cost import job as job_cost
from workloads import registry
from workloads.common.storage import StorageError, local_target

JOB_ARGUMENT = typer.Argument(
    ..., help="Batch job id, SageMaker training job name, or eks/NAMESPACE/NAME (as mlhpc submit printed it)."
)


def jobs_table(rows: list[jobs.JobInfo], title: str) -> Table:
    """Return jobs as a table, one row each."""
    table = Table(title=title, title_justify="left")
    for column in ("job id", "name", "status", "created", "reason"):
        table.add_column(column)
    for info in rows:
        table.add_row(
            info.job_id,
            info.name,
            info.status,
            info.created.strftime("%Y-%m-%d %H:%M") if info.created else "",
            info.reason[:60],
        )
    return table


@handle_errors
def status(
    *,
    job: str | None = typer.Argument(None, help="Job id or name; none: every active job of the project."),
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show one job, or every job of the project that has not ended.

    Examples:

        mlhpc status

        mlhpc status 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11 --output json
    """
    tgt = target(config, region, profile)
    if job is None:
        active = [i for i in batch.list_jobs(tgt.aws, tgt.deployment) if not i.done]
        if output is OutputFormat.JSON:
            print_json([i.to_dict() for i in active])
        elif active:
            console.print(jobs_table(active, f"active jobs of {tgt.project} in {tgt.aws.region}"))
        else:
            console.print(
                f"no active jobs of {tgt.project} in {tgt.aws.region}; `mlhpc list` shows finished ones"
            )
        return
    info = jobs.describe(tgt, job)
    if output is OutputFormat.JSON:
        print_json(info.to_dict())
    else:
        console.print(summary_table(info))


@handle_errors
def logs(
    *,
    job: str = JOB_ARGUMENT,
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the job ends."),
    tail: int = typer.Option(0, "--tail", min=0, help="Print only the last N lines (0: all)."),
    poll_s: float = POLL_OPTION,
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Print a job's log lines from CloudWatch Logs (the stream of its latest attempt).

    Examples:

        mlhpc logs 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11

        mlhpc logs 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11 --follow
    """
    tgt = target(config, region, profile)
    info = jobs.describe(tgt, job)
    reader = jobs.log_reader(tgt, info)
    lines: list[str] = reader.poll() if reader is not None else []
    if tail:
        lines = lines[-tail:]
    if output is OutputFormat.JSON and not follow_:
        print_json(
            {"job_id": info.job_id, "status": info.status, "log_stream": info.log_stream, "lines": lines}
        )
        return
    if reader is None and info.done:
        err_console.print(f"job {info.job_id} is {info.status} and wrote no logs")
    for line in lines:
        typer.echo(line)
    while follow_ and not info.done:
        time.sleep(poll_s)
        info = jobs.describe(tgt, job)
        reader = reader or jobs.log_reader(tgt, info)
        for line in reader.poll() if reader is not None else []:
            typer.echo(line)
    if follow_:
        err_console.print(f"job {info.job_id} {info.status}" + (f": {info.reason}" if info.reason else ""))


@handle_errors
def cancel(
    *,
    job: str = JOB_ARGUMENT,
    reason: str = typer.Option(
        "cancelled with mlhpc cancel", "--reason", help="Recorded as the job's status reason."
    ),
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Stop a job, whether it is queued or running (Batch TerminateJob, SageMaker StopTrainingJob).

    Examples:

        mlhpc cancel 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11

        mlhpc cancel mlhpc-pinn-3f2a9c1b7d4e --reason "wrong learning rate"
    """
    tgt = target(config, region, profile)
    before = jobs.describe(tgt, job)
    if before.done:
        raise MlhpcError(
            f"job {before.job_id} already ended {before.status}; there is nothing to cancel",
            next_command=f"mlhpc results {before.job_id}",
        )
    jobs.cancel(tgt, job, reason)
    after = jobs.describe(tgt, job)
    if output is OutputFormat.JSON:
        print_json({"job_id": after.job_id, "was": before.status, "status": after.status, "reason": reason})
    else:
        console.print(
            f"cancel requested for {after.job_id} (was {before.status}, now {after.status}): {reason}"
        )


@handle_errors
def list_(
    *,
    workloads: bool = typer.Option(False, "--workloads", help="List the known workloads instead of jobs."),
    limit: int = typer.Option(50, "--limit", min=1, help="Show at most this many jobs (newest first)."),
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """List the project's jobs in HpcStack's queues, newest first (or the known workloads).

    Examples:

        mlhpc list

        mlhpc list --workloads

        mlhpc list --output json --limit 10
    """
    if workloads:
        _list_workloads(output)
        return
    tgt = target(config, region, profile)
    rows = sorted(
        batch.list_jobs(tgt.aws, tgt.deployment),
        key=lambda i: i.created.timestamp() if i.created else 0,
        reverse=True,
    )[:limit]
    if output is OutputFormat.JSON:
        print_json([i.to_dict() for i in rows])
    elif rows:
        console.print(jobs_table(rows, f"jobs of {tgt.project} in {tgt.aws.region}"))
    else:
        console.print(f"no jobs of {tgt.project} in {tgt.aws.region} yet; next: mlhpc submit WORKLOAD")


def _list_workloads(output: OutputFormat) -> None:
    specs = registry.all_specs()
    data: list[dict[str, Any]] = [
        {
            "name": s.name,
            "description": s.description,
            "backends": sorted(s.backends),
            "default_backend": s.default_backend.value,
            "nodes": s.resources.nodes,
            "gpus_per_node": s.resources.gpus_per_node,
            "efa": s.resources.efa,
            "distributed": s.distributed,
            "image": s.image,
            "arguments": s.defaults(),
        }
        for s in specs.values()
    ]
    if output is OutputFormat.JSON:
        print_json(data)
        return
    table = Table(title="workloads", title_justify="left")
    for column in ("name", "backends", "nodes", "GPUs/node", "EFA", "description"):
        table.add_column(column)
    for row in data:
        table.add_row(
            row["name"],
            ", ".join(row["backends"]),
            str(row["nodes"]),
            str(row["gpus_per_node"]),
            "yes" if row["efa"] else "no",
            row["description"],
        )
    console.print(table)


@handle_errors
def results(
    *,
    job: str = JOB_ARGUMENT,
    dest: Path = typer.Option(
        Path("results"), "--dest", help="Local folder; files go to DEST/WORKLOAD/RUN-ID/."
    ),
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Download a job's outputs from S3, show metrics.json as a table and where the plots are.

    Examples:

        mlhpc results 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11

        mlhpc results 5d0c2b9e-7a7e-4e0a-9d36-1f0d6b1c8a11 --dest /tmp/runs --output json
    """
    tgt = target(config, region, profile)
    info = jobs.describe(tgt, job)
    if not info.workload or not info.run_id:
        raise MlhpcError(
            f"job {info.job_id} was not submitted by mlhpc (no mlhpc:workload / mlhpc:run-id tags)",
            fix="find its outputs where its own command wrote them",
        )
    uri = jobs.results_uri(tgt, info)
    local = dest / info.workload / info.run_id
    count = _download(tgt, uri, local)
    if count == 0:
        state = "" if info.done else f" yet (the job is {info.status})"
        raise MlhpcError(
            f"no outputs under {uri}{state}",
            fix="outputs appear when the job finishes"
            if not info.done
            else "the job wrote nothing; read its logs",
            next_command=f"mlhpc logs {info.job_id}",
        )
    for archive in list(local.glob("*.tar.gz")):  # SageMaker's model.tar.gz holds /opt/ml/model
        with tarfile.open(archive) as tar:
            tar.extractall(local, filter="data")
    metrics_file = local / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    plots = sorted(str(p) for p in local.rglob("*.png"))
    cost = job_cost.for_job(tgt, info)
    if output is OutputFormat.JSON:
        print_json(
            {
                "job_id": info.job_id,
                "status": info.status,
                "source": uri,
                "path": str(local),
                "files": count,
                "metrics": metrics,
                "plots": plots,
                "cost": cost.to_dict() if cost else None,
            }
        )
        return
    console.print(f"{count} file(s) from {uri} -> {local}/")
    if metrics:
        console.print(metrics_table(metrics, f"{info.workload} {info.run_id}: metrics.json"))
    for plot in plots:
        console.print(f"plot: {plot}")
    if cost is not None:
        console.print(cost.line(), markup=False)


def _download(tgt: Target, uri: str, local: Path) -> int:
    from mlhpc_app.aws.session import with_backoff
    from mlhpc_app.aws.stacks import split_s3

    s3 = tgt.aws.client("s3")
    bucket, prefix = split_s3(uri)
    keys = [
        str(obj["Key"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    try:  # every key checked before anything is written: a job can write any key of the bucket
        targets = [
            (key, local_target(local, key[len(prefix) :], key=key)) for key in keys if key[len(prefix) :]
        ]
    except StorageError as err:
        raise MlhpcError(str(err), fix=f"inspect the objects under {uri} before downloading them") from None
    for key, target_path in targets:
        target_path.parent.mkdir(parents=True, exist_ok=True)

        def fetch(key: str = key, path: Path = target_path) -> None:
            s3.download_file(bucket, key, str(path))

        with_backoff(fetch, what="s3:GetObject")
    return len(targets)


@handle_errors
def outputs(
    *,
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Show the deployed StorageStack and HpcStack outputs the CLI works from.

    Examples:

        mlhpc outputs

        mlhpc outputs --config config/examples/p5-efa-training.yaml --output json
    """
    tgt = target(config, region, profile)
    data = tgt.deployment.all_outputs()
    if output is OutputFormat.JSON:
        print_json(data)
        return
    for stack, values in data.items():
        table = Table(title=f"{stack} ({tgt.aws.region})", title_justify="left")
        table.add_column("output")
        table.add_column("value")
        for key in sorted(values):
            table.add_row(key, str(values[key]))
        console.print(table)
