"""Length-sorted chunking of a batch (against exhaustive search) and the load generator's HTTP client."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from tests.numeric import below, prob_gap
from workloads.bert import engines
from workloads.bert.models import LoadedModel
from workloads.bert.predictor import Pair, Predictor, plan_chunks
from workloads.bert.rawhttp import ConnectError, ProtocolError, RawHttpClient


def _cost(chunks: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(overhead + len(c) * max(lengths[i] for i in c) for c in chunks)


def _exhaustive(lengths: list[int], overhead: int) -> int:
    # Independent reference: every way to cut the length-sorted order into contiguous runs
    # (2^(n-1) of them). Contiguous runs of the sorted order suffice: swapping two items between
    # chunks so each chunk holds a contiguous length range never raises a chunk's maximum.
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = None
    for cuts in itertools.product([False, True], repeat=len(order) - 1):
        chunks, current = [], [order[0]]
        for flag, item in zip(cuts, order[1:], strict=True):
            if flag:
                chunks.append(current)
                current = []
            current.append(item)
        chunks.append(current)
        cost = _cost(chunks, lengths, overhead)
        best = cost if best is None else min(best, cost)
    assert best is not None
    return best


@pytest.mark.parametrize("seed", range(6))
def test_plan_chunks_is_optimal_and_covers_every_input_once(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.randint(3, 40) for _ in range(rng.randint(1, 11))]
    overhead = rng.choice([0, 8, 64])
    chunks = plan_chunks(lengths, overhead)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    assert _cost(chunks, lengths, overhead) == _exhaustive(lengths, overhead)


def test_plan_chunks_keeps_equal_lengths_together_and_a_pair_whole() -> None:
    assert plan_chunks([15, 17]) == [[0, 1]]  # one pair of the bench: never two forward passes
    assert plan_chunks([5, 5, 5], overhead_tokens=0) == [[0, 1, 2]]
    assert plan_chunks([]) == []


def test_chunked_batch_answers_equal_one_at_a_time(tiny: LoadedModel) -> None:
    # Sorting into chunks and restoring the order must give every pair its own answer. Overhead 0
    # makes every distinct length its own chunk; each pair alone is the reference (1e-5: float32
    # summation order only).
    predictor = Predictor(tiny, engines.build_engine(tiny, device="cpu"), max_length=32)
    predictor.chunk_overhead_tokens = 0
    words = ["the", "committee", "said", "on", "tuesday", "that", "it", "would", "publish", "the", "report"]
    pairs = [Pair(" ".join(words[:k]), " ".join(words[-j:])) for k, j in ((1, 9), (8, 2), (3, 3), (11, 1))]
    lengths = [len(predictor.loaded.tokenizer(p.text_a, p.text_b)["input_ids"]) for p in pairs]
    assert len(plan_chunks(lengths, 0)) > 1
    together = predictor.predict(pairs)
    for pair, answer in zip(pairs, together, strict=True):
        alone = predictor.predict([pair])[0]
        below("chunked vs alone probability", prob_gap(answer, alone), 1e-5, source="float32 summation order")


async def _serve_once(response: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_raw_client_reads_chunked_bodies_and_reconnects_after_close() -> None:
    async def main() -> tuple[int, bytes, int, bytes]:
        chunked = (
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        server, port = await _serve_once(chunked + b"4\r\nbusy\r\n3\r\n!!!\r\n0\r\n\r\n")
        client = RawHttpClient(f"http://127.0.0.1:{port}/predict", timeout_s=5)
        first = await client.post(b"{}")
        second = await client.post(b"{}")  # the server closed the connection: a new one is opened
        server.close()
        return (*first, *second)

    status, body, status2, body2 = asyncio.run(main())
    assert (status, body, status2, body2) == (503, b"busy!!!", 503, b"busy!!!")


def test_raw_client_errors_are_named() -> None:
    async def main() -> None:
        server, port = await _serve_once(b"garbage\r\n\r\n")
        with pytest.raises(ProtocolError, match=r"not an HTTP/1\.x status line"):
            await RawHttpClient(f"http://127.0.0.1:{port}/", timeout_s=5).post(b"{}")
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectError, match=f"127.0.0.1:{port}"):
            await RawHttpClient(f"http://127.0.0.1:{port}/", timeout_s=5).post(b"{}")

    asyncio.run(main())
    with pytest.raises(ValueError, match="plain http"):
        RawHttpClient("https://example.com/predict")
