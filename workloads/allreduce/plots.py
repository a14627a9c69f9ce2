"""Plots a person would rather look at than read: busbw against size, efficiency against workers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from workloads.allreduce.collective import PLACES, Row
from workloads.allreduce.expectations import Reference
from workloads.allreduce.scaling import ScalingRow

LABELS = {"out_of_place": "out-of-place", "in_place": "in-place"}


def busbw_plot(
    path: Path,
    rows: Sequence[Row],
    *,
    title: str,
    memcpy_gbps: float | None = None,
    reference: Reference | None = None,
) -> None:
    """Plot busbw against message size for each layout (and the bounds it is compared with).

    With one rank the bus factor 2(n-1)/n is 0 and busbw says nothing, so the plot shows algbw
    (the local copy speed) instead and says so on its axis.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    metric = "busbw" if any(res.busbw > 0 for r in rows for res in r.results.values()) else "algbw"
    for place in PLACES:
        pts = [(r.size, getattr(r.results[place], metric)) for r in rows if place in r.results]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=f"{metric} {LABELS[place]}")
    if reference is not None:
        ax.plot(
            [r[0] for r in reference.rows],
            [r[1] for r in reference.rows],
            "k--",
            lw=1,
            label=f"published {reference.name} (out-of-place)",
        )
    if memcpy_gbps:
        ax.axhline(memcpy_gbps, color="grey", ls=":", label=f"memcpy {memcpy_gbps:.1f} GB/s (this machine)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("message size (bytes)")
    ax.set_ylabel("bus bandwidth (GB/s)" if metric == "busbw" else "algorithm bandwidth (GB/s), one rank")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def scaling_plot(path: Path, rows: Sequence[ScalingRow], *, title: str) -> None:
    """Plot parallel efficiency and throughput against workers, one line per variant."""
    fig, (eff, thr) = plt.subplots(1, 2, figsize=(10, 4.2))
    for variant in dict.fromkeys(r.variant for r in rows):
        pts = sorted((r.workers, r.efficiency, r.samples_per_s) for r in rows if r.variant == variant)
        workers = [p[0] for p in pts]
        eff.plot(workers, [100 * p[1] for p in pts], marker="o", label=variant)
        thr.plot(workers, [p[2] for p in pts], marker="o", label=variant)
    eff.axhline(100, color="grey", ls=":", lw=1)
    eff.set_xlabel("workers")
    eff.set_ylabel("parallel efficiency e = t / (t0 n)  (%)")
    thr.set_xlabel("workers")
    thr.set_ylabel("samples/s")
    for ax in (eff, thr):
        ax.set_xscale("log", base=2)
        ax.grid(True, alpha=0.3)
    eff.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
