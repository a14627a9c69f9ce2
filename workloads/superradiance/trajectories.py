"""Monte Carlo wave-function trajectories: any couplings, beyond the density-matrix limit.

A trajectory is a pure state in one excitation sector k: a (electron down, k nuclear spins
up) and b (electron up, k-1 up). Between jumps it follows the non-Hermitian Hamiltonian
H - i gamma/2 S+S-:

    da/dt = -i c B_k^T b,    db/dt = -i c B_k a - gamma/2 b,

and it jumps (S-: b becomes the down part of sector k-1) when its squared norm falls to a
uniform random number (Dalibard, Castin & Molmer 1992). Averages over trajectories converge
to the Lindblad solution; <Iz> and the intensity 2c Im(b^H B a)/|psi|^2 are averaged with
their standard errors. Chunks of trajectories run as Ray tasks (or in-process with workers=1).

Both estimators are unbiased (see :func:`state_observables`). Where couplings differ, the late
tail of the burst is a rare-event regime: most trajectories sit in a nearly dark state whose
current carries only part of -d<Iz>/dt, and the rest comes from the few trajectories that just
jumped out of it and relax within a few 1/gamma. At N = 3 (random couplings, seed 4, t = 50)
exactly half of the intensity sits in sector 1 with an electron-up population of 8e-5, so 300
trajectories almost never hold such a state: the sample mean reads about half the exact value
and its standard error, taken from the sample, is far too small. <Iz> is unaffected (bounded,
and the decay it misses is 1e-4 per unit time). More trajectories, not another formula, fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from workloads.superradiance.dopri5 import Dopri5
from workloads.superradiance.model import Model
from workloads.superradiance.ray_pool import map_tasks
from workloads.superradiance.sectors import Sectors


@dataclass
class TrajectorySolution:
    """Ensemble means and standard errors of <Iz> and the intensity."""

    t: np.ndarray
    polarization: np.ndarray
    polarization_se: np.ndarray
    intensity: np.ndarray
    intensity_se: np.ndarray
    trajectories: int
    jumps_mean: float


@dataclass
class _Sums:
    """Running sums over trajectories (what a chunk returns: small, so Ray moves little)."""

    iz: np.ndarray
    iz2: np.ndarray
    it: np.ndarray
    it2: np.ndarray
    count: int
    jumps: int


def _norm(rtol: float, atol: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    def norm(err: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> float:
        scale = atol + rtol * np.maximum(np.abs(y0), np.abs(y1))
        return float(np.sqrt(np.mean((np.abs(err) / scale) ** 2)))

    return norm


def state_observables(
    psi: np.ndarray, lowering: sp.csr_matrix, *, c: float, iz_down: float, iz_up: float
) -> tuple[float, float]:
    """Return (<Iz>, intensity) of the normalised sector state psi = (a, b) (down part, up part).

    The intensity is the flip-flop current -i<[H, Iz]> = 2c Im(b^H B a) / |psi|^2, the same
    functional (2c Im tr(B Y) with Y = a b^H) as the exact solver's -d<Iz>/dt. Averaged over
    trajectories it equals the exact intensity: the average of normalised expectations is
    tr(rho O), and the terms by which normalisation and jumps move <Iz> cancel on average.
    """
    d = lowering.shape[1]
    pa, pb = float(np.vdot(psi[:d], psi[:d]).real), float(np.vdot(psi[d:], psi[d:]).real)
    norm2 = pa + pb
    inten = 2 * c * float(np.vdot(psi[d:], lowering @ psi[:d]).imag) if psi.size > d else 0.0
    return (iz_down * pa + iz_up * pb) / norm2, inten / norm2


def run_chunk(
    model: Model, times: np.ndarray, *, count: int, seed: int, rtol: float = 1e-7, atol: float = 1e-9
) -> _Sums:
    """Run `count` trajectories with their own random stream; return the sums of the observables."""
    sectors = Sectors(model)
    n, c, gam = model.n, model.c, model.gamma
    lowering: dict[int, sp.csr_matrix] = {}
    rng = np.random.default_rng(seed)
    sums = _Sums(
        iz=np.zeros(times.size),
        iz2=np.zeros(times.size),
        it=np.zeros(times.size),
        it2=np.zeros(times.size),
        count=0,
        jumps=0,
    )

    for _ in range(count):
        k = n
        d, u = sectors.down_dim(k), sectors.up_dim(k)
        psi = np.zeros(d + u, dtype=np.complex128)
        psi[0] = 1.0  # the one configuration with every nuclear spin up
        threshold = rng.random()
        t0, i = float(times[0]), 0
        iz_row = np.zeros(times.size)
        it_row = np.zeros(times.size)
        while i < times.size:
            if k not in lowering:
                lowering[k] = sectors.lowering(k) if k >= 1 else sp.csr_matrix((0, sectors.down_dim(0)))
            b_k, bt_k = lowering[k], lowering[k].T.tocsr()
            d = sectors.down_dim(k)
            iz_down, iz_up = sectors.iz_values(k)

            def rhs(
                _t: float, y: np.ndarray, b_k: sp.csr_matrix = b_k, bt_k: sp.csr_matrix = bt_k, d: int = d
            ) -> np.ndarray:
                out = np.empty_like(y)
                out[:d] = (-1j * c) * (bt_k @ y[d:])
                out[d:] = (-1j * c) * (b_k @ y[:d]) - (0.5 * gam) * y[d:]
                return out

            def observe(
                y: np.ndarray,
                b_k: sp.csr_matrix = b_k,
                iz_down: float = iz_down,
                iz_up: float = iz_up,
            ) -> tuple[float, float]:
                return state_observables(y, b_k, c=c, iz_down=iz_down, iz_up=iz_up)

            if psi.size == d:  # no electron-up part (sector 0): nothing moves any more
                iz_row[i:], it_row[i:] = observe(psi)
                break
            solver = Dopri5(rhs, t0, psi, rtol=rtol, atol=atol, norm=_norm(rtol, atol))
            jumped = False
            while i < times.size:
                solver.step(float(times[-1]))
                norm_new = float(np.vdot(solver.y, solver.y).real)
                t_jump = np.inf
                if norm_new <= threshold:
                    t_jump = brentq(
                        lambda tt: float(np.vdot(solver.dense(tt), solver.dense(tt)).real) - threshold,  # noqa: B023
                        solver.t_old,
                        solver.t,
                        xtol=1e-12,
                    )
                while i < times.size and times[i] <= min(solver.t, t_jump):
                    ti = float(times[i])
                    iz_row[i], it_row[i] = observe(solver.y if ti == solver.t else solver.dense(ti))
                    i += 1
                if np.isfinite(t_jump):
                    state = solver.dense(t_jump)
                    up_part = state[d:]
                    k -= 1
                    psi = np.zeros(sectors.down_dim(k) + sectors.up_dim(k), dtype=np.complex128)
                    psi[: up_part.size] = up_part / np.linalg.norm(up_part)
                    t0, threshold = t_jump, rng.random()
                    sums.jumps += 1
                    jumped = True
                    break
                if solver.t >= times[-1]:
                    break
            if not jumped:
                break
        sums.iz += iz_row
        sums.iz2 += iz_row**2
        sums.it += it_row
        sums.it2 += it_row**2
        sums.count += 1
    return sums


def _finish(times: np.ndarray, parts: list[_Sums]) -> TrajectorySolution:
    total = parts[0]
    for p in parts[1:]:
        total = _Sums(
            total.iz + p.iz,
            total.iz2 + p.iz2,
            total.it + p.it,
            total.it2 + p.it2,
            total.count + p.count,
            total.jumps + p.jumps,
        )
    m = total.count

    def mean_se(s: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = s / m
        var = np.maximum(s2 / m - mean**2, 0.0) * m / max(m - 1, 1)
        return mean, np.sqrt(var / m)

    iz, iz_se = mean_se(total.iz, total.iz2)
    it, it_se = mean_se(total.it, total.it2)
    return TrajectorySolution(
        t=times,
        polarization=iz,
        polarization_se=iz_se,
        intensity=it,
        intensity_se=it_se,
        trajectories=m,
        jumps_mean=total.jumps / m,
    )


def chunk_plan(total: int, workers: int, seed: int) -> list[tuple[int, int]]:
    """Split `total` trajectories into about 4 chunks per worker, each with an independent seed."""
    chunks = max(1, min(total, 4 * max(workers, 1)))
    sizes = [total // chunks + (1 if i < total % chunks else 0) for i in range(chunks)]
    seeds = np.random.SeedSequence(seed).generate_state(chunks).tolist()
    return [(size, int(s)) for size, s in zip(sizes, seeds, strict=True) if size]


def solve_trajectories(
    model: Model,
    *,
    times: np.ndarray,
    trajectories: int,
    seed: int = 0,
    workers: int = 1,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> TrajectorySolution:
    """Average `trajectories` quantum trajectories; workers > 1 spreads chunks over a local Ray runtime."""
    times = np.asarray(times, dtype=float)
    plan = chunk_plan(trajectories, workers, seed)
    if workers <= 1:
        parts = [run_chunk(model, times, count=cnt, seed=s, rtol=rtol, atol=atol) for cnt, s in plan]
        return _finish(times, parts)
    parts = map_tasks(
        run_chunk,
        [((model, times), {"count": cnt, "seed": s, "rtol": rtol, "atol": atol}) for cnt, s in plan],
        workers=workers,
    )
    return _finish(times, parts)
