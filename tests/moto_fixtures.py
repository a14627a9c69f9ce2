"""Fixtures for tests that need a moto server on loopback (the CLI and a job's own processes reach one fake AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on loopback: the CLI and the job's own processes reach the same fake AWS."""
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/config", json={"batch": {"use_docker": False}}, timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


@pytest.fixture
def node_properties_described(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's DescribeJobDefinitions return nodeProperties, as AWS does (moto 5.2.5 leaves them out)."""
    from moto.batch.models import JobDefinition

    plain = JobDefinition.describe

    def describe(self: Any) -> dict[str, Any]:
        result = plain(self)
        if self.node_properties is not None:
            result.setdefault("nodeProperties", self.node_properties)
        return result

    monkeypatch.setattr(JobDefinition, "describe", describe)
