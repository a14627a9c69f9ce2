"""The training figure: loss curves, accuracy curves and the test confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_training(
    path: Path,
    history: Sequence[dict[str, float]],
    confusion: np.ndarray,
    *,
    digits: tuple[int, int],
    title: str,
) -> Path:
    """Write a three-panel PNG (loss per epoch, accuracy per epoch, confusion matrix) and return its path."""
    epochs = [int(h["epoch"]) for h in history]
    fig = Figure(figsize=(13, 3.8))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_cm = fig.subplots(1, 3)
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "s--", label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], "s--", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_cm.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        color = "white" if count > confusion.max() / 2 else "black"
        ax_cm.text(j, i, str(count), ha="center", va="center", color=color, fontsize=14)
    ticks = [0, 1]
    ax_cm.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=digits,
        yticklabels=digits,
        xlabel="predicted digit",
        ylabel="true digit",
        title="test confusion matrix",
    )
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
