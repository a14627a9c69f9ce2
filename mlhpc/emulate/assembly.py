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
from pathlib import Path

from mlhpc.config.model import Config

REPO = Path(__file__).resolve().parents[2]
NOT_SHAPING = ("mlhpc/emulate/", "mlhpc/cli/")


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
    from mlhpc.synth import synthesize

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
