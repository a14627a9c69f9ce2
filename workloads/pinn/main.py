"""The PINN job: resolve options against the problem, train (distributed, resumable), report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from workloads.common.entry import RunContext, WorkloadError, run
from workloads.pinn import problems, report
from workloads.pinn.distributed import Comm, pick_device
from workloads.pinn.plainfit import fit_plain, predict_plain
from workloads.pinn.spec import SPEC, Args
from workloads.pinn.trainer import DivergedError, TrainConfig, Trainer, TrainResult


def resolve(args: Args, *, device_type: str = "cpu") -> tuple[problems.Problem, TrainConfig]:
    """Return the problem and the training configuration, unset options taken from the problem's defaults.

    On a GPU an unset ``--points`` takes the problem's ``gpu_points`` where it has one: a small
    network's step is kernel-launch bound there, so more collocation points cost little time.
    """
    cls = problems.get(args.problem)
    d = cls.defaults
    default_points = d.gpu_points if device_type == "cuda" and d.gpu_points else d.points

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    problem = cls(
        noise_std=pick(args.noise_std, d.extra.get("noise_std", 0.0)),
        observations=pick(args.observations, d.extra.get("observations", 0)),
        seed=args.seed,
    )
    config = TrainConfig(
        width=pick(args.width, d.width),
        depth=pick(args.depth, d.depth),
        points=pick(args.points, default_points),
        adam_steps=pick(args.adam_steps, d.adam_steps),
        lbfgs_steps=pick(args.lbfgs_steps, d.lbfgs_steps),
        lr=pick(args.lr, d.lr),
        lr_decay=args.lr_decay,
        precision=args.precision,
        rar_every=pick(args.rar_every, d.rar_every),
        rar_points=args.rar_points,
        rar_candidates=args.rar_candidates,
        rar_lbfgs=args.rar_lbfgs,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        seed=args.seed,
    )
    return problem, config


def fingerprint(problem: problems.Problem, config: TrainConfig) -> dict[str, Any]:
    """Return what a checkpoint must match to be resumed: the problem, the architecture, the data."""
    return {
        "problem": problem.name,
        "width": config.width,
        "depth": config.depth,
        "precision": config.precision,
        "points": config.points,
        "seed": config.seed,
        "observations": problem.n_observations,
        "noise_std": problem.noise_std,
    }


def train(args: Args, ctx: RunContext, *, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run the job and return its metrics (the test suite passes on_step to interrupt at a known step)."""
    try:
        device = pick_device(args.device, ctx.rendezvous)
    except RuntimeError as err:
        raise WorkloadError(str(err)) from None
    problem, config = resolve(args, device_type=device.type)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    comm = Comm(ctx.rendezvous, device, timeout_s=ctx.collective_timeout_s)
    try:
        ctx.log(
            f"pinn: {problem.name} ({problem.summary}); {config.depth}x{config.width} tanh, "
            f"{config.points} points, "
            f"{config.adam_steps} Adam + {config.lbfgs_steps} L-BFGS steps, {config.precision}, "
            f"{comm.world_size} rank(s) on {device.type} ({comm.backend})"
        )
        trainer = Trainer(
            problem,
            config,
            comm=comm,
            device=device,
            checkpointer=ctx.checkpointer(fingerprint(problem, config)),
            stop=ctx.stop,
            resume=ctx.resume,
            progress=args.progress,
            log=ctx.log,
            on_step=on_step,
        )
        try:
            result = trainer.run()
        except DivergedError as err:
            raise WorkloadError(str(err)) from None
        if not ctx.is_main:
            return {}
        return _report(problem, config, result, ctx)
    finally:
        comm.close()


def time_to_error(
    history: list[list[float]], thresholds: tuple[float, ...]
) -> dict[str, dict[str, float] | None]:
    """Return, per threshold, the first evaluation ([step, train_s, error] rows) at or below it (None: never)."""
    out: dict[str, dict[str, float] | None] = {}
    for threshold in sorted(set(thresholds), reverse=True):
        hit = next((row for row in history if row[2] <= threshold), None)
        out[f"{threshold:g}"] = (
            None if hit is None else {"step": int(hit[0]), "train_s": round(hit[1], 3), "error": hit[2]}
        )
    return out


