"""The collective-spin solver for uniform couplings: three numbers per excitation sector.

With g_i = 1/sqrt(N) the nuclear spins stay in the symmetric (J = N/2) subspace and
A- = J-/sqrt(N). Sector k then holds only |down, m = k - N/2> and |up, m - 1>, coupled by
a_k = c b_k with b_k = sqrt(J(J+1) - m(m-1)) / sqrt(N). Its 2x2 density block has
populations X_k, Z_k and a coherence whose real part decays from zero on its own; with w_k
its imaginary part, the Lindblad equation becomes the linear cascade

    dX_k = -2 a_k w_k + gamma Z_{k+1}
    dZ_k = +2 a_k w_k - gamma Z_k
    dw_k = a_k (X_k - Z_k) - gamma/2 w_k

(3(N+1) unknowns instead of 4^(N+1)), with <Iz> = sum (k - N/2) X_k + (k - 1 - N/2) Z_k and
intensity -d<Iz>/dt = 2 c sum b_k w_k. The system is linear with a constant generator M.

:func:`solve_symmetric` steps it with :class:`.cascade.CascadeStepper` (an order-7 L-stable
rational approximation of exp(hM), O(N) per step, ~1e-11 relative): N = 100,000 in seconds.
:func:`solve_symmetric_expm` is the reference it is tested against: exp(M t) x0 on an evenly
spaced grid with SciPy's expm_multiply (Al-Mohy & Higham, accurate to double precision), whose
cost grows like N * ||M|| * t_max ~ N^2 log N (12 s at N = 3000).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from workloads.common.entry import WorkloadError
from workloads.superradiance.cascade import CascadeStepper, step_plan
from workloads.superradiance.model import Model, auto_t_max


@dataclass
class SymmetricSolution:
    """What the collective-spin solver returns."""

    t: np.ndarray
    polarization: np.ndarray
    intensity: np.ndarray
    trace: np.ndarray


def collective_b(model: Model) -> np.ndarray:
    """Return b_k for k = 0..N (b_0 = 0: sector 0 has no electron-up state)."""
    k = np.arange(model.n + 1, dtype=float)
    return np.sqrt(k * (model.n - k + 1)) * model.g[0]  # J(J+1) - m(m-1) = k(N-k+1), without cancellation


def generator(model: Model) -> sp.csr_matrix:
    """Return the sparse M of dx/dt = M x with x = (X_0, w_0, Z_0, X_1, w_1, Z_1, ...)."""
    n, c, gam = model.n, model.c, model.gamma
    a = c * collective_b(model)
    k = np.arange(n + 1)
    ix, iw, iz = 3 * k, 3 * k + 1, 3 * k + 2
    rows = [ix, iz, iw, iw, iw, iz, ix[:-1]]
    cols = [iw, iw, ix, iz, iw, iz, iz[1:]]
    vals = [-2 * a, 2 * a, a, -a, np.full(n + 1, -gam / 2), np.full(n + 1, -gam), np.full(n, gam)]
    size = 3 * (n + 1)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )


def _require_uniform(model: Model) -> None:
    if not model.uniform:
        raise WorkloadError(
            "method=symmetric needs uniform couplings (the collective-spin subspace exists only then): "
            "use --couplings uniform, or --method general / trajectories for these couplings"
        )


def _observables(model: Model) -> np.ndarray:
    """Return weights (3 observables, 3 rows, N+1 sectors): <Iz>, intensity and trace."""
    n = model.n
    k = np.arange(n + 1, dtype=float)
    weights = np.zeros((3, 3, n + 1))
    weights[0, 0], weights[0, 2] = k - n / 2, k - 1 - n / 2
    weights[1, 1] = 2 * model.c * collective_b(model)
    weights[2, 0], weights[2, 2] = 1.0, 1.0
    return weights


def solve_symmetric(
    model: Model, *, times: np.ndarray, stop: Callable[[], bool] | None = None
) -> SymmetricSolution:
    """Return <Iz>, intensity and trace of the collective cascade from the fully polarized state.

    `times` must start at 0 and increase. Steps are graded over the electron's initial
    relaxation (t < 70 / gamma), then at most t_auto / 500 (t_auto = :func:`.auto_t_max`, the
    whole burst) and free to grow once the burst is over; `stop` is polled between steps.
    """
    _require_uniform(model)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or times[0] != 0 or np.any(np.diff(times) <= 0):
        raise ValueError("solve_symmetric needs increasing times starting at 0")
    n, gam = model.n, model.gamma
    a = model.c * collective_b(model)
    stepper = CascadeStepper(a, gam)
    weights = _observables(model)
    values = np.full((times.size, 3), np.nan)
    x = np.zeros((3, n + 1))
    x[0, n] = 1.0  # X_N: every nuclear spin up, the electron down
    lo = n
    values[0] = np.einsum("oik,ik->o", weights, x)
    omega = 0.5 * np.sqrt(max(16.0 * float(a.max()) ** 2 - gam**2, 0.0))  # fastest block oscillation
    t_auto = auto_t_max(model)
    plan = step_plan(
        times,
        h_first=1e-3 / (gam + 2.0 * float(a.max())),
        h_max=t_auto / 500.0,
        t_transient=70.0 / gam,  # the electron's fast modes decay at >= gamma/2: e^-35 by then
        t_smooth=t_auto,
        h_transient=0.3 / omega if omega > 0 else np.inf,  # resolve any ringing while it lasts
    )
    for h, record in plan:
        if stop is not None and stop():
            break  # the caller sees the stop request and discards the partial series
        x, lo = stepper.advance(x, h, lo)
        if record is not None:
            values[record] = np.einsum("oik,ik->o", weights[:, :, lo:], x[:, lo:])
    return SymmetricSolution(t=times, polarization=values[:, 0], intensity=values[:, 1], trace=values[:, 2])


def solve_symmetric_expm(model: Model, *, times: np.ndarray) -> SymmetricSolution:
    """Return the same as :func:`solve_symmetric` with expm_multiply (the slow, independent reference).

    `times` must be evenly spaced from 0.
    """
    _require_uniform(model)
    times = np.asarray(times, dtype=float)
    if times[0] != 0 or (times.size > 2 and not np.allclose(np.diff(times), times[1] - times[0], rtol=1e-9)):
        raise ValueError("solve_symmetric_expm needs an evenly spaced grid starting at 0")
    n = model.n
    weights = _observables(model).transpose(0, 2, 1).reshape(3, 3 * (n + 1))
    x0 = np.zeros(3 * (n + 1))
    x0[3 * n] = 1.0
    states = expm_multiply(
        generator(model), x0, start=0.0, stop=float(times[-1]), num=times.size, endpoint=True
    )
    values = np.asarray(states) @ weights.T
    return SymmetricSolution(t=times, polarization=values[:, 0], intensity=values[:, 1], trace=values[:, 2])
