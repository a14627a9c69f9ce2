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
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from workloads.bert.batcher import DynamicBatcher, OverloadedError
from workloads.bert.predictor import Answer, Pair, Predictor


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty or only whitespace; send the sentence text")
    return value


Text = Annotated[str, Field(max_length=100_000), AfterValidator(_not_blank)]


class PairIn(BaseModel):
    """One sentence pair."""

    model_config = ConfigDict(extra="forbid")
    text_a: Text
    text_b: Text


class PredictRequest(BaseModel):
    """The body of POST /predict."""

    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn] = Field(min_length=1)


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
        self.queued = Gauge("bert_queued_pairs", "Pairs waiting for a batch", registry=self.registry)

    def on_batch(self, size: int, seconds: float) -> None:
        """Record one model call."""
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


def _reason(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "is missing"
    elif error.get("type") == "json_invalid":
        message = f"is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    elif error.get("type") == "extra_forbidden":
        message = 'is not a known field (send {"pairs": [{"text_a": ..., "text_b": ...}]})'
    return f"{where} {message}"


def create_app(predictor: Predictor, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """Return the FastAPI app serving a predictor through a dynamic batcher."""
    metrics = Metrics()

    def run_batch(pairs: list[Pair]) -> list[Answer]:
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

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.requests.labels(code="422").inc()
        reasons = [_reason(e) for e in exc.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "reasons": reasons})

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": settings.model_name,
            "task": predictor.task.value,
            "device": predictor.engine.device.value,
            "max_length": predictor.max_length,
            "queued_pairs": batcher.queued,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queued.set(batcher.queued)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict")
    async def predict(body: PredictRequest) -> JSONResponse:
        if len(body.pairs) > settings.max_batch_size:
            metrics.requests.labels(code="422").inc()
            return JSONResponse(
                status_code=422,
                content={
                    "error": "invalid request",
                    "reasons": [
                        f"pairs has {len(body.pairs)} items; at most {settings.max_batch_size} "
                        "(max_batch_size) per request: split the request"
                    ],
                },
            )
        started = time.perf_counter()
        try:
            answers = await batcher.submit([Pair(p.text_a, p.text_b) for p in body.pairs])
        except OverloadedError as err:
            metrics.requests.labels(code="503").inc()
            return JSONResponse(
                status_code=503,
                content={"error": "overloaded", "reason": str(err)},
                headers={"Retry-After": str(err.retry_after_s)},
            )
        metrics.latency.observe(time.perf_counter() - started)
        metrics.requests.labels(code="200").inc()
        metrics.pairs.inc(len(answers))
        truncated = sum(a.truncated for a in answers)
        if truncated:
            metrics.truncated.inc(truncated)
        return JSONResponse(
            {
                "model": settings.model_name,
                "task": predictor.task.value,
                "max_length": predictor.max_length,
                "results": [a.as_dict() for a in answers],
            }
        )

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
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    return p  # fmt: skip


def make_predictor(
    model_uri: str, *, device: str, precision: str, max_length: int, max_batch_size: int, threshold: float,
    runtime: str = "torch",
) -> Predictor:  # fmt: skip
    """Load a model and build its engine and predictor (Neuron compiles for max_batch_size x max_length)."""
    from workloads.bert import engines, models

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


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model and serve it until stopped (SIGTERM/SIGINT: uvicorn drains and exits)."""
    import torch
    import uvicorn

    from workloads.common.entry import WorkloadError

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
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
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
