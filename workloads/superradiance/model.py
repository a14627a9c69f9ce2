"""The central-spin model: couplings, constants and the conventions every solver shares.

Conventions (those of the original simulation, so results compare):

* spin-1/2 basis index 0 = up, 1 = down; sigma_z = diag(1/2, -1/2), s+ = [[0, 1], [0, 0]],
  s- = [[0, 0], [1, 0]];
* couplings g normalised to unit 2-norm and A = a_mean / sum(g);
* H = (A/2)(S+ A- + S- A+), Lindblad operator sqrt(gamma) S-;
* initial state: every nuclear spin up, the electron down (index 1);
* the full Hilbert space is ordered electron (x) nucleus_1 (x) ... (x) nucleus_N, so a
  basis index is e * 2**N + sum_i s_i * 2**(N-1-i) with e, s_i in {0 (up), 1 (down)}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workloads.common.entry import WorkloadError


@dataclass(frozen=True)
class Model:
    """One central-spin problem: N nuclear spins with couplings g, rates gamma and a_mean."""

    g: np.ndarray
    gamma: float = 1.0
    a_mean: float = 1.0

    @property
    def n(self) -> int:
        """Number of nuclear spins."""
        return int(self.g.size)

    @property
    def a(self) -> float:
        """The hyperfine scale A = a_mean / sum(g)."""
        return self.a_mean / float(np.sum(self.g))

    @property
    def c(self) -> float:
        """The flip-flop prefactor A/2 of H."""
        return 0.5 * self.a

    @property
    def uniform(self) -> bool:
        """True when every coupling is the same (the collective-spin solver applies)."""
        return bool(np.allclose(self.g, self.g[0], rtol=1e-12, atol=0.0))

    def i_ind(self) -> float:
        """Return the independent-emitter intensity Re(A^2 / (gamma + i a_mean)) * 2 / N."""
        return float((self.a**2 / (self.gamma + 1j * self.a_mean)).real * 2.0 / self.n)


def _check_finite_positive(name: str, value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise WorkloadError(f"{name}={value!r} is not valid: it must be a finite number > 0, e.g. {name}=1.0")
    return float(value)


def make_couplings(
    n: int, *, kind: str = "uniform", seed: int = 0, values: Sequence[float] | None = None
) -> np.ndarray:
    """Return N couplings normalised to unit 2-norm: uniform, random (seeded) or given values.

    Random couplings are uniform on (0, 1] before normalisation (the original's
    commented-out option drew them from a uniform distribution).
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise WorkloadError(
            f"N={n!r} is not valid: the number of nuclear spins must be an integer >= 1, e.g. N=8"
        )
    if kind == "uniform":
        g = np.ones(n)
    elif kind == "random":
        rng = np.random.default_rng(seed)
        g = 1.0 - rng.random(n)  # in (0, 1]: no zero coupling
    elif kind == "list":
        if values is None or len(values) == 0:
            raise WorkloadError(
                "couplings=list needs coupling values: give --coupling-values with N numbers, e.g. 1,0.8,0.5"
            )
        g = np.asarray(values, dtype=float)
        if g.ndim != 1 or g.size != n:
            raise WorkloadError(
                f"coupling values have length {g.size} but N={n}: "
                "give exactly N numbers (one per nuclear spin)"
            )
        bad = [float(v) for v in g if not math.isfinite(v)]
        if bad:
            raise WorkloadError(
                f"coupling values must be finite numbers; found {bad}: replace them with real numbers"
            )
        if np.any(g < 0) or not np.any(g > 0):
            raise WorkloadError(
                f"coupling values must be >= 0 with at least one > 0 (A = a_mean / sum(g)); got {g.tolist()}"
            )
    else:
        raise WorkloadError(f"couplings={kind!r} is not valid: use one of uniform, random, list")
    return g / np.linalg.norm(g)


def make_model(
    n: int,
    *,
    couplings: str = "uniform",
    seed: int = 0,
    coupling_values: Sequence[float] | None = None,
    gamma: float = 1.0,
    a_mean: float = 1.0,
) -> Model:
    """Build and validate a :class:`Model` (bad values raise WorkloadError with the fix)."""
    g = make_couplings(n, kind=couplings, seed=seed, values=coupling_values)
    return Model(
        g=g, gamma=_check_finite_positive("gamma", gamma), a_mean=_check_finite_positive("a_mean", a_mean)
    )


def collective_rates(model: Model) -> np.ndarray:
    """Return the slowest decay rate of each excitation sector k = 1..N of the uniform model.

    In the collective-spin picture sector k holds |down, m=k-N/2> and |up, m-1>, coupled by
    a_k = c*b_k with b_k^2 = (J(J+1) - m(m-1)) / N = k(N-k+1) / N. The 3x3 (populations and
    coherence) block has characteristic polynomial (z + gamma/2)(z^2 + gamma z + 4 a_k^2), so its
    slowest rate is 8 a_k^2 / (gamma + sqrt(gamma^2 - 16 a_k^2)) when overdamped and gamma/2
    otherwise: the rate at which that step of the cascade empties (closed form, no eigensolver).
    """
    n = model.n
    k = np.arange(1, n + 1, dtype=float)
    a2 = model.c**2 * k * (n - k + 1) / n
    gam = model.gamma
    disc = gam**2 - 16.0 * a2
    return np.where(disc > 0, 8.0 * a2 / (gam + np.sqrt(np.maximum(disc, 0.0))), 0.5 * gam)


def auto_t_max(model: Model) -> float:
    """Return a horizon that covers the whole burst: mean cascade time + 8 of its standard deviations.

    The emission is a cascade of N steps with rates r_k; its duration has mean sum(1/r_k) and
    variance sum(1/r_k^2). Never shorter than the original's 150 (= 500 Euler steps of 0.3).
    """
    rates = collective_rates(model)
    mean = float(np.sum(1.0 / rates))
    std = float(np.sqrt(np.sum(1.0 / rates**2)))
    return max(150.0, mean + 8.0 * std)
