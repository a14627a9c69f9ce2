"""Benchmarks of the server: served against model-only throughput (default), or serial against batched.

``python -m workloads.bert.bench [--quick]`` (``make bench-bert``) sweeps closed-loop clients and
``--workers`` for each model and compares the served throughput with the model-only bound on the
same machine (:mod:`workloads.bert.sweep`): the table, p99 beside every point, and the ratio.

``--serial`` starts the real server (``python -m workloads.bert.server``, its own process) once
per configuration and drives it over HTTP with the load generator, one sentence pair per request:

- ``serial, 1 client``: max_batch_size 1, one client in a closed loop (the classic sequential baseline);
- ``serial, N clients``: max_batch_size 1 (the model answers one request at a time), N clients;
- ``batched, N clients``: dynamic batching (max_batch_size, max_wait_ms), N clients.

It writes ``bench.md``, ``bench.json`` and ``bench.png`` to ``results/bench/bert/`` (or --out)
and prints the table. ``--url`` drives an already running server instead (e.g. the EKS service
through ``kubectl port-forward``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mlhpc import invocation
from workloads.bert import samples
from workloads.bert.loadgen import run_load

OUT = Path("results/bench/bert")
# The instance a device's throughput is priced as unless --instance-type names one: InferenceStack's
# Inferentia node (config/examples/inferentia-bert.yaml), the smallest A10G, a general-purpose CPU node.
PRICED_AS = {"neuron": "inf2.xlarge", "cuda": "g5.xlarge", "cpu": "m6i.large"}


def with_cost(rows: list[dict[str, Any]], *, instance_type: str | None, region: str) -> list[dict[str, Any]]:
    """Add ``usd_per_million_pairs`` (the instance's On-Demand hour over the pairs it serves in an hour).

    The price comes from the pinned table (mlhpc/pricing/prices.yaml); a price it lacks leaves the
    cost None (unknown), never 0.
    """
    from mlhpc import pricing

    price = (
        pricing.PriceTable.load().get(region, pricing.instance_hour(instance_type)) if instance_type else None
    )
    for row in rows:
        rate = float(row.get("pairs_per_s") or 0)
        row["priced_as"] = f"{instance_type} On-Demand in {region}" if instance_type else None
        row["usd_per_million_pairs"] = (
            round(price.usd / (rate * 3600) * 1e6, 4) if price is not None and rate > 0 else None
        )
    return rows


def payloads(pairs_per_request: int = 1) -> list[dict[str, Any]]:
    """Return request bodies of ``pairs_per_request`` sample pairs each (cycling through the samples)."""
    if pairs_per_request < 1:
        raise ValueError(f"pairs_per_request must be >= 1, got {pairs_per_request}")
    pool = [{"text_a": a, "text_b": b} for a, b in samples.pairs()]
    count = max(len(pool), pairs_per_request)
    cycle = [pool[i % len(pool)] for i in range(count * pairs_per_request)]
    return [{"pairs": cycle[i : i + pairs_per_request]} for i in range(0, len(cycle), pairs_per_request)][
        :count
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(
    model: str, *, max_batch_size: int, max_wait_ms: float, device: str = "cpu", max_length: int = 128,
    threads: int = 0, runtime: str = "torch", startup_timeout_s: float = 300.0, max_queue: int = 0,
    workers: int = 1,
) -> Iterator[str]:  # fmt: skip
    """Run ``python -m workloads.bert.server`` in a subprocess; yield its URL once /healthz answers.

    OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless set): the server shares its
    cores with its own event loop and the load generator, and spinning intra-op threads starve
    them (measured here with another process on one core: a batch-1 MiniLM forward with two spinning
    threads took 154 ms, with passive ones 24 ms).
    """
    port = _free_port()
    argv = [
        sys.executable, "-m", "workloads.bert.server", "--model-uri", model, "--host", "127.0.0.1",
        "--port", str(port), "--device", device, "--max-batch-size", str(max_batch_size),
        "--max-wait-ms", str(max_wait_ms), "--max-queue", str(max(256, 4 * max_batch_size, max_queue)),
        "--max-length-tokens", str(max_length), "--threads", str(threads), "--runtime", runtime,
        "--workers", str(workers),
    ]  # fmt: skip
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(
                    f"the server exited with {proc.returncode} before answering: {err[-2000:]}"
                )
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz within {startup_timeout_s:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scenarios(clients: int, max_batch_size: int, pairs_per_request: int = 1) -> list[tuple[str, int, int]]:
    """Return (name, server max_batch_size, clients) for the baseline(s) and the batched run.

    The serial server answers one request per model call (max_batch_size = the pairs of one
    request); the batched one groups several requests, up to max_batch_size pairs.
    """
    one = pairs_per_request
    return [
        ("serial, 1 client", one, 1),
        (f"serial, {clients} clients", one, clients),
        (f"batched, {clients} clients", max(max_batch_size, one), clients),
    ]


def run_bench(
    *,
    models: Sequence[str],
    clients: int = 10,
    duration_s: float = 20.0,
    warmup_s: float = 3.0,
    rate_per_s: float = 0.0,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    max_length: int = 128,
    device: str = "cpu",
    runtime: str = "torch",
    url: str | None = None,
    pairs_per_request: int = 1,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Measure every scenario for every model; return one row per (model, scenario)."""
    rows: list[dict[str, Any]] = []
    bodies = payloads(pairs_per_request)
    if url is not None:
        result = run_load(
            url, bodies, clients=clients, rate_per_s=rate_per_s, duration_s=duration_s, warmup_s=warmup_s
        )
        return [
            {
                "model": "remote",
                "scenario": f"{url}, {clients} clients",
                "max_batch_size": None,
                **result.summary(),
            }
        ]
    for model in models:
        for name, batch, n in scenarios(clients, max_batch_size, pairs_per_request):
            log(f"bench: {model} / {name} ...")
            with local_server(
                model, max_batch_size=batch, max_wait_ms=max_wait_ms, device=device, max_length=max_length,
                runtime=runtime, max_queue=n * pairs_per_request,  # every client's request fits: no 503 here
            ) as server:  # fmt: skip
                run_load(server, bodies[:4], clients=1, duration_s=1.0, warmup_s=0.0)  # first-call costs
                result = run_load(
                    server, bodies, clients=n, rate_per_s=rate_per_s, duration_s=duration_s, warmup_s=warmup_s
                )
            rows.append({"model": model, "scenario": name, "max_batch_size": batch, **result.summary()})
    return rows


