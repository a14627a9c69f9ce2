"""CLI test fixtures: moto with the stacks deployed, a CliRunner, and a scratch working directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from mlhpc_app.cli.main import app
from tests.aws.harness import moto_stacks


@pytest.fixture(autouse=True)
def _scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command from a temp dir so results/ lands there, with a config naming the project."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLHPC_CONFIG", str(Path(__file__).resolve().parents[2] / "config" / "default.yaml"))
    monkeypatch.delenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", raising=False)


@pytest.fixture
def stacks() -> Iterator[dict[str, dict[str, str]]]:
    """Moto with StorageStack and HpcStack stand-ins deployed; yields their outputs by stack name."""
    with moto_stacks() as outputs:
        yield outputs


class Cli:
    """Invoke `mlhpc ...` through typer's CliRunner (stdout and stderr kept apart)."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args))

    def json(self, *args: str) -> Any:
        result = self(*args, "--output", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli() -> Cli:
    """Return the CLI invoker."""
    return Cli()
