"""Every resource type of every synthesized config is priced, usage-only or free: none slips past the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlhpc.pricing import PriceTable
from mlhpc_app.cost import model
from tests.conftest import CONFIG_FILES, config_id

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_every_resource_type_is_classified(path: Path, assembly_of: Any) -> None:
    _, assembly = assembly_of(path)
    types = {r["Type"] for t in assembly.templates.values() for r in (t.get("Resources") or {}).values()}
    unclassified = sorted(t for t in types if model.classification(t) is None)
    assert unclassified == [], f"{path.name}: add these to PRICED, USAGE or FREE in mlhpc_app/cost/model.py"
    est = model.estimate(assembly, PriceTable.load())
    # every priced type present gives at least one line
    type_of = {
        lid: r["Type"] for t in assembly.templates.values() for lid, r in (t.get("Resources") or {}).items()
    }
    itemised = {type_of[line.resource.split(", ")[0]] for line in [*est.lines, *est.compute]}
    assert {t for t in types if model.classification(t) == "priced"} <= itemised
    assert all(line.price is None or line.price.usd > 0 for line in est.lines)


def test_an_unclassified_type_is_refused() -> None:
    from mlhpc_app.emulate.template import Assembly

    assembly = Assembly(Path("."), "p", "us-east-1", {"S": {"Resources": {"X": {"Type": "AWS::Foo::Bar"}}}})
    with pytest.raises(model.UnclassifiedResource) as err:
        model.estimate(assembly, PriceTable.load())
    assert "the cost model does not know AWS::Foo::Bar (S)" in err.value.message
    assert "mlhpc_app/cost/model.py" in err.value.fix


def test_no_type_is_in_two_classes() -> None:
    assert not (set(model.PRICED) & model.FREE)
    assert not (set(model.USAGE) & model.FREE)


def test_schedules() -> None:
    assert model.runs_per_month("rate(1 minute)") == 730 * 60
    assert model.runs_per_month("rate(5 minutes)") == 730 * 12
    assert model.runs_per_month("rate(2 hours)") == 365
    assert model.runs_per_month("cron(0 12 * * ? *)") is None
