"""Benchmark: time per training epoch, batched vs one sample at a time like the published model.

    python -m workloads.qnn.bench [--quick] [--device cpu|cuda] [--threads N]

Both implementations train the same network (28x28 inputs, the published layer sizes)
with the same code; the loop takes one sample per forward/backward/Adam step, as the
original did, the batched one takes a batch. Images are scikit-learn's digits upsampled
to 28x28 and repeated to the original's 400 per class (timing does not depend on the
pixels). Writes bench.md, bench.json and bench.png to results/bench/qnn/ and prints the
table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mlhpc import invocation
from workloads.qnn.data import Split, load_digits_data
from workloads.qnn.main import build_model
from workloads.qnn.spec import Args
from workloads.qnn.train import TrainState, run_epoch

OUT = Path("results/bench/qnn")


def mnist_sized(per_class: int, device: torch.device) -> Split:
    """Return `per_class` 28x28 images of each of 0 and 1 (digits upsampled, repeated as needed)."""
    data = load_digits_data(digits=[0, 1], train_per_class=100, test_per_class=70).train
    big = F.interpolate(data.images, size=(28, 28), mode="bilinear", align_corners=False)
    index = torch.cat([torch.arange(100).repeat(per_class // 100 + 1)[:per_class] + 100 * c for c in (0, 1)])
    return Split(big[index].to(device), data.labels[index].to(device))


class Trainee:
    """One configuration under test: its own model and optimizer, warmed up on a few batches."""

    def __init__(self, split: Split, *, batch_size: int, shots: int, device: torch.device) -> None:
        args = Args(dataset="digits", batch_size=batch_size, shots=shots, seed=0)
        self.model, _ = build_model(args, image_side=28, device=device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.learning_rate)
        self.batch_size, self.split, self.device = batch_size, split, device
        self.epoch = 0
        self._run(Split(split.images[: 4 * batch_size], split.labels[: 4 * batch_size]))

    def _run(self, split: Split) -> None:
        state = TrainState(epoch=self.epoch)
        run_epoch(self.model, self.optimizer, split, state, batch_size=self.batch_size, loss="nll", seed=0)
        self.epoch += 1

    def time_epoch(self) -> float:
        """Return the wall time of one training epoch."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        self._run(self.split)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def plot(rows: list[dict], path: Path, *, title: str) -> None:
    """Draw seconds per epoch (log scale) for each configuration, speed-ups written on the bars."""
    fig = Figure(figsize=(9, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = [f"{r['implementation']}\nB={r['batch_size']}\n{r['circuit']}" for r in rows]
    colors = ["tab:gray" if r["implementation"] == "loop" else "tab:blue" for r in rows]
    bars = ax.bar(range(len(rows)), [r["epoch_s"] for r in rows], color=colors)
    heights = [r["epoch_s"] for r in rows]
    ax.errorbar(range(len(rows)), heights, yerr=[r["epoch_s_sd"] for r in rows], fmt="none", ecolor="black")
    for bar, r in zip(bars, rows, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() * 1.15, f"{r['speedup']:.0f}x",
                ha="center", va="bottom", fontsize=9)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("seconds per training epoch (log)")
    ax.set_ylim(top=max(r["epoch_s"] for r in rows) * 4)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the table; return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m workloads.qnn.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="100 images per class, 1 timed epoch (smoke test)"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both (default 1)")
    parser.add_argument(invocation.OUT_OPTION, dest="out", type=Path, default=OUT)
    opts = parser.parse_args(argv)
    if opts.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device; use --device cpu")
    torch.set_num_threads(opts.threads)
    device = torch.device(opts.device)
    per_class, epochs = (100, 1) if opts.quick else (400, 3)
    split = mnist_sized(per_class, device)
    configs = [("loop", 1), ("batched", 32), ("batched", 128), ("batched", 2 * per_class)]
    runs = [(name, batch, shots) for shots in (0, 100) for name, batch in configs]
    trainees = [Trainee(split, batch_size=b, shots=s, device=device) for _, b, s in runs]
    # Round-robin: every configuration times its epoch r before any times epoch r + 1, so
    # a change in the machine's load (it is shared) hits all of them alike.
    times: list[list[float]] = [[] for _ in runs]
    for r in range(epochs):
        for k, trainee in enumerate(trainees):
            times[k].append(trainee.time_epoch())
        print(f"  round {r + 1}/{epochs}: " + ", ".join(f"{t[-1]:.3f}" for t in times) + " s", flush=True)
    rows: list[dict] = []
    baseline = 1.0
    for (name, batch, shots), series in zip(runs, times, strict=True):
        mean = statistics.fmean(series)
        baseline = mean if name == "loop" else baseline
        rows.append(
            {
                "implementation": name,
                "batch_size": batch,
                "circuit": "exact" if shots == 0 else f"{shots} shots",
                "epoch_s": mean,
                "epoch_s_sd": statistics.pstdev(series),
                "samples_per_s": len(split) / mean,
                "speedup": baseline / mean,
                "epochs_timed": epochs,
            }
        )
    where = (
        f"{opts.device}, {opts.threads} thread(s)" if opts.device == "cpu" else torch.cuda.get_device_name()
    )
    header = (
        f"qnn training epoch, {len(split)} samples of 28x28 (published sizes), "
        f"torch {torch.__version__}, {where}; mean of {epochs} epoch(s)"
    )
    lines = [
        header, "",
        "| implementation | batch | circuit | s / epoch | samples / s | speed-up vs loop |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['implementation']} | {row['batch_size']} | {row['circuit']} "
            f"| {row['epoch_s']:.3f} ± {row['epoch_s_sd']:.3f} | {row['samples_per_s']:.0f} | {row['speedup']:.1f}x |"
        )
    table = "\n".join(lines)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "bench.md").write_text(table + "\n", encoding="utf-8")
    meta = {"device": where, "torch": torch.__version__, "samples": len(split), "quick": opts.quick}
    (opts.out / "bench.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n", encoding="utf-8"
    )
    plot(rows, opts.out / "bench.png", title=header.split(";", maxsplit=1)[0])
    print(table)
    print(f"wrote {opts.out}/bench.md, bench.json, bench.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
