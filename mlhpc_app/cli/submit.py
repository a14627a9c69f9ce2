"""`mlhpc submit WORKLOAD`: send a run to AWS Batch, SageMaker or EKS, then follow it."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from mlhpc import spec as workload_spec
from mlhpc.contract import QueueKind
from mlhpc.errors import BackendUnsupported, InputMissing
from mlhpc.spec import WorkloadArgs, WorkloadSpec
from mlhpc_app import backends
from mlhpc_app.aws import jobs as awsjobs
from mlhpc_app.aws.inputs import require_objects
from mlhpc_app.cli import jobs
from mlhpc_app.cli.aws_options import (
    CONFIG_OPTION,
    POLL_OPTION,
    PROFILE_OPTION,
    REGION_OPTION,
    SETS_OPTION,
    Target,
    target,
)
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.follow import follow, summary_table
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, print_json
from mlhpc_app.cli.workload_args import parse_sets, with_program
from mlhpc_app.cost import job as job_cost
from workloads import registry

# The choices of --backend: the backends that implement the interface (mlhpc_app.backends.BACKENDS).
RemoteBackend = StrEnum("RemoteBackend", {b.name: b.value for b in backends.BACKENDS})  # type: ignore[misc]


def _next_commands(job_id: str) -> list[str]:
    return [
        f"mlhpc status {job_id}",
        f"mlhpc logs {job_id} --follow",
        f"mlhpc results {job_id}",
        f"mlhpc cancel {job_id}",
    ]


@handle_errors
def submit(
    ctx: typer.Context,
    *,
    workload: str = typer.Argument(..., help="Workload name (`mlhpc list --workloads` shows them)."),
    backend: RemoteBackend | None = typer.Option(
        None, "--backend", "-b", help="batch, sagemaker or eks (default: the spec's)."
    ),
    nodes: int | None = typer.Option(
        None, "--nodes", "-n", min=1, max=256, help="Nodes (default: the spec's)."
    ),
    sets: list[str] = SETS_OPTION,
    input_uri: str | None = typer.Option(
        None,
        "--input",
        help="The job's input (s3:// prefix, or a path on the cluster's /fsx or /efs): SageMaker mounts it as "
        "the training channel, Batch and EKS pass it as the workload's input argument. An s3:// input must "
        "hold objects; it is checked before anything is submitted.",
    ),
    queue: QueueKind | None = typer.Option(
        None,
        "--queue",
        "-q",
        help="Batch queue: gpu, gpu-spot or cpu (default: the one its job definition is sized for). "
        "Multi-node jobs need gpu (On-Demand): Batch runs no multi-node job on Spot.",
    ),
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Print the job id and the next commands; do not follow."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the request (or manifest); submit nothing. Batch and SageMaker dry runs read the deployed "
        "stacks' outputs (queue, job definition, buckets), so they need credentials, a region and HpcStack "
        "deployed; an EKS dry run with --image needs none.",
    ),
    client_token: str | None = typer.Option(
        None, "--client-token", help="Idempotency token: the same request with the same token makes one job."
    ),
    instance_type: str | None = typer.Option(
        None, "--instance-type", help="SageMaker instance type (default: by the spec)."
    ),
    image: str | None = typer.Option(
        None, "--image", help="EKS: container image (default: the HpcStack repository URI)."
    ),
    namespace: str = typer.Option("default", "--namespace", help="EKS: Kubernetes namespace."),
    demo: bool = typer.Option(
        False, "--demo", help="Use the workload's demo-size arguments (then --set on top)."
    ),
    poll_s: float = POLL_OPTION,
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Submit a workload run to AWS, then follow it until it ends (exit 1 if it failed).

    Queue, job definition, buckets and role come from the deployed stacks' outputs. Outputs go to
    s3://RESULTS/WORKLOAD/RUN-ID/, checkpoints to s3://CHECKPOINTS/WORKLOAD/RUN-ID/.

    Examples:

        mlhpc submit hello --set n=1000000

        mlhpc submit pinn --nodes 2 --queue gpu --detach

        mlhpc submit qnn --queue gpu-spot

        mlhpc submit pinn --backend sagemaker --dry-run --output json

        mlhpc submit qnn --set dataset=mnist --input s3://DATASETS/mnist/

        mlhpc submit hello --backend eks --dry-run

        mlhpc submit mpi --nodes 4 -- python /efs/train.py -g
    """
    spec = registry.get(workload)
    tgt = target(config, region, profile)
    be = backends.for_submit(tgt, spec, workload_spec.Backend(backend.value) if backend else None)
    args = parse_sets(
        spec, with_program(spec, list(sets), list(ctx.args)), base=dict(spec.demo_args) if demo else None
    )
    if nodes and nodes > 1 and not spec.distributed:
        raise BackendUnsupported(
            f"{spec.name} is not a distributed workload; --nodes {nodes} would run {nodes} copies of one job",
            fix="drop --nodes",
        )
    args, channel = _job_input(
        spec, args, input_uri, sagemaker_channel=be.kind is workload_spec.Backend.SAGEMAKER
    )
    if not dry_run:
        for uri in (channel, getattr(args, spec.input_arg, None) if spec.input_arg else None):
            if uri:
                require_objects(tgt.aws, str(uri), spec=spec)
    token = client_token or awsjobs.new_client_token()
    opts = backends.SubmitOptions(
        token=token,
        run_id=awsjobs.new_run_id(token),
        nodes=nodes,
        queue=queue,
        instance_type=instance_type,
        channel=channel,
        image=image,
        namespace=namespace,
        dry_run=dry_run,
    )
    prepared = be.prepare(spec, args, opts)
    if dry_run:
        cost = job_cost.for_dry_run(tgt, be.kind, prepared.request, spec.name, queue.value if queue else None)
        _show_dry_run(tgt, prepared, output, cost)
        return
    job_id, created = be.submit(prepared)
    name, out_uri, run_id = prepared.job_name, prepared.out_uri, prepared.run_id
    if output is OutputFormat.TABLE:
        verb = "submitted" if created else "already submitted with this client token:"
        console.print(f"{spec.name} {verb} [bold]{job_id}[/] ({be.kind.value}, {name}); outputs -> {out_uri}")
    if detach:
        if output is OutputFormat.JSON:
            print_json(
                {
                    "job_id": job_id,
                    "name": name,
                    "backend": be.kind.value,
                    "run_id": run_id if created else None,
                    "created": created,
                    "client_token": token,
                    "outputs": out_uri,
                    "next": _next_commands(job_id),
                }
            )
        else:
            console.print("next:")
            for line in _next_commands(job_id):
                console.print(f"  {line}")
        return
    info = _follow(tgt, job_id, poll_s=poll_s, quiet=output is OutputFormat.JSON)
    if output is OutputFormat.JSON:
        print_json({**info.to_dict(), "created": created, "client_token": token, "outputs": out_uri})
    else:
        console.print(summary_table(info))
        console.print(f"[bold green]{info.status}[/]. next: mlhpc results {job_id}")


