"""ResNets written out (no torchvision): ResNet-50 for GPUs and a small ResNet sized for a CPU.

ResNet-50 follows He et al. (2016), "Deep Residual Learning for Image Recognition", Table 1,
with the stride on the 3x3 convolution of each bottleneck (the "v1.5" layout torchvision and
MLPerf use); it has 25,557,032 parameters for 1000 classes, the count torchvision publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            _conv(cin, width, 3, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            _conv(width, cout, 3), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return relu(body(x) + shortcut(x))."""
        return self.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4), and a shortcut."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            _conv(cin, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            _conv(width, width, 3, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            _conv(width, cout, 1), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return relu(body(x) + shortcut(x))."""
        return self.relu(self.body(x) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """A stem, four stages of residual blocks, global average pooling and a linear classifier."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        *,
        num_classes: int,
        imagenet_stem: bool,
    ) -> None:
        super().__init__()
        c = widths[0]
        if imagenet_stem:  # 7x7/2 convolution and 3x3/2 max-pool: 224 -> 56
            self.stem = nn.Sequential(
                _conv(3, c, 7, 2), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
            )
        else:  # small images (32x32): one 3x3 convolution, no down-sampling
            self.stem = nn.Sequential(_conv(3, c, 3), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        stages, cin = [], c
        for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
            for j in range(depth):
                stages.append(block(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width * block.expansion
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of images (N, 3, H, W)."""
        return self.head(self.stages(self.stem(x)))


@dataclass(frozen=True)
class ModelCase:
    """A reference model and the synthetic batch it trains on."""

    name: str
    image_size: int
    num_classes: int
    default_batch: int

    def build(self) -> ResNet:
        """Return a freshly initialised model."""
        if self.name == "resnet50":
            return ResNet(Bottleneck, (3, 4, 6, 3), (64, 128, 256, 512), num_classes=1000, imagenet_stem=True)
        return ResNet(BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128), num_classes=10, imagenet_stem=False)


MODELS = {
    "resnet50": ModelCase("resnet50", image_size=224, num_classes=1000, default_batch=64),
    "resnet_small": ModelCase("resnet_small", image_size=32, num_classes=10, default_batch=32),
}


def parameter_count(model: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
