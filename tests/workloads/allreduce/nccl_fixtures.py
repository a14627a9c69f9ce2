"""The nccl-tests output fixtures under data/: their text without the '##' provenance note."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ALL_REDUCE_P5 = "all_reduce_perf_2x8_p5.txt"
REDUCE_SCATTER_FAILED = "reduce_scatter_perf_1x8_half_failed.txt"
BROADCAST_NO_CHECK = "broadcast_perf_2x1_nocheck.txt"


def output(name: str) -> str:
    """Return what the binary printed: the fixture less its leading '## ' note lines."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("## "))
