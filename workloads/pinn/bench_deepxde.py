"""DeepXDE's Burgers example (PyTorch backend), timed and scored against our Cole–Hopf reference.

Run by :mod:`workloads.pinn.bench` in its own process (``DDE_BACKEND=pytorch``); it writes
a JSON file with the error history ``[step, train seconds, relative L2]``. DeepXDE only
gets the network size, point count and step counts; it downloads nothing: the reference
is ours, evaluated on our grid. The setup follows DeepXDE's published Burgers example
(``examples/pinn_forward/Burgers.py``): soft boundary and initial conditions on 80 and
160 extra points, Adam then L-BFGS, float32 (its default).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Train DeepXDE's Burgers PINN and write its error history to --json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", required=True)
    parser.add_argument("--points", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--adam-steps", type=int, required=True)
    parser.add_argument("--lbfgs-steps", type=int, required=True)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(argv)
    os.environ.setdefault("DDE_BACKEND", "pytorch")

    import deepxde as dde

    from workloads.pinn.problems.burgers import Burgers

    dde.config.set_random_seed(opts.seed)
    problem = Burgers()
    grid_points = problem.grid().points
    reference = problem.reference(grid_points)
    norm = float(np.linalg.norm(reference))
    nu = 0.01 / math.pi

    geom = dde.geometry.Interval(-1, 1)
    timedomain = dde.geometry.TimeDomain(0, 1)
    geomtime = dde.geometry.GeometryXTime(geom, timedomain)

    def pde(x, y):  # type: ignore[no-untyped-def]
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - nu * dy_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=opts.points, num_boundary=80, num_initial=160)
    net = dde.nn.FNN([2] + [opts.width] * opts.depth + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)

    history: list[list[float]] = []
    clock = {"train_s": 0.0, "last": 0.0, "step": 0, "adam_s": 0.0, "lbfgs_s": 0.0}
    phase = {"name": "adam_s"}

    class Score(dde.callbacks.Callback):
        """Measure the error every eval_every steps; the time spent measuring is not counted."""

        def on_train_begin(self) -> None:
            clock["last"] = time.perf_counter()

        def on_epoch_end(self) -> None:
            now = time.perf_counter()
            clock["train_s"] += now - clock["last"]
            clock[phase["name"]] += now - clock["last"]
            step = int(self.model.train_state.step)
            if step // opts.eval_every > clock["step"] // opts.eval_every:
                pred = self.model.predict(grid_points)
                history.append([step, clock["train_s"], float(np.linalg.norm(pred - reference)) / norm])
            clock["step"] = step
            clock["last"] = time.perf_counter()

    score = Score()
    if opts.adam_steps:
        model.compile("adam", lr=opts.lr)
        model.train(iterations=opts.adam_steps, callbacks=[score], display_every=opts.adam_steps, verbose=0)
    adam_done = clock["step"]
    evaluations = 0
    if opts.lbfgs_steps:
        phase["name"] = "lbfgs_s"
        dde.optimizers.set_LBFGS_options(maxiter=opts.lbfgs_steps)
        # Hand control back every eval_every iterations so the callback can score the model.
        dde.optimizers.config.LBFGS_options["iter_per_step"] = opts.eval_every
        dde.optimizers.config.LBFGS_options["fun_per_step"] = int(opts.eval_every * 1.25)
        model.compile("L-BFGS")
        model.train(callbacks=[score], display_every=10**9, verbose=0)
        evaluations = int(model.opt.state_dict()["state"][0]["func_evals"])
    pred = model.predict(grid_points)
    final = float(np.linalg.norm(pred - reference)) / norm
    if not history or history[-1][0] != clock["step"]:
        history.append([clock["step"], clock["train_s"], final])
    Path(opts.json).write_text(
        json.dumps(
            {
                "error_history": history,
                "relative_l2": final,
                "train_s": clock["train_s"],
                "steps": clock["step"],
                "adam_s": clock["adam_s"],
                "lbfgs_s": clock["lbfgs_s"],
                "adam_steps_done": adam_done,
                "lbfgs_steps_done": clock["step"] - adam_done,
                "lbfgs_evaluations": evaluations,
                "deepxde": dde.__version__,
            }
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
