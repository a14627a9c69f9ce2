"""Follow a job: a live status line, its logs as they arrive, a summary at the end; FAILED raises."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.table import Table

from mlhpc.errors import JobBlocked, JobFailed
from mlhpc_app.aws.cluster import blocked_fix
from mlhpc_app.aws.jobs import JobInfo
from mlhpc_app.backends import Lines
from mlhpc_app.cli.output import console


def _elapsed(info: JobInfo) -> str:
    seconds = info.duration_s
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f" {minutes}m{secs:02d}s"


def follow(
    describe: Callable[[], JobInfo],
    reader: Callable[[JobInfo], Lines | None],
    *,
    poll_s: float,
    quiet: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> JobInfo:
    """Poll until the job ends, printing status changes and new log lines; raise JobFailed on failure."""
    info = describe()
    logs: Lines | None = None
    last_status = last_reason = ""
    with console.status(f"{info.job_id}: {info.status}", spinner="dots") as status:
        while True:
            if info.status != last_status and not quiet:
                console.print(
                    f"[dim]{time.strftime('%H:%M:%S')}[/] {info.name or info.job_id}: [bold]{info.status}[/]"
                )
                last_status = info.status
            if info.status == "RUNNABLE" and info.reason and info.reason != last_reason:
                # why it waits: capacity, or a misconfiguration that will keep it waiting forever
                last_reason = info.reason
                if not quiet:
                    console.print(f"  waiting: {info.reason}", markup=False, highlight=False)
                fix = blocked_fix(info.reason)
                if fix is not None:
                    raise JobBlocked(
                        f"job {info.job_id} ({info.workload or info.name}) can never start as submitted: "
                        f"{info.reason}",
                        fix=f"{fix}; the job stays RUNNABLE until cancelled",
                        next_command=f"mlhpc cancel {info.job_id}",
                    )
            if logs is None or (info.log_stream and logs.stream != info.log_stream):
                logs = reader(info)
            if logs is not None:
                for line in logs.poll():
                    if not quiet:
                        console.print(line, markup=False, highlight=False)
            if info.done:
                break
            status.update(f"{info.job_id}: {info.status}{_elapsed(info)} (polling every {poll_s:g} s)")
            sleep(poll_s)
            info = describe()
    if info.failed:
        tail = list(logs.tail) if logs is not None else []
        raise JobFailed(
            f"job {info.job_id} ({info.workload or info.name}) {info.status}: {info.reason or 'no reason given'}",
            reason=info.reason,
            last_lines=tail[-20:],
            fix="read the reason and the log lines above; fix and submit again",
            next_command=f"mlhpc logs {info.job_id}",
        )
    return info


def summary_table(info: JobInfo) -> Table:
    """Return a job's key facts as a table."""
    table = Table(title=f"job {info.job_id}", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = [
        ("name", info.name),
        ("backend", info.backend),
        ("workload", info.workload),
        ("run id", info.run_id),
        ("status", info.status),
        ("reason", info.reason),
        ("nodes", str(info.nodes)),
        ("attempts", str(info.attempts) if info.attempts else ""),
        ("exit code", "" if info.exit_code is None else str(info.exit_code)),
        ("created", info.created.isoformat(timespec="seconds") if info.created else ""),
        ("duration", _elapsed(info).strip()),
        ("log stream", info.log_stream),
    ]
    for key, value in rows:
        if value:
            table.add_row(key, value)
    return table
