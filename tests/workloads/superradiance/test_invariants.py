"""Physical invariants of the exact solution, and the baselines' known behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import trapezoid

from tests.numeric import below, relative_deviation
from workloads.superradiance.euler import solve_euler
from workloads.superradiance.general import solve_general
from workloads.superradiance.model import make_model

TIMES = np.linspace(0.0, 150.0, 3001)


@pytest.fixture(scope="module")
def random_run():
    model = make_model(5, couplings="random", seed=7)
    return model, solve_general(model, times=TIMES)


def test_state_is_a_density_matrix(random_run):
    _, sol = random_run
    rho = sol.system.to_full(sol.final_state)
    assert abs(np.trace(rho) - 1) <= 1e-10  # trace is conserved by the Lindblad form up to rounding
    assert np.max(np.abs(rho - rho.conj().T)) <= 1e-12  # Hermitian by construction of each block update
    assert np.linalg.eigvalsh(rho).min() >= -1e-8  # positive up to the integrator's tolerance
    assert np.max(np.abs(sol.trace - 1)) <= 1e-10


def test_emitted_energy_equals_polarization_drop(random_run):
    _, sol = random_run
    # intensity is computed from the state (2c Im tr B Y), not by differencing <Iz>: its integral must
    # equal the drop; the trapezoid rule on 3001 points errs by ~dt^2 * max|I''| ~ 1e-4
    emitted = trapezoid(sol.intensity, sol.t)
    drop = sol.polarization[0] - sol.polarization[-1]
    below("|emitted - polarization drop|", abs(emitted - drop), 2e-4, source="trapezoid error ~dt^2 max|I''|")


def test_uniform_burst_empties_the_nuclei():
    # uniform couplings keep the state symmetric: no dark states, so <Iz> reaches -N/2
    model = make_model(4)
    sol = solve_general(model, times=np.linspace(0, 150, 51))
    assert sol.polarization[0] == pytest.approx(2.0, abs=1e-12)
    assert sol.polarization[-1] == pytest.approx(-2.0, abs=1e-6)


def test_euler_baseline_is_first_order_accurate():
    model = make_model(3)
    times = 0.3 * np.arange(501)
    exact = solve_general(model, times=times, rtol=1e-10, atol=1e-12).polarization
    coarse = np.max(np.abs(solve_euler(model, dt=0.3, steps=500).polarization - exact))
    fine = solve_euler(model, dt=0.15, steps=1000).polarization[::2]
    finer = np.max(np.abs(fine - exact))
    assert 1e-3 < coarse < 0.2  # the original's step is visibly inaccurate
    # halving the step halves the error (order 1): the ratio's deviation from 1/2, within 25 %
    below(
        "Euler error ratio (dt/2 vs dt) deviation from 1/2",
        relative_deviation(finer / coarse, 0.5),
        0.25,
        source="first-order method: ratio 1/2 up to O(dt) terms",
    )