def _report(
    problem: problems.Problem, config: TrainConfig, result: TrainResult, ctx: RunContext
) -> dict[str, Any]:
    grid = problem.grid()
    points = grid.points
    reference = problem.reference(points)
    x = torch.as_tensor(points, dtype=result.dtype, device=result.device)
    with torch.no_grad():
        prediction = result.model(x).double().cpu().numpy()
    error = report.relative_l2(prediction, reference)
    obs = problem.observations()
    metrics: dict[str, Any] = {
        "problem": problem.name,
        "relative_l2": error,
        "target_relative_l2": problem.target_relative_l2,
        "target_met": error <= problem.target_relative_l2,
        "max_abs_error": float(abs(prediction - reference).max()),
        "final_loss": result.history.loss[-1][1] if result.history.loss else None,
        "steps": result.steps,
        "train_s": round(result.history.train_s, 3),
        "steps_per_s": result.steps / result.history.train_s if result.history.train_s else None,
        "points_per_s": result.steps * result.points.shape[0] / result.history.train_s
        if result.history.train_s
        else None,
        "collocation_points": int(result.points.shape[0]),
        "refinements": result.history.refinements,
        "adam_s": round(result.history.adam_s, 3),
        "lbfgs_s": round(result.history.lbfgs_s, 3),
        "adam_steps_done": min(result.steps, config.adam_steps),
        "lbfgs_steps_done": max(result.steps - config.adam_steps, 0),
        "lbfgs_evaluations": result.history.lbfgs_evaluations,
        "resumed_from_step": result.resumed_from,
        "converged_early": result.converged_early,
        "device": str(result.device),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "loss_history": report.thin(result.history.loss),
        "error_history": report.thin(result.history.error),
        "time_to_error": time_to_error(result.history.error, (1e-2, 5e-3, problem.target_relative_l2)),
    }
    baseline = None
    if problem.compare_plain_fit and obs is not None:
        net = fit_plain(problem, obs, width=config.width, depth=config.depth, seed=config.seed)
        baseline = predict_plain(net, problem, points)
        metrics["plain_network_relative_l2"] = report.relative_l2(baseline, reference)
    if problem.true_coefficients:
        learned = problem.physical_coefficients(dict(result.model.coeffs.items()))
        coeffs = report.coefficient_metrics(problem, learned)
        metrics["coefficients"] = coeffs
        worst = max(c["relative_error"] for c in coeffs.values())
        metrics["coefficients_target_met"] = worst <= problem.target_coefficient_error
    report.write_npz(
        ctx.out / "prediction.npz",
        grid=grid,
        prediction=prediction,
        reference=reference,
        points=result.points.numpy(),
        observations=obs,
        baseline=baseline,
    )
    report.plot(
        ctx.out / "prediction.png",
        problem=problem,
        grid=grid,
        prediction=prediction,
        reference=reference,
        loss=result.history.loss,
        error=result.history.error,
        observations=obs,
        baseline=baseline,
        title=f"{problem.summary}: relative L2 error {error:.2e} after {result.steps} steps",
    )
    summary = f"pinn: {problem.name} relative L2 error {error:.3e} (target {problem.target_relative_l2:g})"
    if "coefficients" in metrics:
        summary += "; " + ", ".join(
            f"{k} {v['learned']:.4g} (true {v['true']:g}, {100 * v['relative_error']:.2f}%)"
            for k, v in metrics["coefficients"].items()
        )
    if baseline is not None:
        summary += f"; plain network on the same data: {metrics['plain_network_relative_l2']:.3e}"
    ctx.log(summary)
    return metrics


def job(args: Args, ctx: RunContext) -> dict[str, Any]:
    """Train a PINN as the arguments say and return its metrics."""
    return train(args, ctx)


def main(argv: list[str] | None = None) -> int:
    """Run the PINN workload from the command line; return the exit code."""
    return run(SPEC, job, argv)
