"""The HTTP server: POST /predict, GET /healthz, GET /metrics (Prometheus), with dynamic batching.

``python -m workloads.bert.server --model-uri minilm --port 8080`` serves a model; the
Kubernetes Deployment of the InferenceStack runs exactly this command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from workloads.bert import wire, workers
from workloads.bert.batcher import DynamicBatcher, OverloadedError

if TYPE_CHECKING:  # the supervisor of --workers N never loads torch: only its workers do
    from workloads.bert.predictor import Answer, Pair, Predictor

# Kept importable from here: the request models live with the wire formats that parse them.
PairIn = wire.PairIn
PredictRequest = wire.PredictRequest


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and protects itself."""

    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256
    model_name: str = "model"


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bert_requests", "HTTP /predict requests by status code", ["code"], registry=self.registry
        )
        self.pairs = Counter("bert_pairs", "Sentence pairs answered", registry=self.registry)
        self.truncated = Counter(
            "bert_truncated_pairs", "Pairs truncated to max_length", registry=self.registry
        )
        self.latency = Histogram(
            "bert_request_latency_seconds",
            "Time from request parsed to answer ready",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "bert_batch_size",
            "Pairs per model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.batch_seconds = Histogram("bert_batch_seconds", "Time of one model call", registry=self.registry)
        self.queued = Gauge(
            "bert_queued_pairs", "Pairs waiting for a batch", registry=self.registry,
            multiprocess_mode="livesum",
        )  # fmt: skip
        self.draining = Gauge(
            "bert_draining", "1 while the server drains after SIGTERM", registry=self.registry,
            multiprocess_mode="livemax",
        )  # fmt: skip

    def exposition(self) -> bytes:
        """Return the metrics in Prometheus' text format: every worker's together under ``--workers N``.

        With several worker processes a scrape reaches one of them; prometheus_client's
        multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, which the supervisor sets) keeps each
        process's values in files and sums them here, so the pod's numbers are whole.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def on_batch(self, size: int, seconds: float) -> None:
        """Record one model call."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


@dataclass
class Drain:
    """Whether the server is draining (SIGTERM received), and the requests it accepted and answered.

    ``accepted`` counts /predict requests whose handler ran, ``answered`` those that returned a
    response (any status), ``dropped`` those cancelled before answering (only past the drain
    timeout): after a drain ``accepted == answered`` means no accepted request was lost.
    """

    draining: bool = False
    began: float = 0.0
    accepted: int = 0
    answered: int = 0
    dropped: int = 0

    def begin(self) -> None:
        """Start draining: readiness fails and every answer asks the client to close its connection."""
        if not self.draining:
            self.draining, self.began = True, time.monotonic()

    def summary(self) -> str:
        """Return the line the server logs when it has drained (the drain test reads it)."""
        took = time.monotonic() - self.began if self.draining else 0.0
        return (
            f"drained in {took:.2f} s: {self.accepted} accepted, {self.answered} answered, "
            f"{self.dropped} dropped"
        )


def create_app(predictor: Predictor, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """Return the FastAPI app serving a predictor through a dynamic batcher."""
    from workloads.bert.predictor import Pair

    metrics = Metrics()
    drain = Drain()

    def run_batch(pairs: list[Pair]) -> list[Answer]:
        # Runs in the batcher's worker thread: the whole formed batch is tokenised here, in one
        # call of the fast tokenizer, off the event loop (which keeps parsing and answering).
        return predictor.predict(pairs)

    batcher: DynamicBatcher[Pair, Answer] = DynamicBatcher(
        run_batch,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        on_batch=metrics.on_batch,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="mlhpc BERT sentence-pair service", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.metrics = metrics
    app.state.drain = drain

    def respond(status: int, doc: Any, accept: str | None, headers: dict[str, str] | None = None) -> Response:
        content, media = wire.encode(doc, accept)
        headers = dict(headers or {})
        if drain.draining:
            # Clients reconnect for their next request; the Service then sends it to another pod.
            headers["connection"] = "close"
        return Response(content, status_code=status, media_type=media, headers=headers)

    def invalid(reasons: list[str], accept: str | None) -> Response:
        metrics.requests.labels(code="422").inc()
        return respond(422, {"error": "invalid request", "reasons": reasons}, accept)

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        doc = {
            "status": "draining" if drain.draining else "ok",
            "model": settings.model_name,
            "task": predictor.task.value,
            "device": predictor.engine.device.value,
            "max_length": predictor.max_length,
            "queued_pairs": batcher.queued,
            "pid": os.getpid(),
        }
        # Draining: readiness fails (503), so no Service sends this pod new requests.
        return respond(503 if drain.draining else 200, doc, None)

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queued.set(batcher.queued)
        metrics.draining.set(1 if drain.draining else 0)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def answer(request: Request) -> Response:
        accept = request.headers.get("accept")
        try:
            body = wire.decode(await request.body(), request.headers.get("content-type"))
        except wire.UnsupportedMediaType as err:
            metrics.requests.labels(code="415").inc()
            return respond(415, {"error": "unsupported media type", "reason": str(err)}, accept)
        except wire.BadRequest as err:
            return invalid(err.reasons, accept)
        if len(body.pairs) > settings.max_batch_size:
            return invalid(
                [
                    f"pairs has {len(body.pairs)} items; at most {settings.max_batch_size} "
                    "(max_batch_size) per request: split the request"
                ],
                accept,
            )
        started = time.perf_counter()
        try:
            answers = await batcher.submit([Pair(p.text_a, p.text_b) for p in body.pairs])
        except OverloadedError as err:
            metrics.requests.labels(code="503").inc()
            return respond(
                503,
                {"error": "overloaded", "reason": str(err)},
                accept,
                {"Retry-After": str(err.retry_after_s)},
            )
        metrics.latency.observe(time.perf_counter() - started)
        metrics.requests.labels(code="200").inc()
        metrics.pairs.inc(len(answers))
        truncated = sum(a.truncated for a in answers)
        if truncated:
            metrics.truncated.inc(truncated)
        doc = {
            "model": settings.model_name,
            "task": predictor.task.value,
            "max_length": predictor.max_length,
            "results": [a.as_dict() for a in answers],
        }
        return respond(200, doc, accept)

    @app.post(
        "/predict",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    wire.JSON: {"schema": wire.PredictRequest.model_json_schema()},
                    wire.MSGPACK: {"schema": wire.PredictRequest.model_json_schema()},
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        drain.accepted += 1
        try:
            response = await answer(request)
        except BaseException:
            drain.dropped += 1
            raise
        drain.answered += 1
        return response

    return app


def build_parser() -> argparse.ArgumentParser:
    """Return the server's command-line options."""
    p = argparse.ArgumentParser(prog="python -m workloads.bert.server", description=__doc__)
    p.add_argument(
        "--model-uri",
        default=os.environ.get("MODEL_URI", "minilm"),
        help="built-in name (minilm, bert-base-random, bert-tiny-random), directory or s3:// prefix",
    )
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "neuron"])
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime"], help="CPU engine")
    p.add_argument("--max-length-tokens", type=int, default=128)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-queue", type=int, default=256)
    p.add_argument("--threshold", type=float, default=0.6)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port and the device, each with its own model and batcher "
        f"(1-{workers.MAX_WORKERS}; on Neuron each gets its share of NEURON_RT_VISIBLE_CORES)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads per worker (0: the CPUs this container may use / workers, at least 1)",
    )
    p.add_argument(
        "--drain-delay-s",
        type=float,
        default=0.0,
        help="after SIGTERM, keep serving this long with /healthz answering 503 (endpoints are removed) "
        "before the listener closes",
    )
    p.add_argument(
        "--drain-timeout-s",
        type=float,
        default=25.0,
        help="after the listener closes, the longest wait for accepted requests to be answered; keep "
        "delay + timeout below the pod's terminationGracePeriodSeconds",
    )
    return p  # fmt: skip


def make_predictor(
    model_uri: str, *, device: str, precision: str, max_length: int, max_batch_size: int, threshold: float,
    runtime: str = "torch",
) -> Predictor:  # fmt: skip
    """Load a model and build its engine and predictor (Neuron compiles for max_batch_size x max_length)."""
    from workloads.bert import engines, models
    from workloads.bert.predictor import Predictor

    loaded = models.load(model_uri)
    engine = engines.build_engine(
        loaded,
        device=device,
        precision=precision,
        static_batch=max(1, min(max_batch_size, 8)),
        static_seq_len=max_length,
        runtime=runtime,
    )
    return Predictor(loaded, engine, max_length=max_length, threshold=threshold)


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values the server cannot run with (WorkloadError naming the value and the range)."""
    from workloads.common.entry import WorkloadError

    if not 1 <= args.workers <= workers.MAX_WORKERS:
        raise WorkloadError(f"--workers {args.workers} is out of range; use 1 to {workers.MAX_WORKERS}")
    if args.threads < 0:
        raise WorkloadError(f"--threads {args.threads} is negative; use 0 (automatic) or a positive count")
    for name in ("drain_delay_s", "drain_timeout_s"):
        if getattr(args, name) < 0:
            option = "--" + name.replace("_", "-")
            raise WorkloadError(f"{option} {getattr(args, name)} is negative; use 0 or more seconds")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT, then drain: readiness fails, accepted requests are answered, exit 0."""
    from workloads.common.entry import WorkloadError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    worker = workers.WorkerHandle.from_env()
    try:
        check_options(args)
        if args.workers > 1 and worker is None:
            return workers.supervise(
                [sys.executable, "-m", "workloads.bert.server", *argv],
                count=args.workers, host=args.host, port=args.port, threads=args.threads, device=args.device,
            )  # fmt: skip
        import torch

        torch.set_num_threads(args.threads or workers.threads_per_worker(args.workers))
        predictor = make_predictor(
            args.model_uri,
            device=args.device,
            precision=args.precision,
            max_length=args.max_length_tokens,
            max_batch_size=args.max_batch_size,
            threshold=args.threshold,
            runtime=args.runtime,
        )
        settings = ServeSettings(
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
            max_queue=args.max_queue,
            model_name=args.model_uri,
        )
        app = create_app(predictor, settings)
    except (WorkloadError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    drain: Drain = app.state.drain
    server = workers.serve(
        app, host=args.host, port=args.port, worker=worker, on_drain=drain.begin,
        drain_delay_s=args.drain_delay_s, drain_timeout_s=args.drain_timeout_s,
    )  # fmt: skip
    if drain.draining:
        where = f"worker {worker.index}" if worker else "server"
        print(f"bert {where} (pid {os.getpid()}): {drain.summary()}", file=sys.stderr, flush=True)
    return 0 if server.started or drain.draining else 1


if __name__ == "__main__":
    raise SystemExit(main())
