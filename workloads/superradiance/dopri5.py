"""An adaptive Dormand-Prince 5(4) integrator with dense output, for NumPy arrays or torch tensors.

The state may be any array type that supports ``+`` and multiplication by a float; the
caller gives the error norm (it knows whether the array is complex, on a GPU, ...). Steps
are accepted when the scaled error estimate is <= 1 (``atol + rtol * max(|y_old|, |y_new|)``,
root-mean-square) and the next step follows the usual controller with safety factor 0.9.
The fourth-order continuous extension (Hairer, Norsett & Wanner, II.6) gives the state
anywhere inside the last step without extra right-hand-side evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_E = (-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40)
_P = (
    (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
    (0.0, 0.0, 0.0, 0.0),
    (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
    (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
    (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
    (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
    (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
)

Rhs = Callable[[float, Any], Any]
ErrorNorm = Callable[[Any, Any, Any], float]


class IntegrationError(RuntimeError):
    """The step size fell below what floating point can resolve (a bug or a diverging problem)."""


def _lincomb(y: Any, h: float, coeffs: tuple[float, ...], ks: list[Any], *, zero: bool = False) -> Any:
    """Return y + h * sum(coeffs[i] * ks[i]) (y taken as 0 with zero=True), accumulated in place."""
    if isinstance(y, np.ndarray):
        out = np.zeros_like(y) if zero else np.array(y, copy=True)
        for coef, k in zip(coeffs, ks, strict=False):
            if coef != 0.0:
                out += (h * coef) * k
        return out
    out = y.new_zeros(y.shape) if zero else y.clone()
    for coef, k in zip(coeffs, ks, strict=False):
        if coef != 0.0:
            out.add_(k, alpha=h * coef)
    return out


class Dopri5:
    """Step an ODE y' = f(t, y) with error control; :meth:`dense` evaluates inside the last step."""

    def __init__(
        self,
        fun: Rhs,
        t0: float,
        y0: Any,
        *,
        rtol: float,
        atol: float,
        norm: ErrorNorm,
        first_step: float | None = None,
        max_step: float = np.inf,
    ) -> None:
        self.fun, self.norm = fun, norm
        self.rtol, self.atol, self.max_step = rtol, atol, max_step
        self.t, self.y = t0, y0
        self.f = fun(t0, y0)
        self.h = first_step or self._initial_step()
        self.t_old, self.y_old = t0, y0
        self._ks: list[Any] = []
        self.nfev = 1
        self.steps = 0
        self.rejected = 0

    def _initial_step(self) -> float:
        d0 = self.norm(self.y, self.y, self.y)
        d1 = self.norm(self.f, self.y, self.y)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        y1 = self.y + h0 * self.f
        f1 = self.fun(self.t + h0, y1)
        d2 = self.norm(f1 - self.f, self.y, self.y) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** 0.2
        return min(100 * h0, h1, self.max_step)

    def step(self, t_bound: float) -> None:
        """Take one accepted step towards t_bound (never past it)."""
        t, y, f = self.t, self.y, self.f
        h = min(self.h, self.max_step, t_bound - t)
        while True:
            if h < 1e-14 * max(1.0, abs(t)):
                raise IntegrationError(f"step size {h:.3g} underflowed at t={t:.6g}")
            ks = [f]
            for i in range(1, 6):
                ks.append(self.fun(t + _C[i] * h, _lincomb(y, h, _A[i], ks)))
            y_new = _lincomb(y, h, _B, ks)
            f_new = self.fun(t + h, y_new)
            ks.append(f_new)
            self.nfev += 6
            err = _lincomb(y, h, _E, ks, zero=True)
            err_norm = self.norm(err, y, y_new)
            if err_norm <= 1.0:
                factor = 10.0 if err_norm == 0 else min(10.0, 0.9 * err_norm**-0.2)
                self.t_old, self.y_old, self._ks = t, y, ks
                self.t = t_bound if t_bound - (t + h) <= 1e-12 * max(1.0, abs(t_bound)) else t + h
                self.y, self.f = y_new, f_new
                self.h = h * factor
                self.steps += 1
                return
            self.rejected += 1
            h *= max(0.2, 0.9 * err_norm**-0.2)

    def dense(self, t: float) -> Any:
        """Return the fourth-order interpolant at t inside the last step [t_old, t]."""
        h = self.t - self.t_old
        if h == 0:
            return self.y
        theta = (t - self.t_old) / h
        powers = (theta, theta**2, theta**3, theta**4)
        coeffs = tuple(sum(_P[i][j] * powers[j] for j in range(4)) for i in range(7))
        return _lincomb(self.y_old, h, coeffs, self._ks)


def integrate_on_grid(
    fun: Rhs,
    y0: Any,
    times: np.ndarray,
    *,
    rtol: float,
    atol: float,
    norm: ErrorNorm,
    observe: Callable[[float, Any], Any],
    stop: Callable[[], bool] | None = None,
) -> tuple[list[Any], Dopri5]:
    """Integrate from times[0] to times[-1]; return observe(t, y) at every grid time and the stepper."""
    solver = Dopri5(fun, float(times[0]), y0, rtol=rtol, atol=atol, norm=norm)
    out = [observe(float(times[0]), y0)]
    i = 1
    while i < len(times):
        solver.step(float(times[-1]))
        while i < len(times) and times[i] <= solver.t:
            t_i = float(times[i])
            out.append(observe(t_i, solver.y if t_i == solver.t else solver.dense(t_i)))
            i += 1
        if stop is not None and stop():
            break
    return out, solver
