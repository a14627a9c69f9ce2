"""Step the collective cascade dx/dt = M x with a rational approximation of exp(hM), O(N) per step.

M (see :mod:`.symmetric`) is block lower-bidiagonal: sector k's 3x3 block B_k (unknowns X_k, w_k,
Z_k) is driven only by gamma Z_{k+1}. One step applies R(hM), the (3, 4) Pade approximant of
exp(hM) (the stability function of the 4-stage Radau IIA method: order 7, L-stable, so the fast
sectors that the population crosses in a fraction of a step are damped instead of ringing).
In partial fractions, R(z) = sum_p r_p / (z - p) over two complex-conjugate pole pairs, so

    x_new = sum_p w_p Re(r_p (hM - p)^-1 x)          (w_p = 2: one pole of each pair)

and each resolvent is a sweep down the cascade: with C_k = (hB_k - p)^-1 (closed form, never
singular because the poles lie in the right half-plane and hB_k's eigenvalues in the left),

    y_k = C_k x_k - h gamma C_k e_X (y_{k+1})_Z,

a first-order recurrence for the scalars (y_k)_Z (one LAPACK banded triangular solve) followed by
vectorised 3x3 algebra. No eigen-decomposition is formed, so near-degenerate block eigenvalues
(2 a_k ~ gamma / 4) cost no accuracy. A step costs O(N) whatever h is; the error is that of the
order-7 approximation on the smooth (timescale ~N) solution, ~1e-11 relative on the default grid.

Only sectors holding more than ``THRESHOLD`` (absolute, the populations sum to 1) are stepped:
early on the population sits in the top few sectors, so the graded steps that resolve the
initial transient cost almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
from scipy.linalg import lapack

PADE = (3, 4)
THRESHOLD = 1e-30  # populations below this are dropped: their effect on <Iz> is < N * 1e-30


def pade_partial_fractions(m: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return poles, residues and weights of the (m, n) Pade approximant of exp, m < n.

    R(z) = sum_i w_i Re(r_i / (z - p_i)) for real z: one pole of each conjugate pair is kept
    (weight 2), real poles have weight 1.
    """
    if not 0 <= m < n:
        raise ValueError(f"need 0 <= m < n for a strictly proper approximant, got ({m}, {n})")
    num = [
        factorial(m + n - j) * factorial(m) / (factorial(m + n) * factorial(j) * factorial(m - j))
        for j in range(m + 1)
    ]
    den = [
        (-1) ** j * factorial(m + n - j) * factorial(n) / (factorial(m + n) * factorial(j) * factorial(n - j))
        for j in range(n + 1)
    ]
    p_num, p_den = np.poly1d(num[::-1]), np.poly1d(den[::-1])
    poles = np.roots(p_den.coeffs)
    residues = p_num(poles) / p_den.deriv()(poles)
    keep = poles.imag >= -1e-12 * np.abs(poles)
    poles, residues = poles[keep], residues[keep]
    weights = np.where(np.abs(poles.imag) > 1e-12 * np.abs(poles), 2.0, 1.0)
    # R(0) = 1 exactly, so a step conserves the trace (1^T M = 0) to rounding, not to ~1e-14
    residues = residues / np.sum(weights * (residues / -poles).real)
    return poles, residues, weights


@dataclass
class _Coefficients:
    """Per-sector arrays of one step size, for sectors lo..N."""

    lo: int
    e: np.ndarray  # (3, 3, K) real: R(h B_k), the block-diagonal part of R(hM)
    zrow: np.ndarray  # (P, 2, 3, K) real: Re and Im of row Z of C_k, gives (C_k x_k)_Z
    band: list[np.ndarray]  # per pole, (2, K) Fortran-ordered band of the unit upper-bidiagonal sweep
    drive: np.ndarray  # (P, 2, 3, K) real: Re and -Im of -h gamma w r C_k e_X, the weight of (y_{k+1})_Z


