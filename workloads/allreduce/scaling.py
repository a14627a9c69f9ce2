"""Data-parallel training throughput at 1..n workers, per DDP variant, and parallel efficiency.

One job of n ranks measures every worker count k in 1, 2, 4, ..., n: the first k ranks train
together on a process group of their own while the others wait, so a single launch gives the
whole curve. k = 1 is plain single-process training (no DDP), the baseline t0 (measured again before each variant);
efficiency e = t / (t0 k) with t the samples/s of k workers.

Variants (all DDP over the k-rank group):

* ``plain``: DDP's default all-reduce, buckets of ``bucket_cap_mib``, overlapped with backward;
* ``fp16`` / ``bf16``: gradients cast to half precision for the all-reduce (DDP communication
  hooks ``fp16_compress_hook`` / ``bf16_compress_hook``): half the bytes on the wire;
* ``small_buckets`` (1 MiB) / ``large_buckets`` (100 MiB): the bucket size trades the number of
  all-reduce calls (latency) against how early communication can start (overlap);
* ``no_overlap``: backward without DDP's hooks (``no_sync``), then one all-reduce of all gradients
  flattened: the cost of communication that does not overlap computation;
* ``accumulate``: ``accumulate_steps`` micro-batches per all-reduce (``no_sync`` on all but the last);
* ``no_comm``: k workers train at the same time without exchanging gradients (no DDP): not a way
  to train, the control that separates communication from contention for shared hardware (cores,
  memory bandwidth, PCIe). Its efficiency is the ceiling the others can reach on this machine.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as tdist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from workloads.allreduce.resnet import ModelCase

BUCKET_MIB = {"small_buckets": 1.0, "large_buckets": 100.0}


@dataclass(frozen=True)
class ScalingConfig:
    """What the study trains and how long it measures."""

    model: ModelCase
    batch: int
    steps: int
    warmup_steps: int
    variants: tuple[str, ...]
    bucket_cap_mib: float
    accumulate_steps: int
    channels_last: bool
    amp: bool
    seed: int = 0


@dataclass
class ScalingRow:
    """Throughput of one variant at one worker count."""

    variant: str
    workers: int
    samples_per_s: float
    step_ms: float
    efficiency: float


def worker_counts(world: int) -> list[int]:
    """Return 1, 2, 4, ... up to world, always ending with world."""
    counts, k = [], 1
    while k < world:
        counts.append(k)
        k *= 2
    counts.append(world)
    return counts


def efficiency(samples_per_s: float, baseline: float, workers: int) -> float:
    """Return parallel efficiency e = t / (t0 n)."""
    return samples_per_s / (baseline * workers)


def flat_allreduce_mean(grads: list[torch.Tensor], group: Any, workers: int) -> None:
    """Average gradients over the group with one all-reduce of their concatenation (in place)."""
    flat = _flatten_dense_tensors(grads)
    tdist.all_reduce(flat, group=group)
    flat.div_(workers)
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(synced)


def bfloat16_hook(group, bucket):  # type: ignore[no-untyped-def]  # DDP inspects annotations and name
    """Average a gradient bucket in bfloat16 (DDP's bf16_compress_hook, usable on any backend).

    Unannotated on purpose: DDP rejects a hook whose annotations are strings (postponed evaluation);
    not named bf16_compress_hook: DDP refuses that name unless NCCL is present.
    """
    buffer = bucket.buffer()
    compressed = buffer.to(torch.bfloat16).div_(tdist.get_world_size(group))
    fut = tdist.all_reduce(compressed, group=group, async_op=True).get_future()

    def decompress(done: torch.futures.Future[Any]) -> torch.Tensor:
        buffer.copy_(done.value()[0])
        return buffer

    return fut.then(decompress)


class Trainer:
    """One rank's model, optimiser and synthetic batch for one variant and worker count."""

    def __init__(
        self, cfg: ScalingConfig, variant: str, *, device: torch.device, group: Any, workers: int
    ) -> None:
        self.cfg, self.variant, self.device, self.group, self.workers = cfg, variant, device, group, workers
        torch.manual_seed(cfg.seed)
        model: nn.Module = cfg.model.build().to(device)
        self.memory_format = torch.channels_last if (cfg.channels_last and device.type == "cuda") else None
        if self.memory_format is not None:
            # Module.to takes memory_format at runtime (torch's channels_last guide); its typed overloads omit it.
            model = model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.module = model
        if workers > 1 and variant != "no_comm":
            bucket = BUCKET_MIB.get(variant, cfg.bucket_cap_mib)
            ddp = DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                process_group=group,
                bucket_cap_mb=bucket,
                gradient_as_bucket_view=True,
            )
            if variant == "fp16":
                ddp.register_comm_hook(group, default_hooks.fp16_compress_hook)
            elif variant == "bf16":
                # torch's bf16 hook refuses anything but NCCL; on gloo the same compression by hand.
                hook = default_hooks.bf16_compress_hook if device.type == "cuda" else bfloat16_hook
                ddp.register_comm_hook(group, hook)
            model = ddp
        self.model = model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1 + tdist.get_rank())
        size = cfg.model.image_size
        x = torch.randn(cfg.batch, 3, size, size, generator=gen).to(device)
        self.x = x.contiguous(memory_format=self.memory_format) if self.memory_format else x
        self.y = torch.randint(0, cfg.model.num_classes, (cfg.batch,), generator=gen).to(device)
        self.loss_fn = nn.CrossEntropyLoss()

    @property
    def micro_batches(self) -> int:
        """Return the micro-batches per optimiser step."""
        return self.cfg.accumulate_steps if self.variant == "accumulate" else 1

    def _forward_backward(self) -> None:
        amp = self.cfg.amp and self.device.type == "cuda"
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = self.loss_fn(self.model(self.x), self.y)
        loss.backward()

    def _no_sync(self) -> contextlib.AbstractContextManager[Any]:
        return (
            self.model.no_sync()
            if isinstance(self.model, DistributedDataParallel)
            else contextlib.nullcontext()
        )

    def step(self) -> None:
        """Run one optimiser step (micro-batches, gradient synchronisation, update)."""
        self.opt.zero_grad(set_to_none=False)
        if self.variant == "no_overlap" and isinstance(self.model, DistributedDataParallel):
            with self.model.no_sync():
                self._forward_backward()
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            flat_allreduce_mean(grads, self.group, self.workers)
        else:
            for i in range(self.micro_batches):
                with self._no_sync() if i < self.micro_batches - 1 else contextlib.nullcontext():
                    self._forward_backward()
        self.opt.step()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure(self) -> float:
        """Return this rank's seconds for the timed steps (after the warm-up steps)."""
        for _ in range(self.cfg.warmup_steps):
            self.step()
        self._sync()
        if self.group is not None:
            tdist.barrier(group=self.group)
        t0 = time.perf_counter()
        for _ in range(self.cfg.steps):
            self.step()
        self._sync()
        return time.perf_counter() - t0


