"""The estimate of one config: its synthesized assembly (the emulator's cache) priced from a table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlhpc.config import load_config, resolve_config_path
from mlhpc.pricing import PriceTable
from mlhpc_app.cost.model import Estimate, estimate
from mlhpc_app.emulate.assembly import digest, load_assembly
from mlhpc_app.emulate.batch import DEFAULT_WORKDIR
from mlhpc_app.emulate.template import Assembly


def for_config(
    config: Path | None,
    *,
    table: PriceTable | None = None,
    workdir: Path = DEFAULT_WORKDIR,
    assembly_dir: Path | None = None,
    on_synth: Callable[[], None] | None = None,
) -> Estimate:
    """Return the config's estimate (synthesizing its stacks unless the workdir has them)."""
    assembly = load_assembly(config, workdir=workdir, assembly_dir=assembly_dir, on_synth=on_synth)
    return estimate(assembly, table or PriceTable.load())


def cached(
    config: Path, *, table: PriceTable | None = None, workdir: Path = DEFAULT_WORKDIR
) -> Estimate | None:
    """Return the estimate when the config's assembly is already synthesized in the workdir, else None."""
    path = resolve_config_path(config)
    cfg = load_config(path)
    outdir = workdir.resolve() / "cdk.out" / digest(path.read_text(encoding="utf-8"))
    if not (outdir / "HpcStack.template.json").is_file():
        return None
    return estimate(
        Assembly.load(outdir, project=cfg.project.name, region=cfg.project.region), table or PriceTable.load()
    )
