"""What a run leaves behind: prediction.npz, prediction.png and the numbers for metrics.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from workloads.pinn.problems.base import Grid, Observations, Problem

MAX_HISTORY = 500


def thin(rows: list[list[float]], limit: int = MAX_HISTORY) -> list[list[float]]:
    """Return at most limit rows, evenly spaced, always keeping the last one."""
    if len(rows) <= limit:
        return rows
    idx = np.unique(np.linspace(0, len(rows) - 1, limit).round().astype(int))
    return [rows[i] for i in idx]


def relative_l2(pred: np.ndarray, ref: np.ndarray) -> float:
    """Return ||pred - ref|| / ||ref||."""
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def write_npz(
    path: Path,
    *,
    grid: Grid,
    prediction: np.ndarray,
    reference: np.ndarray,
    points: np.ndarray,
    observations: Observations | None,
    baseline: np.ndarray | None,
) -> Path:
    """Save the grid, prediction, reference, pointwise error and training points."""
    arrays: dict[str, np.ndarray] = {f"axis_{n}": a for n, a in zip(grid.names, grid.axes, strict=True)}
    shape = grid.shape
    arrays.update(
        points=grid.points,
        prediction=prediction.reshape(shape),
        reference=reference.reshape(shape),
        error=np.abs(prediction - reference).reshape(shape),
        collocation=points,
    )
    if observations is not None:
        arrays.update(obs_x=observations.x, obs_u=observations.u)
    if baseline is not None:
        arrays["plain_network"] = baseline.reshape(shape)
    # allow_pickle is numpy's default, named so that mypy binds the unpacked arrays to **kwds only.
    np.savez_compressed(path, allow_pickle=True, **arrays)
    return path


def plot(
    path: Path,
    *,
    problem: Problem,
    grid: Grid,
    prediction: np.ndarray,
    reference: np.ndarray,
    loss: list[list[float]],
    error: list[list[float]],
    observations: Observations | None,
    baseline: np.ndarray | None,
    title: str,
) -> Path:
    """Draw prediction, reference, pointwise error and the loss / error curves into one PNG."""
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    shape = grid.shape
    pred, ref = prediction.reshape(shape), reference.reshape(shape)
    err = np.abs(pred - ref)
    if problem.dim == 1:
        t = grid.axes[0]
        ax = axes[0]
        ax.plot(t, ref, "k-", lw=2, label="reference")
        ax.plot(t, pred, "C1--", lw=1.5, label="PINN")
        if baseline is not None:
            ax.plot(t, baseline.reshape(shape), "C2:", lw=1.5, label="plain network, same data")
        if observations is not None:
            ax.plot(observations.x[:, 0], observations.u[:, 0], "o", ms=3, color="C0", label="observations")
        ax.set_xlabel(grid.names[0])
        ax.set_ylabel("u")
        ax.set_title("prediction vs reference")
        ax.legend(fontsize=8)
        axes[1].plot(t, ref - pred, "C3")
        axes[1].set_title("reference - PINN")
        axes[1].set_xlabel(grid.names[0])
        axes[2].semilogy(t, np.maximum(err, 1e-16), "C3")
        axes[2].set_title("|pointwise error|")
        axes[2].set_xlabel(grid.names[0])
    else:
        extent = (grid.axes[1][0], grid.axes[1][-1], grid.axes[0][0], grid.axes[0][-1])
        for ax, field, name, cmap in (
            (axes[0], pred, "PINN", "RdBu_r"),
            (axes[1], ref, "reference", "RdBu_r"),
            (axes[2], err, "|pointwise error|", "magma"),
        ):
            im = ax.imshow(field, origin="lower", aspect="auto", extent=extent, cmap=cmap)
            ax.set_xlabel(grid.names[1])
            ax.set_ylabel(grid.names[0])
            ax.set_title(name)
            fig.colorbar(im, ax=ax)
    ax = axes[3]
    if loss:
        steps, values = zip(*loss, strict=True)
        ax.semilogy(steps, values, "C0", lw=1, label="loss")
    if error:
        ax.semilogy(
            [r[0] for r in error], [r[2] for r in error], "C3o-", ms=2, lw=1, label="relative L2 error"
        )
    ax.set_xlabel("step")
    ax.set_title("training")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def coefficient_metrics(problem: Problem, learned: dict[str, float]) -> dict[str, Any]:
    """Return learned vs true coefficients and their relative errors (inverse problems)."""
    out: dict[str, Any] = {}
    for name, true in problem.true_coefficients.items():
        value = learned[name]
        out[name] = {"learned": value, "true": true, "relative_error": abs(value - true) / abs(true)}
    return out
