"""`mlhpc demo`: the main job on the embedded default — synthesize, check, summarize."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from mlhpc.config import DEFAULT_CONFIG, ConfigError, load_config
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.guardrails import GUARDS, GuardrailReport, StackReport, run_guardrails
from mlhpc_app.synth import synthesize


def _cell(report: StackReport, guard: str) -> str:
    open_ = len(report.findings[guard])
    acknowledged = report.acknowledged[guard]
    note = f" [dim]({acknowledged} ack)[/]" if acknowledged else ""
    return f"[red]{open_} open[/]{note}" if open_ else f"[green]pass[/]{note}"


def summary_table(report: GuardrailReport, title: str, idle: dict[str, float] | None = None) -> Table:
    """Return the per-stack table: resources, template size, idle cost a month and each guard's result."""
    table = Table(title=title, title_justify="left")
    table.add_column("stack")
    table.add_column("resources", justify="right")
    table.add_column("template", justify="right")
    if idle is not None:
        table.add_column("idle $/month", justify="right")
    for guard in GUARDS:
        table.add_column(guard)
    table.add_column("status")
    for stack in report.stacks:
        cost = [] if idle is None else [f"{idle[stack.stack]:,.2f}" if stack.stack in idle else "-"]
        table.add_row(
            stack.stack,
            str(stack.resources),
            f"{stack.size_bytes / 1024:.0f} KiB",
            *cost,
            *(_cell(stack, g) for g in GUARDS),
            "[bold green]PASS[/]" if stack.passed else "[bold red]FAIL[/]",
        )
    return table


def idle_by_stack(cfg: object, outdir: Path) -> dict[str, float]:
    """Return each stack's known idle monthly cost (`mlhpc cost` itemises it), from the assembly."""
    from mlhpc.pricing import PriceTable
    from mlhpc_app.cost.model import estimate
    from mlhpc_app.emulate.template import Assembly

    project = cfg.project  # type: ignore[attr-defined]
    return estimate(
        Assembly.load(outdir, project=project.name, region=project.region), PriceTable.load()
    ).idle_by_stack()


def report_dict(report: GuardrailReport) -> dict[str, object]:
    """Return the guardrail report as JSON-ready data."""
    return {
        "passed": report.passed,
        "stacks": [
            {
                "stack": s.stack,
                "resources": s.resources,
                "template_bytes": s.size_bytes,
                "passed": s.passed,
                "findings": {g: [str(f) for f in fs] for g, fs in s.findings.items()},
                "acknowledged": s.acknowledged,
            }
            for s in report.stacks
        ],
        "cdk_nag_acknowledgements": report.acknowledged_nag,
    }


def demo(
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="Config file to synthesize."),
    cdk_out: Path = typer.Option(Path("cdk.out"), "--cdk-out", help="Where to write the cloud assembly."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Synthesize every stack for a config, run every guardrail, and print a summary table.

    Examples:

        mlhpc demo

        mlhpc demo --config config/examples/cpu-dev.yaml --output json
    """
    try:
        cfg = load_config(config)
    except ConfigError as err:
        err_console.print(str(err), markup=False)
        err_console.print(f"Nothing was synthesized; `mlhpc validate {config}` shows the same report.")
        raise typer.Exit(1) from None
    started = time.perf_counter()
    with console.status(f"synthesizing {config} into {cdk_out}/ ..."):
        result = synthesize(cfg, cdk_out)
    synth_s = time.perf_counter() - started
    with console.status("running cdk-nag, cfn-lint, checkov and mlhpc checks ..."):
        report = run_guardrails(result.outdir)
    idle = idle_by_stack(cfg, result.outdir)
    if output is OutputFormat.JSON:
        data = report_dict(report)
        for row in data["stacks"]:  # type: ignore[attr-defined]
            row["idle_monthly_usd"] = round(idle[row["stack"]], 2) if row["stack"] in idle else None
        print_json({"config": str(config), "synth_s": round(synth_s, 1), **data})
    else:
        title = f"mlhpc demo: {config} -> {cdk_out}/ ({len(report.stacks)} stacks, synthesized in {synth_s:.0f} s)"
        console.print(summary_table(report, title, idle))
        for line in report.failures():
            err_console.print(f"[red]FAIL[/] {line}", markup=True)
        if report.passed:
            console.print(
                f"[bold green]Every stack passes every guardrail.[/] Next: `cdk deploy --all -c config={config}` "
                "(needs AWS credentials), or change a value in the config and run `make demo` again."
            )
    if not report.passed:
        raise typer.Exit(1)
