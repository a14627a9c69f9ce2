"""The BERT benchmark's cost per million pairs: the instance's hour from the price table over pairs served per hour."""

from __future__ import annotations

import pytest

from mlhpc import pricing
from workloads.bert import bench


def test_cost_per_million_pairs_from_the_table() -> None:
    hourly = pricing.PriceTable.load().get("us-east-1", pricing.instance_hour("inf2.xlarge"))
    assert hourly is not None
    rows = [{"model": "m", "scenario": "batched", "pairs_per_s": 1000.0, "p50_ms": 1.0, "p90_ms": 1.0,
             "p99_ms": 1.0, "error_count": 0}]  # fmt: skip
    [row] = bench.with_cost(rows, instance_type="inf2.xlarge", region="us-east-1")
    # 1000 pairs/s = 3.6 M pairs an hour, so a million pairs costs the hour's price / 3.6
    assert row["usd_per_million_pairs"] == pytest.approx(hourly.usd / 3.6, abs=1e-4)
    assert row["priced_as"] == "inf2.xlarge On-Demand in us-east-1"
    assert f"| {row['usd_per_million_pairs']:.4f} |" in bench.table([row])


def test_an_unpriced_instance_or_no_throughput_is_unknown() -> None:
    rows = [{"pairs_per_s": 10.0}, {"pairs_per_s": 0.0}]
    unpriced = bench.with_cost([dict(r) for r in rows], instance_type="inf2.xlarge", region="eu-west-1")
    assert [r["usd_per_million_pairs"] for r in unpriced] == [None, None]
    priced = bench.with_cost([dict(r) for r in rows], instance_type="m6i.large", region="us-east-1")
    assert priced[0]["usd_per_million_pairs"] is not None and priced[1]["usd_per_million_pairs"] is None
    assert set(bench.PRICED_AS) == {"neuron", "cuda", "cpu"}
    assert all(
        pricing.PriceTable.load().get("us-east-1", pricing.instance_hour(t)) for t in bench.PRICED_AS.values()
    )
