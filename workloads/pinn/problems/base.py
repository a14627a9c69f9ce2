"""What a problem is: a PDE residual, a domain, hard constraints, observations and a reference solution."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch


@dataclass(frozen=True)
class Observations:
    """Measured values u at points x (the data term of the loss), with the weight of that term."""

    x: np.ndarray  # (n, dim)
    u: np.ndarray  # (n, 1)
    weight: float = 1.0


@dataclass(frozen=True)
class Grid:
    """The evaluation grid: one 1-D array per axis, and every point of their product as rows."""

    axes: tuple[np.ndarray, ...]
    names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Return the grid's shape (one entry per axis)."""
        return tuple(a.size for a in self.axes)

    @property
    def points(self) -> np.ndarray:
        """Return every grid point as a (N, dim) array, the first axis varying slowest."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


@dataclass(frozen=True)
class Defaults:
    """Hyperparameters that suit a problem; the command line overrides each one."""

    width: int = 32
    depth: int = 4
    points: int = 2000
    gpu_points: int | None = None  # points when training on a GPU (None: the same as on the CPU)
    adam_steps: int = 2000
    lbfgs_steps: int = 1000
    lr: float = 1e-3
    rar_every: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


class Problem(ABC):
    """A PDE problem a PINN can learn.

    A subclass sets the class attributes, writes :meth:`residual` and :meth:`reference`,
    and registers itself with ``@register``. Hard constraints go in
    :meth:`output_transform`; data to fit (noisy observations) in :meth:`observations`;
    unknown coefficients (inverse problems) in ``coefficients`` with their true values.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    axes: ClassVar[tuple[str, ...]]
    lower: ClassVar[tuple[float, ...]]
    upper: ClassVar[tuple[float, ...]]
    defaults: ClassVar[Defaults] = Defaults()
    # Relative L2 error on the evaluation grid the trained network should reach.
    target_relative_l2: ClassVar[float] = 1e-3
    # Learned coefficients: name -> initial guess, and name -> true value (inverse problems).
    coefficients: ClassVar[dict[str, float]] = {}
    true_coefficients: ClassVar[dict[str, float]] = {}
    target_coefficient_error: ClassVar[float] = 0.01
    # Also fit a plain network (no physics) to the observations, to show what the physics adds.
    compare_plain_fit: ClassVar[bool] = False

    def __init__(self, *, noise_std: float = 0.0, observations: int = 0, seed: int = 0) -> None:
        self.noise_std = noise_std
        self.n_observations = observations
        self.seed = seed

    @property
    def dim(self) -> int:
        """Return the number of input coordinates."""
        return len(self.axes)

    def output_transform(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Map the network's raw output to u; override to impose conditions exactly (hard constraints)."""
        return raw

    @abstractmethod
    def residual(self, x: torch.Tensor, u: torch.Tensor, coeffs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the PDE residual at x (x requires grad and u was computed from it), shape (n, 1)."""

    @abstractmethod
    def reference(self, x: np.ndarray) -> np.ndarray:
        """Return the reference solution at the points x (n, dim) as (n, 1)."""

    @abstractmethod
    def grid(self) -> Grid:
        """Return the evaluation grid the relative L2 error is measured on."""

    def observations(self) -> Observations | None:
        """Return the data to fit, or None for a physics-only problem."""
        return None

    def sample(self, n: int, generator: torch.Generator, *, dtype: torch.dtype) -> torch.Tensor:
        """Return n collocation points drawn uniformly in the domain (deterministic given the generator)."""
        lo = torch.tensor(self.lower, dtype=torch.float64)
        hi = torch.tensor(self.upper, dtype=torch.float64)
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64)
        return (lo + (hi - lo) * u).to(dtype)

    def physical_coefficients(self, raw: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Return learned coefficients in physical units (override when they are stored transformed)."""
        return {k: float(v.detach()) for k, v in raw.items()}

    def initial_raw_coefficients(self) -> dict[str, float]:
        """Return the initial values of the trainable coefficient parameters."""
        return dict(self.coefficients)
