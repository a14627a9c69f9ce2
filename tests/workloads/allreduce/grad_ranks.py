"""Run as 2 ranks: one step of every DDP variant, its averaged gradient compared with rank 0's own average.

Rank 0 recomputes both ranks' local gradients itself (it knows each rank's synthetic batch from
the seeds) and averages them without any communication: the independent reference. Writes
{variant: max relative difference} to the JSON file given as the only argument.
"""

import json
import sys

import torch
import torch.distributed as tdist

from workloads.allreduce.resnet import MODELS
from workloads.allreduce.scaling import ScalingConfig, Trainer
from workloads.common import dist


def local_gradients(cfg, rank):
    torch.manual_seed(cfg.seed)
    model = cfg.model.build()
    gen = torch.Generator().manual_seed(cfg.seed + 1 + rank)
    x = torch.randn(cfg.batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, cfg.model.num_classes, (cfg.batch,), generator=gen)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


def main():
    rdzv = dist.from_env()
    tdist.init_process_group("gloo", init_method=rdzv.init_method, rank=rdzv.rank, world_size=2)
    torch.set_num_threads(1)
    cfg = ScalingConfig(MODELS["resnet_small"], 4, 1, 0, (), 25.0, 2, False, False)
    reference = None
    if rdzv.rank == 0:
        g0, g1 = local_gradients(cfg, 0), local_gradients(cfg, 1)
        reference = [(a + b) / 2 for a, b in zip(g0, g1, strict=True)]
    group = tdist.new_group([0, 1])
    out = {}
    for variant in ("plain", "fp16", "bf16", "no_overlap", "small_buckets"):
        trainer = Trainer(cfg, variant, device=torch.device("cpu"), group=group, workers=2)
        trainer.opt.zero_grad(set_to_none=False)
        if variant == "no_overlap":
            from workloads.allreduce.scaling import flat_allreduce_mean

            with trainer.model.no_sync():
                trainer._forward_backward()
            flat_allreduce_mean([p.grad for p in trainer.model.parameters()], group, 2)
        else:
            trainer._forward_backward()
        if rdzv.rank == 0:
            got = [p.grad for p in trainer.model.parameters()]
            scale = max(float(r.abs().max()) for r in reference)
            out[variant] = (
                max(float((a - b).abs().max()) for a, b in zip(got, reference, strict=True)) / scale
            )
        tdist.barrier()
    if rdzv.rank == 0:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            json.dump(out, fh)
    tdist.destroy_process_group()


if __name__ == "__main__":
    main()
