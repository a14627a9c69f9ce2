"""The HTTP server through FastAPI's TestClient: answers, batching, bad input, overload, metrics."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient

from workloads.bert.batcher import DynamicBatcher, OverloadedError
from workloads.bert.predictor import Predictor
from workloads.bert.server import ServeSettings, create_app

PAIR = {"text_a": "The bank left rates unchanged.", "text_b": "Rates were not changed by the bank."}


@pytest.fixture
def client(minilm_predictor: Predictor) -> TestClient:
    with TestClient(create_app(minilm_predictor, ServeSettings(max_batch_size=8, max_wait_ms=20))) as c:
        yield c  # type: ignore[misc]


def test_predict_returns_label_similarity_and_flags(client: TestClient) -> None:
    r = client.post(
        "/predict",
        json={"pairs": [PAIR, {"text_a": "The bank left rates unchanged.", "text_b": "I like tea."}]},
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["label"] == "paraphrase" and first["similarity"] > second["similarity"]
    assert second["label"] == "not_paraphrase" and first["truncated"] is False
    assert r.json()["task"] == "embed"


def test_healthz_and_prometheus_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/predict", json={"pairs": [PAIR]})
    text = client.get("/metrics").text
    assert 'bert_requests_total{code="200"} 1.0' in text
    assert "bert_batch_size_bucket" in text and "bert_request_latency_seconds_count 1.0" in text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"pairs": [{"text_a": "  ", "text_b": "x"}]}, "pairs.0.text_a is empty or only whitespace"),
        ({"pairs": [{"text_a": "x"}]}, "pairs.0.text_b is missing"),
        ({"pairs": []}, "pairs List should have at least 1 item"),
        ({"sentences": ["x"]}, "sentences is not a known field"),
        ({"pairs": [{"text_a": 3, "text_b": "x"}]}, "pairs.0.text_a Input should be a valid string"),
    ],
)
def test_bad_input_is_422_with_the_reason(client: TestClient, body: object, reason: str) -> None:
    r = client.post("/predict", json=body)
    assert r.status_code == 422
    assert any(reason in text for text in r.json()["reasons"]), r.json()


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/predict", content=b'{"pairs": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["reasons"][0]


def test_too_many_pairs_in_one_request_is_422(client: TestClient) -> None:
    r = client.post("/predict", json={"pairs": [PAIR] * 9})
    assert r.status_code == 422 and "at most 8 (max_batch_size)" in r.json()["reasons"][0]


def test_over_long_input_is_truncated_and_says_so(client: TestClient) -> None:
    long = {"text_a": " ".join(["word"] * 200), "text_b": "word"}
    r = client.post("/predict", json={"pairs": [long]})
    assert r.status_code == 200 and r.json()["results"][0]["truncated"] is True


def test_concurrent_requests_are_batched_together(minilm_predictor: Predictor) -> None:
    app = create_app(minilm_predictor, ServeSettings(max_batch_size=8, max_wait_ms=200))
    with TestClient(app) as c:
        results: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(c.post("/predict", json={"pairs": [PAIR]}).status_code)
            )
            for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = app.state.batcher.stats
    assert results == [200] * 6
    assert stats.items == 6 and stats.batches < 6  # at least two requests shared a model call


def test_full_queue_answers_503_with_retry_after(minilm_predictor: Predictor) -> None:
    app = create_app(minilm_predictor, ServeSettings(max_batch_size=1, max_wait_ms=0, max_queue=1))
    release = threading.Event()
    original = minilm_predictor.predict

    def slow(pairs):  # type: ignore[no-untyped-def]
        release.wait(10)
        return original(pairs)

    with TestClient(app) as c:
        app.state.batcher.fn = slow
        first = threading.Thread(target=lambda: c.post("/predict", json={"pairs": [PAIR]}))
        first.start()
        time.sleep(0.3)  # the first request is now inside the (blocked) model call
        second = threading.Thread(target=lambda: c.post("/predict", json={"pairs": [PAIR]}))
        second.start()
        time.sleep(0.3)  # the second waits in the queue, which is now full
        r = c.post("/predict", json={"pairs": [PAIR]})
        release.set()
        first.join()
        second.join()
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "overloaded"


def test_batcher_respects_max_batch_size_and_order() -> None:
    seen: list[int] = []

    def double(items: list[int]) -> list[int]:
        seen.append(len(items))
        return [2 * i for i in items]

    async def scenario() -> list[list[int]]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(
            double, max_batch_size=4, max_wait_ms=50, max_queue=100
        )
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(5)))
        finally:
            await batcher.stop()

    out = asyncio.run(scenario())
    assert out == [[2 * i, 2 * (i + 100)] for i in range(5)]
    assert max(seen) <= 4 and sum(seen) == 10


def test_batcher_refuses_when_full() -> None:
    release = threading.Event()

    def blocked(items: list[int]) -> list[int]:
        release.wait(10)
        return items

    async def scenario() -> None:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(
            blocked, max_batch_size=2, max_wait_ms=0, max_queue=2
        )
        await batcher.start()
        try:
            running = asyncio.ensure_future(batcher.submit([1, 2]))  # taken at once, blocks in the model
            await asyncio.sleep(0.05)
            queued = asyncio.ensure_future(batcher.submit([3, 4]))  # fills the queue
            await asyncio.sleep(0.05)
            with pytest.raises(OverloadedError, match="2 pairs are queued"):
                await batcher.submit([5])
            release.set()
            assert await running == [1, 2] and await queued == [3, 4]
        finally:
            release.set()
            await batcher.stop()

    asyncio.run(scenario())
