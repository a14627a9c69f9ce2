"""The mpi workload's demo program: an allreduce every rank can check (sum of 1..N over N ranks)."""

from __future__ import annotations

import socket
import sys


def main() -> int:
    """Sum rank+1 over the world, check it against N(N+1)/2 (Gauss), report from rank 0."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    total = comm.allreduce(comm.rank + 1, op=MPI.SUM)
    hosts = sorted(set(comm.gather(socket.gethostname(), root=0) or []))
    expected = comm.size * (comm.size + 1) // 2
    if comm.rank == 0:
        print(
            f"mpi demo: {comm.size} ranks on {len(hosts)} host(s), allreduce sum = {total} (expected {expected})"
        )
    return 0 if total == expected else 1


if __name__ == "__main__":
    sys.exit(main())
