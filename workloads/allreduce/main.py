"""The allreduce job: a collective sweep (nccl-tests style), a training-scaling study, or both.

The sweep runs on torch.distributed (NCCL on GPUs, gloo on CPUs), on MPI through mpi4py
(``--backend mpi``, ranks started by mpirun), or as NVIDIA's own nccl-tests binaries
(``--mode nccl-tests``); all three give the same rows, table, plot and ``--expect`` verdict.
"""

from __future__ import annotations

import csv
import os
import platform
import socket
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as tdist

from workloads.allreduce import bandwidth, comm, nccl_tests, plots, table
from workloads.allreduce.collective import PLACES, Collective, Row, Sweepable, sizes, sweep
from workloads.allreduce.expectations import REFERENCES, compare
from workloads.allreduce.resnet import MODELS
from workloads.allreduce.scaling import ScalingConfig, as_dicts, study
from workloads.allreduce.spec import SCALING_CSV, SCALING_PNG, SPEC, SWEEP_CSV, SWEEP_PNG, Args
from workloads.common import dist
from workloads.common.entry import RunContext, WorkloadError, run


def _cpu_name() -> str:
    return platform.processor() or "cpu"


def _devices_banner(device: torch.device) -> str:
    """Return nccl-tests' '# Using devices' block, one line per rank (gathered to every rank)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    mine = table.device_line(tdist.get_rank(), os.getpid(), socket.gethostname(), str(device), name)
    lines: list[Any] = [None] * tdist.get_world_size()
    tdist.all_gather_object(lines, mine)
    return table.devices_banner(lines)


def _places(args: Args) -> tuple[str, ...]:
    return PLACES if args.places == "both" else (args.places,)


def collective_mode(
    args: Args,
    ctx: RunContext,
    coll: Sweepable,
    *,
    backend: str,
    device: torch.device,
    banner: str,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the sweep, print the table, write allreduce.csv/png; return the metrics."""
    places = _places(args)
    ctx.log(
        f"# {args.collective}: backend {backend}, {coll.ranks} ranks, minBytes {args.min_bytes} maxBytes "
        f"{args.max_bytes} step: {args.step_factor}(factor) warmup iters: {args.warmup_iters} iters: "
        f"{args.iters} validation: {int(args.check)} blocking: {int(args.blocking)}"
    )
    for note in notes:
        ctx.log(f"# note: {note}")
    ctx.log(banner)
    ctx.log(table.HEADER)
    rows: list[Row] = []
    try:
        for row in sweep(
            coll,
            sizes(args.min_bytes, args.max_bytes, args.step_factor),
            places=places,
            warmup=args.warmup_iters,
            iters=args.iters,
            blocking=args.blocking,
            verify=args.check,
        ):
            rows.append(row)
            ctx.log(table.line(row))
    except (torch.OutOfMemoryError, MemoryError):
        raise WorkloadError(
            f"out of {'device ' if device.type == 'cuda' else ''}memory at "
            f"{rows[-1].size * args.step_factor if rows else args.min_bytes} bytes; give a smaller --max-bytes"
        ) from None
    ctx.log(table.footer(rows))
    memcpy = bandwidth.memcpy_gbps(device=str(device)) if ctx.is_main else None
    metrics = _sweep_metrics(args, rows, backend=backend, device=device.type, ranks=coll.ranks)
    if not ctx.is_main:
        return metrics
    metrics["memcpy_gbps"] = memcpy
    ctx.log(
        f"# memcpy bandwidth of this machine ({device.type}, one buffer copied into another): {memcpy:.2f} GB/s"
        + (
            f"; best busbw is {100 * metrics['max_busbw_gbps'] / memcpy:.1f}% of it"
            if memcpy and device.type == "cpu"
            else ""
        )
    )
    _write_sweep(
        args, ctx, rows, metrics,
        title=f"{args.collective} {args.dtype} {args.op}, {coll.ranks} ranks, {backend} on {device.type}",
        memcpy_gbps=memcpy if device.type == "cpu" else None,
    )  # fmt: skip
    return metrics


