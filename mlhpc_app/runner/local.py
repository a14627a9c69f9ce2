"""`mlhpc run`: the job a cluster would run, on this machine, on an embedded Ray runtime.

Each worker is a Ray actor (its own process) that runs ``python -m <module> ...`` in
process through :mod:`runpy`, with the torchrun variables (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT, ...) set exactly as :func:`workloads.common.launch.rank_env` sets them, so
the workload meets the same rendezvous it meets on Batch. Ray is started for the run
and shut down after it: on loopback only, no dashboard, a small object store (workers pass
exit codes, not data).

Fail fast and whole: the runner waits on every rank at once, and the first one that exits
non-zero or dies (killed, out of memory) stops all the others; a rank that freezes is ended by
its peers, whose collectives give up after the spec's ``collective_timeout_s``. Each rank's
output still streams to this terminal and is also kept in ``OUT/logs/rank-N.log``; the failure
(:class:`RankFailure`) names the rank, what became of it and its last log lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import runpy
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlhpc import invocation
from mlhpc.spec import WorkloadArgs, WorkloadSpec
from workloads.common import local_ray, rank_status
from workloads.common.storage import is_s3

# Ray's minimum is 75 MiB; workers exchange only exit codes.
OBJECT_STORE_BYTES = 80 * 1024 * 1024
# Lines of a failed rank's log the failure quotes.
TAIL_LINES = 20
# After the first failure, how long to collect others before stopping the rest: a rank that died and
# the peer that lost it fail together, and the report names both.
SETTLE_S = 1.0


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

    def log_dir(self) -> Path:
        """Return where each rank's log is kept: OUT/logs, or a temporary folder for an s3:// OUT."""
        if is_s3(self.out):
            return Path(tempfile.gettempdir()) / "mlhpc-logs" / self.spec.name / self.run_id
        return Path(self.out) / "logs"


@dataclass(frozen=True)
class RankFailure:
    """The rank that ended a run, what became of it and the end of its log."""

    rank: int
    code: int | None  # its exit code; None when it never returned one (its process died, or it ran too long)
    what: str  # "exited 1", "died (...)", "ran past ..."
    log: Path | None = None
    tail: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # what became of the other ranks, one line each

    @property
    def headline(self) -> str:
        """Return the rank and what became of it: 'rank 1 exited 1'."""
        return f"rank {self.rank} {self.what}"

    def details(self) -> list[str]:
        """Return the lines under the headline: the other ranks, then the end of the rank's log."""
        lines = list(self.others)
        if self.tail:
            where = f" ({self.log})" if self.log else ""
            lines.append(f"last {len(self.tail)} lines of rank {self.rank}'s log{where}:")
            lines.extend(f"  {line}" for line in self.tail)
        return lines


@dataclass(frozen=True)
class RunResult:
    """Each rank's exit code (None: it was stopped, or died) and the failure that ended the run, if any."""

    codes: list[int | None]
    failure: RankFailure | None = None
    logs: Path | None = None

    @property
    def ok(self) -> bool:
        """Whether every rank exited 0."""
        return self.failure is None and all(code == 0 for code in self.codes)


def rank_envs(workers: int, port: int) -> list[dict[str, str]]:
    """Return the torchrun variables of each rank (only the variables, not the whole environment)."""
    from workloads.common.launch import rank_env

    return [rank_env(rank, workers, port, base={}) for rank in range(workers)]


def run(job: LocalRun, *, on_start: Callable[[str], None] | None = None) -> RunResult:
    """Run the job (one worker: in process, several: Ray actors); the first rank to fail ends it."""
    if not is_s3(job.out):
        Path(job.out).mkdir(parents=True, exist_ok=True)
    if job.workers == 1:
        code = run_module(job.spec.module, job.argv())
        # Its output went to this terminal as it came: there is no log to quote.
        failure = None if code == 0 else RankFailure(0, code, rank_status.describe(code))
        return RunResult([code], failure)
    return _run_ray(job, on_start=on_start)


def _run_ray(job: LocalRun, *, on_start: Callable[[str], None] | None) -> RunResult:
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
        local_ray.init(
            num_cpus=job.workers,
            object_store_memory=OBJECT_STORE_BYTES,
            configure_logging=True,
            logging_level=logging.ERROR,
            log_to_driver=True,
        )
    actors: list[Any] = []
    try:
        if on_start is not None:
            on_start(f"ray: {job.workers} workers started")
        worker_cls: Any = ray.remote(num_cpus=1)(RankWorker)
        actors = [worker_cls.remote(rank) for rank in range(job.workers)]
        pids: list[int] = ray.get([actor.pid.remote() for actor in actors])
        logs = job.log_dir()
        logs.mkdir(parents=True, exist_ok=True)
        port = free_port()
        calls = {
            actor.run.remote(job.spec.module, job.argv(), env, str(logs / f"rank-{rank}.log")): rank
            for rank, (actor, env) in enumerate(zip(actors, rank_envs(job.workers, port), strict=True))
        }
        return _wait(calls, pids, logs, timeout_s=job.spec.resources.timeout_s)
    finally:
        for actor in actors:
            ray.kill(actor)  # a rank still running (the others failed) or frozen stops here
        if started_here:
            ray.shutdown()


