"""The sweep over MPI (mpi4py) on numpy buffers: the torch path's layouts, timed loop, check and row.

Imported only for ``--backend mpi``: importing mpi4py initialises MPI. The ranks are MPI's
(``MPI.COMM_WORLD``, as ``mpirun`` started them), not the environment's torchrun variables.

Conventions are the torch path's (:mod:`workloads.allreduce.collective`), with MPI's calls:

* all_reduce: ``Allreduce(send, recv)`` out of place (a true out-of-place call: no copy), in place
  ``Allreduce(IN_PLACE, buf)``;
* reduce_scatter: ``Reduce_scatter_block(send, recv)``; in place ``Reduce_scatter_block(IN_PLACE, buf)``
  takes the full buffer as input and leaves the rank's reduced part in its *first* ``count / n``
  elements (MPI's definition; NCCL's in-place result sits at the rank's offset instead);
* all_gather: ``Allgather(send, recv)``; in place ``Allgather(IN_PLACE, buf)`` takes the rank's part
  from its own slot of the full buffer (as NCCL does);
* broadcast: ``Bcast(buf)`` from rank 0; MPI has no out-of-place broadcast, so out of place the root
  first copies its send buffer into the receive buffer (as the torch path does).

Every call is MPI's blocking form. ``--blocking false`` (nccl-tests' queued launches) has no MPI
equivalent: several non-blocking collectives pending on the same receive buffer is erroneous in
MPI, so the MPI sweep always waits for each collective before starting the next.

float16: MPI's standard has no 16-bit float; where the MPI library offers one (mpi4py's 'e'
type code) it is used with the predefined operations, otherwise (Open MPI 4) the elements travel as
a 2-byte contiguous type and the reduction is a user-defined operation that adds (or takes the
max/min) in numpy's float16: each partial result is rounded to float16, exactly as a native
half-precision reduction would be.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from mpi4py import MPI

from workloads.allreduce import bandwidth, check
from workloads.allreduce.collective import DTYPES, Measurement, Row, element_count, layout
from workloads.allreduce.spec import MPI_DTYPES, no_mpi_dtype

NUMPY_DTYPES: dict[str, type[np.floating[Any]]] = {"float32": np.float32, "float16": np.float16}
OPS = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
NUMPY_REDUCERS: dict[str, np.ufunc] = {"sum": np.add, "max": np.maximum, "min": np.minimum}
assert set(NUMPY_DTYPES) == set(MPI_DTYPES)


def _native_type(dtype: np.dtype[Any]) -> MPI.Datatype | None:
    """Return the MPI library's predefined datatype for a numpy dtype, or None when it has none."""
    candidate = MPI.Datatype.fromcode(dtype.char)
    try:
        candidate.Get_size()  # mpi4py maps a type the library lacks to an invalid handle
    except MPI.Exception:
        return None
    return candidate


def _user_op(reduce: np.ufunc, dtype: np.dtype[Any]) -> MPI.Op:
    """Return a commutative MPI operation applying a numpy reduction elementwise in `dtype`."""

    def apply(inbuf: Any, inoutbuf: Any, _datatype: MPI.Datatype) -> None:
        into = np.frombuffer(inoutbuf, dtype=dtype)
        reduce(into, np.frombuffer(inbuf, dtype=dtype), out=into)

    return MPI.Op.Create(apply, commute=True)


