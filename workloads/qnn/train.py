"""Training and evaluation on batches, resumable in the middle of an epoch.

The order of an epoch's samples comes from a generator seeded by (seed, epoch), and the
global RNG (dropout) and the shot sampler are saved with the checkpoint, so a run that
was stopped and resumed takes the very same steps as one that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from workloads.qnn.data import Split

EPS = 1e-12


def class_loss(probs: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Return the mean loss of class probabilities (batch, 2) for integer labels.

    nll: -log p(label), the negative log-likelihood. neg_prob: -p(label), what the
    published model got from torch's NLLLoss applied to probabilities (not log-probabilities).
    """
    p = probs.gather(1, labels.unsqueeze(1)).squeeze(1)
    if kind == "nll":
        return -torch.log(p.clamp_min(EPS)).mean()
    if kind == "neg_prob":
        return -p.mean()
    raise ValueError(f"unknown loss {kind!r}; use nll or neg_prob")


@dataclass
class TrainState:
    """Where training stands: completed epochs, progress inside the current one, the history."""

    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the state as plain values (what a checkpoint stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        """Rebuild the state from :meth:`to_dict`'s output."""
        return cls(**values)

    def reset_epoch(self) -> None:
        """Start counting a new epoch."""
        self.batch, self.loss_sum, self.correct, self.seen, self.seconds = 0, 0.0, 0, 0, 0.0


def epoch_order(n: int, *, seed: int, epoch: int) -> torch.Tensor:
    """Return the sample order of an epoch: a permutation fixed by (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    state: TrainState,
    *,
    batch_size: int,
    loss: str,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[int], None] | None = None,
) -> bool:
    """Train from state.batch to the end of epoch state.epoch; return False if stopped before the end."""
    model.train()
    order = epoch_order(len(split), seed=seed, epoch=state.epoch)
    n_batches = (len(split) + batch_size - 1) // batch_size
    device = split.images.device
    while state.batch < n_batches:
        start = time.perf_counter()
        index = order[state.batch * batch_size : (state.batch + 1) * batch_size].to(device)
        images, labels = split.images[index], split.labels[index]
        optimizer.zero_grad(set_to_none=True)
        probs = model(images)
        value = class_loss(probs, labels, loss)
        value.backward()
        optimizer.step()
        state.loss_sum += float(value.detach()) * len(index)
        state.correct += int((probs.detach().argmax(1) == labels).sum())
        state.seen += len(index)
        state.batch += 1
        state.seconds += time.perf_counter() - start
        if on_batch is not None:
            on_batch(state.batch)
        if state.batch < n_batches and should_stop():
            return False
    return True


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, batch_size: int, loss: str) -> dict[str, Any]:
    """Return loss, accuracy, the 2x2 confusion matrix (rows: true class) and p(class 1) of every sample."""
    model.eval()
    probs = torch.cat([model(split.images[i : i + batch_size]) for i in range(0, len(split), batch_size)])
    labels = split.labels
    predicted = probs.argmax(1)
    confusion = torch.zeros((2, 2), dtype=torch.int64)
    for true, pred in zip(labels.tolist(), predicted.tolist(), strict=True):
        confusion[true, pred] += 1
    return {
        "loss": float(class_loss(probs, labels, loss)),
        "accuracy": float((predicted == labels).float().mean()),
        "confusion": confusion,
        "p_class1": probs[:, 1].cpu(),
    }
