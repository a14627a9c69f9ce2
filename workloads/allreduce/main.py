"""The allreduce job: a collective sweep (nccl-tests style), a training-scaling study, or both."""

from __future__ import annotations

import csv
import platform
import socket
from typing import Any

import torch
import torch.distributed as tdist

from workloads.allreduce import bandwidth, comm, plots, table
from workloads.allreduce.collective import PLACES, Collective, sizes, sweep
from workloads.allreduce.expectations import REFERENCES, compare
from workloads.allreduce.resnet import MODELS
from workloads.allreduce.scaling import ScalingConfig, as_dicts, study
from workloads.allreduce.spec import SPEC, Args
from workloads.common.entry import RunContext, WorkloadError, run


def _devices_banner(device: torch.device) -> str:
    """Return nccl-tests' '# Using devices' block, one line per rank (gathered to every rank)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    mine = f"#  Rank {tdist.get_rank():3d} Pid {__import__('os').getpid():7d} on {socket.gethostname():>12s} device {device} {name}"
    lines: list[Any] = [None] * tdist.get_world_size()
    tdist.all_gather_object(lines, mine)
    return "#\n# Using devices\n" + "\n".join(lines) + "\n#"


def collective_mode(args: Args, ctx: RunContext, device: torch.device, backend: str) -> dict[str, Any]:
    """Run the sweep, print the table, write allreduce.csv/png; return the metrics."""
    places = PLACES if args.places == "both" else (args.places,)
    coll = Collective(args.collective, dtype=args.dtype, op=args.op, device=device)
    banner = _devices_banner(device)
    ctx.log(
        f"# {args.collective}: backend {backend}, {coll.ranks} ranks, minBytes {args.min_bytes} maxBytes "
        f"{args.max_bytes} step: {args.step_factor}(factor) warmup iters: {args.warmup_iters} iters: "
        f"{args.iters} validation: {int(args.check)} blocking: {int(args.blocking)}"
    )
    ctx.log(banner)
    ctx.log(table.HEADER)
    rows = []
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
    except torch.OutOfMemoryError:
        raise WorkloadError(
            f"out of device memory at {rows[-1].size * args.step_factor if rows else args.min_bytes} bytes; "
            "give a smaller --max-bytes"
        ) from None
    ctx.log(table.footer(rows))
    memcpy = bandwidth.memcpy_gbps(device=str(device)) if ctx.is_main else None
    metrics: dict[str, Any] = {
        "collective": args.collective,
        "backend": backend,
        "device": device.type,
        "ranks": coll.ranks,
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
    reference = REFERENCES.get(args.expect) if args.expect else None
    if reference is not None:
        measured = [r.results[places[0]].busbw for r in rows]
        verdict = compare(
            reference, [r.size for r in rows], measured, ranks=coll.ranks, fraction=args.expect_fraction
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
    table.write_csv(ctx.out / "allreduce.csv", rows)
    plots.busbw_plot(
        ctx.out / "allreduce.png",
        rows,
        title=f"{args.collective} {args.dtype} {args.op}, {coll.ranks} ranks, {backend} on {device.type}",
        memcpy_gbps=memcpy if device.type == "cpu" else None,
        reference=reference,
    )
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
    with (ctx.out / "scaling.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["variant", "workers", "samples_per_s", "step_ms", "efficiency"]
        )
        writer.writeheader()
        writer.writerows(as_dicts(rows))
    plots.scaling_plot(
        ctx.out / "scaling.png",
        rows,
        title=f"DDP scaling of {name} (batch {cfg.batch}/worker) on {device.type}, {backend}",
    )
    return {"model": name, "batch_per_worker": cfg.batch, "scaling": as_dicts(rows)}


def job(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Run the sweep and/or the scaling study as the arguments say; return the metrics."""
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
            metrics.update(collective_mode(args, ctx, device, backend))
        if args.mode in ("scaling", "both"):
            metrics.update(scaling_mode(args, ctx, device, backend))
        return metrics
    finally:
        comm.close()


def main(argv: list[str] | None = None) -> int:
    """Run the allreduce workload from the command line; return the exit code."""
    return run(SPEC, job, argv)
