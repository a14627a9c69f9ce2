"""Bandwidth arithmetic of nccl-tests (algbw, busbw) and this machine's memory-copy bandwidth.

algbw = S / t, with S the message size in bytes and t the time of one collective. busbw scales
algbw by how much data each rank must send over its slowest link for the collective, so that
busbw is comparable with the hardware's peak link bandwidth whatever the rank count
(NVIDIA nccl-tests, doc/PERFORMANCE.md):

* all_reduce: 2(n-1)/n (a reduce-scatter then an all-gather)
* reduce_scatter, all_gather: (n-1)/n (S is the total size: n times the per-rank part)
* broadcast: 1
"""

from __future__ import annotations

import time

import torch

GB = 1e9  # nccl-tests reports GB/s with GB = 10^9 bytes


def bus_factor(collective: str, ranks: int) -> float:
    """Return busbw / algbw for a collective over a number of ranks."""
    if ranks < 1:
        raise ValueError(f"ranks={ranks} must be >= 1")
    if collective == "all_reduce":
        return 2.0 * (ranks - 1) / ranks
    if collective in ("reduce_scatter", "all_gather"):
        return (ranks - 1) / ranks
    if collective == "broadcast":
        return 1.0
    raise ValueError(
        f"unknown collective {collective!r}; use all_reduce, reduce_scatter, all_gather or broadcast"
    )


def algbw_gbps(size_bytes: int, seconds: float) -> float:
    """Return the algorithm bandwidth in GB/s: size / time."""
    return size_bytes / seconds / GB


def busbw_gbps(collective: str, size_bytes: int, seconds: float, ranks: int) -> float:
    """Return the bus bandwidth in GB/s: algbw times the collective's bus factor."""
    return algbw_gbps(size_bytes, seconds) * bus_factor(collective, ranks)


def memcpy_gbps(*, size_bytes: int = 64 * 1024 * 1024, repeats: int = 10, device: str = "cpu") -> float:
    """Measure copy bandwidth (bytes copied per second, GB/s) of one buffer into another; best of repeats.

    Each byte copied is read once and written once, so memory traffic is twice this figure.
    """
    n = max(1, size_bytes // 4)
    src = torch.ones(n, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # first touch: page faults out of the timing
    best = float("inf")
    for _ in range(repeats):
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        dst.copy_(src)
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n * 4 / best / GB
