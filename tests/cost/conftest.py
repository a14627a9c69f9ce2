"""Cost fixtures: a config's synthesized assembly (once per session) read as the emulator reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlhpc.config import load_config
from mlhpc_app.emulate.template import Assembly


@pytest.fixture(scope="session")
def assembly_of(synth_config: Any) -> Any:
    """Return a function giving (assembly directory, Assembly) of a config file."""

    def _load(path: Path) -> tuple[Path, Assembly]:
        result = synth_config(path)
        cfg = load_config(path)
        return result.outdir, Assembly.load(
            result.outdir, project=cfg.project.name, region=cfg.project.region
        )

    return _load
