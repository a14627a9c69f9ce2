"""The mpi workload: start the user's program on every rank with mpirun, write metrics.json on the main node.

Not the shared runtime of the torch workloads (:mod:`workloads.common.entry`): its ranks are
mpirun's, not torch.distributed's. The job definition's ``--nproc-per-node N`` (the node's GPUs)
is the slots per node; ``mlhpc run mpi --workers N`` is one node of N slots.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence

from mlhpc import invocation
from mlhpc.spec import SpecError
from workloads.common import mpi_launch, storage
from workloads.common.entry import EXIT_USAGE, write_metrics
from workloads.mpi.spec import SPEC, MpiArgs


def main(argv: Sequence[str] | None = None) -> int:
    """Run this node's part of the MPI job; return mpirun's exit code (0 on a worker node that saw it end)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        decoded = invocation.parse(SPEC, argv)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:
        return int(exit_.code or 0)
    args = decoded.args
    assert isinstance(args, MpiArgs)
    try:
        program = shlex.split(args.program)
    except ValueError as err:  # an unclosed quote
        print(
            f"error: mpi: program {args.program[:200]!r} cannot be split into words: {err}", file=sys.stderr
        )
        return EXIT_USAGE
    if not program:
        print(
            "error: mpi: no program to run; give it after -- (mlhpc run mpi --workers 2 -- python train.py) "
            "or as --program 'python train.py'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    slots = args.slots_per_node or decoded.nproc_per_node or os.cpu_count() or 1
    env = dict(os.environ)
    # `python` in the program is the interpreter running this workload (in the image they are one)
    here = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(
        [here, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != here)]
    )
    try:
        node = mpi_launch.node_from_env(env)
    except mpi_launch.LaunchError as err:
        print(f"error: mpi launch: {err}", file=sys.stderr)
        return EXIT_USAGE
    output = None
    if node.is_main:
        out = decoded.run.out or invocation.default_out(SPEC)
        try:
            output = storage.OutputDir(out)
        except (storage.StorageError, OSError) as err:
            print(f"error: cannot use {invocation.OUT_OPTION} {out!r}: {err}", file=sys.stderr)
            return EXIT_USAGE
    started = time.perf_counter()
    try:
        code = mpi_launch.run(node, slots, program, env)
    except (mpi_launch.LaunchError, OSError) as err:
        print(f"error: mpi launch: {err}", file=sys.stderr)
        return 1
    if output is not None and code == 0:
        write_metrics(
            output.path,
            {
                "workload": SPEC.name,
                "program": program,
                "nodes": node.count,
                "slots_per_node": slots,
                "world_size": node.count * slots,
                "exit_code": code,
                "wall_s": round(time.perf_counter() - started, 3),
            },
        )
        print(f"{SPEC.name}: outputs in {output.publish()}", flush=True)
    return code
