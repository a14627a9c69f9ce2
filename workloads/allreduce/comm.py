"""Join the job's process group: the device of this rank and the backend that suits it."""

from __future__ import annotations

import torch
import torch.distributed as tdist

from workloads.common import dist
from workloads.common.dist import Rendezvous


class SetupError(RuntimeError):
    """The requested device or backend is not available here (a user-facing message)."""


def pick_device(choice: str, rdzv: Rendezvous) -> torch.device:
    """Return cuda:LOCAL_RANK when a GPU is asked for (or 'auto' and present), else cpu."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SetupError(
                "--device cuda was given but torch sees no CUDA device; use --device cpu or auto"
            )
        return torch.device("cuda", rdzv.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def pick_backend(choice: str, device: torch.device) -> str:
    """Return the torch.distributed backend: nccl for GPUs, gloo for CPUs unless told otherwise.

    ``mpi`` is not a torch.distributed backend here: the sweep runs it through mpi4py
    (:mod:`workloads.allreduce.mpi_collective`), since the pip torch build has no MPI backend.
    """
    if choice == "mpi":
        raise ValueError(
            "backend mpi runs through mpi4py (workloads.allreduce.mpi_collective), not torch.distributed"
        )
    backend = choice if choice != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise SetupError("--backend nccl needs GPUs (--device cuda); on CPUs use gloo or mpi")
    if backend == "nccl" and not tdist.is_nccl_available():
        raise SetupError("this torch build has no NCCL; install a CUDA build of torch or use --backend gloo")
    return backend


def init(rdzv: Rendezvous, *, backend: str, device: torch.device, timeout_s: float) -> None:
    """Initialise the default process group (also for a single rank, so every code path is the same)."""
    if tdist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Naming the rank's GPU binds NCCL's communicator to it up front (no guessing from the rank).
    device_id = device if device.type == "cuda" else None
    dist.init_process_group(rdzv, backend=backend, timeout_s=timeout_s, device_id=device_id)


def close() -> None:
    """Tear the process group down."""
    if tdist.is_initialized():
        tdist.destroy_process_group()