def _sweep_metrics(
    args: Args, rows: Sequence[Row], *, backend: str, device: str, ranks: int
) -> dict[str, Any]:
    """Return the sweep's numbers: every row, the average and peak busbw, #wrong."""
    return {
        "collective": args.collective,
        "backend": backend,
        "device": device,
        "ranks": ranks,
        "dtype": args.dtype,
        "op": args.op,
        "avg_busbw_gbps": table.average_busbw(rows),
        "max_busbw_gbps": max((m.busbw for r in rows for m in r.results.values()), default=0.0),
        "wrong": sum(m.wrong or 0 for r in rows for m in r.results.values()),
        "rows": [
            {"size_bytes": r.size, "count": r.count, **{f"{p}_{k}": v for p, m in r.results.items()
             for k, v in (("time_us", m.time_s * 1e6), ("algbw_gbps", m.algbw), ("busbw_gbps", m.busbw),
                          ("wrong", m.wrong))}}
            for r in rows
        ],
    }  # fmt: skip


def _write_sweep(
    args: Args,
    ctx: RunContext,
    rows: Sequence[Row],
    metrics: dict[str, Any],
    *,
    title: str,
    memcpy_gbps: float | None,
) -> None:
    """On the main rank: the --expect verdict into metrics and the log, allreduce.csv and allreduce.png."""
    places = _places(args)
    ranks = int(metrics["ranks"])
    reference = REFERENCES.get(args.expect) if args.expect else None
    if reference is not None:
        measured = [r.results[places[0]].busbw for r in rows]
        verdict = compare(
            reference, [r.size for r in rows], measured, ranks=ranks, fraction=args.expect_fraction
        )
        if verdict is None:
            ctx.log(
                f"expect {reference.name}: no measured size inside the published sweep "
                f"({reference.rows[0][0]}..{reference.rows[-1][0]} B); sweep larger messages (-e)"
            )
            metrics["expect"] = {"reference": reference.name, "ok": None}
        else:
            ctx.log(verdict.message())
            metrics["expect"] = {
                "reference": reference.name,
                "source": reference.source,
                "size_bytes": verdict.size,
                "measured_busbw_gbps": verdict.measured_busbw,
                "reference_busbw_gbps": verdict.reference_busbw,
                "fraction": verdict.fraction,
                "threshold": verdict.threshold,
                "ok": verdict.ok,
            }
    wrong = int(metrics["wrong"])
    if wrong:
        bad = [r.size for r in rows if any(m.wrong for m in r.results.values())]
        ctx.fail_check(
            f"{wrong} wrong element(s) in the {args.collective} results at {len(bad)} size(s) "
            f"({bad[0]}..{bad[-1]} B): the collectives returned wrong values on these ranks, so their "
            f"bandwidths are no result; the table, {SWEEP_CSV} and metrics.json say where"
        )
    table.write_csv(ctx.out / SWEEP_CSV, rows)
    plots.busbw_plot(ctx.out / SWEEP_PNG, rows, title=title, memcpy_gbps=memcpy_gbps, reference=reference)


