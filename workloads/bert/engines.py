"""Inference paths: Neuron (torch-neuronx / torch-neuron), GPU (fp16/bf16, SDPA attention), CPU (PyTorch or ONNX Runtime).

Every path runs the same :class:`Head`: the encoder plus what turns its output into an answer
(classifier logits, or mean-pooled L2-normalised sentence embeddings), so the Neuron tracer
sees one module with tensor inputs and a tensor output.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch
from torch import nn

from mlhpc.compat import StrEnum
from workloads.bert.models import LoadedModel, Task
from workloads.common.entry import WorkloadError


class Device(StrEnum):
    """Where the model runs."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    NEURON = "neuron"


def neuron_sdk() -> ModuleType | None:
    """Return torch_neuronx (Inf2/Trn) or torch.neuron (Inf1) when installed, else None."""
    for name in ("torch_neuronx", "torch_neuron"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        # torch-neuron (Inf1) registers its API as torch.neuron.
        return module if name == "torch_neuronx" else getattr(torch, "neuron", module)
    return None


def resolve_device(requested: str) -> Device:
    """Return the device to use: auto picks Neuron, then CUDA, then the CPU; explicit choices are checked."""
    device = Device(requested)
    if device is Device.AUTO:
        if neuron_sdk() is not None:
            return Device.NEURON
        return Device.CUDA if torch.cuda.is_available() else Device.CPU
    if device is Device.CUDA and not torch.cuda.is_available():
        raise WorkloadError("device=cuda but PyTorch sees no CUDA GPU; use device=auto or device=cpu")
    if device is Device.NEURON and neuron_sdk() is None:
        raise WorkloadError(
            "device=neuron but neither torch-neuronx (Inf2/Trn1) nor torch-neuron (Inf1) is installed; "
            "use the Neuron image (workloads/bert/Dockerfile, --build-arg VARIANT=neuron) or device=auto"
        )
    return device


def resolve_dtype(device: Device, precision: str) -> torch.dtype:
    """Return the weight dtype: fp32 on CPU/Neuron by default, bf16 (or fp16 without bf16) on a GPU."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device is Device.CPU:
            raise WorkloadError("precision=fp16 is slow or unsupported on the CPU; use fp32 or bf16")
        return torch.float16
    if device is Device.CUDA:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # Neuron: the compiler casts matmuls to bf16 itself (--auto-cast); weights stay fp32.
    return torch.float32


def pooling_mode(path: Path) -> str:
    """Return 'mean' or 'cls' from a sentence-transformers Pooling config (mean when absent)."""
    config = path / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("pooling_mode_cls_token"):
        return "cls"
    return "mean"


class Head(nn.Module):
    """The encoder plus its answer: classifier logits, or L2-normalised pooled embeddings."""

    def __init__(self, model: nn.Module, task: Task, pooling: str = "mean") -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.pooling = pooling

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        """Return logits [batch, labels] or unit embeddings [batch, hidden]."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        if self.task is Task.CLASSIFY:
            return out.logits.float()
        hidden = out.last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


class Engine(Protocol):
    """Runs a tokenised batch and returns float32 CPU outputs."""

    device: Device
    static_shape: tuple[int, int] | None  # (batch, sequence) when inputs must be padded to it

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return the head's output for one batch."""
        ...


@dataclass
class TorchEngine:
    """PyTorch eager on the CPU or a CUDA GPU, in the weight dtype chosen for the device."""

    head: Head
    device: Device
    dtype: torch.dtype
    static_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        target = "cuda" if self.device is Device.CUDA else "cpu"
        first = next(self.head.parameters(), None)
        if first is not None and (first.device.type != target or first.dtype != self.dtype):
            # Module.to() moves parameters in place: work on a copy, so the loaded model (which
            # other engines, e.g. a CPU reference, may share) stays where and what it was.
            self.head = copy.deepcopy(self.head)
        self.head = self.head.to(device=target, dtype=self.dtype).eval()
        self._target = torch.device(target)

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run one batch under inference mode; return float32 on the CPU."""
        with torch.inference_mode():
            inputs = {k: v.to(self._target, non_blocking=True) for k, v in batch.items()}
            return self.head(**inputs).float().cpu()


class NeuronEngine:
    """A Head compiled for NeuronCores with a static (batch, sequence) shape, data-parallel over every core.

    Neuron compiles for fixed shapes, so a batch is padded to a multiple of ``batch_size`` rows and
    every sequence to ``seq_len`` tokens. ``DataParallel`` loads one copy per NeuronCore and splits
    a batch's rows across them (an inf2.xlarge has 2 cores, an inf1.xlarge 4).
    """

    device = Device.NEURON

    def __init__(self, head: Head, *, sdk: ModuleType, batch_size: int, seq_len: int) -> None:
        self.static_shape: tuple[int, int] | None = (batch_size, seq_len)
        self.batch_size = batch_size
        example = (
            torch.zeros(batch_size, seq_len, dtype=torch.long),
            torch.ones(batch_size, seq_len, dtype=torch.long),
            torch.zeros(batch_size, seq_len, dtype=torch.long),
        )
        head = head.eval()
        if hasattr(sdk, "trace"):
            # torch-neuronx: trace(model, inputs); torch-neuron: torch.neuron.trace(model, inputs).
            # bf16 matmuls: the compiler's own auto-cast (Neuron's documented default for BERT).
            compiler_args = ["--auto-cast", "matmult", "--auto-cast-type", "bf16"]
            try:
                traced = sdk.trace(head, example, compiler_args=compiler_args)
            except TypeError:
                traced = sdk.trace(head, example)
        else:  # pragma: no cover - an SDK without trace is not a Neuron SDK
            raise WorkloadError(f"{sdk.__name__} has no trace(); install torch-neuronx or torch-neuron")
        self.model: Any = sdk.DataParallel(traced) if hasattr(sdk, "DataParallel") else traced

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pad rows to a multiple of the compiled batch size, run, and drop the padding rows."""
        rows = batch["input_ids"].shape[0]
        padded_rows = math.ceil(rows / self.batch_size) * self.batch_size
        inputs = []
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            tensor = batch[key]
            if padded_rows > rows:
                filler = torch.zeros(padded_rows - rows, tensor.shape[1], dtype=tensor.dtype)
                if key == "attention_mask":
                    filler[:, 0] = 1  # a padding row attends to one token, so pooling never divides by 0
                tensor = torch.cat([tensor, filler])
            inputs.append(tensor)
        with torch.inference_mode():
            out = self.model(*inputs)
        return out[:rows].float()


INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OrtEngine:
    """The Head exported to ONNX and run by ONNX Runtime on the CPU (fp32, dynamic batch and sequence).

    Measured here against PyTorch eager (``python -m workloads.bert.engine_bench``): faster at every
    batch size, most at batch 1 where PyTorch's per-operator overhead dominates. The export
    (TorchScript-based, about 2 s for MiniLM, 10 s for bert-base) happens once when the engine is built.
    """

    device = Device.CPU
    static_shape: tuple[int, int] | None = None

    def __init__(self, head: Head, *, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise WorkloadError(
                "runtime=onnxruntime needs the onnxruntime package (pip install onnxruntime==1.31.1); "
                "or use runtime=torch"
            ) from err
        head = head.to(dtype=torch.float32).eval()
        example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in INPUTS)
        axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS} | {"output": {0: "batch"}}
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        with tempfile.TemporaryDirectory(prefix="bert-onnx-") as tmp:
            path = str(Path(tmp) / "model.onnx")
            torch.onnx.export(
                head, example, path, input_names=list(INPUTS), output_names=["output"],
                dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Run one batch; return float32 on the CPU."""
        feeds = {name: batch[name].numpy() for name in INPUTS}
        return torch.from_numpy(self.session.run(None, feeds)[0]).float()


def build_engine(
    loaded: LoadedModel,
    *,
    device: str = "auto",
    precision: str = "auto",
    static_batch: int = 8,
    static_seq_len: int = 128,
    sdk: ModuleType | None = None,
    runtime: str = "torch",
) -> Engine:
    """Return the engine for a device: Neuron (compiled, static shape), CUDA or CPU (PyTorch eager or ONNX Runtime)."""
    chosen = resolve_device(device) if sdk is None else Device.NEURON
    head = Head(loaded.model, loaded.task, pooling_mode(loaded.path))
    if runtime not in ("torch", "onnxruntime"):
        raise WorkloadError(f"runtime={runtime!r} is not known; use torch or onnxruntime")
    if runtime == "onnxruntime":
        if chosen is not Device.CPU:
            raise WorkloadError(
                f"runtime=onnxruntime runs on the CPU only, not device={chosen.value}; use runtime=torch"
            )
        if precision not in ("auto", "fp32"):
            raise WorkloadError(
                f"runtime=onnxruntime runs fp32 only, not precision={precision}; use precision=auto"
            )
        return OrtEngine(head)
    if chosen is Device.NEURON:
        return NeuronEngine(head, sdk=sdk or neuron_sdk(), batch_size=static_batch, seq_len=static_seq_len)  # type: ignore[arg-type]
    return TorchEngine(head, device=chosen, dtype=resolve_dtype(chosen, precision))
