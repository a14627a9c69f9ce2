"""Run the circuit layer on the `qutrunk` simulator instead of the built-in one (optional).

qutrunk is imported only when this backend is asked for; without it the run stops with
a clear message. qutrunk simulates one circuit at a time, so this backend loops over
samples (like the published model did) and is much slower than the batched built-in
simulator; it exists to cross-check results against an independent simulator. It asks
qutrunk for the exact outcome probability (``QCircuit.get_prob_outcome``); in shots mode
the counts are drawn from that probability with the run's seeded sampler, so runs stay
reproducible.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from workloads.qnn.circuit import Circuit
from workloads.qnn.layer import Executor, ShotSampler

INSTALL_HINT = (
    "the qutrunk backend needs the 'qutrunk' package, which is not installed "
    "(qutrunk 0.2.x supports Python < 3.11); install it with `pip install qutrunk` "
    "in a Python where it is available, or use --backend torch (the built-in simulator)"
)


class BackendUnavailableError(RuntimeError):
    """The requested circuit backend cannot be used here."""


def load_qutrunk() -> tuple[Any, Any]:
    """Return (QCircuit class, gates module) from qutrunk, or raise BackendUnavailableError with the fix."""
    try:
        circuit_mod = importlib.import_module("qutrunk.circuit")
        gates = importlib.import_module("qutrunk.circuit.gates")
    except ImportError as err:
        raise BackendUnavailableError(INSTALL_HINT) from err
    return circuit_mod.QCircuit, gates


def qutrunk_executor(circuit: Circuit, *, sampler: ShotSampler | None = None) -> Executor:
    """Return params (N, P) -> P(readout = 1) (N,) computed by qutrunk, one circuit per sample."""
    qcircuit_cls, gates = load_qutrunk()
    single = {"h": gates.H, "x": gates.X, "z": gates.Z}
    rotation = {"rx": gates.Rx, "ry": gates.Ry, "rz": gates.Rz}
    two = {"cnot": gates.CNOT, "cz": gates.CZ}

    def one(angles: list[float]) -> float:
        qc = qcircuit_cls()
        qr = qc.allocate(circuit.n_qubits)
        for gate in circuit.gates:
            if gate.name in single:
                single[gate.name] * qr[gate.qubits[0]]
            elif gate.name in rotation:
                theta = angles[gate.param] if gate.param is not None else float(gate.angle or 0.0)
                rotation[gate.name](theta) * qr[gate.qubits[0]]
            else:
                a, b = gate.qubits
                two[gate.name] * (qr[a], qr[b])
        return float(qc.get_prob_outcome(circuit.readout_qubit, 1))

    def run(params: torch.Tensor) -> torch.Tensor:
        rows = params.detach().to("cpu", torch.float64).tolist()
        prob = torch.tensor([one(r) for r in rows], dtype=torch.float64)
        if sampler is not None:
            prob = sampler(prob)
        return prob.to(device=params.device, dtype=params.dtype)

    return run
