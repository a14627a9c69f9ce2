"""The IDX reader on bytes from an independent writer and on hand-written bytes; its errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from qnn_idx_writer import idx_bytes, write_idx

from workloads.qnn.idx import IdxError, parse_idx, read_idx


def test_hand_written_bytes():
    # From the format description: type 0x08 (ubyte), 1 dimension of size 3, data 1 2 3.
    raw = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 1, 2, 3])
    np.testing.assert_array_equal(parse_idx(raw), [1, 2, 3])
    # A 2x2 big-endian int16 array: 0x0102 = 258, 0xFFFF = -1.
    raw = bytes([0, 0, 0x0B, 2, 0, 0, 0, 2, 0, 0, 0, 1, 1, 2, 0xFF, 0xFF])
    np.testing.assert_array_equal(parse_idx(raw), [[258], [-1]])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [False, True])
def test_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 5, 4)) * 50).astype(dtype)
    got = read_idx(write_idx(tmp_path / "a.idx", array, gz=gz))
    assert got.shape == (3, 5, 4)
    np.testing.assert_array_equal(got, array)
    assert got.dtype.isnative


def test_missing_file(tmp_path):
    with pytest.raises(IdxError, match=r"IDX file .*nope-idx3-ubyte does not exist"):
        read_idx(tmp_path / "nope-idx3-ubyte")


def test_not_idx(tmp_path):
    (tmp_path / "x").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(
        IdxError, match=r"is not an IDX file: it must start with two zero bytes.*found 504b0304"
    ):
        read_idx(tmp_path / "x")


def test_truncated_data(tmp_path):
    raw = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))
    (tmp_path / "t").write_bytes(raw[:-100])
    with pytest.raises(
        IdxError, match=r"is corrupt: its header says shape \(10, 28, 28\) \(7840 data bytes\), but 7740"
    ):
        read_idx(tmp_path / "t")


def test_truncated_header():
    with pytest.raises(IdxError, match="is truncated: its header needs 16 bytes, the file has 9"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0]))


def test_unknown_type_code():
    with pytest.raises(IdxError, match="unknown IDX type code 0x07"):
        parse_idx(bytes([0, 0, 7, 1, 0, 0, 0, 0]))


def test_corrupt_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    (tmp_path / "c.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(IdxError, match="looks gzipped but cannot be decompressed"):
        read_idx(tmp_path / "c.gz")
