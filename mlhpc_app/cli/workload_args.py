"""Turn `--set key=value` options (and demo sizes) into a workload's validated arguments."""

from __future__ import annotations

import shlex
from typing import Any

from mlhpc import invocation
from mlhpc.spec import SpecError, WorkloadArgs, WorkloadSpec


def parse_sets(spec: WorkloadSpec, pairs: list[str], *, base: dict[str, Any] | None = None) -> WorkloadArgs:
    """Validate key=value strings on top of base values; list arguments take comma-separated values."""
    return invocation.from_pairs(spec, pairs, base=base)


# Commands that take a program after `--` (`mlhpc run mpi -- python train.py -g`): click hands the
# words to the command as ctx.args instead of refusing them.
PROGRAM_CONTEXT: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": False}


def with_program(spec: WorkloadSpec, sets: list[str], words: list[str]) -> list[str]:
    """Return the --set pairs with the words after `--` as the spec's program argument (shell-quoted)."""
    if not words:
        return sets
    if spec.program_arg is None:
        shown = shlex.join(words)
        raise SpecError(
            f"{spec.name} takes no program; got {shown[:200]!r} after the options",
            fix="drop it, or put the workload's own options in --set KEY=VALUE (a program after -- is for "
            "workloads that run one, such as mpi)",
        )
    if any(pair.partition("=")[0].strip() == spec.program_arg for pair in sets):
        raise SpecError(
            f"{spec.name}'s program is given twice: after -- and as --set {spec.program_arg}=...",
            fix="give it once",
        )
    return [*sets, f"{spec.program_arg}={shlex.join(words)}"]
