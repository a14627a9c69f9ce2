"""The reference models and the scaling arithmetic."""

import pytest
import torch

from workloads.allreduce.resnet import MODELS, parameter_count
from workloads.allreduce.scaling import efficiency, worker_counts


def test_resnet50_has_the_published_parameter_count():
    # torchvision's published ResNet-50 (v1.5) size: 25,557,032 parameters for 1000 classes.
    assert parameter_count(MODELS["resnet50"].build()) == 25_557_032


def test_small_resnet_classifies_a_cifar_sized_batch():
    model = MODELS["resnet_small"].build()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_efficiency_and_worker_counts():
    # 2 workers at 180 samples/s against 100 samples/s alone: 180 / (100 * 2) = 0.9
    assert efficiency(180.0, 100.0, 2) == pytest.approx(0.9)
    assert efficiency(1500.0, 100.0, 16) == pytest.approx(1500 / 1600)
    assert worker_counts(1) == [1]
    assert worker_counts(2) == [1, 2]
    assert worker_counts(16) == [1, 2, 4, 8, 16]
    assert worker_counts(6) == [1, 2, 4, 6]
