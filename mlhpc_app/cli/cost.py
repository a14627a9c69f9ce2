"""`mlhpc cost CONFIG`: what a config costs idle, at full scale and per unit used, before deploying it."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlhpc.pricing import TABLE_PATH, PriceTable
from mlhpc_app.cli.aws_options import PROFILE_OPTION
from mlhpc_app.cli.errors import handle_errors
from mlhpc_app.cli.output import OUTPUT_OPTION, OutputFormat, console, err_console, print_json
from mlhpc_app.cost import config as cost_config
from mlhpc_app.cost.model import Estimate, Kind
from mlhpc_app.cost.money import usd
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR


def idle_summary(est: Estimate) -> str:
    """Return the one-line idle total (`mlhpc validate` and the cost table print it)."""
    unknown = est.idle_unknown
    tail = f" + {len(unknown)} item(s) the price table lacks" if unknown else ""
    return f"idle cost: {usd(est.idle_monthly_usd)} a month in {est.region}{tail}"


def _quantity(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.4g}"


def _tables(est: Estimate) -> list[Table]:
    idle = Table(
        title=f"{est.project} in {est.region}: idle, per month (nothing running)", title_justify="left"
    )
    for column in ("stack", "item", "quantity", "unit", "unit price", "per month"):
        idle.add_column(
            column, justify="right" if column in ("quantity", "unit price", "per month") else "left"
        )
    for line in est.of(Kind.IDLE):
        idle.add_row(
            line.stack, line.item, _quantity(line.quantity), line.price.unit if line.price else line.key,
            usd(line.price.usd if line.price else None, digits=4), usd(line.usd),
        )  # fmt: skip
    idle.add_section()
    idle.add_row("total", "", "", "", "", usd(est.idle_monthly_usd))
    compute = Table(title="compute at full scale, per hour", title_justify="left")
    for column in ("stack", "environment", "market", "nodes", "per hour", "note"):
        compute.add_column(column, justify="right" if column in ("nodes", "per hour") else "left")
    for c in est.compute:
        hourly = (
            usd(c.usd_per_hour)
            if c.market == "on-demand"
            else f"unknown (at most {usd(c.spot_max_usd_per_hour)})"
        )
        compute.add_row(c.stack, c.item, c.market, f"{c.nodes} x {c.instance_type}", hourly, c.note)
    for line in [*est.of(Kind.FULL_SCALE), *est.of(Kind.RUNNING)]:
        compute.add_row(line.stack, line.item, "while running" if line.kind is Kind.RUNNING else "",
                        "", usd(line.usd, digits=3), line.note)  # fmt: skip
    usage = Table(title="usage-driven: unit prices, no volume guessed", title_justify="left")
    for column in ("stack", "resource", "item", "unit price"):
        usage.add_column(column)
    seen: set[tuple[str, str]] = set()
    for line in est.of(Kind.USAGE):
        if (line.stack, line.key) in seen:
            continue  # one row per stack and price, however many buckets or log groups share it
        seen.add((line.stack, line.key))
        price = (
            f"{usd(line.price.usd, digits=4)} per {line.price.unit}"
            if line.price
            else f"unknown ({line.key})"
        )
        usage.add_row(line.stack, line.resource, line.item, price)
    return [idle, compute, usage]


@handle_errors
def cost(
    *,
    config: Path | None = typer.Argument(
        None, help="Config file (default: $MLHPC_CONFIG or config/default.yaml)."
    ),
    online: bool = typer.Option(
        False,
        "--online",
        help="Refresh the rows this config needs from the AWS Price List API (needs credentials) and save them "
        "into the --prices table.",
    ),
    prices: Path = typer.Option(
        TABLE_PATH, "--prices", help="The price table to read (and --online to update)."
    ),
    workdir: Path = typer.Option(
        DEFAULT_WORKDIR, "--workdir", help="Where the synthesized assembly is cached."
    ),
    assembly: Path | None = typer.Option(
        None, "--assembly", help="A synthesized assembly of the same config (cdk.out of `mlhpc demo`)."
    ),
    profile: str | None = PROFILE_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Itemise what a config costs: each stack idle per month, the compute per hour at full scale, and the
    unit prices of what is billed by use, from the synthesized templates and a pinned price table.

    A price the table lacks is shown as unknown (never $0) and left out of the totals; `--online` fills
    what the AWS Price List API answers.

    Examples:

        mlhpc cost config/default.yaml

        mlhpc cost config/examples/p5-efa-training.yaml --online

        mlhpc cost config/default.yaml --output json
    """
    quiet = output is OutputFormat.JSON

    def note() -> None:
        if not quiet:
            err_console.print(
                "[dim]reading the synthesized stacks (synthesizing once per config and source)…[/]"
            )

    table = PriceTable.load(prices)
    est = cost_config.for_config(config, table=table, workdir=workdir, assembly_dir=assembly, on_synth=note)
    if online:
        from mlhpc_app.cost import online as price_list

        keys = {line.key for line in est.lines} | {f"ec2/{c.instance_type}/hour" for c in est.compute}
        found = price_list.refresh(price_list.connect(profile), est.region, keys)
        table = table.merged(found.prices)
        saved = table.save(prices)
        est = cost_config.for_config(config, table=table, workdir=workdir, assembly_dir=assembly)
        if not quiet:
            err_console.print(
                f"--online: {len(found.prices)} price(s) from the AWS Price List API saved to {saved}; "
                f"{len(found.missing)} key(s) it did not answer keep the table's rows (or stay unknown)."
            )
    if quiet:
        print_json(est.to_dict())
        return
    for rendered in _tables(est):
        console.print(rendered)
    console.print(idle_summary(est))
    for line in est.idle_unknown:
        console.print(
            f"  unknown: {line.stack} {line.item} (no {line.key} price for {est.region} in {prices})",
            markup=False,
        )
    console.print(
        "[dim]List prices, no free tier or discounts; Spot prices vary (Batch caps them at the On-Demand price). "
        f"Sources and dates: {prices}.[/]"
    )
