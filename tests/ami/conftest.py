"""Helpers for the ami/ tests: paths, and running the image scripts with command shims on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AMI = REPO / "ami"
SCRIPTS = AMI / "scripts"
COMPONENTS = AMI / "components"


def shim(bin_dir: Path, name: str, body: str) -> None:
    """Write an executable stand-in for a command (nvidia-smi, curl, ...) into bin_dir."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)


def run(
    args: list[str], *, bin_dir: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with shims first on PATH and a minimal environment; never raises on a non-zero exit."""
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}" if bin_dir else os.environ["PATH"]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
        check=False,
    )
