"""The timed collective: buffers for each layout, the timed loop, the correctness run, one row per size.

Conventions follow NVIDIA nccl-tests so the numbers compare with its output:

* ``out_of_place``: separate send and receive buffers; ``in_place``: one buffer (for
  reduce-scatter the output is the rank's slice of the input, for all-gather the input is the
  rank's slice of the output, as NCCL defines in-place for them).
* Sizes are total bytes: for reduce-scatter and all-gather the size of the full buffer (n times
  a rank's part), rounded down to a multiple of n elements.
* Time is one collective's time, averaged over the timed iterations and then over the ranks.
  Non-blocking (nccl-tests' default): all iterations are launched, then waited for together;
  blocking: each is waited for (and the GPU synchronized) before the next starts.
* The correctness run is separate and untimed: fresh deterministic inputs, one collective,
  every element compared with the exact answer (#wrong).

torch.distributed has no out-of-place all-reduce or broadcast: out-of-place for those copies the
send buffer into the receive buffer and reduces in place, so the out-of-place time includes that
local copy (the difference from the in-place column is its cost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import torch
import torch.distributed as tdist

from workloads.allreduce import bandwidth, check

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The names nccl-tests prints in its type column.
NCCL_TYPE_NAMES = {"float32": "float", "float16": "half", "bfloat16": "bfloat16"}
OPS = {"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX, "min": tdist.ReduceOp.MIN}
PLACES = ("out_of_place", "in_place")
# torch 2.13 renamed the single-tensor forms (the old names warn); older torch has only the old ones.
_REDUCE_SCATTER = getattr(tdist, "reduce_scatter_single", None) or tdist.reduce_scatter_tensor
_ALL_GATHER = getattr(tdist, "all_gather_single", None) or tdist.all_gather_into_tensor


@dataclass
class Measurement:
    """One layout of one row: time of one collective, bandwidths, wrong elements (None: not checked)."""

    time_s: float
    algbw: float
    busbw: float
    wrong: int | None


@dataclass
class Row:
    """One message size of the sweep."""

    size: int
    count: int
    dtype: str
    op: str
    root: int
    results: dict[str, Measurement] = field(default_factory=dict)


def sizes(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """Return the message sizes min, min*f, min*f^2, ... <= max (nccl-tests -b -e -f)."""
    out, size = [], min_bytes
    while size <= max_bytes:
        out.append(size)
        size *= factor
    return out


def layout(
    kind: str, count: int, ranks: int, rank: int, *, place: str, new: Callable[[int], Any], scattered_at: str
) -> tuple[Any, Any]:
    """Return (send, recv) of a collective on `count` total elements, out of place or in place (views share memory).

    In place, reduce-scatter's result is a slice of the send buffer: this rank's own part for NCCL and
    gloo (``scattered_at="own"``), the first part for MPI's ``Reduce_scatter_block`` (``"first"``).
    """
    part = count // ranks
    lo, hi = rank * part, (rank + 1) * part
    if kind in ("all_reduce", "broadcast"):
        if place == "in_place":
            buf = new(count)
            return buf, buf
        return new(count), new(count)
    if kind == "reduce_scatter":
        send = new(count)
        mine = send[lo:hi] if scattered_at == "own" else send[:part]
        return (send, mine) if place == "in_place" else (send, new(part))
    if kind == "all_gather":
        recv = new(count)
        return (recv[lo:hi], recv) if place == "in_place" else (new(part), recv)
    raise ValueError(f"unknown collective {kind!r}")


def element_count(collective: str, size_bytes: int, element_size: int, ranks: int) -> int:
    """Return the total elements of a message: size / element size, a multiple of ranks for rs/ag (>= 1 unit)."""
    count = size_bytes // element_size
    if collective in ("reduce_scatter", "all_gather"):
        return max(1, count // ranks) * ranks
    return max(1, count)


class Sweepable(Protocol):
    """What a sweep needs of a backend's collective: its kind, ranks, element size and one timed row."""

    kind: str
    ranks: int
    itemsize: int

    def measure(
        self, size: int, *, places: tuple[str, ...], warmup: int, iters: int, blocking: bool, verify: bool
    ) -> Row:
        """Time (and check) one message size in each layout; return its row."""
        ...


