"""The sweep as nccl-tests prints it, and as CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from workloads.allreduce.collective import NCCL_TYPE_NAMES, PLACES, Row

HEADER = (
    "#                                                              out-of-place                       in-place          \n"
    "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n"
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       "
)
CSV_FIELDS = (
    "size_bytes",
    "count",
    "dtype",
    "op",
    "root",
    "place",
    "time_us",
    "algbw_gbps",
    "busbw_gbps",
    "wrong",
)


def device_line(rank: int, pid: int, host: str, device: str, name: str) -> str:
    """Return one rank's line of nccl-tests' '# Using devices' block."""
    return f"#  Rank {rank:3d} Pid {pid:7d} on {host:>12s} device {device} {name}"


def devices_banner(lines: Sequence[str]) -> str:
    """Return the '# Using devices' block of every rank's line, in rank order."""
    return "#\n# Using devices\n" + "\n".join(lines) + "\n#"


def time_text(us: float) -> str:
    """Format microseconds the way nccl-tests does (fewer decimals for longer times)."""
    if us >= 10000:
        return f"{us:7.0f}"
    if us >= 100:
        return f"{us:7.1f}"
    return f"{us:7.2f}"


def line(row: Row) -> str:
    """Return one row of the table (a layout that was not run prints as blanks)."""
    op = "none" if row.root >= 0 else row.op  # nccl-tests prints no reduction for broadcast
    text = f"{row.size:12d}  {row.count:12d}  {NCCL_TYPE_NAMES[row.dtype]:>8s}  {op:>6s}  {row.root:6d}"
    for place in PLACES:
        m = row.results.get(place)
        if m is None:
            text += f"  {'':>7s}  {'':>6s}  {'':>6s}  {'':>5s}"
            continue
        wrong = "N/A" if m.wrong is None else str(m.wrong)
        text += f"  {time_text(m.time_s * 1e6)}  {m.algbw:6.2f}  {m.busbw:6.2f}  {wrong:>5s}"
    return text


def average_busbw(rows: Sequence[Row]) -> float:
    """Return the mean busbw over every row and layout measured (nccl-tests' 'Avg bus bandwidth')."""
    values = [m.busbw for row in rows for m in row.results.values()]
    return sum(values) / len(values) if values else 0.0


def footer(rows: Sequence[Row]) -> str:
    """Return the closing lines: out-of-bounds count and the average bus bandwidth."""
    wrong = [m.wrong for row in rows for m in row.results.values() if m.wrong is not None]
    status = "N/A" if not wrong else ("0 OK" if sum(wrong) == 0 else f"{sum(wrong)} FAILED")
    return f"# Out of bounds values : {status}\n# Avg bus bandwidth    : {average_busbw(rows):.4g}"


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """Write one CSV line per row and layout."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for row in rows:
            for place, m in row.results.items():
                writer.writerow(
                    [row.size, row.count, row.dtype, row.op, row.root, place, f"{m.time_s * 1e6:.3f}",
                     f"{m.algbw:.6g}", f"{m.busbw:.6g}", "" if m.wrong is None else m.wrong]
                )  # fmt: skip
