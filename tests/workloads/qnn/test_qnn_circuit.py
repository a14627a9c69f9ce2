"""The statevector simulator against dense matrices built independently with numpy (kron products)."""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import pytest
import torch

from workloads.qnn.circuit import MAX_QUBITS, Circuit, CircuitError, hybrid_circuit

# float64 simulation of a few gates: rounding stays within a few ulps of 1.
TOL = 1e-12

I2 = np.eye(2)
P0 = np.diag([1.0, 0.0])
P1 = np.diag([0.0, 1.0])
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]])
Z = np.diag([1.0, -1.0]).astype(complex)
H = np.array([[1, 1], [1, -1]]) / math.sqrt(2)


def rot(pauli: np.ndarray, theta: float) -> np.ndarray:
    """exp(-i theta P / 2) for a Pauli matrix P."""
    return math.cos(theta / 2) * I2 - 1j * math.sin(theta / 2) * pauli


def on(n: int, q: int, op: np.ndarray) -> np.ndarray:
    """The full 2**n matrix of a one-qubit operator on qubit q (qubit 0 = leftmost factor)."""
    return reduce(np.kron, [op if k == q else I2 for k in range(n)])


def controlled(n: int, c: int, t: int, op: np.ndarray) -> np.ndarray:
    return on(n, c, P0) + reduce(np.kron, [P1 if k == c else op if k == t else I2 for k in range(n)])


def dense_state(circuit: Circuit, params: np.ndarray) -> np.ndarray:
    n = circuit.n_qubits
    psi = np.zeros(2**n, dtype=complex)
    psi[0] = 1
    paulis = {"rx": X, "ry": Y, "rz": Z}
    for g in circuit.gates:
        if g.name in paulis:
            theta = params[g.param] if g.param is not None else g.angle
            m = on(n, g.qubits[0], rot(paulis[g.name], theta))
        elif g.name == "h":
            m = on(n, g.qubits[0], H)
        elif g.name == "x":
            m = on(n, g.qubits[0], X)
        elif g.name == "z":
            m = on(n, g.qubits[0], Z)
        elif g.name == "cnot":
            m = controlled(n, *g.qubits, X)
        else:
            m = controlled(n, *g.qubits, Z)
        psi = m @ psi
    return psi


def random_circuit(n: int, rng: np.random.Generator, depth: int = 12) -> Circuit:
    c = Circuit(n)
    p = 0
    for _ in range(depth):
        kind = rng.choice(["h", "x", "z", "rx", "ry", "rz", "cnot", "cz", "fixed"])
        q = int(rng.integers(n))
        if kind in ("cnot", "cz") and n > 1:
            t = int((q + 1 + rng.integers(n - 1)) % n)
            getattr(c, kind)(q, t)
        elif kind in ("rx", "ry", "rz"):
            getattr(c, kind)(q, param=p)
            p += 1
        elif kind == "fixed":
            c.rz(q, angle=float(rng.uniform(-3, 3)))
        elif kind in ("h", "x", "z"):
            getattr(c, kind)(q)
    if c.n_params == 0:
        c.ry(0, param=0)
    return c.measure(int(rng.integers(n)))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_state_matches_dense_matrices(n):
    rng = np.random.default_rng(n)
    for _ in range(4):
        c = random_circuit(n, rng)
        params = rng.uniform(-math.pi, math.pi, size=(3, c.n_params))
        got = c.state(torch.tensor(params)).reshape(3, -1).numpy()
        for b in range(3):
            np.testing.assert_allclose(got[b], dense_state(c, params[b]), atol=TOL)


@pytest.mark.parametrize("n", [1, 3, 4])
def test_probabilities_and_readout(n):
    rng = np.random.default_rng(10 + n)
    c = random_circuit(n, rng)
    params = torch.tensor(rng.uniform(-3, 3, size=(5, c.n_params)))
    probs = c.probabilities(params)
    # invariant: a unitary circuit keeps the norm
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=TOL)
    # P(readout = 1) by summing the dense probabilities over basis states whose bit is 1
    bit = (np.arange(2**n) >> (n - 1 - c.readout_qubit)) & 1
    expected = probs.numpy()[:, bit == 1].sum(1)
    np.testing.assert_allclose(c.prob_one(params).numpy(), expected, atol=TOL)


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_hybrid_circuit_matches_closed_form(n):
    # H then RY(theta) on each qubit gives <Z_i> = -sin(theta_i); the CNOT chain puts the
    # parity into the last qubit: P(1) = (1 - prod_i(-sin theta_i)) / 2. One qubit: (1 + sin) / 2.
    theta = torch.linspace(-4, 4, 9 * n, dtype=torch.float64).reshape(9, n)
    expected = (1 - torch.prod(-torch.sin(theta), dim=1)) / 2
    got = hybrid_circuit(n).prob_one(theta)
    torch.testing.assert_close(got, expected, atol=TOL, rtol=0)


def test_max_qubits_runs_and_limit_is_enforced():
    c = hybrid_circuit(MAX_QUBITS)
    theta = torch.full((2, MAX_QUBITS), 0.3, dtype=torch.float64)
    expected = (1 - (-math.sin(0.3)) ** MAX_QUBITS) / 2
    np.testing.assert_allclose(c.prob_one(theta).numpy(), expected, atol=TOL)
    with pytest.raises(CircuitError, match=f"a circuit needs 1 to {MAX_QUBITS} qubits, got 13"):
        Circuit(MAX_QUBITS + 1)


def test_builder_rejects_misuse():
    c = Circuit(2).ry(0, param=0)
    with pytest.raises(CircuitError, match="parameter 0 already drives a gate"):
        c.rz(1, param=0)
    with pytest.raises(CircuitError, match="qubit 2 is outside this 2-qubit circuit"):
        c.h(2)
    with pytest.raises(CircuitError, match="CNOT needs two different qubits"):
        c.cnot(1, 1)
    with pytest.raises(CircuitError, match="needs exactly one of param"):
        c.rx(0)
    with pytest.raises(CircuitError, match=r"parameters must have shape \(batch, 1\), got \(4, 3\)"):
        c.state(torch.zeros(4, 3))
    with pytest.raises(CircuitError, match=r"indices must be 0..P-1"):
        _ = Circuit(1).ry(0, param=1).n_params


def test_single_precision_path():
    theta = torch.tensor([[0.4], [-1.2]], dtype=torch.float32)
    got = hybrid_circuit(1).prob_one(theta)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, (1 + torch.sin(theta[:, 0])) / 2, atol=1e-6, rtol=0)
