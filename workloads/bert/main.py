"""The BERT job: ``mode=bench`` load-tests serial vs batched serving; ``mode=serve`` runs the server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workloads.bert.spec import SPEC, Args
from workloads.common.entry import RunContext, WorkloadError, run


def job(args: Args, ctx: RunContext) -> Mapping[str, Any]:
    """Run the load test (metrics: the table's numbers) or serve until stopped."""
    if args.mode == "serve":
        from workloads.bert import server

        argv = [
            "--model-uri", args.model_uri, "--port", str(args.port), "--device", args.device,
            "--precision", args.precision, "--runtime", args.runtime, "--max-length-tokens", str(args.max_length_tokens),
            "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms),
            "--max-queue", str(args.max_queue), "--threshold", str(args.threshold),
        ]  # fmt: skip
        code = server.main(argv)
        if code:
            raise WorkloadError(f"the server could not start with model_uri={args.model_uri!r} (see above)")
        return {"mode": "serve"}
    from workloads.bert import bench, models

    if args.url is None:
        models.resolve(args.model_uri)  # a wrong model is a user error before any server starts
    if args.max_queue < args.max_batch_size:
        raise WorkloadError(
            f"max_queue={args.max_queue} is below max_batch_size={args.max_batch_size}; "
            "give max_queue at least max_batch_size"
        )
    rows = bench.run_bench(
        models=[args.model_uri],
        clients=args.clients,
        duration_s=args.duration_s,
        rate_per_s=args.rate_per_s,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_length=args.max_length_tokens,
        device=args.device if args.device != "auto" else "cpu",
        runtime=args.runtime,
        url=args.url,
        log=ctx.log,
    )
    doc = bench.write(rows, ctx.out, args.model_dump(mode="json"))
    ctx.log(bench.table(rows))
    metrics: dict[str, Any] = {"mode": "bench", "speedup": doc["speedup"]}
    for row in rows:
        key = row["scenario"].replace(", ", "_").replace(" ", "_")
        metrics[key] = {k: row[k] for k in ("pairs_per_s", "p50_ms", "p90_ms", "p99_ms", "error_count")}
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Run the BERT job (``python -m workloads.bert --help`` lists the options)."""
    return run(SPEC, job, argv)
