"""The Burgers reference (Cole–Hopf by Gauss–Hermite) against independent computations
and a published value."""

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.optimize import minimize_scalar

from workloads.pinn.cole_hopf import NU, burgers


def _adaptive(x: float, t: float) -> float:
    """Evaluate the Cole–Hopf integrals by adaptive Gauss–Kronrod (scipy.quad) in the original variable."""
    s = math.sqrt(4 * NU * t)

    def exponent(e):
        return -math.cos(math.pi * (x - e)) / (2 * math.pi * NU) - e * e / (s * s)

    grid = np.linspace(-12 * s, 12 * s, 4001)
    peak = grid[np.argmax([exponent(e) for e in grid])]
    top = exponent(peak)
    kw = {"limit": 400, "epsabs": 0, "epsrel": 1e-12, "points": [peak]}
    num = integrate.quad(
        lambda e: math.sin(math.pi * (x - e)) * math.exp(exponent(e) - top), -12 * s, 12 * s, **kw
    )
    den = integrate.quad(lambda e: math.exp(exponent(e) - top), -12 * s, 12 * s, **kw)
    return -num[0] / den[0]


@pytest.mark.parametrize("t", [0.05, 0.3, 0.75, 1.0])
def test_gauss_hermite_matches_adaptive_quadrature(t):
    xs = np.array([-0.9, -0.3, -0.02, -0.002, 0.001, 0.01, 0.4, 0.97])
    ours = burgers(xs, np.full_like(xs, t))
    theirs = np.array([_adaptive(x, t) for x in xs])
    # The issue asks for 1e-7; the two quadratures agree to ~1e-15 (gaussian tails cut at 12 sigma: < 1e-60).
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_steepest_slope_matches_basdevant_1986():
    # Basdevant et al. (1986), J. Comput. Phys. 62, 9.2: the largest |u_x| at x = 0 is 152.00516,
    # reached at t = 1.6037 / pi. Central differences with h = 1e-6 err by ~h^2 u_xxx ~ 1e-6 (u_xxx(0) ~ 1e6).
    h = 1e-6

    def slope(t):
        return -(burgers(np.array(h), np.array(t)) - burgers(np.array(-h), np.array(t))) / (2 * h)

    best = minimize_scalar(
        lambda t: -slope(t), bounds=(0.45, 0.55), method="bounded", options={"xatol": 1e-9}
    )
    assert abs(-best.fun - 152.00516) < 2e-5
    assert abs(best.x * math.pi - 1.6037) < 1e-4


def test_initial_and_boundary_values_and_symmetry():
    x = np.linspace(-1, 1, 41)
    np.testing.assert_allclose(burgers(x, np.zeros_like(x)), -np.sin(math.pi * x), atol=1e-15)
    t = np.linspace(0.01, 1, 17)
    np.testing.assert_allclose(burgers(np.ones_like(t), t), 0, atol=1e-12)
    np.testing.assert_allclose(burgers(-np.ones_like(t), t), 0, atol=1e-12)
    # -sin(pi x) is odd, and so is the solution at every time.
    np.testing.assert_allclose(
        burgers(x, np.full_like(x, 0.6)), -burgers(-x, np.full_like(x, 0.6)), atol=1e-13
    )


def test_reference_satisfies_burgers_by_finite_differences():
    # Away from the shock (|x| >= 0.2) the solution is smooth; with h = 1e-4, central differences
    # err by ~h^2 * (third derivatives ~ 1e2) ~ 1e-6, and the residual terms are of order 1.
    x, t = np.meshgrid(np.linspace(-0.9, -0.2, 8), np.linspace(0.1, 0.9, 5))
    h = 1e-4
    u = burgers(x, t)
    u_t = (burgers(x, t + h) - burgers(x, t - h)) / (2 * h)
    u_x = (burgers(x + h, t) - burgers(x - h, t)) / (2 * h)
    u_xx = (burgers(x + h, t) - 2 * u + burgers(x - h, t)) / h**2
    assert np.abs(u_t + u * u_x - NU * u_xx).max() < 1e-5


def test_negative_time_is_refused():
    with pytest.raises(ValueError, match="t >= 0"):
        burgers(np.array([0.0]), np.array([-0.1]))