def mpi_mode(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Run the sweep over MPI (mpi4py) with the ranks mpirun started; only MPI rank 0 writes outputs."""
    try:
        from workloads.allreduce import mpi_collective
    except (ImportError, RuntimeError, OSError) as err:  # mpi4py absent, or its MPI library
        raise WorkloadError(
            f"--backend mpi needs mpi4py and an MPI library (Open MPI's libmpi.so.40): {err}; install "
            "mpi4py==4.1.2 and Open MPI (the allreduce image has both), or use --backend gloo"
        ) from None
    coll = mpi_collective.MpiCollective(args.collective, dtype=args.dtype, op=args.op)
    try:
        started = ctx.rendezvous
        if coll.ranks == 1 and started.world_size > 1:
            raise WorkloadError(
                f"--backend mpi: this process was started as rank {started.rank} of {started.world_size} "
                f"({started.source} variables) but MPI sees a world of 1: the ranks of an MPI run must be "
                "started by mpirun (mpirun -np N python -m workloads.allreduce --backend mpi ..., or "
                "python -m workloads.common.mpi_launch on Batch), not by torchrun or --nproc-per-node"
            )
        local_rank, local_size = coll.local_layout()
        # The ranks are MPI's: the job's context follows them, so only MPI rank 0 logs and writes outputs.
        ctx.rendezvous = dist.Rendezvous(
            rank=coll.rank,
            world_size=coll.ranks,
            local_rank=local_rank,
            local_world_size=local_size,
            source="mpi",
        )
        lines = coll.device_lines(
            lambda rank, pid, host: table.device_line(rank, pid, host, "cpu", _cpu_name())
        )
        notes = [
            "MPI collectives are blocking calls (several pending on one buffer would be erroneous MPI), "
            "whatever --blocking says",
        ]
        if args.dtype == "float16":
            notes.append(f"float16: {coll.reduction}")
        metrics = collective_mode(
            args, ctx, coll, backend="mpi", device=torch.device("cpu"), banner=table.devices_banner(lines or []),
            notes=notes,
        )  # fmt: skip
        metrics["world_size"] = coll.ranks
        return metrics
    finally:
        coll.close()


def nccl_tests_mode(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Run the image's <collective>_perf under the MPI launcher; parse its table into the sweep's outputs."""
    program = [str(nccl_tests.binary(args.collective)), *nccl_tests.arguments(args)]
    rdzv = ctx.rendezvous
    if rdzv.local_rank != 0:
        return {}  # one launcher per node: mpirun starts the processes of every GPU
    slots = nccl_tests.slots_per_node(rdzv, torch.cuda.device_count())
    ctx.log(
        f"# nccl-tests: {' '.join(program)} ({slots} process(es) per node, under workloads.common.mpi_launch)"
    )
    code, output = nccl_tests.run(
        program, slots=slots, env=os.environ, log=ctx.log, stopped=lambda: ctx.stop.requested
    )
    if not ctx.is_main:
        return {}  # a worker node: it served the main node's mpirun
    name = nccl_tests.program_name(args.collective)
    try:
        report = nccl_tests.parse(output)
    except nccl_tests.NcclTestsError as err:
        raise nccl_tests.NcclTestsError(
            f"{name} under mpirun exited {code}; {err}. Its last lines:\n{nccl_tests.tail(output)}"
        ) from None
    if code != 0 and report.out_of_bounds == 0:  # nccl-tests exits non-zero on wrong results; else it failed
        raise nccl_tests.NcclTestsError(
            f"{name} under mpirun exited {code} after printing its table. Its last lines:\n{nccl_tests.tail(output)}"
        )
    rows = nccl_tests.keep_places(report.rows, _places(args))
    for note in report.notes:
        ctx.log(f"# note: {note}")
    metrics = _sweep_metrics(args, rows, backend="nccl (nccl-tests)", device="cuda", ranks=report.ranks)
    metrics.update(
        avg_busbw_gbps=report.avg_busbw,  # nccl-tests' own figure (from unrounded values)
        world_size=report.ranks,
        nccl_tests={
            "program": report.program or name,
            "version": report.version,
            "command": program,
            "hosts": list(report.hosts),
            "out_of_bounds": report.out_of_bounds,
            "avg_busbw_gbps": report.avg_busbw,
            "exit_code": code,
        },
    )
    ctx.log(
        f"# nccl-tests {report.version or '(version not printed)'}: {report.ranks} ranks on "
        f"{len(report.hosts)} host(s), {len(rows)} sizes, out of bounds values {report.out_of_bounds}, "
        f"#wrong {metrics['wrong']}, avg bus bandwidth {report.avg_busbw:g} GB/s"
    )
    _write_sweep(
        args, ctx, rows, metrics,
        title=f"{name} {args.dtype} {args.op}, {report.ranks} ranks, nccl-tests {report.version or ''}".rstrip(),
        memcpy_gbps=None,
    )  # fmt: skip
    return metrics


def scaling_mode(args: Args, ctx: RunContext, device: torch.device, backend: str) -> dict[str, Any]:
    """Run the training-scaling study; print its table, write scaling.csv/png; return the metrics."""
    name = args.model if args.model != "auto" else ("resnet50" if device.type == "cuda" else "resnet_small")
    case = MODELS[name]
    cfg = ScalingConfig(
        model=case,
        batch=args.batch_per_worker or case.default_batch,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        variants=tuple(args.variants),
        bucket_cap_mib=args.bucket_cap_mib,
        accumulate_steps=args.accumulate_steps,
        channels_last=args.channels_last,
        amp=args.amp,
    )
    ctx.log(
        f"scaling: {name}, batch {cfg.batch}/worker, {cfg.steps} timed steps, {tdist.get_world_size()} ranks "
        f"({backend} on {device.type}), variants {', '.join(cfg.variants)}"
    )
    rows = list(study(cfg, device=device, timeout_s=ctx.collective_timeout_s, log=ctx.log))
    if not ctx.is_main:
        return {}
    ctx.log("| variant | workers | samples/s | ms/step | efficiency |\n| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        ctx.log(
            f"| {r.variant} | {r.workers} | {r.samples_per_s:.1f} | {r.step_ms:.1f} | {100 * r.efficiency:.1f}% |"
        )
    with (ctx.out / SCALING_CSV).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["variant", "workers", "samples_per_s", "step_ms", "efficiency"]
        )
        writer.writeheader()
        writer.writerows(as_dicts(rows))
    plots.scaling_plot(
        ctx.out / SCALING_PNG,
        rows,
        title=f"DDP scaling of {name} (batch {cfg.batch}/worker) on {device.type}, {backend}",
    )
    return {"model": name, "batch_per_worker": cfg.batch, "scaling": as_dicts(rows)}


