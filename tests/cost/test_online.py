"""`mlhpc cost --online`: rows from the AWS Price List API, tested with botocore's Stubber on recorded-shape answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mlhpc import pricing
from mlhpc.pricing import PriceTable
from mlhpc_app.aws.session import Aws
from mlhpc_app.cost import online


def entry(sku: str, usagetype: str, usd: str, **attributes: str) -> str:
    """Return one PriceList item as the API sends it: a JSON string (shape of a real aws_v1 answer)."""
    return json.dumps(
        {
            "product": {
                "productFamily": attributes.pop("productFamily", "Compute Instance"),
                "attributes": {"usagetype": usagetype, "regionCode": "us-east-2", **attributes},
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": {
                            f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "endRange": "Inf",
                                "description": f"${usd} per unit",
                                "appliesTo": [],
                                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7",
                                "beginRange": "0",
                                "pricePerUnit": {"USD": usd},
                            }
                        },
                        "sku": sku,
                        "effectiveDate": "2026-11-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261105000000",
            "publicationDate": "2026-11-05T18:00:00Z",
        }
    )


def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[Aws, Stubber]:
    client = boto3.client("pricing", region_name="us-east-1")
    aws = Aws(region="us-east-1", _session=object())
    monkeypatch.setattr(aws, "client", lambda service, **_: client)
    return aws, Stubber(client)


def filters(**values: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in values.items()]


def test_refresh_reads_instance_and_nat_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    aws, stub = stubbed(monkeypatch)
    ec2 = {"instanceType": "p5.48xlarge", "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
           "capacitystatus": "Used"}  # fmt: skip
    stub.add_response(
        "get_products",
        {"PriceList": [entry("SKU1", "USE2-BoxUsage:p5.48xlarge", "55.0400000000")], "FormatVersion": "aws_v1"},
        {"ServiceCode": "AmazonEC2", "Filters": filters(**ec2, regionCode="us-east-2"), "FormatVersion": "aws_v1",
         "MaxResults": 100},
    )  # fmt: skip
    # keys are asked in sorted order: ec2/..., eks/..., (secretsmanager: no query), vpc/...
    stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"},
                      {"ServiceCode": "AmazonEKS", "Filters": filters(regionCode="us-east-2"),
                       "FormatVersion": "aws_v1", "MaxResults": 100})  # fmt: skip
    nat_request = {"ServiceCode": "AmazonEC2", "Filters": filters(productFamily="NAT Gateway", regionCode="us-east-2"),
                   "FormatVersion": "aws_v1", "MaxResults": 100}  # fmt: skip
    # two pages: the Bytes product on the first, the Hours product after the NextToken
    stub.add_response(
        "get_products",
        {"PriceList": [entry("SKU2", "USE2-NatGateway-Bytes", "0.045", productFamily="NAT Gateway")],
         "FormatVersion": "aws_v1", "NextToken": "page2"},
        nat_request,
    )  # fmt: skip
    stub.add_response(
        "get_products",
        {"PriceList": [entry("SKU3", "USE2-NatGateway-Hours", "0.0450000000", productFamily="NAT Gateway")],
         "FormatVersion": "aws_v1"},
        {**nat_request, "NextToken": "page2"},
    )  # fmt: skip
    keys = [
        pricing.instance_hour("p5.48xlarge"),
        pricing.NAT_GATEWAY_HOUR,
        pricing.EKS_CLUSTER_HOUR,
        pricing.SECRET_MONTH,
    ]
    with stub:
        found = online.refresh(aws, "us-east-2", keys, today="2026-12-02")
    stub.assert_no_pending_responses()
    by_key = {p.key: p for p in found.prices}
    assert by_key[pricing.instance_hour("p5.48xlarge")].usd == 55.04
    assert by_key[pricing.NAT_GATEWAY_HOUR].usd == 0.045
    assert (
        "sku SKU3" in by_key[pricing.NAT_GATEWAY_HOUR].source
        and by_key[pricing.NAT_GATEWAY_HOUR].read == "2026-12-02"
    )
    # no product: stays unknown; no query: says so; neither becomes 0
    assert "no On-Demand product" in found.missing[f"us-east-2 {pricing.EKS_CLUSTER_HOUR}"]
    assert "no Price List query" in found.missing[f"us-east-2 {pricing.SECRET_MONTH}"]


def test_refreshed_rows_round_trip_through_the_table(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(pricing.TABLE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    table = PriceTable.load(path)
    assert table.get("us-east-2", pricing.instance_hour("p5.48xlarge")) is None
    new = pricing.Price(
        pricing.instance_hour("p5.48xlarge"),
        "us-east-2",
        55.04,
        "instance-hour",
        "AWS Price List API",
        "2026-12-02",
    )
    table.merged([new]).save(path)
    again = PriceTable.load(path)
    assert again.get("us-east-2", new.key) == new
    assert len(again.rows) == len(table.rows) + 1
    assert path.read_text(encoding="utf-8").startswith("# The prices mlhpc multiplies")  # the header stays


def test_cli_online_saves_what_the_api_answered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, assembly_of: Any
) -> None:
    from typer.testing import CliRunner

    from mlhpc_app.cli.main import app
    from tests.conftest import REPO

    config = REPO / "config" / "examples" / "p5-efa-training.yaml"
    outdir, _ = assembly_of(config)
    path = tmp_path / "prices.yaml"
    path.write_text(pricing.TABLE_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    asked: list[tuple[str, tuple[str, ...]]] = []

    def refresh(aws: Any, region: str, keys: Any, **_: Any) -> online.Refresh:
        asked.append((region, tuple(sorted(keys))))
        price = pricing.Price(
            pricing.instance_hour("p5.48xlarge"),
            region,
            55.04,
            "instance-hour",
            "AWS Price List API: test",
            "2026-12-02",
        )
        return online.Refresh(prices=[price], missing={})

    monkeypatch.setattr(online, "refresh", refresh)
    monkeypatch.setattr(online, "connect", lambda profile=None: None)
    result = CliRunner().invoke(app, ["cost", str(config), "--assembly", str(outdir), "--online", "--prices", str(path),
                                      "--output", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    [(region, keys)] = asked
    assert (
        region == "us-east-2"
        and pricing.instance_hour("p5.48xlarge") in keys
        and pricing.NAT_GATEWAY_HOUR in keys
    )
    [gpu] = [c for c in json.loads(result.stdout)["full_scale"] if c["instance_type"] == "p5.48xlarge"]
    assert gpu["usd_per_hour"] == pytest.approx(4 * 55.04)  # max_vcpus 768 = 4 nodes
    assert PriceTable.load(path).get("us-east-2", pricing.instance_hour("p5.48xlarge")) is not None