class MpiCollective:
    """One collective over an MPI communicator, on numpy buffers (the same API as the torch path's)."""

    def __init__(self, kind: str, *, dtype: str, op: str, comm: MPI.Comm | None = None) -> None:
        if dtype not in NUMPY_DTYPES:
            raise ValueError(no_mpi_dtype(dtype))
        self.kind = kind
        self.dtype_name = dtype
        self.op = op
        self.dtype = np.dtype(NUMPY_DTYPES[dtype])
        self.torch_dtype = DTYPES[dtype]  # the check's amplitude and tolerance rule keys on it
        self.itemsize = self.dtype.itemsize
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.ranks = self.comm.Get_size()
        self.root = 0 if kind == "broadcast" else -1
        native = _native_type(self.dtype)
        self._owned: list[Any] = []  # user-defined types and operations, freed by close()
        if native is not None:
            self.mpi_type = native
            self.mpi_op = OPS[op]
            self.reduction = "MPI's predefined operation"
        else:
            self.mpi_type = MPI.BYTE.Create_contiguous(self.itemsize).Commit()
            self.mpi_op = _user_op(NUMPY_REDUCERS[op], self.dtype)
            self._owned += [self.mpi_type, self.mpi_op]
            self.reduction = (
                f"this MPI library has no {dtype} type: {self.itemsize}-byte elements, "
                f"reduced by a user-defined operation in numpy {dtype}"
            )

    def close(self) -> None:
        """Free the user-defined MPI objects this collective made."""
        for obj in self._owned:
            obj.Free()
        self._owned.clear()

    # --- buffers --------------------------------------------------------------------------
    def buffers(self, count: int, place: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (send, recv) for a message of `count` total elements in a layout (views share memory)."""
        return layout(
            self.kind, count, self.ranks, self.rank, place=place, new=partial(np.empty, dtype=self.dtype),
            scattered_at="first",
        )  # fmt: skip

    def bind(self, send: np.ndarray, recv: np.ndarray, place: str) -> Callable[[], Any]:
        """Return a no-argument call that runs the collective on these buffers (decided once, outside the loop)."""
        c, t, op = self.comm, self.mpi_type, self.mpi_op
        in_place = place == "in_place"
        if self.kind == "all_reduce":
            if in_place:
                return partial(c.Allreduce, MPI.IN_PLACE, [recv, t], op=op)
            return partial(c.Allreduce, [send, t], [recv, t], op=op)
        if self.kind == "reduce_scatter":
            if in_place:  # the input is the full buffer; the result lands in its first count/n elements
                return partial(c.Reduce_scatter_block, MPI.IN_PLACE, [send, t], op=op)
            return partial(c.Reduce_scatter_block, [send, t], [recv, t], op=op)
        if self.kind == "all_gather":
            if in_place:  # the rank's part is read from its own slot of the receive buffer
                return partial(c.Allgather, MPI.IN_PLACE, [recv, t])
            return partial(c.Allgather, [send, t], [recv, t])
        if self.kind == "broadcast":
            bcast = partial(c.Bcast, [recv, t], root=0)
            if in_place or self.rank != 0:
                return bcast

            def broadcast_out_of_place() -> None:
                np.copyto(recv, send)
                bcast()

            return broadcast_out_of_place
        raise ValueError(f"unknown collective {self.kind!r}")

    # --- timing ---------------------------------------------------------------------------
    def run(self, send: np.ndarray, recv: np.ndarray, place: str, iters: int) -> float:
        """Run `iters` collectives back to back; return the seconds of one (this rank's clock)."""
        call = self.bind(send, recv, place)
        self.comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        return (time.perf_counter() - t0) / iters

    def mean_over_ranks(self, value: float) -> float:
        """Return the mean of a float over the ranks (nccl-tests' default -a 1)."""
        return float(self.comm.allreduce(value, op=MPI.SUM)) / self.ranks

    # --- correctness ----------------------------------------------------------------------
    def wrong(self, count: int, place: str) -> int:
        """Run one collective on fresh pattern inputs; return the wrong elements summed over ranks."""
        send, recv = self.buffers(count, place)
        m = check.amplitude(self.torch_dtype, self.ranks)
        tol = check.tolerance(self.torch_dtype, self.ranks)
        part = count // self.ranks
        if send is not recv:
            recv.fill(np.nan)  # a receive buffer left untouched counts as wrong
        check.fill(torch.from_numpy(send), self.rank, offset=0, m=m)
        self.bind(send, recv, place)()
        expected = check.expected(self.kind, self.op, ranks=self.ranks, rank=self.rank, part=part, m=m)
        wrong = check.wrong_against(torch.from_numpy(recv), expected, tol)
        return int(self.comm.allreduce(wrong, op=MPI.SUM))

    # --- one row --------------------------------------------------------------------------
    def measure(
        self, size: int, *, places: tuple[str, ...], warmup: int, iters: int, blocking: bool, verify: bool
    ) -> Row:
        """Time (and check) one message size in each layout; return its row (`blocking`: always, see above)."""
        count = element_count(self.kind, size, self.itemsize, self.ranks)
        actual = count * self.itemsize
        row = Row(size=actual, count=count, dtype=self.dtype_name, op=self.op, root=self.root)
        factor = bandwidth.bus_factor(self.kind, self.ranks)
        m = check.amplitude(self.torch_dtype, self.ranks)
        for place in places:
            send, recv = self.buffers(count, place)
            check.fill(torch.from_numpy(send), self.rank, offset=0, m=m)
            if warmup:
                self.run(send, recv, place, warmup)
            seconds = self.mean_over_ranks(self.run(send, recv, place, iters))
            algbw = bandwidth.algbw_gbps(actual, seconds)
            del send, recv
            wrong = self.wrong(count, place) if verify else None
            row.results[place] = Measurement(seconds, algbw, algbw * factor, wrong)
        return row

    # --- who is where ---------------------------------------------------------------------
    def device_lines(self, describe: Callable[[int, int, str], str]) -> list[str] | None:
        """Gather one `describe(rank, pid, host)` line per rank on rank 0 (None on the others)."""
        lines = self.comm.gather(describe(self.rank, os.getpid(), socket.gethostname()), root=0)
        return list(lines) if lines is not None else None

    def local_layout(self) -> tuple[int, int]:
        """Return (rank on this node, ranks on this node) from the ranks sharing this node's memory."""
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            return node.Get_rank(), node.Get_size()
        finally:
            node.Free()
