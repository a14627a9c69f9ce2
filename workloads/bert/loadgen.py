"""A load generator for POST /predict: N concurrent clients, closed loop or a fixed total rate.

Closed loop: each client sends its next request as soon as the last one is answered (the
throughput a server sustains under N users). Fixed rate: requests are scheduled at
``rate_per_s`` in total, spread over the clients, and latency is measured from the *scheduled*
send time, so a server that falls behind is charged for the queueing it causes (no coordinated
omission). Requests scheduled in the window [warmup_s, warmup_s + duration_s) are counted, however
late they are answered; throughput divides by the window or, when answers run past it, by the time
to the last answer (an overloaded server is not flattered).

The clients are coroutines in one process, each with its own keep-alive HTTP/1.1 connection
written and parsed directly on asyncio streams (``http://`` URLs; ``https://`` goes through
httpx). The generator usually shares the machine with the server it measures, so its own CPU
cost counts: httpx spends about 2.4 ms of CPU per request here, the raw client a tenth of that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from workloads.bert.rawhttp import HttpError, RawHttpClient

Post = Callable[[int], Awaitable[int]]  # the index of a payload -> the HTTP status


def encode_bodies(payloads: Sequence[dict[str, Any]], wire_format: str) -> tuple[list[bytes], str]:
    """Return every payload encoded once, and its media type (json or msgpack): no encoding per request."""
    from workloads.bert import wire

    if wire_format == "msgpack":
        import msgpack

        return [msgpack.packb(p, use_bin_type=True) for p in payloads], wire.MSGPACK
    if wire_format != "json":
        raise ValueError(f"wire_format={wire_format!r}: use json or msgpack")
    return [json.dumps(p, separators=(",", ":")).encode() for p in payloads], wire.JSON


@dataclass
class LoadResult:
    """What one load run measured."""

    clients: int
    rate_per_s: float
    duration_s: float
    ok: int = 0
    pairs_ok: int = 0
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0  # window start to the last counted answer (>= duration_s)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def throughput_rps(self) -> float:
        """Answered requests per second in the measured window."""
        return self.ok / max(self.duration_s, self.elapsed_s)

    @property
    def pairs_per_s(self) -> float:
        """Answered sentence pairs per second in the measured window."""
        return self.pairs_ok / max(self.duration_s, self.elapsed_s)

    def percentile_ms(self, q: float) -> float:
        """Return a latency percentile in milliseconds (nan without answers)."""
        if not self.latencies_s:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies_s), q) * 1000)

    def summary(self) -> dict[str, Any]:
        """Return the numbers as a flat dict."""
        return {
            "clients": self.clients,
            "rate_per_s": self.rate_per_s,
            "duration_s": self.duration_s,
            "requests_ok": self.ok,
            "pairs_ok": self.pairs_ok,
            "throughput_rps": round(self.throughput_rps, 2),
            "pairs_per_s": round(self.pairs_per_s, 2),
            "p50_ms": round(self.percentile_ms(50), 2),
            "p90_ms": round(self.percentile_ms(90), 2),
            "p99_ms": round(self.percentile_ms(99), 2),
            "errors": dict(self.errors),
            "error_count": sum(self.errors.values()),
        }


async def _run(
    url: str,
    payloads: Sequence[dict[str, Any]],
    *,
    clients: int,
    rate_per_s: float,
    duration_s: float,
    warmup_s: float,
    timeout_s: float,
    wire_format: str = "json",
) -> LoadResult:
    bodies, media_type = encode_bodies(payloads, wire_format)
    result = LoadResult(clients=clients, rate_per_s=rate_per_s, duration_s=duration_s)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + duration_s)
    counter = itertools.count()
    endpoint = url.rstrip("/") + "/predict"

    async def client(index: int, post: Post) -> None:
        n = 0
        while True:
            if rate_per_s > 0:
                # Client i sends requests i, i+N, i+2N, ... of one global schedule at rate_per_s.
                scheduled = start + (index + n * clients) / rate_per_s
                n += 1
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                scheduled = time.perf_counter()
            if scheduled >= window[1]:
                return
            pick = next(counter) % len(payloads)
            try:
                outcome = str(await post(pick))
            except (httpx.HTTPError, HttpError) as err:
                outcome = type(err).__name__
            done = time.perf_counter()
            if scheduled < window[0]:
                continue
            result.elapsed_s = max(result.elapsed_s, done - window[0])
            if outcome == "200":
                result.ok += 1
                result.pairs_ok += len(payloads[pick]["pairs"])
                result.latencies_s.append(done - scheduled)
            else:
                result.errors[outcome] += 1

    if endpoint.startswith("http://"):
        raws = [RawHttpClient(endpoint, timeout_s=timeout_s, media_type=media_type) for _ in range(clients)]

        def poster(raw: RawHttpClient) -> Post:
            async def post(index: int) -> int:
                return (await raw.post(bodies[index]))[0]

            return post

        try:
            await asyncio.gather(*(client(i, poster(raws[i])) for i in range(clients)))
        finally:
            for raw in raws:
                raw.close()
        return result

    async with httpx.AsyncClient(limits=limits, timeout=timeout_s) as http:

        async def post_httpx(index: int) -> int:
            headers = {"content-type": media_type, "accept": media_type}
            return (await http.post(endpoint, content=bodies[index], headers=headers)).status_code

        await asyncio.gather(*(client(i, post_httpx) for i in range(clients)))
    return result


def run_load(
    url: str,
    payloads: Sequence[dict[str, Any]],
    *,
    clients: int = 10,
    rate_per_s: float = 0.0,
    duration_s: float = 10.0,
    warmup_s: float = 2.0,
    timeout_s: float = 30.0,
    wire_format: str = "json",
) -> LoadResult:
    """Drive ``url`` with ``clients`` concurrent clients (``rate_per_s`` 0: closed loop); return the result."""
    if clients < 1 or duration_s <= 0 or rate_per_s < 0 or not payloads:
        raise ValueError("need clients >= 1, duration_s > 0, rate_per_s >= 0 and at least one payload")
    return asyncio.run(
        _run(
            url,
            payloads,
            clients=clients,
            rate_per_s=rate_per_s,
            duration_s=duration_s,
            warmup_s=warmup_s,
            timeout_s=timeout_s,
            wire_format=wire_format,
        )
    )
