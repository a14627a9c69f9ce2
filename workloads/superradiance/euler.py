"""The original algorithm, kept as the baseline: dense 2^(N+1) density matrix, fixed-step Euler.

The original (TensorFlow, on SageMaker) built the full Liouvillian action with dense
Kronecker products and stepped rho += dt * L(rho) with dt = 0.3 for 500 steps. This NumPy
version does the same arithmetic, so its time and its error against the exact answer are
what the new solvers are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from workloads.common.entry import WorkloadError
from workloads.superradiance.model import Model

SZ = np.diag([0.5, -0.5])
S_PLUS = np.array([[0.0, 1.0], [0.0, 0.0]])
S_MINUS = np.array([[0.0, 0.0], [1.0, 0.0]])
MAX_EULER_SPINS = 11  # 2^12 x 2^12 complex matrices: 256 MiB each


@dataclass
class EulerSolution:
    """What the dense Euler baseline returns."""

    t: np.ndarray
    polarization: np.ndarray
    intensity: np.ndarray
    trace: np.ndarray
    final_state: np.ndarray


def site_operator(op: np.ndarray, site: int, n_sites: int) -> np.ndarray:
    """Return op acting on one site of n_sites spins-1/2 (site 0 = electron), dense."""
    factors = [np.eye(2)] * n_sites
    factors[site] = op
    return reduce(np.kron, factors)


def dense_operators(model: Model) -> dict[str, np.ndarray]:
    """Return the dense H, L = sqrt(gamma) S-, and Iz of the full space."""
    n = model.n
    a_minus = sum(model.g[i] * site_operator(S_MINUS, i + 1, n + 1) for i in range(n))
    s_plus, s_minus = site_operator(S_PLUS, 0, n + 1), site_operator(S_MINUS, 0, n + 1)
    h = model.c * (s_plus @ a_minus + s_minus @ a_minus.T)
    iz = sum(site_operator(SZ, i + 1, n + 1) for i in range(n))
    return {"H": h, "L": np.sqrt(model.gamma) * s_minus, "Iz": iz}


def default_state(n: int) -> np.ndarray:
    """Return the dense initial state: all nuclear spins up (index 0), electron down (index 1)."""
    dim = 2 ** (n + 1)
    rho = np.zeros((dim, dim), dtype=np.complex128)
    rho[2**n, 2**n] = 1.0
    return rho


def solve_euler(
    model: Model, *, dt: float = 0.3, steps: int = 500, rho0: np.ndarray | None = None
) -> EulerSolution:
    """Step the Lindblad equation with fixed-step forward Euler, exactly as the original did."""
    if model.n > MAX_EULER_SPINS:
        raise WorkloadError(
            f"method=euler stores dense 2^(N+1) matrices; N={model.n} needs "
            f"{16 * 4 ** (model.n + 1) / 2**30:.0f} GiB per matrix: "
            f"use N <= {MAX_EULER_SPINS} or --method general"
        )
    ops = dense_operators(model)
    h, lop, iz = ops["H"], ops["L"], ops["Iz"]
    ldag_l = lop.T @ lop
    rho = default_state(model.n) if rho0 is None else np.asarray(rho0, dtype=np.complex128)
    iz_diag = np.real(np.diag(iz))
    pol, inten, trace = [], [], []
    for _ in range(steps + 1):
        drho = -1j * (h @ rho - rho @ h) + lop @ rho @ lop.T - 0.5 * (ldag_l @ rho + rho @ ldag_l)
        pol.append(float(np.real(np.sum(iz_diag * np.diag(rho)))))
        inten.append(-float(np.real(np.sum(iz_diag * np.diag(drho)))))
        trace.append(float(np.real(np.trace(rho))))
        if len(pol) <= steps:
            rho = rho + dt * drho
    t = dt * np.arange(steps + 1)
    return EulerSolution(
        t=t, polarization=np.array(pol), intensity=np.array(inten), trace=np.array(trace), final_state=rho
    )
