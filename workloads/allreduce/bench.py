"""Benchmark: both modes locally with 2 gloo workers, repeated, plus the harness-overhead check.

``python -m workloads.allreduce.bench [--quick]`` runs, each rank a subprocess launched by
``workloads.common.launch.spawn_local`` with one CPU thread:

1. this machine's memory-copy bandwidth (the bound gloo's numbers are read against);
2. the all-reduce sweep R times (separate launches): per size, busbw min / median / max;
3. the harness against a bare timed loop of the same all-reduce (``workloads.allreduce.overhead``);
4. the training-scaling study (small ResNet, every variant) at 1 and 2 workers.

Writes ``bench.md``, ``bench.json`` and ``bench.png`` to ``results/bench/allreduce/`` and prints
the table. The machine's load average is recorded: on shared cores it is the main source of spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mlhpc import invocation
from workloads.allreduce import bandwidth
from workloads.common.launch import spawn_local

OUT = Path("results/bench/allreduce")
FULL = {"max_bytes": 16 * 1024 * 1024, "iters": 20, "repeats": 3, "steps": 8, "scaling_repeats": 2}
QUICK = {"max_bytes": 4 * 1024 * 1024, "iters": 10, "repeats": 3, "steps": 3, "scaling_repeats": 1}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def _spawn(module: str, argv: list[str]) -> None:
    codes = spawn_local(module, argv, workers=2, env=_env(), timeout_s=900)
    if codes != [0, 0]:
        raise SystemExit(f"{module} {' '.join(argv)} exited {codes}")


def _fresh(out: Path) -> list[str]:
    """Return the run options of a measurement: write to out, never resume an earlier one."""
    return invocation.run_options(invocation.RunOptions(out=str(out), resume=False))


def sweeps(size: dict[str, int], work: Path) -> list[dict[str, Any]]:
    """Run the all-reduce sweep `repeats` times; return each run's metrics."""
    runs = []
    for i in range(size["repeats"]):
        out = work / f"sweep{i}"
        _spawn(
            "workloads.allreduce",
            ["--min-bytes", "1024", "--max-bytes", str(size["max_bytes"]), "--step-factor", "4", "--iters",
             str(size["iters"]), "--warmup-iters", "3", "--threads", "1", *_fresh(out)],
        )  # fmt: skip
        runs.append(json.loads((out / "metrics.json").read_text(encoding="utf-8")))
    return runs


def spread(runs: list[dict[str, Any]], place: str) -> list[dict[str, float]]:
    """Return per size the min/median/max busbw over the runs."""
    out = []
    for i, row in enumerate(runs[0]["rows"]):
        values = [r["rows"][i][f"{place}_busbw_gbps"] for r in runs]
        out.append(
            {
                "size_bytes": row["size_bytes"],
                "min": min(values),
                "median": statistics.median(values),
                "max": max(values),
            }
        )
    return out


def overhead(work: Path, quick: bool) -> dict[str, Any]:
    """Run the harness-vs-bare comparison; return its JSON."""
    path = work / "overhead.json"
    _spawn("workloads.allreduce.overhead", ["--json", str(path), "--repeats", "9" if quick else "15"])
    data = json.loads(path.read_text(encoding="utf-8"))
    ratios = [h / b for row in data["rows"] for h, b in zip(row["harness_us"], row["bare_us"], strict=True)]
    data["pooled_median_pct"] = 100 * (statistics.median(ratios) - 1)
    q = statistics.quantiles(ratios, n=4)
    data["pooled_iqr_pct"] = [100 * (q[0] - 1), 100 * (q[2] - 1)]
    return data


def scaling(size: dict[str, int], work: Path) -> list[list[dict[str, Any]]]:
    """Run the scaling study `scaling_repeats` times; return each run's rows."""
    runs = []
    for i in range(size["scaling_repeats"]):
        out = work / f"scaling{i}"
        _spawn(
            "workloads.allreduce",
            ["--mode", "scaling", "--steps", str(size["steps"]), "--warmup-steps", "2", "--threads", "1",
             *_fresh(out)],
        )  # fmt: skip
        runs.append(json.loads((out / "metrics.json").read_text(encoding="utf-8"))["scaling"])
    return runs


