"""The load test's request bodies and scenarios, one pair or several per request."""

from __future__ import annotations

import pytest

from workloads.bert import samples
from workloads.bert.bench import payloads, scenarios


def test_one_pair_per_request_covers_every_sample_once() -> None:
    bodies = payloads()
    assert [(b["pairs"][0]["text_a"], b["pairs"][0]["text_b"]) for b in bodies] == samples.pairs()
    assert all(len(b["pairs"]) == 1 for b in bodies)


def test_several_pairs_per_request_cycle_through_the_samples() -> None:
    pool = samples.pairs()
    bodies = payloads(16)
    flat = [(p["text_a"], p["text_b"]) for b in bodies for p in b["pairs"]]
    assert all(len(b["pairs"]) == 16 for b in bodies)
    assert flat == [pool[i % len(pool)] for i in range(len(flat))]
    with pytest.raises(ValueError, match="pairs_per_request must be >= 1, got 0"):
        payloads(0)


def test_the_serial_baseline_answers_one_whole_request_per_model_call() -> None:
    assert scenarios(10, 32) == [
        ("serial, 1 client", 1, 1),
        ("serial, 10 clients", 1, 10),
        ("batched, 10 clients", 32, 10),
    ]
    # with 16 pairs per request the serial server takes exactly one request per call (16 pairs)
    assert [batch for _, batch, _ in scenarios(64, 128, 16)] == [16, 16, 128]
    assert [batch for _, batch, _ in scenarios(4, 8, 16)] == [16, 16, 16]  # never below one request
