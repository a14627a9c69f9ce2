"""Pick a solver for one set of arguments, run it, and return a uniform result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workloads.common.entry import WorkloadError
from workloads.superradiance.backends import make_backend
from workloads.superradiance.euler import solve_euler
from workloads.superradiance.general import solve_general
from workloads.superradiance.model import Model, auto_t_max, make_model
from workloads.superradiance.spec import Args
from workloads.superradiance.symmetric import solve_symmetric
from workloads.superradiance.trajectories import solve_trajectories

GENERAL_MAX_N = 12
SYMMETRIC_MAX_N = 1_000_000  # the collective cascade costs O(N) per step: N = 10^5 in seconds


@dataclass
class Result:
    """A run's time series and summary, whatever solver produced it."""

    model: Model
    method: str
    t: np.ndarray
    polarization: np.ndarray
    intensity: np.ndarray
    solve_s: float
    polarization_se: np.ndarray | None = None
    intensity_se: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def i_ind(self) -> float:
        """The independent-emitter intensity of this model."""
        return self.model.i_ind()

    def metrics(self) -> dict[str, Any]:
        """Return the numbers metrics.json holds."""
        peak = int(np.argmax(self.intensity))
        return {
            "N": self.model.n,
            "method": self.method,
            "solve_s": round(self.solve_s, 4),
            "I_ind": self.i_ind,
            "peak_intensity": float(self.intensity[peak]),
            "peak_intensity_over_I_ind": float(self.intensity[peak] / self.i_ind),
            "peak_time": float(self.t[peak]),
            "final_polarization": float(self.polarization[-1]),
            "t_max": float(self.t[-1]),
            **self.info,
        }

    def arrays(self) -> dict[str, np.ndarray | np.float64]:
        """Return the arrays result.npz holds (I_ind as a numpy scalar, saved as a 0-d array)."""
        out: dict[str, np.ndarray | np.float64] = {
            "t": self.t,
            "polarization": self.polarization,
            "intensity": self.intensity,
            "I_ind": np.float64(self.i_ind),
            "couplings": self.model.g,
        }
        if self.polarization_se is not None and self.intensity_se is not None:
            out["polarization_se"] = self.polarization_se
            out["intensity_se"] = self.intensity_se
        return out


def build_model(args: Args) -> Model:
    """Return the model the arguments describe (bad values raise WorkloadError)."""
    return make_model(
        args.N,
        couplings=args.couplings,
        seed=args.seed,
        coupling_values=args.coupling_values or None,
        gamma=args.gamma,
        a_mean=args.a_mean,
    )


def choose_method(args: Args, model: Model) -> str:
    """Return the solver: the one asked for, or the cheapest exact one that applies."""
    if args.method != "auto":
        return args.method
    if model.uniform and not args.initial_state and model.n <= SYMMETRIC_MAX_N:
        return "symmetric"
    if model.n <= GENERAL_MAX_N:
        return "general"
    return "trajectories"


def solve(
    args: Args,
    *,
    rho0: Any = None,
    stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] = print,
) -> Result:
    """Run the solver the arguments choose and return its :class:`Result`."""
    model = build_model(args)
    method = choose_method(args, model)
    if rho0 is not None and method not in ("general", "euler"):
        raise WorkloadError(
            f"an initial state file works with method general or euler (dense states), not {method}: "
            "add --method general"
        )
    t_max = args.t_max or (150.0 if method == "euler" else auto_t_max(model))
    times = np.linspace(0.0, t_max, args.n_times)
    log(f"superradiance: N={model.n}, couplings={args.couplings}, method={method}, t_max={t_max:.6g}")
    start = time.perf_counter()
    info: dict[str, Any] = {}
    se: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if method == "general":
        if model.n > GENERAL_MAX_N + 4:
            raise WorkloadError(
                f"method=general at N={model.n} needs C(2N+2, N+1) complex numbers per state "
                f"(too many for one machine): use N <= {GENERAL_MAX_N + 4} or --method trajectories"
            )

        backend = make_backend(args.device)
        sol = solve_general(
            model, times=times, rho0=rho0, backend=backend, rtol=args.rtol, atol=args.atol, stop=stop
        )
        t, pol, inten = sol.t, sol.polarization, sol.intensity
        info = {
            "backend": backend.name,
            "steps": sol.steps,
            "rhs_evaluations": sol.rhs_evaluations,
            "max_trace_error": float(np.max(np.abs(sol.trace - 1))),
        }
    elif method == "symmetric":
        sym = solve_symmetric(model, times=times, stop=stop)
        t, pol, inten = sym.t, sym.polarization, sym.intensity
        info = {"max_trace_error": float(np.max(np.abs(sym.trace - 1)))}
    elif method == "trajectories":
        traj = solve_trajectories(
            model, times=times, trajectories=args.trajectories, seed=args.seed, workers=args.workers
        )
        t, pol, inten = traj.t, traj.polarization, traj.intensity
        se = (traj.polarization_se, traj.intensity_se)
        info = {
            "trajectories": traj.trajectories,
            "jumps_per_trajectory": traj.jumps_mean,
            "max_polarization_se": float(traj.polarization_se.max()),
            "workers": args.workers,
        }
    elif method == "euler":
        steps = max(1, round(t_max / args.euler_dt))
        eul = solve_euler(
            model,
            dt=args.euler_dt,
            steps=steps,
            rho0=None if rho0 is None else np.asarray(rho0.toarray() if hasattr(rho0, "toarray") else rho0),
        )
        t, pol, inten = eul.t, eul.polarization, eul.intensity
        info = {"steps": steps, "max_trace_error": float(np.max(np.abs(eul.trace - 1)))}
    else:  # pragma: no cover - the Literal in Args rules it out
        raise WorkloadError(f"unknown method {method!r}")
    return Result(
        model=model,
        method=method,
        t=t,
        polarization=pol,
        intensity=inten,
        solve_s=time.perf_counter() - start,
        polarization_se=se[0],
        intensity_se=se[1],
        info=info,
    )
