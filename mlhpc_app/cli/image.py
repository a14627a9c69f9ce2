"""`mlhpc image build|push WORKLOAD`: the workload's image at the deployment's one tag, in its ECR repository.

The reference is ``<Repository<Name>Uri output>:<hpc.image_tag>`` (:mod:`mlhpc.contract`), the
image Batch, SageMaker and EKS all run. ``build`` uses the first container engine on PATH
(docker, podman, finch; ``--engine`` to choose) from the repository root; without one (or with
``--in-account``) it starts HpcStack's CodeBuild project, which builds and pushes, and follows it.
``push`` logs in to ECR through boto3 (the password goes to the engine's stdin) and pushes
the tag; a tag already in ECR is reported and left alone, since the repositories' tags are
immutable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlhpc import contract
from mlhpc.errors import EngineUnavailable, JobFailed, MlhpcError
from mlhpc_app.aws import images
from mlhpc_app.aws.logs import LogReader
from mlhpc_app.cli.aws_options import (
    CONFIG_OPTION,
    POLL_OPTION,
    PROFILE_OPTION,
    REGION_OPTION,
    Target,
    target,
)
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.follow import follow
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.engine import REPO_ROOT, Echo, EngineName, dockerfile, find_engine
from workloads import registry

app = typer.Typer(
    name="image",
    help=(
        "Build and push a workload's container image at the deployment's tag (hpc.image_tag).\n\n"
        "Examples:\n\n"
        "  mlhpc image build pinn && mlhpc image push pinn\n\n"
        "  mlhpc image build pinn --engine podman\n\n"
        "  mlhpc image build pinn --in-account   (no engine here: CodeBuild builds and pushes)\n\n"
        "  make image-pinn"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

WORKLOAD_ARGUMENT = typer.Argument(..., help="Workload name (`mlhpc list --workloads` shows them).")
ENGINE_OPTION = typer.Option(
    None, "--engine", "-e", help="Container engine (default: the first of docker, podman, finch on PATH)."
)


VARIANT_OPTION = typer.Option(
    None,
    "--variant",
    help="An image variant, tagged TAG-VARIANT: bert's Neuron images (neuron: Inf2/Trn1, inf1: Inf1), the "
    "ones InferenceStack's Deployment runs on its Neuron node group.",
)


def _image(tgt: Target, workload: str, variant: str | None = None) -> images.ImageRef:
    spec = registry.get(workload)
    if variant is not None:
        known = sorted(set(contract.IMAGE_VARIANTS.values()))
        if variant not in known:
            raise MlhpcError(f"unknown image variant {variant!r}", fix=f"use one of: {', '.join(known)}")
        file = REPO_ROOT / dockerfile(spec.name)
        if "ARG VARIANT" not in file.read_text(encoding="utf-8"):
            raise MlhpcError(
                f"{spec.name}'s Dockerfile has no variants (no ARG VARIANT), so --variant {variant} would "
                "build its one image under another tag",
                fix="drop --variant",
            )
    return images.ImageRef(spec.name, tgt.deployment.repository_uri(spec), tgt.image_tag, variant)


def _echo(output: OutputFormat) -> Echo:
    """Engine output goes to stdout for people, to stderr when stdout carries JSON."""
    out = err_console if output is OutputFormat.JSON else console

    def echo(line: str) -> None:
        out.print(line, markup=False, highlight=False)

    return echo


def _config_flag(tgt: Target) -> str:
    return f"--config {tgt.config_path}"


def _exists(
    tgt: Target, ref: images.ImageRef, pushed: images.Pushed, output: OutputFormat, **extra: Any
) -> None:
    """Report a tag that is already in ECR (immutable: it is never pushed again)."""
    when = f", pushed {pushed.pushed_at:%Y-%m-%d %H:%M}" if pushed.pushed_at else ""
    if output is OutputFormat.JSON:
        print_json(
            {
                "workload": ref.workload,
                "image": ref.reference,
                "status": "exists",
                "digest": pushed.digest,
                **extra,
            }
        )
        return
    console.print(f"{ref.reference} is already in ECR ({pushed.digest or 'no digest'}{when}).", markup=False)
    console.print(
        "Its tags are immutable, so it is not built or pushed again. For new code, set hpc.image_tag in "
        f"{tgt.config_path} to a new tag and run `cdk deploy HpcStack` (the job definitions run that tag), "
        "then build and push.",
        markup=False,
    )


@handle_errors
def build(
    *,
    workload: str = WORKLOAD_ARGUMENT,
    engine: EngineName | None = ENGINE_OPTION,
    variant: str | None = VARIANT_OPTION,
    in_account: bool = typer.Option(
        False,
        "--in-account",
        help="Build in the account with HpcStack's CodeBuild project (from the source of the last "
        "`cdk deploy HpcStack`), which also pushes. Automatic when no engine is on PATH.",
    ),
    poll_s: float = POLL_OPTION,
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Build a workload's image, tagged `<repository-uri>:<hpc.image_tag>`.

    Runs `ENGINE build -f workloads/WORKLOAD/Dockerfile -t REF .` from the repository root.

    Examples:

        mlhpc image build pinn

        mlhpc image build pinn --engine podman --config config/examples/p5-efa-training.yaml

        mlhpc image build pinn --in-account --output json

        mlhpc image build bert --variant neuron --config config/examples/inferentia-bert.yaml
    """
    if in_account and engine is not None:
        raise MlhpcError(
            f"--engine {engine.value} and --in-account exclude each other",
            fix="drop --engine to build in the account, or drop --in-account to build here",
        )
    tgt = target(config, region, profile)
    ref = _image(tgt, workload, variant)
    relative = dockerfile(ref.workload)
    found = None if in_account else find_engine(engine)
    if found is None:
        if not in_account and output is OutputFormat.TABLE:
            console.print("no container engine on PATH (docker, podman, finch): building in the account.")
        _build_in_account(tgt, ref, poll_s=poll_s, output=output)
        return
    if output is OutputFormat.TABLE:
        console.print(f"building [bold]{ref.reference}[/] with {found.name.value}", markup=True)
    found.build(dockerfile=relative, reference=ref.reference, echo=_echo(output), variant=ref.variant)
    push = f"mlhpc image push {ref.workload}{f' --variant {ref.variant}' if ref.variant else ''} {_config_flag(tgt)}"
    if output is OutputFormat.JSON:
        print_json(
            {
                "workload": ref.workload,
                "image": ref.reference,
                "status": "built",
                "where": "local",
                "engine": found.name.value,
                "next": [push],
            }
        )
    else:
        console.print(f"built {ref.reference}. next: {push}", markup=False)