def markdown(result: dict[str, Any]) -> str:
    """Return the report as markdown tables."""
    lines = [
        f"# allreduce benchmark ({'quick' if result['quick'] else 'full'}), 2 gloo ranks on this machine",
        "",
        f"load average before / after: {result['load_before']} / {result['load_after']} "
        f"on {os.cpu_count()} cores (shared; spread below is mostly other processes)",
        f"memcpy bandwidth (one 64 MiB buffer into another, best of 10): **{result['memcpy_gbps']:.2f} GB/s**",
        "",
        f"## all_reduce float32 sum, busbw GB/s over {len(result['sweeps'])} runs (min / median / max)",
        "",
        "| size (B) | out-of-place | in-place | in-place median / memcpy |",
        "| ---: | --- | --- | ---: |",
    ]
    for o, i in zip(result["spread"]["out_of_place"], result["spread"]["in_place"], strict=True):
        lines.append(
            f"| {o['size_bytes']} | {o['min']:.3f} / {o['median']:.3f} / {o['max']:.3f} | "
            f"{i['min']:.3f} / {i['median']:.3f} / {i['max']:.3f} | {100 * i['median'] / result['memcpy_gbps']:.1f}% |"
        )
    avg = [r["avg_busbw_gbps"] for r in result["sweeps"]]
    lines += [
        "",
        f"Avg bus bandwidth per run: {', '.join(f'{a:.3f}' for a in avg)} GB/s; #wrong in every run: "
        f"{[r['wrong'] for r in result['sweeps']]}",
        "",
        "## Harness overhead against a bare timed loop (in-place all_reduce, float32)",
        "",
        "| size (B) | mode | harness best (us) | bare best (us) | overhead, best of repeats | overhead, median of pairs |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result["overhead"]["rows"]:
        lines.append(
            f"| {row['size_bytes']} | {'blocking' if row['blocking'] else 'non-blocking'} | "
            f"{min(row['harness_us']):.1f} | {min(row['bare_us']):.1f} | {row['overhead_best_pct']:+.2f}% | "
            f"{row['overhead_median_pct']:+.2f}% |"
        )
    ov = result["overhead"]
    lines += [
        "",
        f"Pooled over all sizes and modes: median harness/bare {ov['pooled_median_pct']:+.2f}% "
        f"(interquartile {ov['pooled_iqr_pct'][0]:+.1f}% .. {ov['pooled_iqr_pct'][1]:+.1f}%).",
        "",
        "## DDP training scaling (resnet_small, batch 32 per worker, gloo), median over runs",
        "",
        "| variant | workers | samples/s | efficiency |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in result["scaling_median"]:
        lines.append(
            f"| {row['variant']} | {row['workers']} | {row['samples_per_s']:.1f} | {100 * row['efficiency']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def scaling_median(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return per (variant, workers) the median samples/s and efficiency over runs."""
    out = []
    for j, row in enumerate(runs[0]):
        out.append(
            {
                "variant": row["variant"],
                "workers": row["workers"],
                "samples_per_s": statistics.median(r[j]["samples_per_s"] for r in runs),
                "efficiency": statistics.median(r[j]["efficiency"] for r in runs),
            }
        )
    return out


def plot(path: Path, result: dict[str, Any]) -> None:
    """Plot busbw spread against size (with memcpy) and efficiency against workers per variant."""
    fig, (ax, eff) = plt.subplots(1, 2, figsize=(11, 4.3))
    for place, colour in (("out_of_place", "C0"), ("in_place", "C1")):
        rows = result["spread"][place]
        x = [r["size_bytes"] for r in rows]
        ax.plot(x, [r["median"] for r in rows], marker="o", ms=3, color=colour, label=f"{place} median")
        ax.fill_between(x, [r["min"] for r in rows], [r["max"] for r in rows], color=colour, alpha=0.2)
    ax.axhline(result["memcpy_gbps"], color="grey", ls=":", label=f"memcpy {result['memcpy_gbps']:.1f} GB/s")
    ax.set(xscale="log", yscale="log", xlabel="message size (bytes)", ylabel="busbw (GB/s)")
    ax.set_xscale("log", base=2)
    ax.set_title("all_reduce, 2 gloo ranks (band: min..max of runs)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    for variant in dict.fromkeys(r["variant"] for r in result["scaling_median"]):
        pts = [
            (r["workers"], 100 * r["efficiency"]) for r in result["scaling_median"] if r["variant"] == variant
        ]
        eff.plot(*zip(*pts, strict=True), marker="o", label=variant)
    eff.set(xlabel="workers", ylabel="parallel efficiency (%)", title="DDP scaling, resnet_small on CPU")
    eff.grid(True, alpha=0.3)
    eff.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its report; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m workloads.allreduce.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sweep, fewer steps")
    parser.add_argument(invocation.OUT_OPTION, dest="out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"quick": args.quick, "load_before": [round(x, 2) for x in os.getloadavg()]}
    result["memcpy_gbps"] = bandwidth.memcpy_gbps()
    with tempfile.TemporaryDirectory(prefix="allreduce-bench-") as tmp:
        work = Path(tmp)
        result["sweeps"] = sweeps(size, work)
        result["overhead"] = overhead(work, args.quick)
        runs = scaling(size, work)
    result["spread"] = {p: spread(result["sweeps"], p) for p in ("out_of_place", "in_place")}
    result["scaling_runs"] = runs
    result["scaling_median"] = scaling_median(runs)
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(result)
    (args.out / "bench.md").write_text(text, encoding="utf-8")
    (args.out / "bench.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot(args.out / "bench.png", result)
    print(text)
    print(f"written: {args.out}/bench.md, bench.json, bench.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
