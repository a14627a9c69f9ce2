"""A plain network (no physics) fitted to the same observations: the baseline a PINN should beat."""

from __future__ import annotations

import numpy as np
import torch

from workloads.pinn.network import MLP
from workloads.pinn.problems.base import Observations, Problem


def fit_plain(
    problem: Problem, obs: Observations, *, width: int, depth: int, steps: int = 3000, seed: int = 0
) -> MLP:
    """Fit an MLP to the observations by Adam (float64, full batch) and return it."""
    torch.manual_seed(seed)
    net = MLP(inputs=problem.dim, width=width, depth=depth).double()
    lo = torch.tensor(problem.lower, dtype=torch.float64)
    hi = torch.tensor(problem.upper, dtype=torch.float64)
    x = (torch.as_tensor(obs.x) - (hi + lo) / 2) / ((hi - lo) / 2)
    u = torch.as_tensor(obs.u)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss = (net(x) - u).pow(2).mean()
        loss.backward()
        opt.step()
    return net


def predict_plain(net: MLP, problem: Problem, points: np.ndarray) -> np.ndarray:
    """Return the plain network's prediction at points (n, dim) as (n, 1)."""
    lo = np.asarray(problem.lower)
    hi = np.asarray(problem.upper)
    x = torch.as_tensor((points - (hi + lo) / 2) / ((hi - lo) / 2))
    with torch.no_grad():
        return net(x).numpy()
