"""Initial density matrices from .npy / .npz files (dense or scipy-sparse), a path or s3:// URI.

Pickle files are refused: unpickling runs arbitrary code. The original accepted a pickled
scipy sparse matrix; convert one once, on a machine you trust, with
``scipy.sparse.save_npz('rho0.npz', pickle.load(open('rho0.pkl', 'rb')))``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from workloads.common import storage
from workloads.common.entry import WorkloadError

PICKLE_FIX = (
    "pickle files are refused because loading one runs arbitrary code; convert it once on a machine you "
    "trust: python -c \"import pickle, scipy.sparse as s; s.save_npz('rho0.npz', "
    "s.csr_matrix(pickle.load(open('rho0.pkl', 'rb'))))\" and pass rho0.npz"
)


def _looks_like_pickle(path: Path) -> bool:
    head = path.read_bytes()[:2]
    return path.suffix.lower() in (".pkl", ".pickle", ".p") or (
        len(head) == 2 and head[0] == 0x80 and head[1] <= 5
    )


def find_state_file(directory: Path) -> Path:
    """Return the one .npz / .npy file in a directory (a SageMaker channel)."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if any(_looks_like_pickle(p) for p in files):
        bad = next(p for p in files if _looks_like_pickle(p))
        raise WorkloadError(f"initial state {bad} is a pickle file: {PICKLE_FIX}")
    usable = [p for p in files if p.suffix.lower() in (".npz", ".npy")]
    if len(usable) != 1:
        raise WorkloadError(
            f"{directory} should hold exactly one .npz or .npy initial state, found {[p.name for p in files]}"
        )
    return usable[0]


def load_state(uri: str, *, n: int) -> np.ndarray | sp.csr_matrix:
    """Load and validate a 2^(N+1) x 2^(N+1) density matrix (raises WorkloadError with the fix)."""
    path = storage.fetch(uri)
    if path.is_dir():
        path = find_state_file(path)
    if _looks_like_pickle(path):
        raise WorkloadError(f"initial state {uri} is a pickle file: {PICKLE_FIX}")
    try:
        if path.suffix.lower() == ".npy":
            rho = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".npz":
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
            if {
                "data.npy",
                "indices.npy",
                "indptr.npy",
                "format.npy",
                "shape.npy",
            } <= names or "row.npy" in names:
                rho = sp.load_npz(path).tocsr()
            else:
                with np.load(path, allow_pickle=False) as npz:
                    if len(npz.files) != 1:
                        raise WorkloadError(
                            f"{uri} holds arrays {npz.files}; save exactly one "
                            "(np.savez('rho0.npz', rho=rho)) "
                            "or a sparse matrix (scipy.sparse.save_npz)"
                        )
                    rho = npz[npz.files[0]]
        else:
            raise WorkloadError(
                f"initial state {uri}: unknown format '{path.suffix}'; give a .npy or .npz file"
            )
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:  # EOFError: an empty or cut-off .npy
        if "pickle" in str(err).lower():
            raise WorkloadError(f"initial state {uri} holds pickled objects: {PICKLE_FIX}") from None
        raise WorkloadError(f"cannot read initial state {uri}: {err}") from None
    return validate_state(rho, n=n, source=uri)


def validate_state(
    rho: np.ndarray | sp.spmatrix, *, n: int, source: str = "initial state"
) -> np.ndarray | sp.csr_matrix:
    """Check shape, finiteness, trace 1, Hermiticity and positivity of a density matrix."""
    dim = 2 ** (n + 1)
    if rho.ndim != 2 or rho.shape != (dim, dim):
        raise WorkloadError(
            f"{source} has shape {tuple(rho.shape)} but N={n} needs a ({dim}, {dim}) density matrix "
            "(electron (x) N nuclear spins); check N or the file"
        )
    data = rho.data if sp.issparse(rho) else rho
    if not np.all(np.isfinite(data)):
        raise WorkloadError(f"{source} contains NaN or infinite entries; a density matrix must be finite")
    rho = (
        sp.csr_matrix(rho, dtype=np.complex128) if sp.issparse(rho) else np.asarray(rho, dtype=np.complex128)
    )
    trace = complex(rho.diagonal().sum())
    if abs(trace - 1) > 1e-8:
        raise WorkloadError(
            f"{source} has trace {trace:.6g}; a density matrix has trace 1 (divide it by its trace)"
        )
    asym = abs(rho - rho.conj().T)
    if (asym.max() if sp.issparse(asym) else np.max(asym)) > 1e-10:
        raise WorkloadError(f"{source} is not Hermitian; a density matrix equals its conjugate transpose")
    if dim <= 2**12:
        # rho is a csr_matrix or a base ndarray here; isinstance (unlike sp.issparse) narrows it for mypy.
        dense = rho if isinstance(rho, np.ndarray) else rho.toarray()
        low = float(np.linalg.eigvalsh(dense).min())
        if low < -1e-10:
            raise WorkloadError(
                f"{source} has a negative eigenvalue {low:.3g}; a density matrix is positive semidefinite"
            )
    return rho
