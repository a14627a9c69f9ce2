"""The layers contract (pyproject.toml, run by `make lint-code`) holds, and an upward import breaks it.

The check is import-linter's own `lint-imports` over a copy of the tree, so the test plays the
other side as CI does: the real contract, the real graph builder, one import added that goes up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contract() -> dict[str, object]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    [layers] = [c for c in config["contracts"] if c["type"] == "layers"]
    return {"roots": config["root_packages"], "layers": layers["layers"]}


def _copy_tree(dest: Path) -> None:
    for package in _contract()["roots"]:  # type: ignore[attr-defined]
        shutil.copytree(REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "HOME": str(root)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_contract_names_every_top_level_package_in_order() -> None:
    packages = sorted(p.parent.name for p in REPO.glob("*/__init__.py") if p.parent.name != "tests")
    contract = _contract()
    assert sorted(contract["layers"]) == packages  # type: ignore[arg-type]
    assert contract["layers"] == ["mlhpc_app", "stacks", "workloads", "mlhpc"]


@pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is not installed (make setup)")
@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("mlhpc/errors.py", "from mlhpc_app.aws import session"),  # the foundation reaching the application
        ("mlhpc/spec.py", "import workloads.registry"),  # the foundation reaching the workloads
        ("workloads/common/entry.py", "from stacks import assembly"),  # a workload reaching the stacks
        ("stacks/hpc_stack.py", "from mlhpc_app import backends"),  # a stack reaching the CLI's backends
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, upward: str) -> None:
    _copy_tree(tmp_path)
    clean = _lint(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    path = tmp_path / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{upward}  # noqa\n", encoding="utf-8")
    broken = _lint(tmp_path)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in broken.stdout, broken.stdout
