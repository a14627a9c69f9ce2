"""The fast collective-cascade solver against the expm_multiply reference and exact identities."""

from __future__ import annotations

import numpy as np
import pytest

from tests.numeric import below
from workloads.superradiance.cascade import pade_partial_fractions, step_plan
from workloads.superradiance.model import auto_t_max, collective_rates, make_model
from workloads.superradiance.symmetric import generator, solve_symmetric, solve_symmetric_expm


def test_pade_partial_fractions_reproduce_the_approximant():
    # (3,4) Pade of exp: error C z^8 near 0 with C = 3!4!/(7!8!) = 7.1e-7, and R(z) -> 0 as z -> -inf
    poles, residues, weights = pade_partial_fractions(3, 4)
    assert poles.size == 2 and np.all(poles.real > 0)  # right half-plane: hB - p is never singular

    def r(z):
        return np.sum(weights * (residues / (z - poles)).real)

    assert r(0.0) == pytest.approx(1.0, abs=1e-14)  # normalised: the trace is conserved
    for z in (-0.1, -0.5, -1.0):
        assert abs(r(z) - np.exp(z)) <= 7.2e-7 * abs(z) ** 8 * 1.5
    assert abs(r(-1e6)) < 1e-5


@pytest.mark.parametrize(
    ("n", "gamma", "a_mean", "n_times"),
    [(1, 1.0, 1.0, 301), (8, 1.0, 1.0, 301), (40, 0.5, 3.0, 301), (300, 1.0, 1.0, 501), (60, 2.0, 0.7, 41)],
)
def test_cascade_matches_expm_multiply(n, gamma, a_mean, n_times):
    # expm_multiply is exact to double precision; the order-7 steps on the default grid err by
    # ~1e-11 relative (measured up to N = 2000); the bound 1e-9 of N and of the peak leaves 100x
    model = make_model(n, gamma=gamma, a_mean=a_mean)
    times = np.linspace(0.0, auto_t_max(model), n_times)
    fast = solve_symmetric(model, times=times)
    ref = solve_symmetric_expm(model, times=times)
    below(
        "cascade vs expm_multiply <Iz> / N",
        np.max(np.abs(fast.polarization - ref.polarization)) / n,
        1e-9,
        source="order-7 steps err ~1e-11 relative",
    )
    below(
        "cascade vs expm_multiply intensity / peak",
        np.max(np.abs(fast.intensity - ref.intensity)) / ref.intensity.max(),
        1e-9,
        source="order-7 steps err ~1e-11 relative",
    )
    assert np.max(np.abs(fast.trace - 1.0)) <= 1e-11  # R(0) = 1 and 1^T M = 0: trace kept to rounding


def test_auto_horizon_reaches_the_full_burst():
    # the criterion: <Iz> = -N/2 within 1e-3 N at the auto end time
    model = make_model(5000)
    sol = solve_symmetric(model, times=np.linspace(0.0, auto_t_max(model), 201))
    assert abs(sol.polarization[-1] + 2500) <= 1e-3 * 5000
    assert sol.polarization[0] == 2500
    # the burst is resolved: the peak is an interior point with many samples on each side
    assert 20 < int(np.argmax(sol.intensity)) < 180


def test_closed_form_rates_are_the_slowest_block_eigenvalues():
    model = make_model(12, gamma=0.8, a_mean=2.0)
    m = generator(model).toarray()
    blocks = [m[3 * k : 3 * k + 3, 3 * k : 3 * k + 3] for k in range(1, 13)]
    slowest = [np.min(-np.linalg.eigvals(b).real) for b in blocks]
    assert np.allclose(collective_rates(model), slowest, rtol=1e-10)


def test_step_plan_lands_on_every_output_time():
    times = np.linspace(0.0, 500.0, 11)
    plan = step_plan(times, h_first=1e-3, h_max=7.0, t_transient=70.0, t_smooth=300.0)
    t, reached = 0.0, []
    for h, record in plan:
        assert 0 < h <= 50.0 * (1 + 1e-12)  # never more than an output interval
        if t < 70.0:
            assert h <= max(1e-3, 0.15 * t) * (1 + 1e-12)  # graded over the initial relaxation
        elif t < 300.0:
            assert h <= 7.0 * (1 + 1e-12)  # at most h_max while the burst runs
        t += h
        if record is not None:
            reached.append(record)
            assert t == pytest.approx(times[record], rel=1e-12)
    assert reached == list(range(1, 11))
    assert plan[0][0] == 1e-3


def test_times_must_start_at_zero_and_increase():
    model = make_model(3)
    with pytest.raises(ValueError, match="increasing times starting at 0"):
        solve_symmetric(model, times=np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="increasing times starting at 0"):
        solve_symmetric(model, times=np.array([1.0, 2.0]))
