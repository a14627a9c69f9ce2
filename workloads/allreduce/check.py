"""Correctness of a collective's result: deterministic inputs every rank can recompute, and #wrong.

Rank r holds ``pattern(r, i) = ((7 i + 13 r + 1) mod (2m + 1)) - m`` at element i: small integers,
different on every rank, so sum, max and min all have a unique exact answer that any rank can
compute without communicating. m is chosen so that a sum over all ranks stays an integer the
dtype represents exactly (float16: |x| <= 2048, bfloat16: <= 256, float32: <= 2^24); then a
correct collective matches to the last bit and the tolerance is 0. When the rank count is too
large for that (bfloat16 beyond 256 ranks) the tolerance is the rounding bound n * m * eps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Largest integer up to which every integer is exactly representable.
EXACT_INTEGER = {torch.float32: 2**24, torch.float16: 2**11, torch.bfloat16: 2**8}
MAX_AMPLITUDE = 8
CHUNK = 1 << 24  # elements compared at a time (bounds the float64 temporaries)


def amplitude(dtype: torch.dtype, ranks: int) -> int:
    """Return m, the largest |value| of the pattern, so that sums over `ranks` ranks stay exact."""
    return max(1, min(MAX_AMPLITUDE, EXACT_INTEGER[dtype] // max(1, ranks)))


def tolerance(dtype: torch.dtype, ranks: int) -> float:
    """Return the allowed |result - expected|: 0 while sums are exact, else the rounding bound."""
    m = amplitude(dtype, ranks)
    if m * ranks <= EXACT_INTEGER[dtype]:
        return 0.0
    return float(ranks * m * torch.finfo(dtype).eps)


def pattern(rank: int, start: int, stop: int, *, m: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Return the float64 values of rank `rank` at elements start..stop-1."""
    i = torch.arange(start, stop, dtype=torch.int64, device=device)
    return ((7 * i + 13 * rank + 1) % (2 * m + 1) - m).to(torch.float64)


def fill(buffer: torch.Tensor, rank: int, *, offset: int, m: int) -> None:
    """Write rank's pattern for elements offset..offset+len into a 1-D buffer, chunk by chunk."""
    n = buffer.numel()
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        buffer[start:stop] = pattern(rank, offset + start, offset + stop, m=m, device=buffer.device).to(
            buffer.dtype
        )


REDUCERS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "sum": torch.add,
    "max": torch.maximum,
    "min": torch.minimum,
}


def reduced(
    op: str, ranks: int, start: int, stop: int, *, m: int, device: torch.device | str
) -> torch.Tensor:
    """Return the exact reduction over all ranks of the pattern at elements start..stop-1 (float64)."""
    reduce = REDUCERS[op]
    out = pattern(0, start, stop, m=m, device=device)
    for r in range(1, ranks):
        out = reduce(out, pattern(r, start, stop, m=m, device=device))
    return out


def expected(
    kind: str, op: str, *, ranks: int, rank: int, part: int, m: int, device: torch.device | str = "cpu"
) -> Callable[[int, int], torch.Tensor]:
    """Return expected(start, stop): the exact result elements start..stop-1 of a collective on `rank`.

    Every rank's input is its pattern from element 0 (the full buffer for all-reduce, broadcast and
    reduce-scatter, the rank's part for all-gather); ``part`` is the elements per rank.
    """
    if kind == "all_reduce":
        return lambda s, e: reduced(op, ranks, s, e, m=m, device=device)
    if kind == "broadcast":
        return lambda s, e: pattern(0, s, e, m=m, device=device)
    if kind == "reduce_scatter":
        base = rank * part
        return lambda s, e: reduced(op, ranks, base + s, base + e, m=m, device=device)
    if kind != "all_gather":
        raise ValueError(f"unknown collective {kind!r}")

    def gathered(s: int, e: int) -> torch.Tensor:  # element k comes from rank k // part, index k % part
        k = torch.arange(s, e, dtype=torch.int64, device=device)
        src, j = k // part, k % part
        return ((7 * j + 13 * src + 1) % (2 * m + 1) - m).to(torch.float64)

    return gathered


def count_wrong(result: torch.Tensor, expected: torch.Tensor, tol: float) -> int:
    """Return how many elements differ from the expected values by more than tol (non-finite: wrong)."""
    got = result.to(torch.float64)
    bad = ~torch.isfinite(got) | ((got - expected).abs() > tol)
    return int(bad.sum().item())


def wrong_against(
    result: torch.Tensor,
    expected: Callable[[int, int], torch.Tensor],
    tol: float,
) -> int:
    """Count wrong elements of a 1-D result, comparing chunk by chunk with expected(start, stop)."""
    n = result.numel()
    return sum(
        count_wrong(result[s : min(n, s + CHUNK)], expected(s, min(n, s + CHUNK)), tol)
        for s in range(0, n, CHUNK)
    )
