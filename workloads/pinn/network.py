"""The PINN model: a tanh MLP on normalised inputs, the problem's output transform, learned coefficients."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from workloads.pinn.problems.base import Problem


class MLP(nn.Module):
    """A fully connected tanh network with Xavier-initialised weights and zero biases."""

    def __init__(self, *, inputs: int, width: int, depth: int, outputs: int = 1) -> None:
        super().__init__()
        sizes = [inputs, *([width] * depth), outputs]
        # Initialise through the typed list: iterating an nn.ModuleList yields plain nn.Module.
        linears = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        for layer in linears:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.layers = nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the network's output for inputs x (n, inputs)."""
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


class PINN(nn.Module):
    """u(x) = problem.output_transform(x, MLP(normalise(x))), plus the problem's trainable coefficients."""

    # Buffers registered in __init__; declared so mypy sees tensors, not nn.Module.__getattr__'s union.
    center: torch.Tensor
    half_width: torch.Tensor

    def __init__(self, problem: Problem, *, width: int, depth: int) -> None:
        super().__init__()
        self.problem = problem
        self.net = MLP(inputs=problem.dim, width=width, depth=depth)
        lo = torch.tensor(problem.lower, dtype=torch.float64)
        hi = torch.tensor(problem.upper, dtype=torch.float64)
        # Map the domain onto [-1, 1]^dim, where tanh networks train best.
        self.register_buffer("center", (hi + lo) / 2)
        self.register_buffer("half_width", (hi - lo) / 2)
        self.coeffs = nn.ParameterDict(
            {
                k: nn.Parameter(torch.tensor(v, dtype=torch.float64))
                for k, v in problem.initial_raw_coefficients().items()
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return u at the points x (n, dim)."""
        raw = self.net((x - self.center) / self.half_width)
        return self.problem.output_transform(x, raw)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """Return the PDE residual at x (n, dim); x must not need gradients already."""
        x = x.detach().requires_grad_(True)
        return self.problem.residual(x, self(x), dict(self.coeffs.items()))
