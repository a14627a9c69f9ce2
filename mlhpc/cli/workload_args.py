"""Turn `--set key=value` options (and demo sizes) into a workload's validated arguments."""

from __future__ import annotations

import typing
from typing import Any

from mlhpc.spec import SpecError, WorkloadArgs, WorkloadSpec


def _is_sequence(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (list, tuple)


def parse_sets(spec: WorkloadSpec, pairs: list[str], *, base: dict[str, Any] | None = None) -> WorkloadArgs:
    """Validate key=value strings on top of base values; list arguments take comma-separated values."""
    values: dict[str, Any] = dict(base or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                f"'{pair}' is not key=value", fix="write it as --set key=value, e.g. --set steps=100"
            )
        key = key.strip().replace("-", "_")
        field = spec.args.model_fields.get(key)
        if field is not None and _is_sequence(field.annotation):
            values[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            values[key] = value.strip()
    return spec.validate_args(values)
