"""Shared by the emulation tests: one workdir per test session, so each config is synthesized once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def emulate_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a workdir shared by every xdist worker of the session (the assembly cache lives there)."""
    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "emulate"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rank on one thread: the emulated nodes share this machine's cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def emulate(workdir: Path, *argv: str, config: Path | None = None) -> Any:
    """Run `mlhpc emulate batch ... --output json` and return the CLI result."""
    return Cli()(
        "emulate", "batch", *argv, "--workdir", str(workdir),
        "--config", str(config or REPO / "config" / "default.yaml"), "--output", "json",
    )  # fmt: skip
