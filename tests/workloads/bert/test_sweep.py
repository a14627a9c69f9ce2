"""The bench's served-vs-model-only summary: medians, the bound over every layout, the ratio and where 60 % is first met."""

from __future__ import annotations

from pathlib import Path

from workloads.bert import sweep


def served(pairs_per_s: float, p99: float, load: float = 1.0) -> dict[str, float]:
    return {"pairs_per_s": pairs_per_s, "p50_ms": p99 / 2, "p99_ms": p99, "error_count": 0, "load": load}


def test_the_bound_is_the_best_median_of_any_layout_and_the_ratio_uses_it() -> None:
    raw_model = {
        ("m", 1, 2, 1): [(40.0, 1.0), (44.0, 1.0), (90.0, 3.0)],  # median 44: one noisy round does not count
        ("m", 1, 2, 16): [(100.0, 1.0), (98.0, 1.0), (102.0, 1.0)],  # median 100
        ("m", 2, 1, 16): [(120.0, 1.0), (110.0, 1.0), (125.0, 1.0)],  # median 120: the bound
    }
    raw_served = {
        ("m", 1, 1): [served(30, 40), served(32, 41), served(31, 42)],
        ("m", 2, 4): [served(70, 90), served(75, 95), served(80, 99)],  # median 75 = 62.5 %
        ("m", 2, 16): [served(90, 300), served(96, 320), served(93, 310)],  # median 93 = 77.5 %
    }
    doc = sweep.summarize(raw_model, raw_served, cpus=2)
    s = doc["summary"]["m"]
    assert s["model_only"] == {"procs": 2, "threads": 1, "batch": 16, "pairs_per_s": 120.0}
    assert s["served_best"]["pairs_per_s"] == 93 and s["served_best"]["clients"] == 16
    assert s["ratio"] == round(93 / 120, 3) and s["reached"]
    # the fewest clients at which 60 % was reached, with the p99 there
    assert s["first_reaching"] == {
        "workers": 2,
        "clients": 4,
        "pairs_per_s": 75,
        "p99_ms": 95,
        "ratio": 0.625,
    }
    text = sweep.table(doc)
    assert (
        "| m | 2 x 1, batch 16 | 120.0 | 2, 16 | 93.0 | 310 | **78 %** | 2 worker(s), 4 clients, p99 95 ms |"
        in text
    )


def test_a_target_not_met_says_so_and_the_files_are_written(tmp_path: Path) -> None:
    doc = sweep.summarize({("m", 1, 2, 8): [(100.0, 2.0)]}, {("m", 1, 8): [served(50, 200, 2.5)]}, cpus=2)
    assert doc["summary"]["m"]["reached"] is False and doc["summary"]["m"]["ratio"] == 0.5
    assert doc["summary"]["m"]["load_average"] == {"min": 2.0, "median": 2.25, "max": 2.5}
    text = sweep.write(doc, tmp_path, {"models": ["m"]})
    assert "not reached" in text and (tmp_path / "bench.md").read_text() == text
    assert (tmp_path / "bench.png").stat().st_size > 0 and (tmp_path / "bench.json").is_file()


def test_layouts_give_each_worker_its_share_of_the_cores() -> None:
    assert sweep.layouts([1, 2], cpus=2) == [(1, 2), (2, 1)]
    assert sweep.layouts([4], cpus=2) == [(4, 1)]


def test_the_sweep_prices_a_million_pairs_from_the_price_table() -> None:
    from mlhpc import pricing
    from workloads.bert.bench import PRICED_AS, with_cost

    doc = sweep.summarize({("m", 2, 1, 16): [(120.0, 1.0)]}, {("m", 2, 16): [served(96, 300)]}, cpus=2)
    s = doc["summary"]["m"]
    with_cost([s["model_only"], s["served_best"]], instance_type=PRICED_AS["cpu"], region="us-east-1")
    hour = pricing.PriceTable.load().get("us-east-1", pricing.instance_hour(PRICED_AS["cpu"]))
    assert hour is not None
    # an hour of the instance over the pairs it serves in that hour, per million
    assert s["served_best"]["usd_per_million_pairs"] == round(hour.usd / (96 * 3600) * 1e6, 4)
    text = sweep.table(doc)
    assert f"USD per million pairs ({PRICED_AS['cpu']} On-Demand in us-east-1): m: model only $" in text
