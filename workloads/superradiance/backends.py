"""Array backends for the exact block solver: SciPy on a CPU, PyTorch on a CPU or a GPU.

The block solver is written once against :class:`Backend`; ``numpy`` is the fastest choice on
a CPU (SciPy's sparse kernels), ``torch`` runs the same algorithm on ``cpu`` or ``cuda``
(complex128 dense blocks, the real lowering matrices in CSR, applied to the interleaved
real view of a complex block so one real sparse kernel serves complex data).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from workloads.common.entry import WorkloadError


class Backend:
    """The handful of array operations the block solver needs."""

    name = "abstract"

    def asarray(self, a: np.ndarray) -> Any:
        """Move a NumPy array onto the backend."""
        raise NotImplementedError

    def sparse(self, m: sp.csr_matrix) -> Any:
        """Move a real SciPy CSR matrix onto the backend."""
        raise NotImplementedError

    def spmm(self, b: Any, m: Any) -> Any:
        """Return b @ m for a real sparse b and a dense complex m."""
        raise NotImplementedError

    def herm(self, m: Any) -> Any:
        """Return the conjugate transpose of m as a contiguous array."""
        raise NotImplementedError

    def to_numpy(self, a: Any) -> np.ndarray:
        """Copy an array back to NumPy."""
        raise NotImplementedError

    def rms(self, a: Any) -> float:
        """Root-mean-square of |a| (a real or complex array) as a float."""
        raise NotImplementedError

    def scaled_rms(self, err: Any, y0: Any, y1: Any, rtol: float, atol: float) -> float:
        """Return rms(|err| / (atol + rtol * max(|y0|, |y1|))) as a float."""
        raise NotImplementedError

    def zeros(self, n: int) -> Any:
        """A complex zero vector of length n."""
        raise NotImplementedError

    def sum_real(self, a: Any) -> float:
        """The real part of the sum of a, as a float."""
        raise NotImplementedError

    def index(self, a: np.ndarray) -> Any:
        """Move an integer index array onto the backend."""
        raise NotImplementedError


class NumpyBackend(Backend):
    """SciPy CSR kernels on NumPy complex128 arrays (CPU)."""

    name = "numpy"

    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.complex128)

    def sparse(self, m: sp.csr_matrix) -> sp.csr_matrix:
        return sp.csr_matrix(m)

    def spmm(self, b: sp.csr_matrix, m: np.ndarray) -> np.ndarray:
        return np.asarray(b @ m)

    def herm(self, m: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(m.conj().T)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def rms(self, a: np.ndarray) -> float:
        return float(np.sqrt(np.mean(np.abs(a) ** 2))) if a.size else 0.0

    def scaled_rms(self, err: np.ndarray, y0: np.ndarray, y1: np.ndarray, rtol: float, atol: float) -> float:
        scale = atol + rtol * np.maximum(np.abs(y0), np.abs(y1))
        return float(np.sqrt(np.mean((np.abs(err) / scale) ** 2)))

    def zeros(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.complex128)

    def sum_real(self, a: np.ndarray) -> float:
        return float(np.sum(a).real)

    def index(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=np.int64)


class TorchBackend(Backend):
    """PyTorch complex128 tensors and real CSR matrices on one device (cpu or cuda)."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device.type}"

    def asarray(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a, dtype=np.complex128), device=self.device)

    def sparse(self, m: sp.csr_matrix) -> Any:
        t = self.torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
            return t.sparse_csr_tensor(
                t.as_tensor(m.indptr, dtype=t.int64),
                t.as_tensor(m.indices, dtype=t.int64),
                t.as_tensor(m.data, dtype=t.float64),
                size=m.shape,
                device=self.device,
            )

    def spmm(self, b: Any, m: Any) -> Any:
        rows, cols = m.shape
        if rows == 0 or cols == 0 or b.shape[0] == 0:
            return self.torch.zeros((b.shape[0], cols), dtype=m.dtype, device=self.device)
        real = self.torch.view_as_real(m.contiguous()).reshape(rows, 2 * cols)
        out = b @ real
        return self.torch.view_as_complex(out.reshape(b.shape[0], cols, 2))

    def herm(self, m: Any) -> Any:
        return m.conj().T.resolve_conj().contiguous()

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().resolve_conj().cpu().numpy()

    def rms(self, a: Any) -> float:
        return float(self.torch.sqrt(self.torch.mean(a.abs() ** 2))) if a.numel() else 0.0

    def scaled_rms(self, err: Any, y0: Any, y1: Any, rtol: float, atol: float) -> float:
        scale = atol + rtol * self.torch.maximum(y0.abs(), y1.abs())
        return float(self.torch.sqrt(self.torch.mean((err.abs() / scale) ** 2)))

    def zeros(self, n: int) -> Any:
        return self.torch.zeros(n, dtype=self.torch.complex128, device=self.device)

    def sum_real(self, a: Any) -> float:
        return float(a.sum().real)

    def index(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)


def make_backend(device: str) -> Backend:
    """Return the backend for --device: auto (cuda if present, else numpy), numpy, cpu or cuda."""
    if device in ("auto", "cuda"):
        import torch

        if torch.cuda.is_available():
            return TorchBackend("cuda")
        if device == "cuda":
            raise WorkloadError(
                "device=cuda was asked for but torch sees no CUDA GPU: use --device auto, numpy or cpu"
            )
        return NumpyBackend()
    if device == "numpy":
        return NumpyBackend()
    if device == "cpu":
        return TorchBackend("cpu")
    raise WorkloadError(f"device={device!r} is not valid: use one of auto, numpy, cpu, cuda")
