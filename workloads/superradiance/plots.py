"""The figures: one run's emission (as the original's figure) and a sweep's comparison."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def emission_plot(
    path: Path,
    *,
    t: np.ndarray,
    intensity: np.ndarray,
    i_ind: float,
    n: int,
    polarization: np.ndarray,
    method: str,
    intensity_se: np.ndarray | None = None,
) -> Path:
    """Plot intensity / I_ind and <Iz> against time, with the independent-emitter curve."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ratio = intensity / i_ind
    ax1.plot(t, ratio, color="C0", lw=2, label=f"superradiant ({method})")
    if intensity_se is not None:
        ax1.fill_between(
            t,
            ratio - 3 * intensity_se / i_ind,
            ratio + 3 * intensity_se / i_ind,
            color="C0",
            alpha=0.25,
            label="±3 standard errors",
        )
    # N independent emitters, each flipping at the single-spin rate I_ind: intensity N I_ind exp(-I_ind t)
    ax1.plot(t, n * np.exp(-i_ind * t), color="C1", ls="--", lw=1.5, label="N independent emitters")
    ax1.set_xlabel("time (1/gamma)")
    ax1.set_ylabel("intensity / I_ind")
    ax1.set_title(f"Emission, N = {n}: peak {ratio.max():.3g} x I_ind")
    ax1.legend()
    ax2.plot(t, polarization, color="C2", lw=2)
    ax2.axhline(-n / 2, color="gray", ls=":", lw=1)
    ax2.set_xlabel("time (1/gamma)")
    ax2.set_ylabel("<Iz>")
    ax2.set_title("Nuclear polarization")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sweep_plot(path: Path, *, key: str, runs: Sequence[dict]) -> Path:
    """Plot intensity / I_ind against time for every point of a sweep."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        ax.plot(
            run["t"], run["intensity"] / run["I_ind"], lw=2, label=f"{key} = {run['value']} ({run['method']})"
        )
    ax.set_xlabel("time (1/gamma)")
    ax.set_ylabel("intensity / I_ind")
    ax.set_title(f"Superradiant emission, sweep over {key}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
