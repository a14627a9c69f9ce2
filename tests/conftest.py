"""Shared fixtures: fake AWS credentials, no network, and synthesized assemblies cached per config."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhpc.config import load_config
from mlhpc_app.synth import SynthResult, synthesize, use_project_node

# One compute thread per test process (set before anything imports torch; spawned ranks inherit
# it): `pytest -n 2` runs two processes on two cores, and OpenMP threads spinning beside another
# busy process made a small PyTorch test 20x slower (41 s instead of 2 s).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# moto_server and node_properties_described, for every test that runs a job against a moto server
pytest_plugins = ["tests.moto_fixtures"]

REPO = Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(
    [REPO / "config" / "default.yaml", *sorted((REPO / "config" / "examples").glob("*.yaml"))]
)


def config_id(path: Path) -> str:
    """Return a short test id for a config file."""
    return path.stem


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake credentials, a fixed region, no profile or IMDS lookups."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "MLHPC_CONFIG"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _node() -> None:
    use_project_node()


_SYNTH_CACHE: dict[Path, SynthResult] = {}


@pytest.fixture(scope="session")
def synth_config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return a function synthesizing a config file once per test session (per xdist worker)."""

    def _synth(path: Path) -> SynthResult:
        if path not in _SYNTH_CACHE:
            outdir = tmp_path_factory.mktemp(f"cdkout-{path.stem}")
            _SYNTH_CACHE[path] = synthesize(load_config(path), outdir)
        return _SYNTH_CACHE[path]

    return _synth


def load_template(result: SynthResult, stack: str) -> dict[str, Any]:
    """Return a stack's synthesized template as a dict."""
    data: dict[str, Any] = json.loads((result.outdir / f"{stack}.template.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def write_config(tmp_path: Path) -> Iterator[Any]:
    """Return a function writing YAML text to a temp file and returning its path."""

    def _write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    yield _write
