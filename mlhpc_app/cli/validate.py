"""`mlhpc validate FILE`: report every problem of a config file, with its fix."""

from __future__ import annotations

from pathlib import Path

import typer

from mlhpc.config import Config, ConfigError, ConfigIssue, Level, load_config_with_warnings
from mlhpc.config.hpc import workload_placement
from mlhpc.config.issues import format_value
from mlhpc.errors import ECHO_LIMIT
from mlhpc_app.cli.aws_options import PROFILE_OPTION, REGION_OPTION
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from workloads.registry import all_specs

STYLE = {Level.ERROR: "bold red", Level.WARNING: "yellow", Level.INFO: "cyan"}


def _issue_dict(issue: ConfigIssue) -> dict[str, object]:
    return {
        "level": issue.level.value,
        "code": issue.code,
        "path": issue.path,
        "line": issue.line,
        # A short value as it is (machines may compare it); a long one as the 'given:' line shows it:
        # shortened, or null when the message already shows it.
        "value": issue.value
        if issue.value is None or len(format_value(issue.value)) <= ECHO_LIMIT
        else issue.given(),
        "message": issue.message,
        "fix": issue.fix,
    }


def _print_issue(issue: ConfigIssue, source: str) -> None:
    style = STYLE[issue.level]
    console.print(
        f"[{style}]{issue.level.value.upper()}[/] [dim]\\[{issue.code}][/] {issue.location(source)}"
    )
    console.print(f"    {issue.message}", markup=False)
    given = issue.given()
    if given is not None:
        console.print(f"    given: {given}", markup=False)
    console.print(f"    fix:   {issue.fix}", markup=False)


@handle_errors
def validate(
    *,
    file: Path = typer.Argument(..., help="The config file to check, e.g. config/default.yaml."),
    online: bool = typer.Option(
        False,
        "--online",
        help="Also ask AWS: zones exist, instance types offered there, vCPU quotas suffice.",
    ),
    instance_types: list[str] = typer.Option(
        [], "--instance-type", help="--online: also check this instance type (repeatable)."
    ),
    nodes: int = typer.Option(
        1, "--nodes", min=1, help="--online: nodes per instance type the quota must fit."
    ),
    spot: bool = typer.Option(False, "--spot", help="--online: check Spot quotas instead of On-Demand."),
    region: str | None = REGION_OPTION,
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Check a config file and report every problem at once, each with its fix.

    Exits 0 when the file can be deployed (warnings are printed), 1 when it cannot.
    With --online it also asks the account (boto3, read-only): do the pinned zones exist, is
    each instance type offered in the zones, is the vCPU quota of its family large enough.

    Examples:

        mlhpc validate config/default.yaml

        mlhpc validate config/examples/p5-efa-training.yaml --output json

        mlhpc validate config/examples/p5-efa-training.yaml --online --instance-type p5.48xlarge --nodes 2
    """
    source = str(file)
    try:
        config, notes = load_config_with_warnings(file)
        errors: list[ConfigIssue] = []
    except ConfigError as err:
        errors, notes = list(err.issues), list(err.warnings)
        config = None
    if config is not None:
        # Every workload's Batch job must fit the queue it goes to (HPC012-HPC017).
        found = workload_placement(config, all_specs())
        errors += [i for i in found if i.level is Level.ERROR]
        notes += [i for i in found if i.level is not Level.ERROR]
    if online and config is not None:
        found = _online(
            config, region=region, profile=profile, instance_types=instance_types, nodes=nodes, spot=spot
        )
        errors += [i for i in found if i.level is Level.ERROR]
        notes += [i for i in found if i.level is not Level.ERROR]
    if output is OutputFormat.JSON:
        print_json(
            {"file": source, "valid": not errors, "issues": [_issue_dict(i) for i in [*errors, *notes]]}
        )
        raise typer.Exit(1 if errors else 0)
    for issue in [*errors, *notes]:
        _print_issue(issue, source)
    if errors:
        count = len(errors)
        err_console.print(
            f"[bold red]{source}: {count} error{'s' if count != 1 else ''}[/] - fix them and run "
            f"`mlhpc validate {source}` again."
        )
        raise typer.Exit(1)
    assert config is not None
    net, gpu, fsx = config.network, config.hpc.gpu, config.storage.fsx
    cluster = (
        f"GPU {', '.join(gpu.instance_types)}{' with EFA' if gpu.efa else ''} up to {gpu.max_vcpus} vCPUs"
        if gpu.enabled
        else "CPU only"
    )
    storage = f"FSx {fsx.deployment_type.value} {fsx.storage_capacity_gib} GiB" if fsx.enabled else "no FSx"
    console.print(
        f"[green]OK[/] {source}: project '{config.project.name}' in {config.project.region}, "
        f"VPC {net.cidr} over {net.az_count} zones, {net.nat_gateways} NAT gateway(s), "
        f"{len(net.interface_endpoints)} interface endpoints; {cluster}; {storage}"
        + (f" ({len(notes)} note{'s' if len(notes) != 1 else ''} above)" if notes else "")
        + (" - online checks passed" if online else "")
    )
    _print_placements(config)
    _print_idle_cost(file)


def _print_idle_cost(file: Path) -> None:
    """Print the idle monthly total when the stacks are already synthesized (`mlhpc cost` caches them)."""
    from mlhpc_app.cli.cost import idle_summary
    from mlhpc_app.cost.config import cached

    est = cached(file)
    if est is None:
        console.print(
            f"  idle cost: `mlhpc cost {file}` synthesizes the stacks and itemises it", markup=False
        )
    else:
        console.print(f"  {idle_summary(est)} (`mlhpc cost {file}` itemises it)", markup=False)


def _print_placements(config: Config) -> None:
    """Print where each workload's Batch job goes and what one node asks there."""
    from mlhpc import placement
    from workloads.registry import all_specs

    envs = placement.environments(config.hpc)
    for name, spec in all_specs().items():
        result = placement.place(spec, envs)
        if isinstance(result, placement.Sizing):
            console.print(
                f"  {name}: {result.queue.value} queue, {result.nodes} node(s) x {result.gpus} GPU, "
                f"{result.vcpus} vCPU, {result.memory_mib:,} MiB per node (sized for {result.instance_type}"
                f"{', EFA' if result.efa else ''})",
                markup=False,
            )


def _online(
    config: Config,
    *,
    region: str | None,
    profile: str | None,
    instance_types: list[str],
    nodes: int,
    spot: bool,
) -> list[ConfigIssue]:
    from mlhpc_app.aws import online
    from mlhpc_app.aws.session import Aws

    aws = Aws.connect(
        region=region or config.project.region, profile=profile, config_region=config.project.region
    )
    return online.check(aws, config, extra_instance_types=instance_types, nodes=nodes, spot=spot)