def speedups(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, per model, batched throughput over each serial baseline's."""
    out: dict[str, dict[str, float]] = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        batched = [r for r in mine if r["scenario"].startswith("batched")]
        if not batched:
            continue
        for r in mine:
            if r["scenario"].startswith("serial") and r["pairs_per_s"] > 0:
                key = "vs_" + r["scenario"].replace(", ", "_").replace(" ", "_")
                out.setdefault(model, {})[key] = round(batched[0]["pairs_per_s"] / r["pairs_per_s"], 2)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Return the rows as a markdown table."""
    head = (
        "| model | scenario | pairs/s | p50 ms | p90 ms | p99 ms | errors | $ per M pairs |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
    )
    body = "".join(
        f"| {r['model']} | {r['scenario']} | {r['pairs_per_s']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} "
        f"| {r['p99_ms']:.1f} | {r['error_count']} | "
        + ("unknown" if r.get("usd_per_million_pairs") is None else f"{r['usd_per_million_pairs']:.4f}")
        + " |\n"
        for r in rows
    )
    return head + body


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Draw throughput and latency percentiles per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [f"{r['model']}\n{r['scenario']}" for r in rows]
    x = np.arange(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(9, 2.2 * len(rows)), 4.5))
    left.bar(
        x,
        [r["pairs_per_s"] for r in rows],
        color=["#bbbbbb" if r["scenario"].startswith("serial") else "#2a7ab9" for r in rows],
    )
    left.set_ylabel("sentence pairs / s")
    left.set_title("throughput")
    for i, q in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        right.bar(x + (i - 1) * 0.27, [r[q] for r in rows], width=0.27, label=q.removesuffix("_ms"))
    right.set_ylabel("latency (ms)")
    right.set_yscale("log")
    right.set_title("latency per request")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(x, labels, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(rows: list[dict[str, Any]], out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Write bench.md, bench.json and bench.png; return the JSON document."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"settings": settings, "rows": rows, "speedup": speedups(rows), "cpu_count": os.cpu_count()}
    text = table(rows) + "\nspeedup (batched pairs/s over serial): " + json.dumps(doc["speedup"]) + "\n"
    (out / "bench.md").write_text(text, encoding="utf-8")
    (out / "bench.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    plot(rows, out / "bench.png")
    return doc


def _counts(p: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        p.error(f"{option} takes positive integers separated by commas (e.g. 1,4,16), got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    p = argparse.ArgumentParser(
        prog="python -m workloads.bert.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="minilm only, one round, clients 1,16, 4 s per point")
    p.add_argument(
        "--model", action="append", help="model(s) to serve (default: minilm and bert-base-random)"
    )
    p.add_argument(
        "--clients", default="1,4,16,64", help="closed-loop clients per point (--serial: the largest)"
    )
    p.add_argument(
        "--workers", default="1,2", help="server --workers values to sweep (each: cores / workers threads)"
    )
    p.add_argument(
        "--batch-sizes",
        default="1,2,4,8,16,32,64",
        help="model-only batch sizes (the largest is the server's max batch)",
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="rounds (model only, then served); medians are reported"
    )
    p.add_argument("--wire", default="json", choices=["json", "msgpack"], help="request and answer format")
    p.add_argument(
        "--serial", action="store_true", help="instead: serial (max batch 1) against batched serving"
    )
    p.add_argument("--duration-s", type=float, default=None)
    p.add_argument("--rate-per-s", type=float, default=0.0, help="--serial/--url: fixed total request rate")
    p.add_argument("--max-batch-size", type=int, default=32, help="--serial: the batched server's max batch")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-length-tokens", type=int, default=128)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "neuron"])
    p.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime"], help="CPU engine")
    p.add_argument("--url", default=None, help="drive this running server instead of starting local ones")
    p.add_argument(
        "--pairs-per-request",
        type=int,
        default=1,
        help="sentence pairs in each request (clients that batch themselves, e.g. offline scoring)",
    )
    p.add_argument(
        "--instance-type", default=None, help="price the throughput as this instance (default: by --device)"
    )
    p.add_argument("--region", default="us-east-1", help="the price table's region for --instance-type")
    p.add_argument(invocation.OUT_OPTION, dest="out", type=Path, default=OUT)
    args = p.parse_args(argv)  # fmt: skip
    if args.pairs_per_request < 1:
        p.error(f"--pairs-per-request must be >= 1, got {args.pairs_per_request}")
    if args.repeats < 1:
        p.error(f"--repeats must be >= 1, got {args.repeats}")
    models = args.model or (["minilm"] if args.quick else ["minilm", "bert-base-random"])
    clients = _counts(p, "--clients", "1,16" if args.quick and args.clients == "1,4,16,64" else args.clients)
    if not (args.serial or args.url):
        from workloads.bert import sweep

        duration = args.duration_s or (4.0 if args.quick else 8.0)
        settings = {
            "models": models, "clients": clients, "workers": _counts(p, "--workers", args.workers),
            "batch_sizes": _counts(p, "--batch-sizes", args.batch_sizes), "repeats": 1 if args.quick else args.repeats,
            "duration_s": duration, "max_wait_ms": args.max_wait_ms, "max_length_tokens": args.max_length_tokens,
            "wire": args.wire,
        }  # fmt: skip
        doc = sweep.run_sweep(
            models=models, clients=clients, worker_counts=settings["workers"], batch_sizes=settings["batch_sizes"],
            repeats=settings["repeats"], duration_s=duration, max_wait_ms=args.max_wait_ms,
            max_length=args.max_length_tokens, wire_format=args.wire,
        )  # fmt: skip
        # the sweep runs on this machine's CPUs: priced as a CPU node of the same size (or --instance-type)
        settings["instance_type"] = args.instance_type or PRICED_AS["cpu"]
        settings["region"] = args.region
        for summary in doc["summary"].values():
            with_cost([summary["model_only"], summary["served_best"]], instance_type=settings["instance_type"],
                      region=args.region)  # fmt: skip
        print(sweep.write(doc, args.out, settings))
        print(f"wrote {args.out}/bench.md, bench.json, bench.png")
        return 0
    duration = args.duration_s or (8.0 if args.quick else 20.0)
    settings = {
        "models": models, "clients": max(clients), "duration_s": duration, "rate_per_s": args.rate_per_s,
        "max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms,
        "max_length_tokens": args.max_length_tokens, "device": args.device, "runtime": args.runtime, "url": args.url,
        "pairs_per_request": args.pairs_per_request,
        "instance_type": args.instance_type or PRICED_AS.get(args.device), "region": args.region,
    }  # fmt: skip
    rows = run_bench(
        models=models, clients=max(clients), duration_s=duration, rate_per_s=args.rate_per_s,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_length=args.max_length_tokens,
        device=args.device, runtime=args.runtime, url=args.url, pairs_per_request=args.pairs_per_request,
    )  # fmt: skip
    rows = with_cost(rows, instance_type=settings["instance_type"], region=args.region)
    doc = write(rows, args.out, settings)
    print(table(rows))
    print("speedup (batched pairs/s over serial):", json.dumps(doc["speedup"]))
    print(f"wrote {args.out}/bench.md, bench.json, bench.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
