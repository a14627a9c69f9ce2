"""A small exact statevector simulator, batched over samples, for the circuit layer.

A :class:`Circuit` is a list of gates on ``n_qubits`` qubits (at most :data:`MAX_QUBITS`).
Rotation gates take their angle either from a fixed number or from a column of a
parameter matrix of shape (batch, n_params), so one call simulates the same circuit for
every sample of a batch with that sample's angles. Qubit 0 is the most significant bit
of a basis-state index (|q0 q1 ... q_{n-1}>), as in most textbooks.

Every parameter drives exactly one rotation gate (RX, RY or RZ: generators with
eigenvalues +-1/2), which is what makes the two-term parameter-shift rule exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_QUBITS = 12
ROTATIONS = ("rx", "ry", "rz")
FIXED = ("h", "x", "z")
TWO_QUBIT = ("cnot", "cz")


class CircuitError(ValueError):
    """A circuit that cannot be built or simulated as asked."""


@dataclass(frozen=True)
class Gate:
    """One gate: its name, the qubits it acts on, and for a rotation its parameter index or fixed angle."""

    name: str
    qubits: tuple[int, ...]
    param: int | None = None
    angle: float | None = None


class Circuit:
    """A parameterised circuit on ``n_qubits`` qubits, read out as the probability that one qubit is 1."""

    def __init__(self, n_qubits: int) -> None:
        if not 1 <= n_qubits <= MAX_QUBITS:
            raise CircuitError(
                f"a circuit needs 1 to {MAX_QUBITS} qubits, got {n_qubits}: the exact statevector "
                f"holds 2**n amplitudes per sample"
            )
        self.n_qubits = n_qubits
        self.gates: list[Gate] = []
        self.readout_qubit = 0

    # --- building -------------------------------------------------------------------------

    def _qubit(self, q: int) -> int:
        if not 0 <= q < self.n_qubits:
            raise CircuitError(
                f"qubit {q} is outside this {self.n_qubits}-qubit circuit (0..{self.n_qubits - 1})"
            )
        return q

    def _add(self, gate: Gate) -> Circuit:
        self.gates.append(gate)
        return self

    def h(self, q: int) -> Circuit:
        """Append a Hadamard gate on qubit q."""
        return self._add(Gate("h", (self._qubit(q),)))

    def x(self, q: int) -> Circuit:
        """Append a Pauli-X gate on qubit q."""
        return self._add(Gate("x", (self._qubit(q),)))

    def z(self, q: int) -> Circuit:
        """Append a Pauli-Z gate on qubit q."""
        return self._add(Gate("z", (self._qubit(q),)))

    def _rotation(self, name: str, q: int, param: int | None, angle: float | None) -> Circuit:
        if (param is None) == (angle is None):
            raise CircuitError(
                f"{name} on qubit {q} needs exactly one of param= (an index) or angle= (a number)"
            )
        if param is not None:
            if param < 0:
                raise CircuitError(f"parameter index must be >= 0, got {param}")
            if any(g.param == param for g in self.gates):
                raise CircuitError(
                    f"parameter {param} already drives a gate; the two-term parameter-shift rule "
                    "needs each parameter in exactly one rotation"
                )
        return self._add(
            Gate(name, (self._qubit(q),), param=param, angle=None if angle is None else float(angle))
        )

    def rx(self, q: int, *, param: int | None = None, angle: float | None = None) -> Circuit:
        """Append RX(theta) = exp(-i theta X / 2) on qubit q."""
        return self._rotation("rx", q, param, angle)

    def ry(self, q: int, *, param: int | None = None, angle: float | None = None) -> Circuit:
        """Append RY(theta) = exp(-i theta Y / 2) on qubit q."""
        return self._rotation("ry", q, param, angle)

    def rz(self, q: int, *, param: int | None = None, angle: float | None = None) -> Circuit:
        """Append RZ(theta) = exp(-i theta Z / 2) on qubit q."""
        return self._rotation("rz", q, param, angle)

    def cnot(self, control: int, target: int) -> Circuit:
        """Append a CNOT (controlled-X) gate."""
        if control == target:
            raise CircuitError(f"CNOT needs two different qubits, got control = target = {control}")
        return self._add(Gate("cnot", (self._qubit(control), self._qubit(target))))

    def cz(self, a: int, b: int) -> Circuit:
        """Append a controlled-Z gate."""
        if a == b:
            raise CircuitError(f"CZ needs two different qubits, got {a} twice")
        return self._add(Gate("cz", (self._qubit(a), self._qubit(b))))

    def measure(self, q: int) -> Circuit:
        """Read the circuit out as the probability that qubit q is measured 1."""
        self.readout_qubit = self._qubit(q)
        return self

    @property
    def n_params(self) -> int:
        """Return how many parameter columns the circuit reads (0..P-1, each used once)."""
        used = sorted(g.param for g in self.gates if g.param is not None)
        if used != list(range(len(used))):
            raise CircuitError(f"parameter indices must be 0..P-1 with none missing, got {used}")
        return len(used)

    # --- simulating -----------------------------------------------------------------------

    def state(self, params: torch.Tensor) -> torch.Tensor:
        """Return the final states, shape (batch, 2, ..., 2), for parameters of shape (batch, n_params).

        The amplitudes are complex128 for float64 parameters and complex64 otherwise. The
        computation is differentiable by autograd (no in-place writes), which the tests use
        as an independent check of the parameter-shift gradients.
        """
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise CircuitError(
                f"parameters must have shape (batch, {self.n_params}), got {tuple(params.shape)}"
            )
        real = torch.float64 if params.dtype == torch.float64 else torch.float32
        cplx = torch.complex128 if real == torch.float64 else torch.complex64
        params = params.to(real)
        batch = params.shape[0]
        state = torch.zeros((batch, 2**self.n_qubits), dtype=cplx, device=params.device)
        state[:, 0] = 1
        state = state.reshape((batch,) + (2,) * self.n_qubits)
        for gate in self.gates:
            if gate.name in TWO_QUBIT:
                state = _two_qubit(state, gate)
            else:
                state = _apply_1q(state, _matrix(gate, params, cplx), gate.qubits[0])
        return state

    def probabilities(self, params: torch.Tensor) -> torch.Tensor:
        """Return |amplitude|^2 of every basis state, shape (batch, 2**n_qubits); qubit 0 is the high bit."""
        state = self.state(params)
        return (state.real**2 + state.imag**2).reshape(state.shape[0], -1)

    def prob_one(self, params: torch.Tensor) -> torch.Tensor:
        """Return the probability that the readout qubit is measured 1, shape (batch,), real dtype."""
        state = self.state(params)
        density = state.real**2 + state.imag**2
        dims = [d for d in range(1, density.ndim) if d != 1 + self.readout_qubit]
        marginal = density.sum(dim=dims) if dims else density
        return marginal[:, 1]


def _matrix(gate: Gate, params: torch.Tensor, cplx: torch.dtype) -> torch.Tensor:
    """Return the gate's 2x2 matrix: shape (2, 2) for fixed gates, (batch, 2, 2) for parameterised ones."""
    device = params.device
    if gate.name == "h":
        r = 2**-0.5
        return torch.tensor([[r, r], [r, -r]], dtype=cplx, device=device)
    if gate.name == "x":
        return torch.tensor([[0, 1], [1, 0]], dtype=cplx, device=device)
    if gate.name == "z":
        return torch.tensor([[1, 0], [0, -1]], dtype=cplx, device=device)
    if gate.param is not None:
        theta = params[:, gate.param]
    else:
        theta = torch.full((params.shape[0],), float(gate.angle or 0.0), dtype=params.dtype, device=device)
    c = torch.cos(theta / 2).to(cplx)
    s = torch.sin(theta / 2).to(cplx)
    zero = torch.zeros_like(c)
    if gate.name == "ry":
        rows = [[c, -s], [s, c]]
    elif gate.name == "rx":
        rows = [[c, -1j * s], [-1j * s, c]]
    elif gate.name == "rz":
        rows = [[c - 1j * s, zero], [zero, c + 1j * s]]
    else:  # pragma: no cover - the builder only makes known gates
        raise CircuitError(f"unknown gate {gate.name!r}")
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def _apply_1q(state: torch.Tensor, matrix: torch.Tensor, qubit: int) -> torch.Tensor:
    """Apply a 2x2 matrix (shared or one per sample) to one qubit of a batch of states."""
    shape = state.shape
    batch, n = shape[0], len(shape) - 1
    view = state.reshape(batch, 2**qubit, 2, 2 ** (n - qubit - 1))
    if matrix.ndim == 2:
        out = torch.einsum("ij,bajc->baic", matrix, view)
    else:
        out = torch.einsum("bij,bajc->baic", matrix, view)
    return out.reshape(shape)


