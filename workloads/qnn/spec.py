"""The qnn workload's spec: its arguments, resources and backends, declared once."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec
from workloads.qnn.circuit import MAX_QUBITS


class Args(WorkloadArgs):
    """Options of the hybrid classifier (defaults: the published MNIST 0-vs-1 setup, batched)."""

    dataset: Literal["mnist", "digits"] = Field(
        default="mnist",
        description="mnist: IDX files from --data-uri; digits: scikit-learn's bundled 8x8 images (offline)",
    )
    data_uri: str = Field(
        default="", description="directory or s3:// prefix with the four MNIST IDX files (plain or .gz)"
    )
    digits: list[int] = Field(default=[0, 1], description="the two digits to tell apart, e.g. 0,1")
    train_per_class: int = Field(default=400, ge=1, le=7000, description="training images per digit")
    test_per_class: int = Field(default=200, ge=1, le=1200, description="test images per digit")
    epochs: int = Field(default=20, ge=1, le=1000, description="passes over the training set")
    batch_size: int = Field(default=32, ge=1, le=8192, description="samples per optimizer step (original: 1)")
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0, description="Adam step size")
    n_qubits: int = Field(
        default=1,
        ge=1,
        le=MAX_QUBITS,
        description="qubits of the circuit layer (1: the published H-RY circuit)",
    )
    shots: int = Field(
        default=0, ge=0, le=1_000_000, description="measurements per circuit run; 0 = exact probabilities"
    )
    shift_rad: float = Field(
        default=math.pi / 2,
        gt=0.0,
        lt=math.pi,
        description="parameter-shift s in radians (rule exact for any s)",
    )
    backend: Literal["torch", "qutrunk"] = Field(
        default="torch",
        description="circuit simulator: built-in batched statevector, or qutrunk if installed",
    )
    loss: Literal["nll", "neg_prob"] = Field(
        default="nll",
        description="nll: -log p(class); neg_prob: -p(class), the original's NLLLoss fed probabilities",
    )
    dropout: float = Field(
        default=0.5, ge=0.0, lt=1.0, description="Dropout2d probability after the convolutions"
    )
    conv_padding: Literal["auto", "valid", "same"] = Field(
        default="auto",
        description="valid: the original (28x28); same: small images; auto: valid where it fits",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: cuda when available")
    seed: int = Field(
        default=0, ge=0, le=2**31 - 1, description="seed of weights, shuffling, dropout and shots"
    )
    checkpoint_every_epochs: int = Field(
        default=1, ge=1, le=1000, description="save a checkpoint every N epochs"
    )

    @field_validator("digits")
    @classmethod
    def _two_known_digits(cls, value: list[int]) -> list[int]:
        unknown = [d for d in value if not 0 <= d <= 9]
        if unknown:
            raise ValueError(f"unknown digit(s) {unknown}: digits are 0..9, e.g. --digits 0,1")
        if len(value) != 2 or value[0] == value[1]:
            raise ValueError(f"give exactly two different digits, got {value}, e.g. --digits 0,1")
        return value


SPEC = WorkloadSpec(
    name="qnn",
    description=(
        "Hybrid quantum-classical classifier: a small CNN feeds an angle to a parameterised qubit circuit "
        "(H, RY(theta), measure), trained with parameter-shift gradients and Adam on two MNIST digits."
    ),
    module="workloads.qnn",
    args=Args,
    # One GPU is plenty (a small CNN and a statevector of a few qubits); a number, not "all", so
    # several runs can share a multi-GPU node.
    resources=Resources(
        nodes=1, gpus_per_node=1, min_vcpus_per_node=4, min_memory_per_node_mib=8192, timeout_s=3600
    ),
    input_arg="data_uri",
    image="mlhpc/qnn",
    backends=frozenset({Backend.LOCAL, Backend.BATCH}),
    default_backend=Backend.BATCH,
    distributed=False,
    outputs=("metrics.json", "history.npz", "training.png"),
    demo_args={
        "dataset": "digits",
        "train_per_class": 100,
        "test_per_class": 70,
        "epochs": 5,
        "batch_size": 8,
    },
)
