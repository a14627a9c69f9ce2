"""`mlhpc run WORKLOAD`: run a workload on this machine (Ray actors for several workers)."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from mlhpc.errors import BackendUnsupported, JobFailed, MlhpcError, echo
from mlhpc.invocation import CHECKPOINT_OPTION, NO_RESUME_OPTION, OUT_OPTION, RESUMABLE_EXIT_CODE
from mlhpc.spec import Backend, Launcher
from mlhpc_app.cli.aws_options import SETS_OPTION
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.locations import check_location
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.cli.workload_args import parse_sets, with_program
from workloads import registry
from workloads.common.storage import is_s3

if TYPE_CHECKING:
    from mlhpc_app.runner.local import LocalRun


def format_metric(value: Any) -> str:
    """Return a metric as a person reads it: 4 significant digits, long series summarised."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 6:
        last = value[-1]
        tail = format_metric(last) if not isinstance(last, dict | list) else "{...}"
        return f"[{len(value)} values, last {tail}]"
    if isinstance(value, dict) and len(json.dumps(value)) > 80:
        return (
            "{"
            + ", ".join(f"{k}: {format_metric(v)}" for k, v in list(value.items())[:6])
            + (", ...}" if len(value) > 6 else "}")
        )
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    """Return metrics.json as a two-column table (floats to 4 digits, long series summarised)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        table.add_row(key, format_metric(metrics[key]))
    return table


def _show_dry_run(job: LocalRun, output: OutputFormat) -> None:
    """Print what `mlhpc run` would start (a LocalRun), having started and written nothing."""
    from mlhpc import invocation

    argv = [*invocation.entrypoint(job.spec), *job.argv()]
    if output is OutputFormat.JSON:
        print_json(
            {
                "dry_run": True,
                "workload": job.spec.name,
                "workers": job.nproc_per_node or job.workers,
                "argv": argv,
                "out": job.out,
                "checkpoint_dir": job.checkpoint_dir,
                "resume": job.resume,
            }
        )
        return
    if job.nproc_per_node:
        where = f"in this process, its mpirun starting {job.nproc_per_node} ranks"
    else:
        where = "in this process" if job.workers == 1 else f"on each of {job.workers} Ray actors"
    console.print(f"would run {where}: {shlex.join(argv)}", markup=False, highlight=False)
    console.print("nothing was run or written; drop --dry-run to run it.")


@handle_errors
def run(
    ctx: typer.Context,
    *,
    workload: str = typer.Argument(..., help="Workload name (`mlhpc list --workloads` shows them)."),
    sets: list[str] = SETS_OPTION,
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, max=64, help="Ranks to run (Ray actors when > 1)."
    ),
    out: str | None = typer.Option(
        # The workload's own run options, passed through under the same names; text, not a path:
        # an s3:// URI typed as a path would lose a slash and become a local folder s3:/bucket.
        None,
        OUT_OPTION,
        help="Output directory or s3:// prefix (default: results/WORKLOAD/RUN-ID).",
    ),
    demo: bool = typer.Option(
        False, "--demo", help="Use the workload's demo-size arguments (then --set on top)."
    ),
    checkpoint_dir: str | None = typer.Option(
        None,
        CHECKPOINT_OPTION,
        help="Checkpoint directory or s3:// prefix (default: OUT/checkpoints); reuse one to resume.",
    ),
    no_resume: bool = typer.Option(False, NO_RESUME_OPTION, help="Ignore an existing checkpoint."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Check the arguments and locations, print the command the run would start; run and write nothing.",
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run a workload locally: the job a cluster would run, with the same rendezvous, on this machine.

    One worker runs in this process; several run as Ray actors on an embedded Ray runtime
    (started and stopped by the command). Outputs land in results/WORKLOAD/RUN-ID/.

    Examples:

        mlhpc run hello

        mlhpc run hello --workers 2 --set n=1000000 --set chunk=100000

        mlhpc run hello --demo --output json

        mlhpc run mpi --workers 2 -- python -m workloads.mpi.demo

        mlhpc run superradiance --demo --set N=4 --dry-run
    """
    from mlhpc_app.runner.local import LocalRun, new_run_id
    from mlhpc_app.runner.local import run as run_local

    spec = registry.get(workload)
    if Backend.LOCAL not in spec.backends:
        raise BackendUnsupported(
            f"{workload} does not run locally (backends: {', '.join(sorted(spec.backends))})",
            fix=f"submit it instead: mlhpc submit {workload}",
        )
    sets = with_program(spec, list(sets), list(ctx.args))
    if workers > 1 and not spec.distributed:
        raise BackendUnsupported(
            f"{workload} is not a distributed workload; --workers {workers} would run {workers} copies of one job",
            fix="drop --workers (or use --workers 1)",
        )
    args = parse_sets(spec, sets, base=dict(spec.demo_args) if demo else None)
    run_id = new_run_id()
    out_dir = out or str(Path("results") / spec.name / run_id)
    remote = is_s3(out_dir)
    out_fix = f"give a directory you can write, or an s3:// prefix (default: results/{spec.name}/RUN-ID)"
    # Both locations are checked before anything is made: a bad one leaves nothing behind.
    check_location(OUT_OPTION, out_dir, fix=out_fix)
    if checkpoint_dir is not None:
        check_location(
            CHECKPOINT_OPTION,
            checkpoint_dir,
            fix="give a directory you can write, or an s3:// prefix (default: OUT/checkpoints)",
        )
    mpi = spec.launcher_for(args) is Launcher.MPI  # one process, whose mpirun starts the ranks
    job = LocalRun(
        spec=spec,
        args=args,
        workers=1 if mpi else workers,
        nproc_per_node=workers if mpi else None,
        out=out_dir,
        run_id=run_id,
        checkpoint_dir=checkpoint_dir,
        resume=not no_resume,
    )
    if dry_run:
        _show_dry_run(job, output)
        return
    if not remote:
        try:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise MlhpcError(
                f"cannot use {OUT_OPTION} {echo(out_dir)}: {err.strerror or err}", fix=out_fix
            ) from None
    if output is OutputFormat.TABLE:
        where = (
            f"as {workers} MPI ranks (mpirun)"
            if mpi
            else ("in this process" if workers == 1 else f"as {workers} Ray actors")
        )
        console.print(f"[bold]{spec.name}[/] run {run_id} {where} -> {out_dir}/")
    started = time.perf_counter()
    if output is OutputFormat.JSON:
        # stdout carries only the JSON document; the workload's own lines go to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            result = run_local(job)
    else:
        result = run_local(job)
    wall_s = time.perf_counter() - started
    metrics_file = Path(out_dir) / "metrics.json"
    metrics = (
        json.loads(metrics_file.read_text(encoding="utf-8")) if not remote and metrics_file.is_file() else {}
    )
    if output is OutputFormat.JSON:
        print_json(
            {
                "workload": spec.name,
                "run_id": run_id,
                "out": str(out_dir),
                "workers": workers,
                "exit_codes": result.codes,
                "wall_s": round(wall_s, 2),
                "metrics": metrics,
            }
        )
    failure = result.failure
    if failure is not None:
        # A rank's failure is the job's, never a bug of mlhpc: exit 1 naming the rank (and its last lines).
        meaning = {
            2: "bad arguments or input",
            RESUMABLE_EXIT_CODE: "stopped after a checkpoint; run again with the same "
            f"{OUT_OPTION} or {CHECKPOINT_OPTION} to resume",
        }.get(failure.code if failure.code is not None else -1)
        text = f"{spec.name} run {run_id}: {failure.headline}" + (f": {meaning}" if meaning else "")
        if failure.log is None:  # one worker, in this process: its messages are just above
            raise MlhpcError(
                text + ("" if meaning else ": it failed (details above)"),
                fix="read the workload's messages above",
            )
        raise JobFailed(
            text,
            reason="; ".join(failure.others) or failure.headline,
            last_lines=list(failure.tail),
            fix=f"read rank {failure.rank}'s log {failure.log} (every rank's is in {result.logs})",
        )
    if output is OutputFormat.TABLE:
        if metrics:
            console.print(metrics_table(metrics, f"{spec.name} {run_id}: metrics ({wall_s:.1f} s)"))
        plots = [] if remote else sorted(Path(out_dir).glob("*.png"))
        for plot in plots:
            console.print(f"plot: {plot}")
        console.print(
            f"outputs: {out_dir}/  next: mlhpc submit {spec.name}"
            + "".join(f" --set {s}" for s in sets[: len(sets) - bool(ctx.args)])
            + (f" -- {shlex.join(ctx.args)}" if ctx.args else "")
        )
    elif not metrics and not remote:
        err_console.print(f"note: {spec.name} wrote no metrics.json in {out_dir}")