def job(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Run the sweep and/or the scaling study as the arguments say; return the metrics."""
    if args.mode == "nccl-tests":
        return {"mode": args.mode, **nccl_tests_mode(args, ctx)}
    if args.backend == "mpi":  # mpi4py, no torch.distributed (the spec allows it for mode=collective only)
        return {"mode": args.mode, **mpi_mode(args, ctx)}
    try:
        device = comm.pick_device(args.device, ctx.rendezvous)
        backend = comm.pick_backend(args.backend, device)
    except comm.SetupError as err:
        raise WorkloadError(str(err)) from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cpu" and args.max_bytes > 1024**3 and args.mode != "scaling":
        ctx.log(
            f"note: sweeping to {args.max_bytes} B on CPUs (gloo) takes a long time and that much memory "
            "per rank; give --max-bytes 64M-size values for a local run"
        )
    comm.init(ctx.rendezvous, backend=backend, device=device, timeout_s=ctx.collective_timeout_s)
    try:
        metrics: dict[str, Any] = {"mode": args.mode}
        if args.mode in ("collective", "both"):
            coll = Collective(args.collective, dtype=args.dtype, op=args.op, device=device)
            banner = _devices_banner(device)
            metrics.update(collective_mode(args, ctx, coll, backend=backend, device=device, banner=banner))
        if args.mode in ("scaling", "both"):
            metrics.update(scaling_mode(args, ctx, device, backend))
        return metrics
    finally:
        comm.close()


def main(argv: list[str] | None = None) -> int:
    """Run the allreduce workload from the command line; return the exit code."""
    return run(SPEC, job, argv)
