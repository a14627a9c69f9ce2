"""Turn `--set key=value` options (and demo sizes) into a workload's validated arguments."""

from __future__ import annotations

from typing import Any

from mlhpc import invocation
from mlhpc.spec import WorkloadArgs, WorkloadSpec


def parse_sets(spec: WorkloadSpec, pairs: list[str], *, base: dict[str, Any] | None = None) -> WorkloadArgs:
    """Validate key=value strings on top of base values; list arguments take comma-separated values."""
    return invocation.from_pairs(spec, pairs, base=base)
