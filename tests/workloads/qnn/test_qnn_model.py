"""The hybrid network: the published layer sizes, padding choice, shape errors, gradient wiring."""

from __future__ import annotations

import pytest
import torch

from workloads.qnn.circuit import hybrid_circuit
from workloads.qnn.layer import QuantumLayer, torch_executor
from workloads.qnn.model import HybridNet, ShapeError, resolve_padding


def net(side: int, *, n_qubits: int = 1, padding: str = "auto", dropout: float = 0.5) -> HybridNet:
    c = hybrid_circuit(n_qubits)
    layer = QuantumLayer(c, torch_executor(c))
    return HybridNet(image_side=side, quantum=layer, n_qubits=n_qubits, padding=padding, dropout=dropout)


def test_mnist_size_reproduces_published_layers():
    model = net(28)
    # The published model: Conv(1,6,5), Conv(6,16,5), Linear(256, 64), Linear(64, 1).
    assert model.padding == "valid" and model.features == 256
    assert model.conv1.weight.shape == (6, 1, 5, 5) and model.conv2.weight.shape == (16, 6, 5, 5)
    assert model.fc1.weight.shape == (64, 256) and model.fc2.weight.shape == (1, 64)
    probs = model.eval()(torch.rand(3, 1, 28, 28))
    assert probs.shape == (3, 2)
    torch.testing.assert_close(probs.sum(1), torch.ones(3))


def test_small_images_are_padded():
    assert resolve_padding(8, "auto") == "same" and resolve_padding(16, "auto") == "valid"
    assert net(8).features == 16 * 2 * 2
    with pytest.raises(
        ShapeError, match=r"8x8 images are too small for two valid 5x5 convolutions.*at least 16x16"
    ):
        net(8, padding="valid")
    with pytest.raises(ShapeError, match="images must be at least 4x4 pixels, got 3x3"):
        net(3)


def test_wrong_input_shape():
    with pytest.raises(
        ShapeError, match=r"expected images of shape \(batch, 1, 8, 8\), got \(2, 1, 28, 28\)"
    ):
        net(8)(torch.zeros(2, 1, 28, 28))


def test_gradients_through_the_circuit_match_the_closed_form_layer():
    # The same network with the circuit layer swapped for its closed form (1 + sin theta)/2,
    # differentiated by autograd: every CNN weight gradient must agree.
    torch.manual_seed(0)
    model = net(8, dropout=0.0).double()
    images = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])

    probs = model(images)
    torch.nn.functional.nll_loss(torch.log(probs), labels).backward()
    shifted = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    p = (1 + torch.sin(model.angles(images)[:, 0])) / 2
    closed = torch.stack([1 - p, p], dim=1)
    torch.nn.functional.nll_loss(torch.log(closed), labels).backward()
    for name, param in model.named_parameters():
        assert (param.grad - shifted[name]).abs().max().item() < 1e-10, name


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_forward_backward_on_cuda():
    model = net(28, n_qubits=2).cuda()
    probs = model(torch.rand(4, 1, 28, 28, device="cuda"))
    probs[:, 1].sum().backward()
    assert model.fc2.weight.grad is not None and model.fc2.weight.grad.device.type == "cuda"
