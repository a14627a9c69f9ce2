"""Model-only throughput: what the device gives on the bench's sentence pairs with no server at all.

``python -m workloads.bert.model_only --model minilm --threads 2 --batch-sizes 1,4,16,64`` runs
the serving engine (``build_engine``, as the server builds it) on exactly the tensors the
server's predictor would build for batches of the bench's pairs (tokenised, length-sorted,
chunked and padded *before* the clock starts, so tokenisation is not counted: it is serving
work), one batch size after another, each for ``--seconds`` (at least two timed calls after
one warm-up), and prints one JSON line: pairs/s per batch size.

Several copies run side by side (``--procs`` in :func:`measure`, each with its share of the
cores) measure the device the way ``--workers N`` uses it; they start their timed windows
together (each says ``ready`` after loading and waits for ``go`` on stdin), so their rates add up.
The bench takes the best of every layout and batch size as the model-only bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

READY, GO = "ready", "go"


def _rates(
    model: str, *, batch_sizes: Sequence[int], seconds: float, max_length: int, wait: bool
) -> dict[int, float]:
    from workloads.bert import engines, models, samples
    from workloads.bert.predictor import Pair, Predictor

    loaded = models.load(model)
    predictor = Predictor(loaded, engines.build_engine(loaded, device="cpu"), max_length=max_length)
    pool = [Pair(a, b) for a, b in samples.pairs()]
    if wait:
        print(READY, flush=True)
        sys.stdin.readline()
    rates: dict[int, float] = {}
    for size in batch_sizes:
        # Every rotation of the pool, so each batch size sees the same mix of lengths.
        batches = [
            predictor.model_inputs([pool[(k + i) % len(pool)] for i in range(size)]) for k in range(len(pool))
        ]
        for tensors in batches[0]:
            predictor.engine.run(tensors)  # first-call costs of this shape
        calls, started = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - started < seconds:
            for tensors in batches[calls % len(batches)]:
                predictor.engine.run(tensors)
            calls += 1
        rates[size] = size * calls / (time.perf_counter() - started)
    return rates


def measure(
    model: str, *, procs: int, threads: int, batch_sizes: Sequence[int], seconds: float, max_length: int = 128,
) -> dict[int, float]:  # fmt: skip
    """Return the summed pairs/s per batch size of ``procs`` processes of ``threads`` torch threads each."""
    argv = [
        sys.executable, "-m", "workloads.bert.model_only", "--model", model, "--threads", str(threads),
        "--batch-sizes", ",".join(map(str, batch_sizes)), "--seconds", str(seconds),
        "--max-length-tokens", str(max_length), "--wait",
    ]  # fmt: skip
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "OMP_NUM_THREADS": str(threads)}
    children = [
        subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(procs)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if line != READY:
                raise RuntimeError(f"model_only worker failed to start (said {line!r}, code {child.poll()})")
        for child in children:
            assert child.stdin is not None
            child.stdin.write(GO + "\n")
            child.stdin.flush()
        totals = dict.fromkeys(batch_sizes, 0.0)
        for child in children:
            out, _ = child.communicate()
            if child.returncode:
                raise RuntimeError(f"model_only worker exited with {child.returncode}")
            for size, rate in json.loads(out.strip().splitlines()[-1]).items():
                totals[int(size)] += rate
        return totals
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Measure in this process and print {batch size: pairs/s} as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m workloads.bert.model_only", description=__doc__)
    p.add_argument("--model", default="minilm")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--max-length-tokens", type=int, default=128)
    p.add_argument(
        "--wait", action="store_true", help=f"print {READY!r} after loading, start on a line on stdin"
    )
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    rates: dict[Any, float] = _rates(
        args.model, batch_sizes=sizes, seconds=args.seconds, max_length=args.max_length_tokens, wait=args.wait
    )
    print(json.dumps({str(k): round(v, 3) for k, v in rates.items()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
