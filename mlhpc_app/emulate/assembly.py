"""Synthesize a config's cloud assembly once and keep it in the emulation's workdir.

Synthesis takes tens of seconds (a jsii node process), so the assembly is cached under
``WORKDIR/cdk.out/<digest>``; the digest covers the config text and every source file that
shapes the templates (``stacks/``, ``mlhpc/`` but for the emulator and the CLI, and the
workloads' specs), so an edit to any of them synthesizes afresh.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlhpc.config.model import Config

if TYPE_CHECKING:
    from mlhpc_app.emulate.template import Assembly

REPO = Path(__file__).resolve().parents[2]
NOT_SHAPING = ("mlhpc_app/emulate/", "mlhpc_app/cli/")


def _sources() -> list[Path]:
    files = [*REPO.glob("stacks/**/*.py"), *REPO.glob("mlhpc/**/*.py"), *REPO.glob("workloads/*/spec.py")]
    return sorted(p for p in files if not p.relative_to(REPO).as_posix().startswith(NOT_SHAPING))


def digest(config_text: str) -> str:
    """Return the cache key of an assembly: the config and the sources that shape the templates."""
    h = hashlib.sha256(config_text.encode())
    for path in _sources():
        h.update(path.relative_to(REPO).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def synthesized(config: Config, config_text: str, workdir: Path) -> Path:
    """Return the assembly directory for the config, synthesizing it unless the cache has it."""
    from mlhpc_app.synth import synthesize

    outdir = workdir / "cdk.out" / digest(config_text)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    # One synthesis per assembly: concurrent emulations of the same config wait for the first.
    with (outdir.parent / f"{outdir.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (outdir / "HpcStack.template.json").is_file():
            return outdir
        staging = outdir.with_name(f"{outdir.name}.{os.getpid()}")
        synthesize(config, staging)
        shutil.rmtree(outdir, ignore_errors=True)
        staging.rename(outdir)
    return outdir


def load_assembly(
    config: Path | None,
    *,
    workdir: Path,
    assembly_dir: Path | None = None,
    on_synth: Callable[[], None] | None = None,
) -> Assembly:
    """Return the config's assembly: the one given, else synthesized (cached in the workdir)."""
    from mlhpc.config import load_config, resolve_config_path
    from mlhpc.errors import OutputMissing
    from mlhpc_app.emulate.template import Assembly

    config_path = resolve_config_path(config)
    cfg = load_config(config_path)
    if assembly_dir is not None and not (assembly_dir / "HpcStack.template.json").is_file():
        raise OutputMissing(
            f"--assembly {assembly_dir} holds no HpcStack.template.json",
            fix="give the cdk.out of `mlhpc demo --config CONFIG` (or `cdk synth`) for the same config, "
            "or drop --assembly to synthesize",
        )
    if assembly_dir is None and on_synth is not None:
        on_synth()
    outdir = assembly_dir or synthesized(cfg, config_path.read_text(encoding="utf-8"), workdir.resolve())
    return Assembly.load(outdir, project=cfg.project.name, region=cfg.project.region)
