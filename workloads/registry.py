"""Find every workload: each package ``workloads/<name>/`` whose ``spec.py`` exposes ``SPEC``.

Discovery is by directory, so a workload added on another branch is known as soon as its
folder exists: zero, one or many. ``MLHPC_WORKLOADS_DIR`` points the registry at another
``workloads`` folder (the package must still be importable as ``workloads``).
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from pathlib import Path

from mlhpc.errors import KEY_LIMIT, MlhpcError, UnknownWorkload, echo
from mlhpc.spec import WorkloadSpec

# Folders under workloads/ that hold shared code, not a job.
NOT_WORKLOADS = frozenset({"common", "__pycache__"})


def workloads_dir() -> Path:
    """Return the folder holding the workload packages."""
    override = os.environ.get("MLHPC_WORKLOADS_DIR")
    if override:
        return Path(override)
    import workloads

    return Path(next(iter(workloads.__path__)))


class BadWorkload(MlhpcError):
    """A workload package whose spec cannot be imported or is not a WorkloadSpec."""


@cache
def _discover(root: Path) -> dict[str, WorkloadSpec]:
    specs: dict[str, WorkloadSpec] = {}
    for spec_file in sorted(root.glob("*/spec.py")):
        package = spec_file.parent.name
        if package in NOT_WORKLOADS or package.startswith((".", "_")):
            continue
        module = f"workloads.{package}.spec"
        try:
            spec = getattr(importlib.import_module(module), "SPEC", None)
        except Exception as err:  # a broken workload must not hide the others' names
            raise BadWorkload(
                f"{module} cannot be imported: {type(err).__name__}: {err}",
                fix=f"fix {spec_file} (try `python -c 'import {module}'`)",
            ) from err
        if not isinstance(spec, WorkloadSpec):
            continue
        if spec.name != package:
            raise BadWorkload(
                f"{spec_file} declares SPEC.name={spec.name!r} but lives in workloads/{package}/",
                fix=f"set name={package!r} in the spec, or rename the folder",
            )
        specs[spec.name] = spec
    return specs


def all_specs() -> dict[str, WorkloadSpec]:
    """Return every discovered workload spec by name (sorted)."""
    return dict(_discover(workloads_dir().resolve()))


def names() -> list[str]:
    """Return the names of every workload."""
    return sorted(all_specs())


def get(name: str) -> WorkloadSpec:
    """Return one workload's spec, or raise UnknownWorkload listing the known ones."""
    specs = all_specs()
    if name in specs:
        return specs[name]
    from mlhpc.errors import did_you_mean

    known = ", ".join(sorted(specs)) or "none (no workloads/<name>/spec.py defines SPEC)"
    guess = did_you_mean(name, sorted(specs))
    hint = f" (did you mean '{guess}'?)" if guess else ""
    raise UnknownWorkload(
        f"unknown workload {echo(name, KEY_LIMIT)}{hint}; known workloads: {known}",
        fix="pick one of the known workloads; `mlhpc list --workloads` shows them with their backends",
    )
