"""`mlhpc run`: the job a cluster would run, on this machine, on an embedded Ray runtime.

Each worker is a Ray actor (its own process) that runs ``python -m <module> ...`` in
process through :mod:`runpy`, with the torchrun variables (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT, ...) set exactly as :func:`workloads.common.launch.rank_env` sets them, so
the workload meets the same rendezvous it meets on Batch. Ray is started for the run
and shut down after it: no cluster, no dashboard, a small object store (workers pass
exit codes, not data).
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.spec import WorkloadArgs, WorkloadSpec
from workloads.common.storage import is_s3

# Ray's minimum is 75 MiB; workers exchange only exit codes.
OBJECT_STORE_BYTES = 80 * 1024 * 1024


def new_run_id(now: datetime | None = None) -> str:
    """Return a sortable local run id, e.g. 20260101-120000-3f2a."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"


def run_module(module: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run `python -m module argv` in this process (env applied first); return its exit code."""
    if env:
        os.environ.update(env)
    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved


@dataclass(frozen=True)
class LocalRun:
    """What a local run was asked to do and where its outputs go."""

    spec: WorkloadSpec
    args: WorkloadArgs
    workers: int
    out: str  # a directory or an s3:// prefix (the workload publishes there)
    run_id: str
    checkpoint_dir: str | None = None
    resume: bool = True
    nproc_per_node: int | None = None  # an MPI workload's ranks, started by its own mpirun

    def argv(self) -> list[str]:
        """Return the entrypoint's options: the non-default arguments plus the run options."""
        run = invocation.RunOptions(
            out=self.out,
            checkpoint_dir=self.checkpoint_dir,
            resume=self.resume,
        )
        return invocation.options(self.spec, self.args, run, nproc_per_node=self.nproc_per_node)


def rank_envs(workers: int, port: int) -> list[dict[str, str]]:
    """Return the torchrun variables of each rank (only the variables, not the whole environment)."""
    from workloads.common.launch import rank_env

    return [rank_env(rank, workers, port, base={}) for rank in range(workers)]


def run(job: LocalRun, *, on_start: Callable[[str], None] | None = None) -> list[int]:
    """Run the job; return each rank's exit code (one worker: in process, several: Ray actors)."""
    if not is_s3(job.out):
        Path(job.out).mkdir(parents=True, exist_ok=True)
    if job.workers == 1:
        return [run_module(job.spec.module, job.argv())]
    return _run_ray(job, on_start=on_start)


def _run_ray(job: LocalRun, *, on_start: Callable[[str], None] | None) -> list[int]:
    os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    from workloads.common.dist import free_port

    started_here = not ray.is_initialized()
    if started_here:
        # Workers inherit the driver's environment: they import the workload from this checkout,
        # as `python -m` here would (no runtime_env: it would start Ray's slower env agent path).
        os.environ["PYTHONPATH"] = os.pathsep.join(_import_roots())
        ray.init(
            num_cpus=job.workers,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            configure_logging=True,
            logging_level=logging.ERROR,
            log_to_driver=True,
        )
    try:
        if on_start is not None:
            on_start(f"ray: {job.workers} workers started")
        worker_cls: Any = ray.remote(num_cpus=1)(RankWorker)
        actors: list[Any] = [worker_cls.remote() for _ in range(job.workers)]
        port = free_port()
        calls = [
            actor.run.remote(job.spec.module, job.argv(), env)
            for actor, env in zip(actors, rank_envs(job.workers, port), strict=True)
        ]
        codes: list[int] = list(ray.get(calls, timeout=job.spec.resources.timeout_s))
        for actor in actors:
            ray.kill(actor)
        return codes
    finally:
        if started_here:
            ray.shutdown()


def _import_roots() -> list[str]:
    """Return the sys.path entries that hold `mlhpc` and `workloads` (and what PYTHONPATH adds)."""
    import mlhpc
    import workloads

    roots = [str(Path(next(iter(m.__path__))).resolve().parent) for m in (workloads, mlhpc)]
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys([*roots, *extra]))


class RankWorker:
    """A Ray actor running one rank of a workload (one process per rank)."""

    def run(self, module: str, argv: list[str], env: dict[str, str]) -> int:
        """Run the workload's entrypoint as this rank; return its exit code."""
        # One thread per rank: the ranks share this machine's cores.
        env = {"OMP_NUM_THREADS": "1", **env}
        return run_module(module, argv, env)

    def pid(self) -> Any:
        """Return the process id (tests check ranks ran in separate processes)."""
        return os.getpid()
