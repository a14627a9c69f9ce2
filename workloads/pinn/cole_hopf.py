"""The exact solution of viscous Burgers on [-1, 1] with u(x, 0) = -sin(pi x), by the Cole–Hopf transform.

The Cole–Hopf transform turns Burgers into the heat equation, whose solution is a Gaussian
convolution of the transformed initial data::

    u(x, t) = -∫ sin(pi (x - e)) f(x - e) g(e) de / ∫ f(x - e) g(e) de,
    f(y) = exp(-cos(pi y) / (2 pi nu)),   g(e) = exp(-e^2 / (4 nu t)).

Substituting e = sqrt(4 nu t) z makes g the Gauss–Hermite weight exp(-z^2), so both
integrals are Gauss–Hermite sums. f spans exp(±1/(2 pi nu)) = exp(±50) for nu = 0.01/pi,
so the sums are taken after subtracting the largest exponent (log-sum-exp); 200 nodes
give 1e-15 against adaptive quadrature (tests/workloads/pinn/test_pinn_cole_hopf.py).
The odd, 2-periodic initial data make u(±1, t) = 0 on the whole line, so this is also
the solution of the boundary-value problem.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import roots_hermite

NU = 0.01 / math.pi
NODES = 200


def burgers(x: np.ndarray, t: np.ndarray, *, nu: float = NU, nodes: int = NODES) -> np.ndarray:
    """Return u(x, t) of viscous Burgers with u(x, 0) = -sin(pi x) (x, t broadcast together)."""
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    if np.any(t < 0):
        raise ValueError("the Cole–Hopf solution is defined for t >= 0")
    z, w = roots_hermite(nodes)
    flat_x, flat_t = x.ravel(), t.ravel()
    out = -np.sin(math.pi * flat_x)
    positive = flat_t > 0
    if np.any(positive):
        xs, ts = flat_x[positive], flat_t[positive]
        # Evaluate in blocks so a large grid does not build one huge (points x nodes) array.
        block = 4096
        values = np.empty_like(xs)
        for start in range(0, xs.size, block):
            sl = slice(start, start + block)
            y = xs[sl, None] - np.sqrt(4.0 * nu * ts[sl, None]) * z[None, :]
            exponent = -np.cos(math.pi * y) / (2.0 * math.pi * nu)
            exponent -= exponent.max(axis=1, keepdims=True)
            weights = w[None, :] * np.exp(exponent)
            values[sl] = -(np.sin(math.pi * y) * weights).sum(axis=1) / weights.sum(axis=1)
        out[positive] = values
    return out.reshape(x.shape)
