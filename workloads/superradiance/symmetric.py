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
intensity -d<Iz>/dt = 2 c sum b_k w_k. The system is linear with a constant generator M, so
the state on an evenly spaced grid is exp(M t) x0, computed with SciPy's expm_multiply
(Al-Mohy & Higham: truncated Taylor series with scaling, accurate to double precision); no
time-step error at all. Its cost grows like N * ||M|| * t_max ~ N^2 log N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from workloads.common.entry import WorkloadError
from workloads.superradiance.model import Model


@dataclass
class SymmetricSolution:
    """What the collective-spin solver returns."""

    t: np.ndarray
    polarization: np.ndarray
    intensity: np.ndarray
    trace: np.ndarray


def collective_b(model: Model) -> np.ndarray:
    """Return b_k for k = 0..N (b_0 = 0: sector 0 has no electron-up state)."""
    n = model.n
    j = n / 2.0
    k = np.arange(n + 1, dtype=float)
    m = k - j
    b = np.sqrt(np.maximum(j * (j + 1) - m * (m - 1), 0.0)) * model.g[0]
    b[0] = 0.0
    return b


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


def solve_symmetric(model: Model, *, times: np.ndarray) -> SymmetricSolution:
    """Return <Iz>, intensity and trace of the collective cascade from the fully polarized state.

    `times` must be evenly spaced from 0 (the grid every run uses).
    """
    if not model.uniform:
        raise WorkloadError(
            "method=symmetric needs uniform couplings (the collective-spin subspace exists only then): "
            "use --couplings uniform, or --method general / trajectories for these couplings"
        )
    times = np.asarray(times, dtype=float)
    if times[0] != 0 or (times.size > 2 and not np.allclose(np.diff(times), times[1] - times[0], rtol=1e-9)):
        raise ValueError("solve_symmetric needs an evenly spaced grid starting at 0")
    n = model.n
    k = np.arange(n + 1, dtype=float)
    weights = np.zeros((3, 3 * (n + 1)))
    weights[0, 0::3], weights[0, 2::3] = k - n / 2, k - 1 - n / 2
    weights[1, 1::3] = 2 * model.c * collective_b(model)
    weights[2, 0::3], weights[2, 2::3] = 1.0, 1.0
    x0 = np.zeros(3 * (n + 1))
    x0[3 * n] = 1.0  # X_N: every nuclear spin up, the electron down
    states = expm_multiply(
        generator(model), x0, start=0.0, stop=float(times[-1]), num=times.size, endpoint=True
    )
    values = np.asarray(states) @ weights.T
    return SymmetricSolution(t=times, polarization=values[:, 0], intensity=values[:, 1], trace=values[:, 2])
