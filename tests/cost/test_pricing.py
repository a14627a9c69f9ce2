"""The pinned price table: every row sourced and dated, the configs' regions present, bad files refused."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from mlhpc import pricing
from mlhpc.config import load_config
from mlhpc.pricing import PriceTable, PriceTableError
from tests.conftest import CONFIG_FILES


def test_every_row_has_a_source_and_the_date_it_was_read() -> None:
    table = PriceTable.load()
    assert len(table.rows) > 30
    for price in table:
        assert re.match(r"^https?://\S+$", price.source), price
        assert date.fromisoformat(price.read) <= date.today(), price
        assert price.usd > 0 and price.unit, price  # a free item is not a row; an unknown one is absent


def test_every_config_region_has_prices() -> None:
    regions = {load_config(path).project.region for path in CONFIG_FILES}
    table = PriceTable.load()
    for region in regions:
        assert table.get(region, pricing.KMS_KEY_MONTH) is not None, region
        assert table.get(region, pricing.PUBLIC_IPV4_HOUR) is not None, region


def test_an_absent_price_is_none() -> None:
    assert PriceTable.load().get("us-east-1", pricing.instance_hour("no.such")) is None


def test_bad_tables_are_refused_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(PriceTableError) as missing:
        PriceTable.load(tmp_path / "none.yaml")
    assert "no price table at" in missing.value.message and "--prices" in missing.value.fix
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "prices:\n- {key: k, region: r, usd: -1, unit: u, source: s, read: '2026-01-01'}\n", encoding="utf-8"
    )
    with pytest.raises(PriceTableError) as negative:
        PriceTable.load(bad)
    assert "negative price -1" in negative.value.message
    bad.write_text("prices:\n- {key: k, usd: 1}\n", encoding="utf-8")
    with pytest.raises(PriceTableError) as partial:
        PriceTable.load(bad)
    assert "is not a price row" in partial.value.message and "key, region, usd" in partial.value.fix
