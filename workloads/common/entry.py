"""The entrypoint every workload shares: ``python -m workloads.<name> [--option value ...]``.

A workload writes one function ``job(args, ctx) -> metrics`` and its ``main`` is::

    def main(argv: list[str] | None = None) -> int:
        return run(SPEC, job, argv)

:func:`run` decodes its options with the invocation codec (:mod:`mlhpc.invocation`, which
also says how each service reaches this entry point), prepares the output and checkpoint
directories (local or s3://), reads the rendezvous, installs the SIGTERM handler, writes
``metrics.json``, uploads outputs, and maps failures to exit codes: 0 done, 2 bad arguments
or input, 143 stopped by SIGTERM after a checkpoint (Batch retries it), 1 anything else.
Started by SageMaker (``train`` as the only argument) it follows the bring-your-own-container
contract instead (see :mod:`workloads.common.sagemaker`); given ``--nproc-per-node N`` (a node
of a multi-node Batch job) it starts N ranks through :mod:`workloads.common.batch_launch`.
"""

from __future__ import annotations

import argparse
import enum
import json
import math
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.errors import MlhpcError
from mlhpc.invocation import RESUMABLE_EXIT_CODE
from mlhpc.spec import Launcher, SpecError, WorkloadArgs, WorkloadSpec
from workloads.common import dist, sagemaker, storage
from workloads.common.checkpoint import (
    Checkpointer,
    GracefulStop,
    Preempted,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class WorkloadError(Exception):
    """A user mistake found while running (bad input file, impossible option mix): exit 2, no traceback."""


@dataclass
class RunContext:
    """What a job gets besides its arguments."""

    spec: WorkloadSpec
    out: Path
    checkpoint_location: str
    rendezvous: dist.Rendezvous
    stop: GracefulStop
    resume: bool = True
    inputs: dict[str, Path] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    failed_checks: list[str] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        """True on the rank that writes outputs."""
        return self.rendezvous.is_main

    def checkpointer(self, fingerprint: Mapping[str, Any]) -> Checkpointer:
        """Return a checkpointer for this run's checkpoint location, keyed by a fingerprint.

        Every rank may load from it; only the main rank should save.
        """
        return Checkpointer(self.checkpoint_location, fingerprint=fingerprint)

    @property
    def collective_timeout_s(self) -> float:
        """Seconds a collective may wait for the other ranks (pass it to dist.init_process_group)."""
        return dist.collective_timeout_s(self.spec)

    def elapsed_s(self) -> float:
        """Seconds since the job started."""
        return time.perf_counter() - self.started

    def log(self, message: str) -> None:
        """Print a line on the main rank (other ranks stay quiet)."""
        if self.is_main:
            print(message, flush=True)

    def fail_check(self, message: str) -> None:
        """Record a check of the results that failed (wrong values, not slow ones): the outputs and
        metrics.json are still written and published, then the job exits 1 with this message, so that a
        scheduler shows the run as failed rather than as a result."""
        self.failed_checks.append(message)


Job = Callable[[Any, RunContext], Mapping[str, Any]]


# --- options: decoded by the invocation codec ------------------------------------------------


def build_parser(spec: WorkloadSpec) -> argparse.ArgumentParser:
    """Return the entrypoint's argparse parser (the spec's arguments plus the run options)."""
    return invocation.parser(spec)


def parse_args(spec: WorkloadSpec, argv: Sequence[str]) -> tuple[WorkloadArgs, invocation.RunOptions]:
    """Parse argv into the spec's validated arguments and the run options (raises SpecError)."""
    decoded = invocation.parse(spec, argv)
    return decoded.args, decoded.run


# --- running ------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def write_metrics(out: Path, metrics: Mapping[str, Any]) -> Path:
    """Write metrics.json (numpy and torch scalars converted, non-finite floats as strings)."""
    path = out / "metrics.json"
    path.write_text(json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def run(spec: WorkloadSpec, job: Job, argv: Sequence[str] | None = None) -> int:
    """Parse options, run the job with a prepared context, write metrics; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [invocation.SAGEMAKER_TRAIN]:
        return sagemaker.run_training(spec, lambda a: run(spec, job, a), argv[1:])
    try:
        decoded = invocation.parse(spec, argv)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # argparse: --help (0) or a usage error it already printed (2)
        return int(exit_.code or 0)
    if decoded.nproc_per_node is not None:
        # A node of a multi-node Batch job (or a local run): become the launcher of one rank per GPU.
        if spec.launcher_for(decoded.args) is Launcher.MPI:
            from workloads.common import mpi_launch

            rank = invocation.launch_argv(spec, decoded)
            return mpi_launch.main(
                ["--slots-per-node", str(decoded.nproc_per_node), *rank[rank.index("--") :]]
            )
        from workloads.common import batch_launch

        return batch_launch.main(invocation.launch_argv(spec, decoded))
    args, options = decoded.args, decoded.run
    try:
        rdzv = dist.from_env()
        dist.collective_timeout_s(spec)  # a bad override is refused before any work starts
    except dist.RendezvousError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE

    out = options.out or invocation.default_out(spec)
    try:
        output = storage.OutputDir(out)
    except (storage.StorageError, OSError) as err:
        print(f"error: cannot use {invocation.OUT_OPTION} {out!r}: {err}", file=sys.stderr)
        return EXIT_USAGE
    checkpoint_location = options.checkpoint_dir or (
        f"{out.rstrip('/')}/checkpoints" if storage.is_s3(out) else str(output.path / "checkpoints")
    )
    stop = GracefulStop()
    ctx = RunContext(
        spec=spec,
        out=output.path,
        checkpoint_location=checkpoint_location,
        rendezvous=rdzv,
        stop=stop,
        resume=options.resume,
    )
    try:
        metrics = dict(job(args, ctx))
        if ctx.is_main:
            metrics.setdefault("workload", spec.name)
            metrics.setdefault("wall_s", round(ctx.elapsed_s(), 3))
            metrics.setdefault("world_size", rdzv.world_size)
            write_metrics(output.path, metrics)
            where = output.publish()
            print(f"{spec.name}: outputs in {where}", flush=True)
        if ctx.failed_checks:
            for message in ctx.failed_checks:
                print(f"error: {spec.name}: {message}", file=sys.stderr, flush=True)
            return EXIT_FAILED
        return EXIT_OK
    except Preempted as preempted:
        why = stop.signal_name or "signal"
        if preempted.saved:
            text = (
                f"{spec.name}: stopped by {why} after saving a checkpoint in {checkpoint_location}; "
                f"exit {RESUMABLE_EXIT_CODE} so the retry resumes from it"
            )
        else:
            text = (
                f"{spec.name}: stopped by {why} before finishing; no partial results were written and "
                f"exit {RESUMABLE_EXIT_CODE} makes the retry start over"
            )
        print(text, file=sys.stderr, flush=True)
        return RESUMABLE_EXIT_CODE
    except MlhpcError as err:  # a bad checkpoint or checkpoint directory, among others: message and fix
        print(f"error: {err.message}", file=sys.stderr)
        if err.fix:
            print(f"  fix: {err.fix}", file=sys.stderr)
        return EXIT_USAGE
    except (WorkloadError, storage.StorageError, SpecError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        lost = dist.lost_peer(err, rdzv, timeout_s=ctx.collective_timeout_s)
        if lost is not None:
            # Another rank's failure, not this one's bug: say which rank and why, no traceback.
            print(f"error: {spec.name}: {lost}", file=sys.stderr, flush=True)
            dist.leave()
            return EXIT_FAILED
        traceback.print_exc()
        print(f"{spec.name}: failed (a bug or an environment problem, details above)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        # leave the group on every path: a gloo group left to the interpreter's exit can end the rank in
        # std::terminate (SIGABRT, 134) after it finished, which a Job controller counts as a failure
        dist.leave()
        stop.restore()
