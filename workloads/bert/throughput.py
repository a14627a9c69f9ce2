"""Benchmark: what the accelerator itself delivers, model calls only (no HTTP, no tokenizer).

``python -m workloads.bert.throughput --model bert-base-random --device cuda`` runs the serving
engine (the same ``build_engine`` the server uses: bf16/fp16 on a GPU, compiled on Neuron,
fp32 on the CPU) on full sequences of ``--seq-len`` tokens, every row padded to that length
as a compiled Neuron model would see them, for each batch size in ``--batch-sizes``. Each call
includes the host-to-device copy of the token ids and the copy of the answers back, so the
numbers are an upper bound for what the server can serve, not a kernel-only figure.

The published reference it is compared with: about 1,140 sequences/s for bert-base at sequence
length 128 on one inf1.xlarge (AWS, "Scaling ... BERT inference on EKS with Inferentia",
orchestration layer included). Writes ``throughput.md``, ``throughput.json`` and
``throughput.png`` to ``results/bench/bert/`` (or --out) and prints the table.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mlhpc import invocation
from workloads.common.entry import WorkloadError

OUT = Path("results/bench/bert")
REFERENCE_SAMPLES_PER_S = 1140.0  # bert-base, seq 128, one inf1.xlarge (see the module docstring)


def parse_sizes(text: str) -> list[int]:
    """Return the batch sizes in ``text`` ("1,8,32"); refuse anything but positive integers."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 or s > 4096 for s in sizes):
        raise WorkloadError(
            f"--batch-sizes must be integers from 1 to 4096 separated by commas, got '{text}'"
        )
    return sizes


def synthetic_batch(batch: int, seq_len: int, *, vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Return a full-length pair batch: [CLS] a [SEP] b [SEP] with random word ids, no padding."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (batch, seq_len), generator=gen)
    half = seq_len // 2
    ids[:, 0] = 101  # [CLS] in the uncased BERT vocabulary
    ids[:, half - 1] = 102  # [SEP]
    ids[:, -1] = 102
    types = torch.zeros(batch, seq_len, dtype=torch.long)
    types[:, half:] = 1
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(batch, seq_len, dtype=torch.long),
        "token_type_ids": types,
    }