def _build_in_account(tgt: Target, ref: images.ImageRef, *, poll_s: float, output: OutputFormat) -> None:
    aws = tgt.aws
    pushed = images.find(aws, ref)
    if pushed is not None:
        _exists(tgt, ref, pushed, output, where="codebuild")
        return
    project = images.build_project(tgt.deployment)
    build_id = images.start_build(aws, project, ref)
    if output is OutputFormat.TABLE:
        console.print(f"started CodeBuild build [bold]{build_id}[/] of {ref.reference}", markup=True)

    def reader(info: Any) -> LogReader | None:
        group = info.tags.get("logGroup", "")
        return LogReader(aws, group, info.log_stream) if group and info.log_stream else None

    try:
        info = follow(
            lambda: images.describe_build(aws, build_id, workload=ref.workload),
            reader,
            poll_s=poll_s,
            quiet=output is OutputFormat.JSON,
        )
    except JobFailed as err:
        raise JobFailed(
            f"the in-account build of {ref.reference} failed: {err.reason or 'no reason given'}",
            reason=err.reason,
            last_lines=err.last_lines,
            fix="read the build's log lines above; fix the Dockerfile or the source, `cdk deploy HpcStack` "
            "(which uploads the source), then build again",
            next_command=f"aws codebuild batch-get-builds --ids {build_id}",
        ) from None
    if output is OutputFormat.JSON:
        print_json(
            {
                "workload": ref.workload,
                "image": ref.reference,
                "status": "pushed",
                "where": "codebuild",
                "build_id": build_id,
                "build_status": info.status,
            }
        )
    else:
        console.print(f"[bold green]{info.status}[/]: {ref.reference} is in ECR.", markup=True)


@handle_errors
def push(
    *,
    workload: str = WORKLOAD_ARGUMENT,
    engine: EngineName | None = ENGINE_OPTION,
    variant: str | None = VARIANT_OPTION,
    config: Path | None = CONFIG_OPTION,
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Push a workload's image (built by `mlhpc image build`) to its ECR repository.

    Logs in with an ECR token (the password goes to the engine's stdin), then pushes the
    immutable tag; a tag already in ECR is reported and not pushed again.

    Examples:

        mlhpc image push pinn

        mlhpc image push pinn --engine podman --output json
    """
    tgt = target(config, region, profile)
    ref = _image(tgt, workload, variant)
    aws = tgt.aws
    pushed = images.find(aws, ref)
    if pushed is not None:
        _exists(tgt, ref, pushed, output)
        return
    found = find_engine(engine)
    if found is None:
        raise EngineUnavailable(
            "no container engine on PATH (docker, podman, finch) to push with",
            fix="install one, or build and push in the account (CodeBuild)",
            next_command=f"mlhpc image build {ref.workload} --in-account {_config_flag(tgt)}",
        )
    echo = _echo(output)
    login = images.registry_login(aws, ref)
    found.login(username=login.username, password=login.password, registry=login.registry, echo=echo)
    found.push(
        reference=ref.reference,
        echo=echo,
        fix=f"is it built? `mlhpc image build {ref.workload} {_config_flag(tgt)}` builds {ref.reference}",
    )
    if output is OutputFormat.JSON:
        print_json(
            {"workload": ref.workload, "image": ref.reference, "status": "pushed", "engine": found.name.value}
        )
    else:
        console.print(f"pushed {ref.reference}", markup=False)


app.command("build")(build)
app.command("push")(push)
