"""Refresh price rows from the AWS Price List API (``pricing:GetProducts``), for ``mlhpc cost --online``.

The Price List API answers from us-east-1 (it serves every region's prices); each ``PriceList``
entry is a JSON *string* holding ``product.attributes`` and ``terms.OnDemand.<offer>.priceDimensions``.
Only the keys :func:`query_for` knows are asked for; every other row keeps its pinned source, and a
key the API does not answer stays what it was (unknown if the table lacked it), never 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlhpc import pricing
from mlhpc.pricing import Price
from mlhpc_app.aws.session import Aws, with_backoff

PRICE_LIST_REGION = "us-east-1"  # the API's endpoint; it answers for every region


@dataclass(frozen=True)
class Query:
    """How to find one key's product: service code, attribute filters, the usage type's ending."""

    service: str
    filters: dict[str, str]
    unit: str
    usagetype_suffix: str = ""
    per_units: float = 1.0  # the key's unit in the API's units (e.g. 1e6 requests)


def query_for(key: str) -> Query | None:
    """Return the Price List query for a price key, or None when mlhpc has none for it."""
    if key.startswith("ec2/") and key.endswith("/hour"):
        instance_type = key.split("/")[1]
        return Query(
            "AmazonEC2",
            {
                "instanceType": instance_type,
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
            },
            "instance-hour",
        )
    fixed = {
        pricing.NAT_GATEWAY_HOUR: Query(
            "AmazonEC2", {"productFamily": "NAT Gateway"}, "NAT gateway-hour", "NatGateway-Hours"
        ),
        pricing.NAT_GATEWAY_GB: Query(
            "AmazonEC2", {"productFamily": "NAT Gateway"}, "GB processed", "NatGateway-Bytes"
        ),
        pricing.EBS_GP3_GB_MONTH: Query(
            "AmazonEC2", {"productFamily": "Storage", "volumeApiName": "gp3"}, "GB-month provisioned"
        ),
        pricing.EKS_CLUSTER_HOUR: Query(
            "AmazonEKS", {}, "cluster-hour (standard support)", "AmazonEKS-Hours:perCluster"
        ),
        pricing.KMS_KEY_MONTH: Query("awskms", {}, "key-month", "KMS-Keys"),
        pricing.INTERFACE_ENDPOINT_AZ_HOUR: Query("AmazonVPC", {}, "endpoint-AZ-hour", "VpcEndpoint-Hours"),
        pricing.PUBLIC_IPV4_HOUR: Query(
            "AmazonVPC", {}, "public IPv4 address-hour", "PublicIPv4:InUseAddress"
        ),
    }
    return fixed.get(key)


@dataclass
class Refresh:
    """What a refresh found: new rows, and the keys the API did not answer (with why)."""

    prices: list[Price] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # "region key" -> reason


def _on_demand_usd(entry: dict[str, Any]) -> float | None:
    """Return the first-tier On-Demand USD price of a Price List entry (None when it has none)."""
    for offer in (entry.get("terms") or {}).get("OnDemand", {}).values():
        dims = sorted(
            offer.get("priceDimensions", {}).values(), key=lambda d: float(d.get("beginRange", "0") or 0)
        )
        for dim in dims:
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                return float(usd)
    return None


def _products(aws: Aws, query: Query, region: str) -> list[dict[str, Any]]:
    client = aws.client("pricing")
    filters = [
        {"Type": "TERM_MATCH", "Field": k, "Value": v}
        for k, v in {**query.filters, "regionCode": region}.items()
    ]
    entries: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "ServiceCode": query.service,
            "Filters": filters,
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
        }
        if token:
            kwargs["NextToken"] = token
        page = with_backoff(lambda kw=kwargs: client.get_products(**kw), what="pricing:GetProducts")  # type: ignore[misc]
        entries += [json.loads(item) if isinstance(item, str) else item for item in page.get("PriceList", [])]
        token = page.get("NextToken")
        if not token:
            return entries


def refresh(aws: Aws, region: str, keys: Iterable[str], *, today: str | None = None) -> Refresh:
    """Ask the Price List API for each key it knows in a region; return the rows it answered."""
    read = today or datetime.now(UTC).date().isoformat()
    result = Refresh()
    for key in sorted(set(keys)):
        query = query_for(key)
        if query is None:
            result.missing[f"{region} {key}"] = "no Price List query for this key; add a row by hand"
            continue
        found = []
        for entry in _products(aws, query, region):
            usagetype = str((entry.get("product") or {}).get("attributes", {}).get("usagetype", ""))
            if query.usagetype_suffix and not usagetype.endswith(query.usagetype_suffix):
                continue
            usd = _on_demand_usd(entry)
            if usd is not None and usd > 0:
                found.append((usd, entry))
        if not found:
            result.missing[f"{region} {key}"] = f"{query.service} has no On-Demand product for it in {region}"
            continue
        usd, entry = min(
            found, key=lambda f: f[0]
        )  # several SKUs (e.g. reserved-capacity variants): the list price
        sku = (entry.get("product") or {}).get("sku", "?")
        result.prices.append(
            Price(
                key=key,
                region=region,
                usd=usd * query.per_units,
                unit=query.unit,
                source=f"AWS Price List API: pricing:GetProducts {query.service} sku {sku}"
                + (f" (published {entry['publicationDate']})" if entry.get("publicationDate") else ""),
                read=read,
            )
        )
    return result


def connect(profile: str | None = None) -> Aws:
    """Open the session the Price List API needs (its endpoint is in us-east-1)."""
    return Aws.connect(region=PRICE_LIST_REGION, profile=profile)
