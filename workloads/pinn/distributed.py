"""The collectives the trainer needs, over torch.distributed (gloo on CPU, NCCL on GPU) or none at all."""

from __future__ import annotations

import torch
import torch.distributed as tdist

from workloads.common import dist
from workloads.common.dist import Rendezvous


def pick_device(choice: str, rdzv: Rendezvous) -> torch.device:
    """Return the device for this rank: cuda:LOCAL_RANK when asked for (or 'auto' and present), else cpu."""
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError(
                "--device cuda was given but torch sees no CUDA device; use --device cpu or auto"
            )
        return torch.device("cuda", rdzv.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


class Comm:
    """Sum, any-of and gather across the ranks of a job; every call is a no-op for a single process."""

    def __init__(self, rdzv: Rendezvous, device: torch.device, *, timeout_s: float) -> None:
        self.rank = rdzv.rank
        self.world_size = rdzv.world_size
        self.device = device
        self._owned = False
        if self.world_size > 1 and not tdist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(
                rdzv, backend="nccl" if device.type == "cuda" else "gloo", timeout_s=timeout_s
            )
            self._owned = True

    @property
    def backend(self) -> str:
        """Return the torch.distributed backend in use ('none' for one process)."""
        return str(tdist.get_backend()) if self.world_size > 1 else "none"

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over all ranks in place and return it."""
        if self.world_size > 1:
            tdist.all_reduce(tensor, op=tdist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """Return True on every rank if flag is True on any rank."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        """Return the concatenation, in rank order, of every rank's tensor (all of the same shape)."""
        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        tdist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.world_size > 1:
            tdist.barrier()

    def close(self) -> None:
        """Tear down the process group this object created."""
        if self._owned and tdist.is_initialized():
            tdist.destroy_process_group()
            self._owned = False

    def shard(self, points: torch.Tensor) -> torch.Tensor:
        """Return this rank's share of the rows of points (every world_size-th row from rank)."""
        return points[self.rank :: self.world_size]
