"""Find every workload: each package ``workloads/<name>/`` with a ``spec.py`` exposing ``SPEC``."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mlhpc.spec import WorkloadSpec

PACKAGE = "workloads"
NOT_WORKLOADS = frozenset({"common"})


@cache
def discover() -> dict[str, WorkloadSpec]:
    """Return {name: spec} for every workload package, sorted by name."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, WorkloadSpec] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg or info.name in NOT_WORKLOADS or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{PACKAGE}.{info.name}.spec")
        except ModuleNotFoundError as err:
            if err.name == f"{PACKAGE}.{info.name}.spec":
                continue
            raise
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, WorkloadSpec):
            raise TypeError(f"{PACKAGE}/{info.name}/spec.py must define SPEC = WorkloadSpec(...)")
        if spec.name in found:
            raise ValueError(f"two workloads are named {spec.name!r}")
        found[spec.name] = spec
    return dict(sorted(found.items()))


def pascal(name: str) -> str:
    """Return a workload name in PascalCase, as used in construct ids and outputs: pinn -> Pinn."""
    return "".join(part.capitalize() for part in name.split("_"))