def _two_qubit(state: torch.Tensor, gate: Gate) -> torch.Tensor:
    """Apply CNOT or CZ by re-indexing amplitudes (no matrix needed)."""
    a, b = gate.qubits
    axis_a = 1 + a
    off = state.select(axis_a, 0)
    on = state.select(axis_a, 1)
    # In the slice with qubit a fixed, qubit b's axis shifts down by one when b > a.
    axis_b = 1 + b - (1 if b > a else 0)
    if gate.name == "cnot":
        on = on.flip(dims=[axis_b])
    else:  # cz: -1 where both are 1
        on = torch.stack([on.select(axis_b, 0), -on.select(axis_b, 1)], dim=axis_b)
    return torch.stack([off, on], dim=axis_a)


def hybrid_circuit(n_qubits: int) -> Circuit:
    """Build the model's circuit: H and RY(theta_i) on every qubit, a CNOT chain, read the last qubit.

    With one qubit this is the published layer: H, RY(theta), measure; P(1) = (1 + sin theta) / 2.
    With more, the CNOT chain writes the parity of all qubits into the last one, so
    P(1) = (1 - prod_i(-sin theta_i)) / 2 and every angle matters.
    """
    circuit = Circuit(n_qubits)
    for q in range(n_qubits):
        circuit.h(q)
    for q in range(n_qubits):
        circuit.ry(q, param=q)
    for q in range(n_qubits - 1):
        circuit.cnot(q, q + 1)
    return circuit.measure(n_qubits - 1)
