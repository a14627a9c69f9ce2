"""Residuals against finite differences, exact solutions against their equations, hard constraints."""

import math

import numpy as np
import pytest
import torch

from workloads.pinn import problems
from workloads.pinn.network import PINN
from workloads.pinn.problems import oscillator, poisson
from workloads.pinn.problems.burgers import NU


def _model(name: str) -> PINN:
    torch.manual_seed(3)
    return PINN(problems.build(name, observations=10), width=16, depth=2).double()


def _u(model: PINN, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()[:, 0]


def _shift(x: np.ndarray, axis: int, h: float) -> np.ndarray:
    y = x.copy()
    y[:, axis] += h
    return y


# Central differences with h = 1e-4 on a smooth random network in float64: truncation ~h^2 * u''''
# (order 1..100 here) ~ 1e-6, rounding ~1e-16 / h^2 = 1e-8. Residuals are order 1..10.
H = 1e-4
TOL = 1e-5


def _d(model: PINN, x: np.ndarray, axis: int) -> np.ndarray:
    return (_u(model, _shift(x, axis, H)) - _u(model, _shift(x, axis, -H))) / (2 * H)


def _dd(model: PINN, x: np.ndarray, axis: int) -> np.ndarray:
    return (_u(model, _shift(x, axis, H)) - 2 * _u(model, x) + _u(model, _shift(x, axis, -H))) / H**2


def _residual(model: PINN, x: np.ndarray) -> np.ndarray:
    return model.residual(torch.as_tensor(x)).detach().numpy()[:, 0]


def test_burgers_residual_matches_finite_differences():
    model = _model("burgers")
    x = np.random.default_rng(1).uniform([-0.9, 0.1], [0.9, 0.9], size=(20, 2))
    u = _u(model, x)
    expected = _d(model, x, 1) + u * _d(model, x, 0) - NU * _dd(model, x, 0)
    np.testing.assert_allclose(_residual(model, x), expected, atol=TOL)


def test_poisson_residual_matches_finite_differences():
    model = _model("poisson2d")
    x = np.random.default_rng(2).uniform(0.1, 0.9, size=(20, 2))
    f = 5 * math.pi**2 * np.sin(math.pi * x[:, 0]) * np.sin(2 * math.pi * x[:, 1])
    expected = (_dd(model, x, 0) + _dd(model, x, 1) + f) / (5 * math.pi**2)
    np.testing.assert_allclose(_residual(model, x), expected, atol=TOL)


@pytest.mark.parametrize("name", ["oscillator", "oscillator_extrapolation"])
def test_oscillator_residual_matches_finite_differences(name):
    model = _model(name)
    x = np.random.default_rng(3).uniform(0.05, 0.95, size=(20, 1))
    expected = (
        _dd(model, x, 0) + oscillator.MU * _d(model, x, 0) + oscillator.K * _u(model, x)
    ) / oscillator.K
    np.testing.assert_allclose(_residual(model, x), expected, atol=TOL)


def test_inverse_residual_uses_the_learned_coefficients():
    model = _model("oscillator_inverse")
    x = np.random.default_rng(4).uniform(0.05, 0.95, size=(10, 1))
    mu, k = 1.0, 200.0  # the initial guesses stored as logarithms
    expected = (_dd(model, x, 0) + mu * _d(model, x, 0) + k * _u(model, x)) / oscillator.K
    np.testing.assert_allclose(_residual(model, x), expected, atol=TOL)


def test_exact_solutions_satisfy_their_equations():
    t = torch.linspace(0, 1, 101, dtype=torch.float64).reshape(-1, 1).requires_grad_(True)
    w = math.sqrt(oscillator.OMEGA0**2 - oscillator.DELTA**2)
    u = torch.exp(-oscillator.DELTA * t) * (torch.cos(w * t) + oscillator.DELTA / w * torch.sin(w * t))
    np.testing.assert_allclose(
        u.detach().numpy()[:, 0], oscillator.exact(t.detach().numpy()[:, 0]), atol=1e-14
    )
    assert oscillator.oscillator_residual(t, u, oscillator.MU, oscillator.K).abs().max() < 1e-12
    xy = torch.rand(50, 2, dtype=torch.float64).requires_grad_(True)
    u2 = torch.sin(math.pi * xy[:, :1]) * torch.sin(2 * math.pi * xy[:, 1:])
    assert poisson.poisson_residual(xy, u2).abs().max() < 1e-12


def test_hard_constraints_hold_for_any_network():
    raw = torch.randn(9, 1, dtype=torch.float64) * 5
    b = problems.build("burgers")
    edge = torch.tensor([[-1.0, 0.3], [1.0, 0.7], [0.25, 0.0]], dtype=torch.float64)
    out = b.output_transform(edge, raw[:3])
    np.testing.assert_allclose(out.numpy()[:, 0], [0, 0, -math.sin(math.pi * 0.25)], atol=1e-15)
    p = problems.build("poisson2d")
    sides = torch.tensor([[0.0, 0.3], [1.0, 0.3], [0.4, 0.0], [0.4, 1.0]], dtype=torch.float64)
    assert p.output_transform(sides, raw[:4]).abs().max() < 1e-15
    o = problems.build("oscillator")
    t = torch.zeros(1, 1, dtype=torch.float64, requires_grad=True)
    u = o.output_transform(t, torch.tensor([[7.0]], dtype=torch.float64) + t)
    (du,) = torch.autograd.grad(u.sum(), t)
    assert float(u.detach()) == 1.0 and float(du) == 0.0


def test_registry_lists_problems_and_refuses_unknown_ones():
    assert {"oscillator", "oscillator_extrapolation", "oscillator_inverse", "burgers", "poisson2d"} <= set(
        problems.names()
    )
    with pytest.raises(
        problems.UnknownProblemError, match="unknown problem 'heat3d'; known problems: burgers, osc"
    ):
        problems.get("heat3d")


def test_observations_are_noisy_samples_of_the_exact_solution():
    p = problems.build("oscillator_extrapolation", noise_std=0.01, observations=400, seed=0)
    obs = p.observations()
    assert obs.x.max() == pytest.approx(0.4)
    noise = obs.u[:, 0] - oscillator.exact(obs.x[:, 0])
    assert 0.008 < noise.std() < 0.012  # 400 samples: the std estimate is within ~7 % (2 sigma)
