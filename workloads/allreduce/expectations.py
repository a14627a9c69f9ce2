"""Published nccl-tests all_reduce_perf figures per instance type, and the check against them.

Every number here is copied from a public nccl-tests run, with its source; none is estimated.
A type without a published figure is left out rather than guessed.

Source of both tables: aws-samples/awsome-distributed-training,
``micro-benchmarks/nccl-tests/README.md`` ("Results" section, commit 0162aacd5da0), all_reduce_perf,
float32 sum, 2 nodes x 8 GPUs = 16 ranks, NCCL over EFA with aws-ofi-nccl. Columns kept: message
size in bytes, out-of-place busbw and in-place busbw in GB/s (10^9 bytes/s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SOURCE = (
    "aws-samples/awsome-distributed-training, micro-benchmarks/nccl-tests/README.md "
    "(commit 0162aacd5da0), https://github.com/aws-samples/awsome-distributed-training"
)


@dataclass(frozen=True)
class Reference:
    """A published all_reduce_perf sweep: (bytes, out-of-place busbw, in-place busbw) rows."""

    name: str
    instance_type: str
    nodes: int
    ranks: int
    rows: tuple[tuple[int, float, float], ...]
    source: str = SOURCE

    @property
    def peak_busbw(self) -> float:
        """Return the largest out-of-place busbw of the sweep (GB/s)."""
        return max(row[1] for row in self.rows)

    def busbw_at(self, size: int) -> float | None:
        """Return the out-of-place busbw at a size, log-linear between rows (None outside the sweep)."""
        sizes = [row[0] for row in self.rows]
        if size < sizes[0] or size > sizes[-1]:
            return None
        for (s0, b0, _), (s1, b1, _) in zip(self.rows, self.rows[1:], strict=False):
            if s0 <= size <= s1:
                w = math.log(size / s0) / math.log(s1 / s0)
                return b0 + w * (b1 - b0)
        return self.rows[-1][1]


REFERENCES: dict[str, Reference] = {
    "2xp4de.24xlarge": Reference(
        name="2xp4de.24xlarge",
        instance_type="p4de.24xlarge",
        nodes=2,
        ranks=16,
        rows=(
            (1048576, 6.35, 6.40),
            (2097152, 9.09, 9.90),
            (4194304, 14.73, 14.83),
            (8388608, 20.62, 20.68),
            (16777216, 26.39, 26.42),
            (33554432, 40.85, 40.83),
            (67108864, 47.58, 47.53),
            (134217728, 64.31, 63.99),
            (268435456, 69.89, 69.64),
            (536870912, 74.28, 74.30),
            (1073741824, 76.79, 76.86),
            (2147483648, 78.33, 78.33),
        ),
    ),
    "2xp5.48xlarge": Reference(
        name="2xp5.48xlarge",
        instance_type="p5.48xlarge",
        nodes=2,
        ranks=16,
        rows=(
            (1048576, 15.95, 16.21),
            (2097152, 26.70, 26.72),
            (4194304, 46.64, 46.91),
            (8388608, 76.80, 78.20),
            (16777216, 105.52, 105.45),
            (33554432, 143.09, 150.62),
            (67108864, 209.19, 208.26),
            (134217728, 289.16, 287.01),
            (268435456, 342.81, 346.46),
            (536870912, 393.34, 394.00),
            (1073741824, 436.95, 440.96),
            (2147483648, 443.72, 442.06),
            (4294967296, 465.87, 464.33),
            (8589934592, 479.28, 478.95),
            (17179869184, 487.09, 487.26),
        ),
    ),
}

# What usually makes an EFA cluster slow, most frequent first (each line: cause, how to see it, fix).
USUAL_CAUSES = (
    "EFA security group without a self-referencing OUTBOUND rule: EFA needs all traffic in and out to the "
    "same group; without egress NCCL falls back to TCP sockets or hangs at init. Check the group's rules; "
    "HpcStack's EFA security group allows both.",
    "EFA not enabled in the container: /dev/infiniband/uverbs* not mapped into it, or libfabric/EFA "
    "libraries missing from the image. With NCCL_DEBUG=INFO the log says 'NET/Socket' instead of "
    "'NET/OFI Selected Provider is efa'.",
    "a wrong or missing aws-ofi-nccl plugin (libnccl-net.so not on LD_LIBRARY_PATH, or built against "
    "another NCCL/libfabric): NCCL reports 'NET/Plugin: Could not find' and uses sockets. Use the plugin "
    "version matched to the NCCL in the image.",
    "GPUDirect RDMA off on p4d/p4de/p5 (FI_EFA_USE_DEVICE_RDMA unset or 0): traffic bounces through host "
    "memory, typically half the bandwidth.",
    "nodes outside one cluster placement group, or fewer EFA interfaces attached than the type offers "
    "(p4d/p4de: 4, p5: 32).",
)


@dataclass(frozen=True)
class Verdict:
    """The result of comparing a sweep with a reference."""

    reference: str
    size: int
    measured_busbw: float
    reference_busbw: float
    fraction: float
    threshold: float
    ok: bool
    notes: tuple[str, ...]

    def message(self) -> str:
        """Return the human verdict: OK, or SLOW with the usual causes."""
        head = (
            f"expect {self.reference}: busbw {self.measured_busbw:.2f} GB/s at {self.size} B is "
            f"{100 * self.fraction:.1f}% of the published {self.reference_busbw:.2f} GB/s "
            f"(threshold {100 * self.threshold:.0f}%)"
        )
        lines = [head + (": OK" if self.ok else ": SLOW")]
        lines += [f"  note: {n}" for n in self.notes]
        if not self.ok:
            lines.append("  usual causes:")
            lines += [f"  - {c}" for c in USUAL_CAUSES]
        return "\n".join(lines)


def compare(
    reference: Reference,
    sizes: Sequence[int],
    busbw: Sequence[float],
    *,
    ranks: int,
    fraction: float,
) -> Verdict | None:
    """Compare measured out-of-place busbw with the reference at the largest size both sweeps cover.

    Returns None when no measured size falls inside the reference's sweep.
    """
    common = [(s, b) for s, b in zip(sizes, busbw, strict=True) if reference.busbw_at(s) is not None]
    if not common:
        return None
    size, measured = max(common)
    ref = reference.busbw_at(size)
    assert ref is not None
    notes = []
    if ranks != reference.ranks:
        notes.append(
            f"the reference ran {reference.ranks} ranks on {reference.nodes} nodes, this run {ranks}: "
            "busbw compares across rank counts only roughly"
        )
    if size < 64 * 1024 * 1024:
        notes.append(
            f"largest compared size {size} B is below 64 MiB, where latency still dominates; "
            "sweep to -e 1G or more for a bandwidth verdict"
        )
    got = measured / ref
    return Verdict(
        reference=reference.name,
        size=size,
        measured_busbw=measured,
        reference_busbw=ref,
        fraction=got,
        threshold=fraction,
        ok=got >= fraction,
        notes=tuple(notes),
    )