def time_calls(call: Callable[[], Any], *, warmup: int, iters: int, repeats: int) -> list[float]:
    """Return the mean seconds per call of each repeat (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        call()
    means = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            call()  # engine.run returns CPU tensors, so each call ends synchronised with the device
        means.append((time.perf_counter() - start) / iters)
    return means


def _sig(value: float, digits: int = 4) -> float:
    """Return ``value`` rounded to ``digits`` significant digits."""
    return float(f"{value:.{digits}g}")


def measure(
    *, model: str, device: str, precision: str, seq_len: int, batch_sizes: Sequence[int],
    warmup: int = 3, iters: int = 10, repeats: int = 3, compile_model: bool = False, log: Any = print,
) -> list[dict[str, Any]]:  # fmt: skip
    """Return one row per batch size: median seconds per call, samples/s and the ratio to the reference."""
    from workloads.bert import models
    from workloads.bert.engines import build_engine

    loaded = models.load(model)
    if seq_len > loaded.max_positions:
        raise WorkloadError(f"--seq-len {seq_len} exceeds the model's {loaded.max_positions} positions")
    rows = []
    for batch_size in batch_sizes:
        engine = build_engine(
            loaded, device=device, precision=precision, static_batch=batch_size, static_seq_len=seq_len
        )
        if compile_model and hasattr(engine, "head"):
            engine.head = torch.compile(engine.head, dynamic=False)
        inputs = synthetic_batch(batch_size, seq_len, vocab=int(loaded.model.config.vocab_size))
        try:
            means = time_calls(
                functools.partial(engine.run, inputs), warmup=warmup, iters=iters, repeats=repeats
            )
        except torch.OutOfMemoryError:
            log(f"throughput: batch {batch_size} does not fit on the device; stopping the sweep")
            break
        median = statistics.median(means)
        row = {
            "model": model, "device": engine.device.value, "dtype": str(getattr(engine, "dtype", "n/a")).removeprefix("torch."),
            "compiled": compile_model, "batch": batch_size, "seq_len": seq_len,
            "ms_per_batch": _sig(median * 1e3), "ms_min": _sig(min(means) * 1e3), "ms_max": _sig(max(means) * 1e3),
            "samples_per_s": _sig(batch_size / median), "vs_reference": _sig(batch_size / median / REFERENCE_SAMPLES_PER_S),
        }  # fmt: skip
        log(f"throughput: batch {batch_size}: {row['samples_per_s']} samples/s ({row['ms_per_batch']} ms)")
        rows.append(row)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    """Return the rows as a markdown table."""
    head = (
        "| model | device | dtype | compiled | batch | seq | ms/batch (min..max) | samples/s | x 1,140 ref |\n"
        "|---|---|---|---|---:|---:|---:|---:|---:|\n"
    )
    return head + "".join(
        f"| {r['model']} | {r['device']} | {r['dtype']} | {'yes' if r['compiled'] else 'no'} | {r['batch']} "
        f"| {r['seq_len']} | {r['ms_per_batch']:.2f} ({r['ms_min']:.2f}..{r['ms_max']:.2f}) "
        f"| {r['samples_per_s']:.0f} | {r['vs_reference']:.2f} |\n"
        for r in rows
    )


def plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Draw samples/s against batch size, one line per (device, dtype, compiled), with the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key in dict.fromkeys((r["model"], r["device"], r["dtype"], r["compiled"]) for r in rows):
        mine = [r for r in rows if (r["model"], r["device"], r["dtype"], r["compiled"]) == key]
        label = f"{key[0]} {key[1]} {key[2]}" + (" compiled" if key[3] else "")
        ax.plot([r["batch"] for r in mine], [r["samples_per_s"] for r in mine], marker="o", label=label)
    ax.axhline(REFERENCE_SAMPLES_PER_S, color="grey", ls="--", label="inf1.xlarge reference (1,140/s)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (sequences per call)")
    ax.set_ylabel("sequences / s")
    ax.set_title(f"model-only throughput, sequence length {rows[0]['seq_len']}" if rows else "no rows")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(rows: Sequence[dict[str, Any]], out: Path, settings: dict[str, Any]) -> None:
    """Write throughput.md, throughput.json and throughput.png to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"settings": settings, "reference_samples_per_s": REFERENCE_SAMPLES_PER_S, "rows": list(rows)}
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    doc["gpu"] = gpu
    (out / "throughput.md").write_text(table(rows), encoding="utf-8")
    (out / "throughput.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    plot(rows, out / "throughput.png")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, measure, write and print the table; exit 2 with the reason on bad input."""
    p = argparse.ArgumentParser(
        prog="python -m workloads.bert.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="bert-base-random", help="built-in name, directory or s3:// prefix")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "neuron"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-sizes", default="1,8,32,128")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd model (GPU/CPU)")
    p.add_argument(invocation.OUT_OPTION, dest="out", type=Path, default=OUT)
    args = p.parse_args(argv)
    try:
        sizes = parse_sizes(args.batch_sizes)
        if not 8 <= args.seq_len <= 512:
            raise WorkloadError(f"--seq-len must be from 8 to 512 tokens, got {args.seq_len}")
        if args.iters < 1 or args.repeats < 1:
            raise WorkloadError(f"--iters and --repeats must be >= 1, got {args.iters} and {args.repeats}")
        common = {
            "model": args.model, "device": args.device, "precision": args.precision, "seq_len": args.seq_len,
            "batch_sizes": sizes, "iters": args.iters, "repeats": args.repeats,
        }  # fmt: skip
        rows = measure(**common)
        if args.compile:
            rows += measure(**common, compile_model=True)
    except WorkloadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write(rows, args.out, {**vars(args), "out": str(args.out), "batch_sizes": sizes})
    print(table(rows))
    print(f"wrote {args.out}/throughput.md, throughput.json, throughput.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
