"""Mode nccl-tests: run the image's NVIDIA nccl-tests binary under the MPI launcher and read its table.

The machine image builds nccl-tests (``ami/components/nccl-tests.yaml``, version pinned in
``ami/versions.yaml``) with ``MPI=1`` into :data:`BIN_DIR`; ``MLHPC_NCCL_TESTS_BIN`` (:data:`BIN_ENV`,
the variable ``ami/scripts/nccl-tests.sh`` reads too) points elsewhere. The sweep's options become
the binary's flags (:func:`arguments`), one process per GPU (``-g 1``) started by
``workloads.common.mpi_launch`` on every node (``mpirun -np N -N S`` on the main node), and the
output is parsed (:func:`parse`) into the rows the table, the plot and ``--expect`` use.

What :func:`parse` reads is nccl-tests' own printing (``src/util.cu`` of the pinned version):

* ``#``-lines: the version, ``# Collective test starting: NAME``, the ``# nThread ...`` settings,
  ``# Using devices`` with one ``#  Rank r Group g Pid p on HOST device d [pci] NAME`` line per rank,
  the two-level column header, and the footer ``# Out of bounds values : N OK|FAILED`` and
  ``# Avg bus bandwidth    : X``;
* one row per size: ``size count type redop root`` then, out of place and in place,
  ``time algbw busbw #wrong`` (``#wrong`` is ``N/A`` under ``-c 0``);
* anything else (``NCCL version ...``, ``NCCL INFO`` lines, mpirun's warnings) is passed over.

Two conventions differ from the torch sweep's table and are converted: nccl-tests' count column is
the per-rank count for reduce_scatter and all_gather (the rows here count the elements of the full
buffer, ``size / element size``, for every collective), and its ``Out of bounds values`` counts the
failed checks (per rank and layout), not elements: the elements are the rows' ``#wrong``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from workloads.allreduce.collective import NCCL_TYPE_NAMES, PLACES, Measurement, Row
from workloads.allreduce.spec import Args
from workloads.common import dist, mpi_launch
from workloads.common.checkpoint import Preempted
from workloads.common.entry import WorkloadError

BIN_ENV = "MLHPC_NCCL_TESTS_BIN"
BIN_DIR = "/opt/nccl-tests/bin"  # where ami/scripts/nccl-tests.sh installs the *_perf binaries
STOP_GRACE_S = 60.0  # how long mpirun gets to stop the ranks after SIGTERM
TAIL_LINES = 20  # output lines quoted when a run fails

_TYPES = {printed: name for name, printed in NCCL_TYPE_NAMES.items()}
_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(-?\d+)((?:\s+\S+)+)\s*$")
_DEVICE = re.compile(r"^#\s+Rank\s+(\d+)\s+Group\s+(\d+)\s+Pid\s+(\d+)\s+on\s+(\S+)\s+device\s+(\d+)\s+(.*)$")
_VERSION = re.compile(r"^# nccl-tests version (\S+)")
_STARTING = re.compile(r"^# Collective test starting: (\S+)")
_OUT_OF_BOUNDS = re.compile(r"^# Out of bounds values : (\d+) (OK|FAILED)")
_AVG_BUSBW = re.compile(r"^# Avg bus bandwidth\s*: (\S+)")
_REDUCED = re.compile(r"^# Reducing maxBytes to (\d+)")


class NcclTestsError(WorkloadError):
    """The nccl-tests binary is missing, failed, or printed something that is not its table."""


@dataclass(frozen=True)
class Report:
    """What one nccl-tests run printed: its rows, ranks and verdict lines."""

    program: str | None
    version: str | None
    ranks: int
    hosts: tuple[str, ...]
    rows: list[Row]
    out_of_bounds: int
    avg_busbw: float
    notes: tuple[str, ...] = ()

    @property
    def wrong(self) -> int:
        """Return the wrong elements summed over every row and layout (None counts as 0)."""
        return sum(m.wrong or 0 for r in self.rows for m in r.results.values())


# --- the binary and its arguments ------------------------------------------------------------


def program_name(collective: str) -> str:
    """Return the nccl-tests binary of a collective (all_reduce -> all_reduce_perf)."""
    return f"{collective}_perf"


def binary(collective: str, env: Mapping[str, str] | None = None) -> Path:
    """Return the path of the collective's nccl-tests binary; raise NcclTestsError naming what would work."""
    env = os.environ if env is None else env
    directory = env.get(BIN_ENV) or BIN_DIR
    path = Path(directory) / program_name(collective)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    where = f"{BIN_ENV}={directory}" if env.get(BIN_ENV) else f"the default {BIN_DIR} ({BIN_ENV} unset)"
    raise NcclTestsError(
        f"mode=nccl-tests runs {path}, which is not an executable file here ({where}). The binaries come "
        f"with the cluster's machine image (ami/components/nccl-tests.yaml builds nccl-tests into {BIN_DIR}): "
        f"run this mode on HpcStack's GPU nodes (mlhpc submit allreduce --set mode=nccl-tests), point "
        f"{BIN_ENV} at a directory holding {program_name(collective)}, or sweep here with mode=collective "
        "and backend=gloo (or mpi)"
    )