class Collective:
    """One collective on one process group, with buffers for each layout and a launcher."""

    def __init__(
        self,
        kind: str,
        *,
        dtype: str,
        op: str,
        device: torch.device,
        group: Any = None,
    ) -> None:
        self.kind = kind
        self.dtype_name = dtype
        self.dtype = DTYPES[dtype]
        self.itemsize = self.dtype.itemsize
        self.op = op
        self.device = device
        self.group = group
        self.rank = tdist.get_rank(group)
        self.ranks = tdist.get_world_size(group)
        self.root = 0 if kind == "broadcast" else -1

    # --- buffers --------------------------------------------------------------------------
    def buffers(self, count: int, place: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (send, recv) for a message of `count` total elements in a layout."""
        return layout(
            self.kind, count, self.ranks, self.rank, place=place,
            new=lambda n: torch.empty(n, dtype=self.dtype, device=self.device), scattered_at="own",
        )  # fmt: skip

    def bind(self, send: torch.Tensor, recv: torch.Tensor, *, async_op: bool) -> Callable[[], Any]:
        """Return a no-argument call that starts the collective on these buffers.

        Everything that does not change from one call to the next (the op, the group, whether
        the layout needs a copy) is decided here, once, so the timed loop pays for nothing but
        the collective itself (and, out of place, the copy into the receive buffer).
        """
        g = self.group
        needs_copy = send.data_ptr() != recv.data_ptr()
        if self.kind == "all_reduce":
            op = OPS[self.op]
            if not needs_copy:
                return partial(tdist.all_reduce, recv, op=op, group=g, async_op=async_op)

            def all_reduce_out_of_place() -> Any:
                recv.copy_(send)
                return tdist.all_reduce(recv, op=op, group=g, async_op=async_op)

            return all_reduce_out_of_place
        return partial(self.launch, send, recv, async_op=async_op)

    def launch(self, send: torch.Tensor, recv: torch.Tensor, *, async_op: bool) -> Any:
        """Start the collective on the buffers; return its work handle (None when it ran synchronously)."""
        g = self.group
        if self.kind == "all_reduce":
            if send.data_ptr() != recv.data_ptr():
                recv.copy_(send)
            return tdist.all_reduce(recv, op=OPS[self.op], group=g, async_op=async_op)
        if self.kind == "broadcast":
            if send.data_ptr() != recv.data_ptr() and self.rank == 0:
                recv.copy_(send)
            return tdist.broadcast(
                recv, src=tdist.get_global_rank(g, 0) if g else 0, group=g, async_op=async_op
            )
        if self.kind == "reduce_scatter":
            return _REDUCE_SCATTER(recv, send, op=OPS[self.op], group=g, async_op=async_op)
        return _ALL_GATHER(recv, send, group=g, async_op=async_op)

    # --- timing ---------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, send: torch.Tensor, recv: torch.Tensor, iters: int, *, blocking: bool) -> float:
        """Run `iters` collectives back to back; return the seconds of one (this rank's clock)."""
        call = self.bind(send, recv, async_op=not blocking)
        tdist.barrier(group=self.group)
        self._sync()
        t0 = time.perf_counter()
        if blocking:  # the synchronous call (it returns once done on gloo, once enqueued on NCCL)
            if self.device.type == "cuda":
                sync = partial(torch.cuda.synchronize, self.device)
                for _ in range(iters):
                    call()
                    sync()
            else:
                for _ in range(iters):
                    call()
        else:
            works = [call() for _ in range(iters)]
            for work in works:
                work.wait()
            self._sync()
        return (time.perf_counter() - t0) / iters

    def mean_over_ranks(self, value: float) -> float:
        """Return the mean of a float over the ranks (nccl-tests' default -a 1)."""
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        tdist.all_reduce(t, group=self.group)
        return float(t.item()) / self.ranks

    # --- correctness ----------------------------------------------------------------------
    def wrong(self, count: int, place: str) -> int:
        """Run one collective on fresh pattern inputs; return the wrong elements summed over ranks."""
        send, recv = self.buffers(count, place)
        m = check.amplitude(self.dtype, self.ranks)
        tol = check.tolerance(self.dtype, self.ranks)
        part = count // self.ranks
        if send.data_ptr() != recv.data_ptr() or send.numel() != recv.numel():
            recv.fill_(float("nan"))  # a receive buffer left untouched counts as wrong
        # Every layout's input is the rank's pattern from element 0: the full buffer (all-reduce,
        # broadcast, reduce-scatter) or the rank's part (all-gather).
        check.fill(send, self.rank, offset=0, m=m)
        work = self.launch(send, recv, async_op=True)
        work.wait()
        self._sync()
        expected = check.expected(
            self.kind, self.op, ranks=self.ranks, rank=self.rank, part=part, m=m, device=self.device
        )
        wrong = check.wrong_against(recv, expected, tol)
        t = torch.tensor([wrong], dtype=torch.int64, device=self.device)
        tdist.all_reduce(t, group=self.group)
        return int(t.item())

    # --- one row --------------------------------------------------------------------------
    def measure(
        self, size: int, *, places: tuple[str, ...], warmup: int, iters: int, blocking: bool, verify: bool
    ) -> Row:
        """Time (and check) one message size in each layout; return its row."""
        count = element_count(self.kind, size, self.dtype.itemsize, self.ranks)
        actual = count * self.dtype.itemsize
        row = Row(size=actual, count=count, dtype=self.dtype_name, op=self.op, root=self.root)
        factor = bandwidth.bus_factor(self.kind, self.ranks)
        for place in places:
            send, recv = self.buffers(count, place)
            m = check.amplitude(self.dtype, self.ranks)
            check.fill(send, self.rank, offset=0, m=m)
            if warmup:
                self.run(send, recv, warmup, blocking=blocking)
            seconds = self.mean_over_ranks(self.run(send, recv, iters, blocking=blocking))
            algbw = bandwidth.algbw_gbps(actual, seconds)
            del send, recv
            wrong = self.wrong(count, place) if verify else None
            row.results[place] = Measurement(seconds, algbw, algbw * factor, wrong)
        return row


def sweep(
    coll: Sweepable,
    message_sizes: list[int],
    *,
    places: tuple[str, ...],
    warmup: int,
    iters: int,
    blocking: bool,
    verify: bool,
) -> Iterator[Row]:
    """Yield one measured row per distinct message size."""
    seen: set[int] = set()
    for size in message_sizes:
        count = element_count(coll.kind, size, coll.itemsize, coll.ranks)
        if count in seen:
            continue
        seen.add(count)
        yield coll.measure(size, places=places, warmup=warmup, iters=iters, blocking=blocking, verify=verify)