def _show_dry_run(
    tgt: Target, prepared: backends.Prepared, output: OutputFormat, cost: job_cost.JobCost | None = None
) -> None:
    if output is OutputFormat.JSON:
        key = "objects" if prepared.text is not None else "request"
        print_json(
            {"dry_run": True, "backend": prepared.backend.value, "call": prepared.call, key: prepared.request}
            | {"cost": cost.to_dict() if cost else None}
        )
    elif prepared.text is not None:
        typer.echo(prepared.text, nl=False)
    else:
        console.print(f"[bold]dry run[/]: would call {prepared.call} in {tgt.aws.region} with:")
        console.print(json.dumps(prepared.request, indent=2, sort_keys=True), markup=False)
        if cost is not None:
            console.print(cost.line(), markup=False)
        console.print("nothing was submitted; drop --dry-run to submit.")


def _job_input(
    spec: WorkloadSpec, args: WorkloadArgs, uri: str | None, *, sagemaker_channel: bool
) -> tuple[WorkloadArgs, str | None]:
    """Return the arguments and the SageMaker channel for --input (refusing it where the job takes none)."""
    given = getattr(args, spec.input_arg) if spec.input_arg else None
    if uri is not None and spec.input_arg is None:
        raise InputMissing(
            f"{spec.name} takes no input; --input {uri} would not be read",
            fix="drop --input (the workload's arguments: `--set key=value`)",
        )
    if uri is not None and given:
        raise InputMissing(
            f"--input {uri} and --set {spec.input_arg}={given} both name {spec.name}'s input",
            fix="give one of them",
        )
    if uri is None and not given and spec.input_required:
        raise InputMissing(
            f"{spec.name} needs an input",
            fix=f"pass --input s3://BUCKET/PREFIX (or --set {spec.input_arg}=...)",
        )
    if uri is None:
        return args, None
    assert spec.input_arg is not None
    if sagemaker_channel:
        return args, uri  # mounted at /opt/ml/input/data/training, which the workload reads when unset
    return spec.validate_args({**args.model_dump(mode="json"), spec.input_arg: uri}), None


def _follow(tgt: Target, job_id: str, *, poll_s: float, quiet: bool) -> awsjobs.JobInfo:
    return follow(
        lambda: jobs.describe(tgt, job_id),
        lambda info: jobs.log_reader(tgt, info),
        poll_s=poll_s,
        quiet=quiet,
    )
