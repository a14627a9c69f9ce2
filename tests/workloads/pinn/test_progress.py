"""Progress of a long run shows in a log stream (not a terminal) as it goes, not only at the end."""

from __future__ import annotations

import io

from workloads.pinn.progress import TrainingBar


def test_a_log_stream_gets_a_line_per_interval_and_at_the_end(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLHPC_PROGRESS_INTERVAL_S", "30")
    now = [0.0]
    stream = io.StringIO()  # isatty() is False, as a container's stderr under Batch
    with TrainingBar(
        total=100, start=0, enabled=True, title="pinn", stream=stream, clock=lambda: now[0]
    ) as bar:
        for step in range(1, 101):
            now[0] = step * 1.0  # one step a second
            bar.update(step=step, loss=1.0 / step, error=None, phase="adam")
    lines = stream.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["30/100", "60/100", "90/100", "100/100"]
    assert lines[-1].startswith("pinn: step 100/100 (100%)  loss 1.000e-02")


def test_a_disabled_bar_writes_nothing() -> None:
    stream = io.StringIO()
    with TrainingBar(total=10, start=0, enabled=False, title="pinn", stream=stream) as bar:
        bar.update(step=10, loss=1.0, error=0.1, phase="adam")
    assert stream.getvalue() == ""
