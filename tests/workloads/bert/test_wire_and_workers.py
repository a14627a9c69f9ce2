"""MessagePack and JSON on /predict, the drain state of the app, and how --workers shares a device."""

from __future__ import annotations

import msgpack
import pytest
from fastapi.testclient import TestClient

from workloads.bert import server, wire, workers
from workloads.bert.predictor import Pair, Predictor
from workloads.common.entry import WorkloadError

PAIR = {"text_a": "The bank left rates unchanged.", "text_b": "Rates were not changed by the bank."}


@pytest.fixture
def client(tiny_predictor: Predictor) -> TestClient:
    app = server.create_app(tiny_predictor, server.ServeSettings(max_batch_size=4, max_wait_ms=1))
    with TestClient(app) as c:
        yield c  # type: ignore[misc]


def test_msgpack_request_and_answer_equal_the_json_ones(client: TestClient) -> None:
    as_json = client.post("/predict", json={"pairs": [PAIR]})
    as_msgpack = client.post(
        "/predict",
        content=msgpack.packb({"pairs": [PAIR]}),
        headers={"content-type": wire.MSGPACK, "accept": wire.MSGPACK},
    )
    assert as_msgpack.status_code == 200 and as_msgpack.headers["content-type"] == wire.MSGPACK
    assert msgpack.unpackb(as_msgpack.content) == as_json.json()
    # a msgpack body with a JSON answer (no Accept): the formats are independent
    mixed = client.post(
        "/predict", content=msgpack.packb({"pairs": [PAIR]}), headers={"content-type": wire.MSGPACK}
    )
    assert mixed.json() == as_json.json()


def test_bad_msgpack_and_unknown_media_types_say_what_to_send(client: TestClient) -> None:
    r = client.post("/predict", content=b"\xc1", headers={"content-type": wire.MSGPACK})
    assert r.status_code == 422 and "not valid MessagePack" in r.json()["reasons"][0]
    r = client.post(
        "/predict",
        content=msgpack.packb({"pairs": [{"text_a": "x"}]}),
        headers={"content-type": wire.MSGPACK},
    )
    assert r.status_code == 422 and r.json()["reasons"] == ["pairs.0.text_b is missing"]
    r = client.post("/predict", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json()["reason"] == (
        "Content-Type 'application/x-www-form-urlencoded' is not read here; send application/json or application/msgpack"
    )


def test_draining_fails_health_and_closes_connections_but_still_answers(client: TestClient) -> None:
    drain: server.Drain = client.app.state.drain  # type: ignore[attr-defined]
    assert client.get("/healthz").status_code == 200
    client.post("/predict", json={"pairs": [PAIR]})
    drain.begin()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "draining"
    answer = client.post("/predict", json={"pairs": [PAIR]})
    assert answer.status_code == 200 and answer.headers["connection"] == "close"
    assert "bert_draining 1.0" in client.get("/metrics").text
    assert (drain.accepted, drain.answered, drain.dropped) == (2, 2, 0)
    assert drain.summary().endswith(": 2 accepted, 2 answered, 0 dropped")


def test_model_inputs_are_the_tensors_predict_runs(tiny_predictor: Predictor) -> None:
    pairs = [Pair("a short one.", "another."), Pair("a rather longer sentence than the others", "b")]
    seen: list[tuple[int, ...]] = []
    engine = tiny_predictor.engine
    original = engine.run
    try:
        engine.run = lambda batch: (seen.append(tuple(batch["input_ids"].shape)), original(batch))[1]  # type: ignore[method-assign]
        tiny_predictor.predict(pairs)
    finally:
        engine.run = original  # type: ignore[method-assign]
    assert [tuple(t["input_ids"].shape) for t in tiny_predictor.model_inputs(pairs)] == seen


def test_threads_share_the_cores_out_and_neuron_cores_split_evenly() -> None:
    assert [workers.threads_per_worker(w, 2) for w in (1, 2, 4)] == [2, 1, 1]
    assert workers.threads_per_worker(3, 16) == 5
    assert workers.split_cores("0-3", 2) == ["0,1", "2,3"]
    assert workers.split_cores("4,5,8-9", 4) == ["4", "5", "8", "9"]
    with pytest.raises(WorkloadError, match=r"--workers 4 cannot share 6 NeuronCores .* use a divisor of 6"):
        workers.split_cores("0-5", 4)
    with pytest.raises(WorkloadError, match="not a list of NeuronCore ids"):
        workers.parse_cores("0-x")
    envs = workers.worker_envs(2, threads=0, device="neuron", environ={workers.NEURON_CORES_ENV: "0-1"})
    assert [e[workers.NEURON_CORES_ENV] for e in envs] == ["0", "1"]
    with pytest.raises(WorkloadError, match="needs NEURON_RT_VISIBLE_CORES"):
        workers.worker_envs(2, threads=0, device="neuron", environ={})
    assert workers.worker_envs(2, threads=3, device="cpu", environ={})[1]["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "error: --workers 0 is out of range; use 1 to 64"),
        (["--threads", "-1"], "error: --threads -1 is negative; use 0 (automatic) or a positive count"),
        (["--drain-delay-s", "-2"], "error: --drain-delay-s -2.0 is negative; use 0 or more seconds"),
    ],
)
def test_bad_server_options_exit_2_with_the_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.main(argv) == 2
    assert capsys.readouterr().err.strip() == message
