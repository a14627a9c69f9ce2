"""Read IDX files, the format MNIST is distributed in (plain or gzipped).

Layout (big-endian): two zero bytes, a type code, the number of dimensions d, then d
uint32 sizes, then the data in C order. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


class IdxError(ValueError):
    """An IDX file that is missing, truncated or not IDX at all."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Return the array stored in an IDX file (gzip detected from the content, not the name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IdxError(f"IDX file {path} does not exist") from None
    except OSError as err:
        raise IdxError(f"cannot read IDX file {path}: {err.strerror or err}") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise IdxError(
                f"{path} looks gzipped but cannot be decompressed ({err}); the file is corrupt"
            ) from None
    return parse_idx(raw, name=str(path))


def parse_idx(raw: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Return the array held by the bytes of an IDX file."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IdxError(
            f"{name} is not an IDX file: it must start with two zero bytes, a type code and a dimension "
            "count "
            f"(found {raw[:4].hex() or 'nothing'})"
        )
    code, ndim = raw[2], raw[3]
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise IdxError(f"{name} has unknown IDX type code 0x{code:02X}; known codes: {known}")
    if ndim == 0:
        raise IdxError(f"{name} declares 0 dimensions; an IDX array has at least one")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{name} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IdxError(
            f"{name} is corrupt: its header says shape {shape} ({expected} data bytes), "
            f"but {len(raw) - header} data bytes follow"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
