"""Poisson on the unit square: -(u_xx + u_yy) = 5 pi^2 sin(pi x) sin(2 pi y), u = 0 on the boundary.

The exact solution is u = sin(pi x) sin(2 pi y). This file is the template for a new
problem: class attributes, an output transform for the boundary condition, the residual,
the reference, the grid, and ``@register``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from workloads.pinn.derivatives import gradient
from workloads.pinn.problems import register
from workloads.pinn.problems.base import Defaults, Grid, Problem


def exact(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return sin(pi x) sin(2 pi y)."""
    return np.sin(math.pi * x) * np.sin(2 * math.pi * y)


def poisson_residual(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Return (u_xx + u_yy + f) / (5 pi^2): the residual scaled to order one."""
    du = gradient(u, x)
    u_xx = gradient(du[:, 0:1], x)[:, 0:1]
    u_yy = gradient(du[:, 1:2], x)[:, 1:2]
    scale = 5 * math.pi**2
    f = scale * torch.sin(math.pi * x[:, 0:1]) * torch.sin(2 * math.pi * x[:, 1:2])
    return (u_xx + u_yy + f) / scale


@register
class Poisson2D(Problem):
    """Poisson with homogeneous Dirichlet conditions on the unit square."""

    name = "poisson2d"
    summary = "2D Poisson on the unit square, u = sin(pi x) sin(2 pi y)"
    axes = ("x", "y")
    lower = (0.0, 0.0)
    upper = (1.0, 1.0)
    defaults = Defaults(width=32, depth=3, points=2000, adam_steps=1000, lbfgs_steps=1000, lr=3e-3)

    def output_transform(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Impose u = 0 on the boundary: u = 16 x (1 - x) y (1 - y) N(x, y)."""
        xs, ys = x[:, 0:1], x[:, 1:2]
        # 16 makes the factor peak at 1, so N stays of order one.
        return 16.0 * xs * (1 - xs) * ys * (1 - ys) * raw

    def residual(self, x: torch.Tensor, u: torch.Tensor, coeffs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the scaled Poisson residual."""
        return poisson_residual(x, u)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """Return the exact solution."""
        return exact(x[:, 0], x[:, 1])[:, None]

    def grid(self) -> Grid:
        """Return a 101 x 101 grid."""
        axis = np.linspace(0.0, 1.0, 101)
        return Grid(axes=(axis, axis), names=self.axes)
