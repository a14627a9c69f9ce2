"""The entrypoint, the spec and the load test (quick, real HTTP); `make submit-bert`: tests/cli/test_bert_deploy.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlhpc.spec import SpecError
from workloads.bert.main import main
from workloads.bert.spec import SPEC


def test_spec_rejects_out_of_range_values() -> None:
    with pytest.raises(SpecError, match="max_batch_size"):
        SPEC.parse_sets(["max_batch_size=0"])
    with pytest.raises(SpecError, match="one of: bench, serve"):
        SPEC.parse_sets(["mode=train"])


def test_unknown_model_is_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--model-uri", str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture
def live_server(tiny_predictor):  # type: ignore[no-untyped-def]
    """Serve the tiny classifier with uvicorn on a free port in a thread (real HTTP, no subprocess)."""
    import socket
    import threading
    import time

    import uvicorn

    from workloads.bert.server import ServeSettings, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(tiny_predictor, ServeSettings(max_batch_size=8, max_wait_ms=5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_load_generator_closed_loop_and_fixed_rate(live_server: str) -> None:
    from workloads.bert.bench import payloads
    from workloads.bert.loadgen import run_load

    closed = run_load(live_server, payloads(), clients=4, duration_s=1.0, warmup_s=0.2)
    assert closed.ok > 0 and not closed.errors
    assert closed.percentile_ms(50) <= closed.percentile_ms(90) <= closed.percentile_ms(99)
    fixed = run_load(live_server, payloads(), clients=2, rate_per_s=20, duration_s=1.0, warmup_s=0.2)
    # 20 requests/s for 1 s: exactly 20 are scheduled in the window, and each is counted once answered.
    assert fixed.ok == 20 and not fixed.errors


def test_bench_mode_against_a_running_server(live_server: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["--url", live_server, "--clients", "3", "--duration-s", "1", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    (row,) = [v for k, v in metrics.items() if isinstance(v, dict) and "pairs_per_s" in v]
    assert row["pairs_per_s"] > 0 and row["error_count"] == 0
    assert (out / "bench.png").stat().st_size > 0 and (out / "bench.md").read_text().startswith("| model |")