def _max_over(value: float, group: Any, device: torch.device) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    if group is not None:
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX, group=group)
    return float(t.item())


def study(
    cfg: ScalingConfig,
    *,
    device: torch.device,
    timeout_s: float,
    log: Callable[[str], None] = print,
) -> Iterator[ScalingRow]:
    """Yield one row per (variant, worker count) on rank 0; every rank must iterate it."""
    world, rank = tdist.get_world_size(), tdist.get_rank()
    counts = worker_counts(world)
    # A new group does not inherit the default group's timeout (it would get the backend's 30 min).
    timeout = timedelta(seconds=timeout_s)
    groups = {k: tdist.new_group(ranks=list(range(k)), timeout=timeout) for k in counts if k > 1}
    for variant in cfg.variants:
        micro = cfg.accumulate_steps if variant == "accumulate" else 1
        # t0 is measured again right before each variant: on shared machines the load drifts, and a
        # baseline taken minutes earlier would turn that drift into "efficiency".
        baseline = 0.0
        if rank == 0:
            seconds = Trainer(cfg, "plain", device=device, group=None, workers=1).measure()
            baseline = cfg.steps * cfg.batch / seconds
            log(f"scaling: {variant:>13s}    1 worker  {baseline:10.1f} samples/s (no DDP: the baseline t0)")
            yield ScalingRow(variant, 1, baseline, 1000 * cfg.batch / baseline, 1.0)
        tdist.barrier()
        for k in counts[1:]:
            row = None
            if rank < k:
                trainer = Trainer(cfg, variant, device=device, group=groups[k], workers=k)
                seconds = _max_over(trainer.measure(), groups[k], device)
                samples = cfg.steps * cfg.batch * micro * k
                rate = samples / seconds
                row = ScalingRow(variant, k, rate, 1000 * seconds / cfg.steps, 0.0)
                del trainer
            tdist.barrier()
            if rank == 0 and row is not None:
                row.efficiency = efficiency(row.samples_per_s, baseline, k)
                log(
                    f"scaling: {variant:>13s} {k:4d} workers {row.samples_per_s:10.1f} samples/s "
                    f"efficiency {100 * row.efficiency:5.1f}%"
                )
                yield row
    for group in groups.values():
        tdist.destroy_process_group(group)


def as_dicts(rows: list[ScalingRow]) -> list[dict[str, Any]]:
    """Return the rows as plain dicts (metrics.json, CSV)."""
    return [asdict(r) for r in rows]