def _wait(calls: dict[Any, int], pids: list[int], logs: Path, *, timeout_s: float) -> RunResult:
    """Wait on every rank at once; at the first failure collect the others briefly and describe it."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    codes: list[int | None] = [None] * len(pids)
    failed: dict[int, str] = {}  # rank -> what became of it, in the order seen
    pending = list(calls)
    deadline = time.monotonic() + timeout_s
    settle_until: float | None = None
    while pending:
        now = time.monotonic()
        until = deadline if settle_until is None else min(deadline, settle_until)
        ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, until - now))
        if not ready:
            if settle_until is None:  # the job's own limit, not the settling window
                for rank in (calls[ref] for ref in pending):
                    failed[rank] = f"ran past the workload's timeout_s ({timeout_s:g} s): stopped"
            break
        for ref in ready:
            rank = calls[ref]
            try:
                code = int(ray.get(ref))
            except RayActorError as err:
                failed[rank] = (
                    f"died: its process (pid {pids[rank]}) ended without an exit code ({_first_line(err)})"
                )
                continue
            except RayTaskError as err:  # run_module itself raised (the module could not be imported...)
                failed[rank] = f"failed to run: {_first_line(err.cause if err.cause else err)}"
                continue
            codes[rank] = code
            if code != 0:
                failed[rank] = rank_status.describe(code)
        if failed and settle_until is None:
            settle_until = time.monotonic() + SETTLE_S
    if not failed:
        return RunResult(codes, logs=logs)
    # The cause is a rank that died (no exit code, or killed by a signal) where there is one: its peers'
    # ordinary non-zero exits are what losing it did to them, whichever Ray reported first.
    died = [
        r for r in failed if (status := codes[r]) is None or status < 0 or status > 128
    ]  # 128 + N: signal N
    first = died[0] if died else next(iter(failed))
    others = [f"rank {rank} {what}" for rank, what in failed.items() if rank != first]
    for rank in range(len(pids)):
        if rank not in failed and codes[rank] is None:
            state = rank_status.FROZEN if rank_status.is_frozen(pids[rank]) else "was still running"
            others.append(f"rank {rank} {state}: stopped")
    log = logs / f"rank-{first}.log"
    failure = RankFailure(
        rank=first,
        code=codes[first],
        what=failed[first],
        log=log,
        tail=tuple(tail(log, TAIL_LINES)),
        others=tuple(others),
    )
    return RunResult(codes, failure, logs=logs)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def tail(path: Path, lines: int) -> list[str]:
    """Return the last `lines` non-empty lines of a text file (none if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


# The copier: its own process, so what a rank wrote just before it was killed still reaches the log
# (a thread of the rank would die with it, and the pipe's unread bytes with them).
_TEE = """
import os, sys
log = open(sys.argv[1], "ab", buffering=0)
while chunk := os.read(0, 65536):
    os.write(1, chunk)
    log.write(chunk)
"""


@contextlib.contextmanager
def tee_output(path: Path) -> Iterator[None]:
    """Copy everything written to this process's stdout and stderr (fds 1 and 2) to `path` as well.

    At the file-descriptor level, so C++ (gloo, NCCL) output is kept too, chunk by chunk as it
    comes, by a copier process per stream that outlives a rank killed mid-line. The output still
    reaches the original descriptors, which Ray streams to the driver's terminal.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved: dict[int, int] = {}
    copiers: list[subprocess.Popen[bytes]] = []
    try:
        for fd in (1, 2):
            saved[fd] = os.dup(fd)
            copier = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _TEE, str(path)], stdin=subprocess.PIPE, stdout=saved[fd]
            )
            copiers.append(copier)
            assert copier.stdin is not None
            os.dup2(copier.stdin.fileno(), fd)
            copier.stdin.close()  # fd now holds the pipe's only write end
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, original in saved.items():
            os.dup2(original, fd)  # closes the pipe's last write end: its copier reads EOF and exits
            os.close(original)
        for copier in copiers:
            try:
                copier.wait(timeout=10)
            except subprocess.TimeoutExpired:
                copier.kill()


def _import_roots() -> list[str]:
    """Return the sys.path entries that hold `mlhpc` and `workloads` (and what PYTHONPATH adds)."""
    import mlhpc
    import workloads

    roots = [str(Path(next(iter(m.__path__))).resolve().parent) for m in (workloads, mlhpc)]
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys([*roots, *extra]))


class RankWorker:
    """A Ray actor running one rank of a workload (one process per rank)."""

    def __init__(self, rank: int = 0) -> None:
        self.rank = rank

    def __repr__(self) -> str:
        # Ray prefixes each line a worker prints with this: "(rank 1 pid=123) ...".
        return f"rank {self.rank}"

    def run(self, module: str, argv: list[str], env: dict[str, str], log: str | None = None) -> int:
        """Run the workload's entrypoint as this rank (its output also kept in `log`); return its exit code."""
        # One thread per rank: the ranks share this machine's cores.
        env = {"OMP_NUM_THREADS": "1", **env}
        if log is None:
            return run_module(module, argv, env)
        with tee_output(Path(log)):
            return run_module(module, argv, env)

    def pid(self) -> Any:
        """Return the process id (tests check ranks ran in separate processes)."""
        return os.getpid()
