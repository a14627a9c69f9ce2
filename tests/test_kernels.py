"""The kernel-matrix report: margins, the worst value per run, and the flag on a short bound."""

from __future__ import annotations

import json
import math

import pytest

from tests import kernels, numeric


def _rec(value, *, cap="default", threads="1", op="<", bound=1.0, margin=3.0, quantity="q"):
    return {
        "test": "tests/x.py::test_a",
        "quantity": quantity,
        "value": value,
        "bound": bound,
        "op": op,
        "source": "s",
        "margin": margin,
        "capability": cap,
        "threads": threads,
    }


def test_margin_is_bound_over_value_below_and_value_over_bound_above():
    assert kernels.margin_of("<", 0.25, 1.0) == 4.0
    assert kernels.margin_of(">", 2.0, 0.5) == 4.0
    assert math.isinf(kernels.margin_of("<", 0.0, 1.0))


def test_table_keeps_the_worst_value_per_run_and_flags_a_short_margin():
    runs = ["default/1t", "avx2/1t"]
    records = [_rec(0.2), _rec(0.3), _rec(0.5, cap="avx2")]
    text, short = kernels.table(records, runs)
    row = text.splitlines()[2]
    assert "| 0.3 | 0.5 |" in row  # 0.3 is the worse of default's two values
    assert short == ["tests/x.py::test_a q: margin 2.00 < 3.0"]
    _, ok = kernels.table([_rec(0.2), _rec(0.3, cap="avx2")], runs)
    assert ok == []  # 1.0 / 0.3 = 3.3x


def test_statistical_bounds_state_their_own_margin():
    _, short = kernels.table([_rec(2.5, bound=3.0, margin=1.0)], ["default/1t"])
    assert short == []


def test_checks_record_when_asked_and_assert_always(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(numeric.LOG_ENV, str(log))
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    numeric.below("err", 0.1, 1.0, source="ref")
    numeric.above("gain", 5.0, 2.0, source="ref")
    with pytest.raises(AssertionError, match=r"err = 2.0 is not below its bound 1.0 \(ref\)"):
        numeric.below("err", 2.0, 1.0, source="ref")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["quantity"], r["op"], r["capability"]) for r in rows] == [
        ("err", "<", "avx2"),
        ("gain", ">", "avx2"),
        ("err", "<", "avx2"),
    ]
    assert numeric.relative_deviation(1.1, 1.0) == pytest.approx(0.1)