def arguments(args: Args) -> list[str]:
    """Return the binary's flags for the sweep's options (nccl-tests' README, the pinned version's)."""
    return [
        "-b", str(args.min_bytes), "-e", str(args.max_bytes), "-f", str(args.step_factor),
        "-g", "1",  # one GPU per process: mpirun starts one process per GPU
        "-c", "1" if args.check else "0", "-n", str(args.iters), "-w", str(args.warmup_iters),
        "-o", args.op, "-d", NCCL_TYPE_NAMES[args.dtype], "-z", "1" if args.blocking else "0",
        "-a", "1",  # times averaged over the ranks, as the torch and MPI sweeps report them
    ]  # fmt: skip


def slots_per_node(rdzv: dist.Rendezvous, gpus: int) -> int:
    """Return the processes per node: the launcher's ranks per node when it started several, else the GPUs."""
    if rdzv.local_world_size > 1:
        return rdzv.local_world_size
    return max(1, gpus)


# --- parsing -----------------------------------------------------------------------------------


def _number(token: str, line: str) -> float:
    try:
        return float(token)
    except ValueError:
        raise NcclTestsError(f"nccl-tests row {line.strip()!r}: {token!r} is not a number") from None


def _measurement(tokens: Sequence[str], line: str) -> Measurement:
    time_us, algbw, busbw = (_number(t, line) for t in tokens[:3])
    wrong = None if tokens[3] == "N/A" else int(_number(tokens[3], line))
    return Measurement(time_us * 1e-6, algbw, busbw, wrong)


