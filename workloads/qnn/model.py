"""The hybrid network: two conv layers, dropout, two linear layers, then the circuit layer.

Same layout as the published model (conv 1->6 and 6->16 with 5x5 kernels, each followed
by ReLU and 2x2 max-pooling, Dropout2d, Linear -> 64 -> n_qubits, the circuit layer,
and (1 - p, p) as class probabilities). On 28x28 MNIST images the convolutions are
'valid' as in the original (16 * 4 * 4 = 256 features); 8x8 images are too small for
that, so 'auto' pads them to keep their size ('same').
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workloads.qnn.layer import QuantumLayer

KERNEL = 5
MIN_SIDE = 4


class ShapeError(ValueError):
    """Images whose shape the network cannot take."""


def _valid_fits(side: int) -> bool:
    return ((side - KERNEL + 1) // 2 - KERNEL + 1) // 2 >= 1


def resolve_padding(side: int, padding: str) -> str:
    """Return 'valid' or 'same' for an image side; 'auto': 'valid' (the original's) where it fits."""
    valid_fits = _valid_fits(side)
    if padding == "auto":
        return "valid" if valid_fits else "same"
    if padding == "valid" and not valid_fits:
        min_valid = next(s for s in range(side, 10 * KERNEL) if _valid_fits(s))
        raise ShapeError(
            f"{side}x{side} images are too small for two valid {KERNEL}x{KERNEL} convolutions with pooling "
            f"(they need at least {min_valid}x{min_valid}); use --conv-padding same or auto"
        )
    return padding


class HybridNet(nn.Module):
    """Classify square single-channel images into two classes through a parameterised circuit."""

    def __init__(
        self,
        *,
        image_side: int,
        quantum: QuantumLayer,
        n_qubits: int = 1,
        padding: str = "auto",
        dropout: float = 0.5,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        if image_side < MIN_SIDE:
            raise ShapeError(
                f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {image_side}x{image_side}"
            )
        self.image_side = image_side
        self.padding = resolve_padding(image_side, padding)
        pad = KERNEL // 2 if self.padding == "same" else 0
        self.conv1 = nn.Conv2d(1, 6, kernel_size=KERNEL, padding=pad)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=KERNEL, padding=pad)
        self.dropout = nn.Dropout2d(p=dropout)
        side = image_side
        for _ in range(2):
            side = (side - (KERNEL - 1 if pad == 0 else 0)) // 2
        self.features = 16 * side * side
        self.fc1 = nn.Linear(self.features, hidden)
        self.fc2 = nn.Linear(hidden, n_qubits)
        self.quantum = quantum

    def angles(self, images: torch.Tensor) -> torch.Tensor:
        """Return the classical part's output: one angle per qubit, shape (batch, n_qubits)."""
        if images.ndim != 4 or images.shape[1:] != (1, self.image_side, self.image_side):
            raise ShapeError(
                f"expected images of shape (batch, 1, {self.image_side}, {self.image_side}), "
                f"got {tuple(images.shape)}"
            )
        x = F.max_pool2d(F.relu(self.conv1(images)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return class probabilities (batch, 2): (1 - p, p) with p = P(readout qubit = 1)."""
        p = self.quantum(self.angles(images))
        return torch.stack([1.0 - p, p], dim=1)
