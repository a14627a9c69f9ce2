"""The BERT workload's contract: its arguments, resources and backends."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlhpc.spec import Backend, Resources, WorkloadArgs, WorkloadSpec


class Args(WorkloadArgs):
    """Options of a BERT run: a load test of the batching server (bench) or serving (serve)."""

    mode: Literal["bench", "serve"] = Field(
        default="bench",
        description="bench: serial vs dynamic batching under load; serve: run the HTTP server.",
    )
    model_uri: str = Field(
        default="minilm",
        min_length=1,
        description="minilm, bert-base-random, bert-tiny-random, a model directory or an s3:// prefix.",
    )
    device: Literal["auto", "cpu", "cuda", "neuron"] = Field(
        default="auto", description="auto: Neuron, GPU, CPU."
    )
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        default="auto", description="Weights: auto = bf16/fp16 on a GPU, fp32 on CPU (Neuron auto-casts)."
    )
    runtime: Literal["torch", "onnxruntime"] = Field(
        default="torch",
        description="CPU engine: PyTorch eager, or ONNX Runtime (needs the onnxruntime package).",
    )
    max_length_tokens: int = Field(
        default=128, ge=8, le=512, description="Tokens per input; longer is truncated."
    )
    max_batch_size: int = Field(default=32, ge=1, le=512, description="Pairs per model call at most.")
    max_wait_ms: float = Field(default=5.0, ge=0, le=1000, description="Longest wait to fill a batch.")
    max_queue: int = Field(
        default=256, ge=1, le=100_000, description="Queued pairs before 503 + Retry-After."
    )
    clients: int = Field(default=10, ge=1, le=1024, description="bench: concurrent clients.")
    rate_per_s: float = Field(
        default=0.0, ge=0, le=1_000_000, description="bench: total request rate; 0: closed loop."
    )
    duration_s: float = Field(
        default=20.0, gt=0, le=3600, description="bench: measured seconds per scenario."
    )
    url: str | None = Field(
        default=None, description="bench: drive this running server (http://...) instead."
    )
    port: int = Field(default=8080, ge=1024, le=65535, description="serve: TCP port.")
    threshold: float = Field(
        default=0.6, ge=-1, le=1, description="Embedding models: cosine for 'paraphrase'."
    )


SPEC = WorkloadSpec(
    name="bert",
    description="BERT sentence-pair inference (paraphrase): dynamic-batching HTTP server and load test.",
    module="workloads.bert",
    args=Args,
    # A CPU job: the offline load test on Batch, or one service replica's worth of CPU locally.
    resources=Resources(
        min_vcpus_per_node=4, min_memory_per_node_mib=8192, shm_size_mib=1024, timeout_s=3600
    ),
    image="mlhpc/bert",
    backends=frozenset({Backend.LOCAL, Backend.BATCH, Backend.EKS}),
    default_backend=Backend.LOCAL,
    outputs=("metrics.json", "bench.md", "bench.json", "bench.png"),
    demo_args={"mode": "bench", "model_uri": "minilm", "device": "cpu", "duration_s": 5.0, "clients": 10},
)
