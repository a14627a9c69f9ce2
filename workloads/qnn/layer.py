"""The circuit as a torch layer: exact or sampled outcome probabilities, parameter-shift gradients.

:class:`ParameterShift` is a ``torch.autograd.Function`` whose backward never
differentiates through the simulator: like hardware, it only evaluates the circuit,
at every parameter shifted by +-s, all samples and shifts in one batched call, and uses

    dE/dtheta = [E(theta + s) - E(theta - s)] / (2 sin s),

exact for any s in (0, pi) because each parameter drives one rotation exp(-i theta P / 2).
With s = pi/2 this is the familiar (E+ - E-) / 2. (The published model's code used
E+ - E- without the 1/2: twice the gradient, which Adam largely absorbs.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from workloads.qnn.circuit import Circuit

Executor = Callable[[torch.Tensor], torch.Tensor]


class ShotSampler:
    """Estimate P(readout = 1) from a finite number of measurements, reproducibly (seeded)."""

    def __init__(self, shots: int, *, seed: int, device: torch.device | str = "cpu") -> None:
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        self.shots = shots
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def __call__(self, prob_one: torch.Tensor) -> torch.Tensor:
        """Return count(1) / shots with count ~ Binomial(shots, p) for each p."""
        count = torch.full_like(prob_one, float(self.shots))
        # clamp: rounding can leave p a hair outside [0, 1], which torch.binomial rejects
        ones = torch.binomial(count, prob_one.clamp(0.0, 1.0), generator=self.generator)
        return ones / self.shots


def torch_executor(circuit: Circuit, *, sampler: ShotSampler | None = None, double: bool = True) -> Executor:
    """Return a function params (N, P) -> P(readout = 1) (N,) running the built-in statevector simulator."""

    def run(params: torch.Tensor) -> torch.Tensor:
        work = params.detach().to(torch.float64 if double else torch.float32)
        prob = circuit.prob_one(work)
        if sampler is not None:
            prob = sampler(prob)
        return prob.to(params.dtype)

    return run


class ParameterShift(torch.autograd.Function):
    """Apply an executor to parameters; in backward, get the gradient from the parameter-shift rule."""

    @staticmethod
    def forward(ctx: Any, params: torch.Tensor, executor: Executor, shift: float) -> torch.Tensor:
        """Return executor(params), shape (batch,)."""
        ctx.save_for_backward(params)
        ctx.executor = executor
        ctx.shift = shift
        return executor(params)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        """Return grad_output times dE/dtheta from 2 * n_params shifted evaluations of every sample."""
        (params,) = ctx.saved_tensors
        batch, n_params = params.shape
        shifts = torch.eye(n_params, dtype=params.dtype, device=params.device) * ctx.shift  # (P, P)
        plus = params.unsqueeze(0) + shifts.unsqueeze(1)  # (P, B, P): parameter p shifted in row p
        minus = params.unsqueeze(0) - shifts.unsqueeze(1)
        stacked = torch.cat([plus, minus]).reshape(2 * n_params * batch, n_params)
        values = ctx.executor(stacked).reshape(2, n_params, batch)
        jacobian = (values[0] - values[1]) / (2.0 * math.sin(ctx.shift))  # (P, B)
        return (grad_output.unsqueeze(0) * jacobian).transpose(0, 1), None, None


class QuantumLayer(nn.Module):
    """Map angles (batch, n_params) to the probability that the circuit's readout qubit is 1, (batch,)."""

    def __init__(self, circuit: Circuit, executor: Executor, *, shift_rad: float = math.pi / 2) -> None:
        super().__init__()
        if not 0.0 < shift_rad < math.pi:
            raise ValueError(f"the shift must lie in (0, pi) for the two-term rule, got {shift_rad}")
        self.circuit = circuit
        self.executor = executor
        self.shift_rad = shift_rad

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        """Run the circuit for every sample; gradients flow back through the parameter-shift rule."""
        return ParameterShift.apply(theta, self.executor, self.shift_rad)
