"""A tiny IDX writer, so the reader is tested on real bytes written by independent code."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """Return the IDX encoding of an array: magic (0, 0, type, ndim), big-endian sizes, big-endian data."""
    array = np.asarray(array)
    header = bytes([0, 0, CODES[array.dtype.name], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """Write an array as an IDX file (gzipped when asked)."""
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_mnist_dir(
    directory: Path, images: dict[str, np.ndarray], labels: dict[str, np.ndarray], *, gz: bool
) -> Path:
    """Write train/t10k image and label files under their standard MNIST names."""
    directory.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", images[split], gz=gz)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", labels[split], gz=gz)
    return directory
