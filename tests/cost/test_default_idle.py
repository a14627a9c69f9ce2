"""The default config's idle total equals a sum written out by hand from the same table rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlhpc import pricing
from mlhpc.pricing import PriceTable
from mlhpc_app.cli.main import app
from mlhpc_app.cost import model
from tests.conftest import REPO

pytestmark = pytest.mark.synth
DEFAULT = REPO / "config" / "default.yaml"


def unit(key: str) -> float:
    price = PriceTable.load().get("us-east-1", key)
    assert price is not None, key
    return price.usd


def hand_sum() -> float:
    """config/default.yaml, item by item: quantity x unit price (730 hours a month)."""
    return (
        1 * 730 * unit(pricing.NAT_GATEWAY_HOUR)  # nat_gateways: 1
        + 1 * 730 * unit(pricing.PUBLIC_IPV4_HOUR)  # its Elastic IP
        + 11 * 2 * 730 * unit(pricing.INTERFACE_ENDPOINT_AZ_HOUR)  # 11 interface_endpoints x az_count 2
        + 1200
        * unit(pricing.fsx_lustre_gb_month("PERSISTENT_2", 125))  # storage.fsx: 1200 GiB at 125 MB/s/TiB
        + 3 * 1 * unit(pricing.KMS_KEY_MONTH)  # a key each in NetworkStack, StorageStack, HpcStack
        + 1 * unit(pricing.CLOUDWATCH_DASHBOARD_MONTH)  # HpcStack's dashboard
        + 1 * unit(pricing.CLOUDWATCH_ALARM_METRIC_MONTH)  # ManyJobFailures: one metric
        + 3 * 5 * unit(pricing.CLOUDWATCH_CUSTOM_METRIC_MONTH)  # queue metrics: 3 queues x 5 statuses
        + 730 * 60 / 1e6 * unit(pricing.LAMBDA_REQUESTS_1M)  # the queue-metrics function, rate(1 minute)
    )


def test_idle_total_is_the_hand_sum(assembly_of: Any) -> None:
    _, assembly = assembly_of(DEFAULT)
    est = model.estimate(assembly, PriceTable.load())
    assert est.idle_monthly_usd == pytest.approx(hand_sum(), rel=1e-12)
    assert hand_sum() == pytest.approx(381.70876, abs=1e-5)  # the number README's table shows
    # the one idle price the table lacks is named, not counted as $0
    assert [(line.item, line.key) for line in est.idle_unknown] == [
        ("queue-metrics PutMetricData calls (43,800 a month)", pricing.CLOUDWATCH_API_1K)
    ]
    assert set(est.idle_by_stack()) == {"NetworkStack", "StorageStack", "HpcStack"}
    # compute at full scale: max_vcpus 96 = 2 x g5.12xlarge (48 vCPUs) On-Demand; Spot only capped
    [gpu] = [c for c in est.compute if c.market == "on-demand"]
    assert (gpu.instance_type, gpu.nodes) == ("g5.12xlarge", 2)
    assert gpu.usd_per_hour == pytest.approx(2 * unit(pricing.instance_hour("g5.12xlarge")))
    spot = [c for c in est.compute if c.market == "spot"]
    assert spot and all(c.usd_per_hour is None and c.spot_max_usd_per_hour for c in spot)


def test_json_gives_the_table_numbers(assembly_of: Any, tmp_path: Path) -> None:
    outdir, assembly = assembly_of(DEFAULT)
    est = model.estimate(assembly, PriceTable.load())
    result = CliRunner().invoke(app, ["cost", str(DEFAULT), "--assembly", str(outdir), "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["idle_monthly_usd"] == round(hand_sum(), 2) == round(est.idle_monthly_usd, 2)
    assert data["idle_complete"] is False and len(data["idle_unknown"]) == 1
    assert sum(line["usd"] or 0 for line in data["idle"]) == pytest.approx(hand_sum(), abs=1e-3)
    assert [line["usd"] for line in data["idle"]] == [
        None if x.usd is None else round(x.usd, 4) for x in est.of(model.Kind.IDLE)
    ]
    assert {c["instance_type"]: c["nodes"] for c in data["full_scale"]} == {
        "g5.12xlarge": 2,
        "m6i.xlarge": 16,
    }
    # the table prints the same total
    table = CliRunner().invoke(app, ["cost", str(DEFAULT), "--assembly", str(outdir)])
    assert table.exit_code == 0, table.output
    assert (
        f"idle cost: ${hand_sum():,.2f} a month in us-east-1 + 1 item(s) the price table lacks"
        in table.stdout
    )
    assert "unknown (at most $11.34)" in table.stdout  # the GPU Spot environment


def test_a_missing_price_is_unknown_never_zero(assembly_of: Any) -> None:
    _, assembly = assembly_of(DEFAULT)
    table = PriceTable.load()
    table = PriceTable({k: v for k, v in table.rows.items() if v.key != pricing.NAT_GATEWAY_HOUR})
    est = model.estimate(assembly, table)
    [nat] = [line for line in est.of(model.Kind.IDLE) if line.key == pricing.NAT_GATEWAY_HOUR]
    assert nat.usd is None and nat.to_dict()["usd"] is None and nat.to_dict()["known"] is False
    assert est.idle_monthly_usd == pytest.approx(hand_sum() - 730 * 0.045)


def test_validate_prints_the_idle_line(
    assembly_of: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no assembly in results/emulate/ here: validate says how to get the number
    result = CliRunner().invoke(app, ["validate", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    assert f"idle cost: `mlhpc cost {DEFAULT}` synthesizes the stacks and itemises it" in result.stdout
    # once `mlhpc cost` has synthesized (the emulator's cache), validate prints the total
    from mlhpc_app.emulate.assembly import digest

    outdir, _ = assembly_of(DEFAULT)
    cache = tmp_path / "results" / "emulate" / "cdk.out" / digest(DEFAULT.read_text(encoding="utf-8"))
    cache.parent.mkdir(parents=True)
    cache.symlink_to(outdir)
    result = CliRunner().invoke(app, ["validate", str(DEFAULT)])
    assert (
        f"idle cost: ${hand_sum():,.2f} a month in us-east-1 + 1 item(s) the price table lacks"
        in result.stdout
    )


def test_demo_table_has_an_idle_column(assembly_of: Any) -> None:
    from mlhpc.config import load_config
    from mlhpc_app.cli.demo import idle_by_stack, summary_table
    from mlhpc_app.guardrails import GuardrailReport, StackReport

    outdir, _ = assembly_of(DEFAULT)
    idle = idle_by_stack(load_config(DEFAULT), outdir)
    assert sum(idle.values()) == pytest.approx(hand_sum())
    assert set(idle) == {"NetworkStack", "StorageStack", "HpcStack"}
    report = GuardrailReport(
        outdir, [StackReport("NetworkStack", outdir / "NetworkStack.template.json", 43, 28_000)], []
    )
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(summary_table(report, "t", idle))
    text = console.export_text()
    assert "idle $/month" in text and f"{idle['NetworkStack']:,.2f}" in text
