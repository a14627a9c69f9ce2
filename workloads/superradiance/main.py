"""Entrypoint: ``python -m workloads.superradiance [--N 8 --method auto ...]`` (or ``train`` on SageMaker)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from workloads.common import sagemaker
from workloads.common.checkpoint import Preempted
from workloads.common.entry import RunContext, WorkloadError, run
from workloads.superradiance.initial import load_state
from workloads.superradiance.plots import emission_plot, sweep_plot
from workloads.superradiance.ray_pool import map_tasks
from workloads.superradiance.solve import Result, solve
from workloads.superradiance.spec import SPEC, Args


def _initial_state(args: Args) -> Any:
    """Return the initial density matrix from --initial-state or the SageMaker training channel, or None."""
    source = args.initial_state
    if not source:
        channel = sagemaker.channel_dir()
        if channel is not None and any(channel.iterdir()):
            source = str(channel)
    return load_state(source, n=args.N) if source else None


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """Return (key, values) of 'N=4,6,8' (values typed like the argument)."""
    key, _, raw = text.partition("=")
    kind = Args.model_fields[key].annotation
    values = [kind(float(v)) if kind is int else kind(v) for v in raw.split(",")]  # type: ignore[misc]
    return key, values


def _one(args: Args) -> dict[str, Any]:
    """Solve one sweep point; return what the comparison plot and metrics need (a Ray task)."""
    res = solve(args, log=lambda _m: None)
    return {"t": res.t, "intensity": res.intensity, "I_ind": res.i_ind, "method": res.method, **res.metrics()}


def run_sweep(args: Args, *, use_ray: bool) -> list[dict[str, Any]]:
    """Run every point of args.sweep, as Ray tasks when use_ray (else in this process)."""
    key, values = parse_sweep(args.sweep)
    points = [args.model_copy(update={key: v, "sweep": "", "workers": 1}) for v in values]
    for p in points:
        Args.model_validate(p.model_dump())
    if use_ray:
        runs = map_tasks(_one, [((p,), {}) for p in points], workers=args.workers)
    else:
        runs = [_one(p) for p in points]
    for run_, value in zip(runs, values, strict=True):
        run_["value"] = value
    return runs


def _write(ctx: RunContext, result: Result) -> None:
    # allow_pickle is numpy's default, named so that mypy binds the unpacked arrays to **kwds only.
    np.savez(ctx.out / "result.npz", allow_pickle=True, **result.arrays())
    emission_plot(
        ctx.out / "emission.png",
        t=result.t,
        intensity=result.intensity,
        i_ind=result.i_ind,
        n=result.model.n,
        polarization=result.polarization,
        method=result.method,
        intensity_se=result.intensity_se,
    )


def job(args: Args, ctx: RunContext) -> Mapping[str, Any]:
    """Run one simulation (or a sweep) and write result.npz, emission.png; return the metrics."""
    if args.sweep:
        runs = run_sweep(args, use_ray=args.workers > 1)
        key = args.sweep.partition("=")[0]
        sweep_plot(ctx.out / "sweep.png", key=key, runs=runs)
        np.savez(
            ctx.out / "sweep.npz",
            values=np.array([r["value"] for r in runs], dtype=float),
            **{f"intensity_{i}": r["intensity"] for i, r in enumerate(runs)},
            **{f"t_{i}": r["t"] for i, r in enumerate(runs)},
        )
        table = [{k: v for k, v in r.items() if k not in ("t", "intensity")} for r in runs]
        for row in table:
            ctx.log(
                f"  {key}={row['value']}: method={row['method']} "
                f"peak/I_ind={row['peak_intensity_over_I_ind']:.4g}"
            )
        return {"sweep": key, "runs": table}
    rho0 = _initial_state(args)
    if rho0 is not None and args.N > 12:
        raise WorkloadError(f"an initial state file needs N <= 12 (dense 2^(N+1) matrices), got N={args.N}")
    result = solve(args, rho0=rho0, stop=lambda: ctx.stop.requested, log=ctx.log)
    if ctx.stop.requested:
        # The integrator stopped early: a truncated series must not pass for a finished run.
        raise Preempted(saved=False)
    _write(ctx, result)
    metrics = result.metrics()
    ctx.log(
        f"superradiance: peak intensity {metrics['peak_intensity_over_I_ind']:.4g} x I_ind at t="
        f"{metrics['peak_time']:.4g}; final <Iz>={metrics['final_polarization']:.6g} ({result.solve_s:.2f} s)"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Run the workload; return the exit code."""
    return run(SPEC, job, argv)
