"""The problem registry: ``@register`` a :class:`Problem` subclass and ``--problem NAME`` finds it.

Adding a problem is one module in this folder (see ``poisson.py`` for a short one) plus
its import at the bottom of this file.
"""

from __future__ import annotations

from typing import TypeVar

from workloads.pinn.problems.base import Defaults, Grid, Observations, Problem

P = TypeVar("P", bound=type[Problem])

_REGISTRY: dict[str, type[Problem]] = {}


class UnknownProblemError(ValueError):
    """A problem name that is not registered."""


def register(cls: P) -> P:
    """Add a problem class to the registry under its ``name`` (a class decorator)."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"problem {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Return the registered problem names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Problem]:
    """Return the problem class called name; raise UnknownProblemError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProblemError(f"unknown problem {name!r}; known problems: {', '.join(names())}") from None


def build(name: str, *, noise_std: float = 0.0, observations: int = 0, seed: int = 0) -> Problem:
    """Return an instance of the problem called name."""
    return get(name)(noise_std=noise_std, observations=observations, seed=seed)


# Built-in problems register themselves on import.
from workloads.pinn.problems import burgers, oscillator, poisson  # noqa: E402

__all__ = [
    "Defaults",
    "Grid",
    "Observations",
    "Problem",
    "UnknownProblemError",
    "build",
    "burgers",
    "get",
    "names",
    "oscillator",
    "poisson",
    "register",
]
