"""Derivatives of a network's output with respect to its inputs, by reverse-mode autograd."""

from __future__ import annotations

import torch


def gradient(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return du/dx for every input coordinate, shape (n, dim); keeps the graph for higher derivatives."""
    (g,) = torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)
    return g


def partial(u: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """Return du/dx_axis, shape (n, 1)."""
    return gradient(u, x)[:, axis : axis + 1]
