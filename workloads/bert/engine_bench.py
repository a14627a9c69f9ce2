"""Model-only throughput per batch size, in process: PyTorch eager against ONNX Runtime on the CPU.

``python -m workloads.bert.engine_bench [--model minilm] [--threads 1] [--seconds 10]`` calls
``Predictor.predict`` (tokenisation, length-sorted chunks, the model, decoding; no HTTP) on the
bench's sentence pairs at each batch size, alternating the runtimes so that both see the same
machine load, and prints the best time per batch of each. Batch 1 against the largest batch bounds
what dynamic batching can gain on this machine: a server cannot batch its way past its model.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from workloads.bert import engines, models, samples
from workloads.bert.predictor import Pair, Predictor
from workloads.common.entry import WorkloadError


def measure(
    model: str, *, runtimes: Sequence[str], batch_sizes: Sequence[int], seconds: float
) -> dict[tuple[str, int], float]:
    """Return the best seconds per batch for each (runtime, batch size)."""
    loaded = models.load(model)
    predictors = {
        rt: Predictor(loaded, engines.build_engine(loaded, device="cpu", runtime=rt), max_length=128)
        for rt in runtimes
    }
    pairs = [Pair(a, b) for a, b in samples.pairs()]
    batches = {
        n: [[pairs[(k + i) % len(pairs)] for i in range(n)] for k in range(len(pairs))] for n in batch_sizes
    }
    best = {(rt, n): float("inf") for rt in runtimes for n in batch_sizes}
    for predictor in predictors.values():  # warm-up: first-call costs of every shape
        for n in batch_sizes:
            predictor.predict(batches[n][0])
    deadline = time.perf_counter() + seconds
    rounds = 0
    while time.perf_counter() < deadline or rounds < 2:
        rounds += 1
        for n in batch_sizes:
            for rt, predictor in predictors.items():
                calls = batches[n][: max(1, 32 // n)]
                started = time.perf_counter()
                for batch in calls:
                    predictor.predict(batch)
                best[(rt, n)] = min(best[(rt, n)], (time.perf_counter() - started) / len(calls))
    return best


def table(best: dict[tuple[str, int], float], runtimes: Sequence[str], batch_sizes: Sequence[int]) -> str:
    """Return pairs/s per batch size and runtime as a markdown table."""
    head = "| batch | " + " | ".join(f"{rt} pairs/s" for rt in runtimes) + " |\n"
    head += "|---:|" + "---:|" * len(runtimes) + "\n"
    rows = "".join(
        f"| {n} | " + " | ".join(f"{n / best[(rt, n)]:.1f}" for rt in runtimes) + " |\n" for n in batch_sizes
    )
    return head + rows


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table."""
    p = argparse.ArgumentParser(prog="python -m workloads.bert.engine_bench", description=__doc__)
    p.add_argument("--model", default="minilm")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's choice)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    p.add_argument("--runtime", action="append", choices=["torch", "onnxruntime"])
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runtimes = args.runtime or ["torch", "onnxruntime"]
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    try:
        best = measure(args.model, runtimes=runtimes, batch_sizes=sizes, seconds=args.seconds)
    except WorkloadError as err:
        print(f"error: {err}")
        return 2
    print(
        f"{args.model}, {torch.get_num_threads()} thread(s), model only (no HTTP), best of alternating rounds"
    )
    print(table(best, runtimes, sizes))
    for rt in runtimes:
        gain = (sizes[-1] / best[(rt, sizes[-1])]) / (sizes[0] / best[(rt, sizes[0])])
        print(f"{rt}: batch {sizes[-1]} over batch {sizes[0]}: {gain:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