class CascadeStepper:
    """Apply R(hM) to cascade states x of shape (3, N+1) (rows X, w, Z; column k = sector k)."""

    def __init__(self, a: np.ndarray, gamma: float, *, pade: tuple[int, int] = PADE) -> None:
        self.a = np.asarray(a, dtype=float)
        self.gamma = float(gamma)
        self.poles, self.residues, self.weights = pade_partial_fractions(*pade)
        self._cache: dict[float, _Coefficients] = {}
        self._seen: set[float] = set()
        self._margin = 64

    @property
    def n(self) -> int:
        """Number of nuclear spins (sectors 0..N)."""
        return self.a.size - 1

    def coefficients(self, h: float, lo: int) -> _Coefficients:
        """Return the step-h coefficients covering sectors lo..N (cached per h, at most 3 sizes)."""
        hit = self._cache.get(h)
        if hit is not None and hit.lo <= lo:
            return hit
        # a size used before is computed for every sector, so the front moving down reuses it
        start = 0 if h in self._seen else lo
        self._seen.add(h)
        coef = self._compute(h, start)
        if len(self._cache) >= 3 and h not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[h] = coef
        return coef

    def _compute(self, h: float, lo: int) -> _Coefficients:
        al = h * self.a[lo:]
        al2 = 2.0 * al * al
        hg = h * self.gamma
        size = al.size
        e = np.zeros((3, 3, size))
        zrow = np.empty((self.poles.size, 2, 3, size))
        drive = np.empty((self.poles.size, 2, 3, size))
        band = []
        for i, (p, r, w) in enumerate(zip(self.poles, self.residues, self.weights, strict=True)):
            d1, d2, d3 = -p, -0.5 * hg - p, -hg - p
            inv = -1.0 / ((p + 0.5 * hg) * (p * (p + hg) + 2.0 * al2))  # 1 / det(hB_k - p)
            c = np.empty((3, 3, size), dtype=complex)  # C_k = adj(hB_k - p) / det
            c[0, 0], c[0, 1], c[0, 2] = (d2 * d3 + al2) * inv, 2 * al * d3 * inv, al2 * inv
            c[1, 0], c[1, 1], c[1, 2] = -al * d3 * inv, d1 * d3 * inv, al * d1 * inv
            c[2, 0], c[2, 1], c[2, 2] = al2 * inv, -2 * al * d1 * inv, (d1 * d2 + al2) * inv
            e += w * (r * c).real
            zrow[i, 0], zrow[i, 1] = c[2].real, c[2].imag
            col = (-hg * w * r) * c[:, 0]
            drive[i, 0], drive[i, 1] = col.real, -col.imag
            ab = np.zeros((2, size), dtype=complex, order="F")
            ab[1] = 1.0
            ab[0, 1:] = hg * c[2, 0, :-1]  # -g_k with g_k = -h gamma (C_k)_ZX
            band.append(ab)
        return _Coefficients(lo=lo, e=e, zrow=zrow, band=band, drive=drive)

    def _apply(self, x: np.ndarray, h: float, lo: int) -> np.ndarray:
        coef = self.coefficients(h, lo)
        s = lo - coef.lo
        xs = x[:, lo:]
        out = np.zeros_like(x)
        view = out[:, lo:]
        np.einsum("ijk,jk->ik", coef.e[:, :, s:], xs, out=view)
        parts = np.einsum("prjk,jk->prk", coef.zrow[..., s:], xs)  # Re, Im of (C_k x_k)_Z per pole
        f = np.empty(xs.shape[1], dtype=complex)
        for i, ab in enumerate(coef.band):
            f.real, f.imag = parts[i, 0], parts[i, 1]
            yz, info = lapack.ztbtrs(ab[:, s:], f[:, None], uplo="U", diag="U", overwrite_b=1)
            if info != 0:  # pragma: no cover - a unit triangular solve cannot fail
                raise RuntimeError(f"ztbtrs failed with info={info}")
            y = yz[1:, 0]
            view[:, :-1] += coef.drive[i, 0, :, s:-1] * y.real
            view[:, :-1] += coef.drive[i, 1, :, s:-1] * y.imag
        return out

    def advance(self, x: np.ndarray, h: float, lo: int) -> tuple[np.ndarray, int]:
        """Return (R(hM) x, the lowest sector now above THRESHOLD); x must vanish below sector lo."""
        start = max(0, lo - self._margin)
        while True:
            out = self._apply(x, h, start)
            if start == 0 or np.max(np.abs(out[:, start : start + 4])) <= THRESHOLD:
                break
            start = 0  # the population went further than the margin: redo over every sector
        alive = np.flatnonzero(np.max(np.abs(out[:, start:]), axis=0) > THRESHOLD)
        new_lo = start + int(alive[0]) if alive.size else self.n
        out[:, :new_lo] = 0.0
        self._margin = max(64, 2 * (lo - new_lo))
        return out, new_lo


def _snap(h: float, h_prev: float) -> float:
    """Return h_prev when h differs from it by rounding only (linspace spacing), so its coefficients are reused."""
    return h_prev if abs(h - h_prev) <= 1e-10 * h_prev else h


def step_plan(
    times: np.ndarray,
    *,
    h_first: float,
    h_max: float,
    t_transient: float,
    t_smooth: float,
    h_transient: float = np.inf,
    growth: float = 0.15,
) -> list[tuple[float, int | None]]:
    """Return the steps (h, index of the output time reached or None) that cover `times`.

    Before t_transient the steps are graded, h = growth * t (from h_first, at most h_transient),
    so the initial relaxation of the electron is resolved; then equal steps of at most h_max per output
    interval (one size reused, so its coefficients are computed once); after t_smooth, when
    the burst is over, steps may double. A step never more than doubles the previous one.
    """
    steps: list[tuple[float, int | None]] = []
    t, h_prev = float(times[0]), 0.5 * h_first
    for j in range(1, times.size):
        t1 = float(times[j])
        seg: list[float] = []
        while True:
            rest = t1 - t
            if t < t_transient:
                cap = min(h_max, h_transient, max(h_first, growth * t))
            else:
                cap = h_max if t < t_smooth else np.inf
            want = min(cap, 2.0 * h_prev)
            if want >= rest * (1 - 1e-9):
                seg.append(_snap(rest, h_prev))
                break
            if want == cap and np.isfinite(cap) and t >= t_transient:
                count = int(np.ceil(rest / want))
                seg += [_snap(rest / count, h_prev)] * count
                break
            seg.append(want)
            t += want
            h_prev = want
        t, h_prev = t1, max(seg)  # a short last step (to land on t1) does not restart the growth
        steps += [(h, None) for h in seg[:-1]] + [(seg[-1], j)]
    return steps