def _row(match: re.Match[str], line: str) -> Row | None:
    size, _count, type_name, redop, root = match.groups()[:5]
    values = match.group(6).split()
    if type_name not in _TYPES or len(values) not in (4, 8):
        return None  # a line that only looks like a row (a log line starting with numbers)
    dtype = _TYPES[type_name]
    itemsize = {"float32": 4, "float16": 2, "bfloat16": 2}[dtype]
    # the count of the full buffer, as the torch sweep's rows have it (nccl-tests prints the
    # per-rank count for reduce_scatter and all_gather)
    row = Row(size=int(size), count=int(size) // itemsize, dtype=dtype, op=redop, root=int(root))
    if len(values) == 8:
        row.results[PLACES[0]] = _measurement(values[:4], line)
        row.results[PLACES[1]] = _measurement(values[4:], line)
    else:  # out-of-place printed as blanks (nccl-tests' null body): in place only
        row.results[PLACES[1]] = _measurement(values, line)
    return row


def parse(text: str) -> Report:
    """Parse nccl-tests' stdout into a Report; raise NcclTestsError when it holds no complete run."""
    program = version = None
    devices: list[tuple[int, str]] = []
    rows: list[Row] = []
    out_of_bounds: int | None = None
    avg: float | None = None
    notes: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if m := _DEVICE.match(line):
                devices.append((int(m.group(1)), m.group(4)))
            elif m := _VERSION.match(line):
                version = m.group(1)
            elif m := _STARTING.match(line):
                program = m.group(1)
            elif m := _OUT_OF_BOUNDS.match(line):
                out_of_bounds = int(m.group(1))
            elif m := _AVG_BUSBW.match(line):
                avg = _number(m.group(1), line)
            elif m := _REDUCED.match(line):
                notes.append(f"nccl-tests reduced maxBytes to {m.group(1)} to fit the GPUs' memory")
            continue
        if (m := _ROW.match(line)) and (row := _row(m, line)) is not None:
            rows.append(row)
    ranks = [r for r, _ in devices]
    if len(set(ranks)) != len(ranks):
        raise NcclTestsError(
            f"nccl-tests listed rank numbers {sorted(ranks)}: several processes each think they are alone "
            "(a binary built without MPI=1, started by mpirun); use the image's build "
            "(ami/scripts/nccl-tests.sh builds with MPI=1)"
        )
    if out_of_bounds is None or avg is None or not rows:
        missing = [
            what
            for what, absent in (
                ("result rows", not rows),
                ("'# Out of bounds values' line", out_of_bounds is None),
                ("'# Avg bus bandwidth' line", avg is None),
            )
            if absent
        ]
        raise NcclTestsError(f"nccl-tests' output has no {', no '.join(missing)}: the run did not finish")
    sizes = [r.size for r in rows]
    if len(set(sizes)) != len(sizes):
        raise NcclTestsError(
            f"nccl-tests printed message sizes {sizes} more than once (several runs in one output?)"
        )
    return Report(
        program=program,
        version=version,
        ranks=len(devices),
        hosts=tuple(dict.fromkeys(host for _, host in devices)),
        rows=rows,
        out_of_bounds=out_of_bounds,
        avg_busbw=avg,
        notes=tuple(notes),
    )


def keep_places(rows: list[Row], places: tuple[str, ...]) -> list[Row]:
    """Drop the layouts not asked for (nccl-tests always runs both)."""
    for row in rows:
        row.results = {p: m for p, m in row.results.items() if p in places}
    return rows


# --- running -----------------------------------------------------------------------------------


def launch_argv(program: Sequence[str], slots: int) -> list[str]:
    """Return the command that runs `program` as `slots` processes on every node of the job."""
    return [sys.executable, "-m", mpi_launch.__name__, "--slots-per-node", str(slots), "--", *program]


def _pump(stream: IO[str], into: list[str], log: Callable[[str], None] | None) -> None:
    for line in stream:
        into.append(line)
        if log is not None:
            log(line.rstrip("\n"))


def run(
    program: Sequence[str],
    *,
    slots: int,
    env: Mapping[str, str],
    log: Callable[[str], None] | None,
    stopped: Callable[[], bool],
) -> tuple[int, str]:
    """Run `program` under the MPI launcher; return (exit code, everything it printed).

    Lines are passed to `log` as they come. A single-node run (no multi-node Batch variables) gets a
    private rendezvous directory of its own instead of the shared file system's. When `stopped()`
    turns true (SIGTERM) the launcher is signalled (it forwards to mpirun and the ranks) and
    Preempted(saved=False) is raised: a retry runs the sweep again.
    """
    run_env = dict(env)
    try:
        node = mpi_launch.node_from_env(run_env)
    except mpi_launch.LaunchError as err:
        raise NcclTestsError(f"mode=nccl-tests cannot place this node in the job: {err}") from None
    private = None
    if node.count == 1 and mpi_launch.DIR_ENV not in run_env:
        private = tempfile.mkdtemp(prefix="mlhpc-nccl-tests-")
        run_env[mpi_launch.DIR_ENV] = private
    lines: list[str] = []
    try:
        proc = subprocess.Popen(
            launch_argv(program, slots),
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines, log), daemon=True)
        reader.start()
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stopped():
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    raise Preempted(saved=False) from None
        reader.join(timeout=30)
        return code, "".join(lines)
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Return the last lines of an output, indented, for an error message."""
    last = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in last) if last else "  | (nothing)"
