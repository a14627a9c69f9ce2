"""Served against model-only throughput, per number of clients: how close the server gets to its model.

``make bench-bert`` (``python -m workloads.bert.bench``) runs, for each model, ``repeats`` rounds of:

1. **model only** (:mod:`workloads.bert.model_only`): the engine on the bench's pairs at each
   batch size, for every process layout the server uses (``--workers W`` processes x
   ``cores / W`` threads), no HTTP, no tokeniser;
2. **served**: the real server (``python -m workloads.bert.server --workers W``) driven over HTTP by
   the load generator at each number of closed-loop clients, one pair per request.

Both halves of a round run back to back, so both see the same outside load on a shared machine;
each point is the median of the rounds (the load average before each measurement is kept beside
it). The model-only bound is the best median over every layout and batch size; the ratio is the
best served median over it, reported with the clients, workers and p99 at which it was reached.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TARGET_RATIO = 0.60  # issue 22: served >= 60 % of model-only at its best batch size


def layouts(worker_counts: Sequence[int], cpus: int) -> list[tuple[int, int]]:
    """Return (processes, threads each) for every worker count: the cores shared out, at least one thread."""
    from workloads.bert.workers import threads_per_worker

    return [(w, threads_per_worker(w, cpus)) for w in worker_counts]


def run_sweep(
    *, models: Sequence[str], clients: Sequence[int], worker_counts: Sequence[int], batch_sizes: Sequence[int],
    repeats: int = 3, duration_s: float = 8.0, warmup_s: float = 2.0, model_seconds: float = 3.0,
    max_wait_ms: float = 5.0, max_length: int = 128, wire_format: str = "json", log: Callable[[str], Any] = print,
) -> dict[str, Any]:  # fmt: skip
    """Measure every model: model-only per (layout, batch size), served per (workers, clients); return the doc."""
    from workloads.bert import bench, model_only
    from workloads.bert.loadgen import run_load
    from workloads.bert.workers import available_cpus

    cpus = available_cpus()
    bodies = bench.payloads(1)
    raw_model: dict[tuple[str, int, int, int], list[tuple[float, float]]] = {}
    raw_served: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for model in models:
        for round_ in range(1, repeats + 1):
            for procs, threads in layouts(worker_counts, cpus):
                load = os.getloadavg()[0]
                log(
                    f"sweep: {model} round {round_}/{repeats}: model only, {procs} x {threads} threads (load {load:.2f})"
                )
                rates = model_only.measure(
                    model, procs=procs, threads=threads, batch_sizes=batch_sizes, seconds=model_seconds,
                    max_length=max_length,
                )  # fmt: skip
                for size, rate in rates.items():
                    raw_model.setdefault((model, procs, threads, size), []).append((rate, load))
            for w in worker_counts:
                with bench.local_server(
                    model, max_batch_size=max(batch_sizes), max_wait_ms=max_wait_ms, max_length=max_length,
                    max_queue=max(clients), workers=w,
                ) as url:  # fmt: skip
                    run_load(url, bodies[:4], clients=1, duration_s=1.0, warmup_s=0.0)  # first-call costs
                    for n in clients:
                        load = os.getloadavg()[0]
                        log(
                            f"sweep: {model} round {round_}/{repeats}: served, {w} worker(s), {n} clients (load {load:.2f})"
                        )
                        result = run_load(
                            url,
                            bodies,
                            clients=n,
                            duration_s=duration_s,
                            warmup_s=warmup_s,
                            wire_format=wire_format,
                        )
                        raw_served.setdefault((model, w, n), []).append({**result.summary(), "load": load})
    return summarize(raw_model, raw_served, cpus=cpus)


def _median(values: Sequence[float]) -> float:
    return round(float(statistics.median(values)), 2)


def summarize(
    raw_model: dict[tuple[str, int, int, int], list[tuple[float, float]]],
    raw_served: dict[tuple[str, int, int], list[dict[str, Any]]],
    *,
    cpus: int,
) -> dict[str, Any]:
    """Return the medians per point, and per model the model-only bound, the best served point and their ratio."""
    model_rows: list[dict[str, Any]] = [
        {
            "model": model, "procs": procs, "threads": threads, "batch": size,
            "pairs_per_s": _median([r for r, _ in runs]), "runs": [round(r, 2) for r, _ in runs],
            "load": [round(load, 2) for _, load in runs],
        }
        for (model, procs, threads, size), runs in raw_model.items()
    ]  # fmt: skip
    served_rows: list[dict[str, Any]] = [
        {
            "model": model, "workers": w, "clients": n,
            "pairs_per_s": _median([r["pairs_per_s"] for r in runs]),
            "p50_ms": _median([r["p50_ms"] for r in runs]), "p99_ms": _median([r["p99_ms"] for r in runs]),
            "errors": sum(r["error_count"] for r in runs), "runs": [r["pairs_per_s"] for r in runs],
            "load": [round(r["load"], 2) for r in runs],
        }
        for (model, w, n), runs in raw_served.items()
    ]  # fmt: skip
    summary: dict[str, Any] = {}
    for model in dict.fromkeys(r["model"] for r in model_rows + served_rows):
        bound = max(
            (r for r in model_rows if r["model"] == model), key=lambda r: r["pairs_per_s"], default=None
        )
        mine = [r for r in served_rows if r["model"] == model]
        if bound is None or not mine:
            continue
        best = max(mine, key=lambda r: r["pairs_per_s"])
        for r in mine:
            r["ratio"] = round(r["pairs_per_s"] / bound["pairs_per_s"], 3) if bound["pairs_per_s"] else 0.0
        reaching = [r for r in mine if r["ratio"] >= TARGET_RATIO]
        first = min(reaching, key=lambda r: (r["clients"], r["p99_ms"]), default=None)
        loads = [x for r in mine for x in r["load"]] + [
            x for r in model_rows if r["model"] == model for x in r["load"]
        ]
        summary[model] = {
            "model_only": {k: bound[k] for k in ("procs", "threads", "batch", "pairs_per_s")},
            "served_best": {k: best[k] for k in ("workers", "clients", "pairs_per_s", "p50_ms", "p99_ms")},
            "ratio": best["ratio"],
            "target": TARGET_RATIO,
            "reached": first is not None,
            "first_reaching": (
                {k: first[k] for k in ("workers", "clients", "pairs_per_s", "p99_ms", "ratio")}
                if first
                else None
            ),
            "load_average": {"min": min(loads), "median": _median(loads), "max": max(loads)},
        }
    return {"cpus": cpus, "model_only": model_rows, "served": served_rows, "summary": summary}


def table(doc: dict[str, Any]) -> str:
    """Return the served sweep and each model's summary as markdown."""
    lines = [
        "| model | workers | clients | pairs/s | p50 ms | p99 ms | served / model-only | errors | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["served"]:
        loads = "–".join(f"{x:.1f}" for x in (min(r["load"]), max(r["load"])))
        lines.append(
            f"| {r['model']} | {r['workers']} | {r['clients']} | {r['pairs_per_s']:.1f} | {r['p50_ms']:.0f} "
            f"| {r['p99_ms']:.0f} | {100 * r.get('ratio', 0):.0f} % | {r['errors']} | {loads} |"
        )
    lines += ["", "| model | model only: procs x threads, batch | pairs/s | best served (workers, clients) | pairs/s | p99 ms | ratio | >= 60 % first at |", "|---|---|---:|---|---:|---:|---:|---|"]  # fmt: skip
    for model, s in doc["summary"].items():
        m, b, f = s["model_only"], s["served_best"], s["first_reaching"]
        first = (
            f"{f['workers']} worker(s), {f['clients']} clients, p99 {f['p99_ms']:.0f} ms"
            if f
            else "not reached"
        )
        lines.append(
            f"| {model} | {m['procs']} x {m['threads']}, batch {m['batch']} | {m['pairs_per_s']:.1f} "
            f"| {b['workers']}, {b['clients']} | {b['pairs_per_s']:.1f} | {b['p99_ms']:.0f} "
            f"| **{100 * s['ratio']:.0f} %** | {first} |"
        )
    costs = [
        f"{model}: model only {_usd(s['model_only'])}, best served {_usd(s['served_best'])}"
        for model, s in doc["summary"].items()
        if "usd_per_million_pairs" in s["served_best"]
    ]
    if costs:
        priced = next(iter(doc["summary"].values()))["served_best"].get("priced_as") or "unpriced"
        lines += ["", f"USD per million pairs ({priced}): " + "; ".join(costs)]
    lines += ["", "model only, pairs/s per batch size (median of rounds):", ""]
    sizes = sorted({r["batch"] for r in doc["model_only"]})
    lines += [
        "| model | procs x threads | " + " | ".join(map(str, sizes)) + " |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    for key in dict.fromkeys((r["model"], r["procs"], r["threads"]) for r in doc["model_only"]):
        rates = {
            r["batch"]: r["pairs_per_s"]
            for r in doc["model_only"]
            if (r["model"], r["procs"], r["threads"]) == key
        }
        lines.append(
            f"| {key[0]} | {key[1]} x {key[2]} | "
            + " | ".join(f"{rates.get(s, float('nan')):.1f}" for s in sizes)
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(doc: dict[str, Any], path: Path) -> None:
    """Draw, per model, served pairs/s and p99 against clients, with the model-only bound and 60 % of it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(doc["summary"])
    fig, axes = plt.subplots(len(models) or 1, 2, figsize=(11, 3.8 * max(1, len(models))), squeeze=False)
    for (left, right), model in zip(axes, models, strict=False):
        bound = doc["summary"][model]["model_only"]
        for w in sorted({r["workers"] for r in doc["served"] if r["model"] == model}):
            mine = sorted(
                (r for r in doc["served"] if r["model"] == model and r["workers"] == w),
                key=lambda r: r["clients"],
            )
            label = f"served, {w} worker{'s' if w > 1 else ''}"
            left.plot([r["clients"] for r in mine], [r["pairs_per_s"] for r in mine], marker="o", label=label)
            right.plot([r["clients"] for r in mine], [r["p99_ms"] for r in mine], marker="o", label=label)
        left.axhline(bound["pairs_per_s"], color="black", ls="--",
                     label=f"model only ({bound['procs']}x{bound['threads']} threads, batch {bound['batch']})")  # fmt: skip
        left.axhline(TARGET_RATIO * bound["pairs_per_s"], color="grey", ls=":", label="60 % of model only")
        left.set_ylim(bottom=0)
        left.set_ylabel("sentence pairs / s")
        right.set_ylabel("p99 latency (ms)")
        right.set_yscale("log")
        ticks = sorted({r["clients"] for r in doc["served"] if r["model"] == model})
        for ax, title in ((left, "throughput"), (right, "p99 latency")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_xlabel("closed-loop clients (one pair per request)")
            ax.set_title(f"{model}: {title}")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _usd(row: dict[str, Any]) -> str:
    value = row.get("usd_per_million_pairs")
    return "unknown" if value is None else f"${value:.2f}"


def write(doc: dict[str, Any], out: Path, settings: dict[str, Any]) -> str:
    """Write bench.md, bench.json and bench.png to ``out``; return the markdown."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    text = table(doc)
    (out / "bench.md").write_text(text, encoding="utf-8")
    (out / "bench.json").write_text(
        json.dumps({"settings": settings, **doc}, indent=2) + "\n", encoding="utf-8"
    )
    plot(doc, out / "bench.png")
    return text
