"""Viscous Burgers u_t + u u_x = nu u_xx, nu = 0.01/pi, x in [-1, 1], t in [0, 1].

u(x, 0) = -sin(pi x) and u(±1, t) = 0 are imposed exactly by
u = -sin(pi x) + t (1 - x^2) N(x, t). The reference is the Cole–Hopf solution
(:mod:`workloads.pinn.cole_hopf`) on Raissi et al.'s 256 x 100 grid (t = 0 added).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from workloads.pinn import cole_hopf
from workloads.pinn.derivatives import gradient
from workloads.pinn.problems import register
from workloads.pinn.problems.base import Defaults, Grid, Problem

NU = cole_hopf.NU


def burgers_residual(x: torch.Tensor, u: torch.Tensor, nu: float = NU) -> torch.Tensor:
    """Return u_t + u u_x - nu u_xx at x = (x, t)."""
    du = gradient(u, x)
    u_x, u_t = du[:, 0:1], du[:, 1:2]
    u_xx = gradient(u_x, x)[:, 0:1]
    return u_t + u * u_x - nu * u_xx


@register
class Burgers(Problem):
    """Viscous Burgers with a shock forming at x = 0."""

    name = "burgers"
    summary = "viscous Burgers 1D (nu=0.01/pi), reference by the Cole–Hopf transform"
    axes = ("x", "t")
    lower = (-1.0, 0.0)
    upper = (1.0, 1.0)
    # Measured (README): 7.8e-4 in 12 minutes on one CPU thread. A short Adam phase (the error hardly moves
    # in it), then a long float64 L-BFGS; 6000 points keep the 4x20 net from overfitting the set, and
    # no refinement: restarting L-BFGS after each one cost more than it gained at this size.
    # On an H100 the same steps with 20000 points ran at 55 steps/s and ended at 2.4e-4 (6000 points:
    # 66 steps/s, 1.08e-3 at the end): the step is launch-bound there, so the GPU default takes more points.
    defaults = Defaults(
        width=20,
        depth=4,
        points=6000,
        gpu_points=20000,
        adam_steps=500,
        lbfgs_steps=12000,
        lr=3e-3,
        rar_every=0,
    )

    def output_transform(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Impose u(x, 0) = -sin(pi x) and u(±1, t) = 0."""
        xs, t = x[:, 0:1], x[:, 1:2]
        return -torch.sin(math.pi * xs) + t * (1.0 - xs**2) * raw

    def residual(self, x: torch.Tensor, u: torch.Tensor, coeffs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the Burgers residual."""
        return burgers_residual(x, u)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """Return the Cole–Hopf solution."""
        return cole_hopf.burgers(x[:, 0], x[:, 1])[:, None]

    def grid(self) -> Grid:
        """Return 256 x 101 points, x in [-1, 1] and t in [0, 1]."""
        return Grid(axes=(np.linspace(-1.0, 1.0, 256), np.linspace(0.0, 1.0, 101)), names=self.axes)
