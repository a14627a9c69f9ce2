"""The pinned price table (``prices.yaml``): what mlhpc multiplies quantities by, and where each price came from.

Every row is one list price in US dollars for one region and one *key* (what is billed and per
which unit, e.g. ``vpc/nat-gateway/hour``), with the page it was read from and the date. A price
the table lacks is **unknown**: callers get ``None`` and must say so, never treat it as 0.
``mlhpc cost --online`` refreshes rows from the AWS Price List API (``mlhpc_app.cost.online``).

The keys are spelled here once; the cost model, the CLI and the benchmarks import them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from mlhpc.errors import MlhpcError

TABLE_PATH = Path(__file__).resolve().with_name("prices.yaml")
# AWS's Pricing Calculator counts a month as 730 hours; so does every monthly figure here.
HOURS_PER_MONTH = 730

# --- keys: SERVICE/WHAT/UNIT --------------------------------------------------------------
NAT_GATEWAY_HOUR = "vpc/nat-gateway/hour"
NAT_GATEWAY_GB = "vpc/nat-gateway/gb"
PUBLIC_IPV4_HOUR = "vpc/public-ipv4/hour"
INTERFACE_ENDPOINT_AZ_HOUR = "vpc/interface-endpoint/az-hour"
INTERFACE_ENDPOINT_GB = "vpc/interface-endpoint/gb"
EFS_STANDARD_GB_MONTH = "efs/standard/gb-month"
S3_STANDARD_GB_MONTH = "s3/standard/gb-month"
EBS_GP3_GB_MONTH = "ebs/gp3/gb-month"
KMS_KEY_MONTH = "kms/key/month"
KMS_REQUESTS_10K = "kms/requests/10k"
CLOUDWATCH_DASHBOARD_MONTH = "cloudwatch/dashboard/month"
CLOUDWATCH_ALARM_METRIC_MONTH = "cloudwatch/alarm-metric/month"
CLOUDWATCH_CUSTOM_METRIC_MONTH = "cloudwatch/custom-metric/month"
CLOUDWATCH_API_1K = "cloudwatch/api-requests/1k"
LOGS_INGESTED_GB = "logs/ingested/gb"
LOGS_STORED_GB_MONTH = "logs/stored/gb-month"
LAMBDA_REQUESTS_1M = "lambda/requests/1m"
LAMBDA_GB_SECOND = "lambda/gb-second"
EKS_CLUSTER_HOUR = "eks/cluster/hour"
SECRET_MONTH = "secretsmanager/secret/month"
HOSTED_ZONE_MONTH = "route53/hosted-zone/month"
ECR_GB_MONTH = "ecr/storage/gb-month"
CODEBUILD_MINUTE = "codebuild/general1-medium/minute"
SNS_EMAIL_100K = "sns/email/100k"
STATES_TRANSITIONS_1K = "states/transitions/1k"
ROUTE53_QUERIES_1M = "route53/queries/1m"
AMP_SAMPLES_INGESTED_10M = "amp/samples-ingested/10m"
AMP_STORAGE_GB_MONTH = "amp/storage/gb-month"
AMP_QUERY_SAMPLES_1B = "amp/query-samples/1b"
AMP_COLLECTOR_HOUR = "amp/collector/hour"  # a managed scraper, billed for every hour it exists
AMP_COLLECTOR_SAMPLES_10M = "amp/collector-samples/10m"


def instance_hour(instance_type: str) -> str:
    """Return the key of an EC2 instance type's On-Demand Linux hour (``ec2/g5.12xlarge/hour``)."""
    return f"ec2/{instance_type}/hour"


def emr_fee_hour(instance_type: str) -> str:
    """Return the key of EMR's own per-instance-hour fee (on top of the EC2 price)."""
    return f"emr/{instance_type}/hour"


def sagemaker_hour(instance_type: str) -> str:
    """Return the key of a SageMaker instance hour (``sagemaker/ml.g5.xlarge/hour``)."""
    return f"sagemaker/{instance_type}/hour"


def fsx_lustre_gb_month(deployment_type: str, throughput_mb_per_tib: int | None) -> str:
    """Return the key of an FSx for Lustre GB-month by deployment type and throughput tier."""
    tier = f"-{throughput_mb_per_tib}" if throughput_mb_per_tib else ""
    return f"fsx/lustre-{deployment_type.lower()}{tier}/gb-month"


@dataclass(frozen=True)
class Price:
    """One list price: USD per ``unit`` of ``key`` in ``region``, read from ``source`` on ``read``."""

    key: str
    region: str
    usd: float
    unit: str
    source: str
    read: str  # ISO date the source was read
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the row as the table file writes it."""
        return {k: v for k, v in asdict(self).items() if v != ""}


class PriceTableError(MlhpcError):
    """The price table file is missing or malformed."""


@dataclass
class PriceTable:
    """Prices by (region, key); :meth:`get` returns None for a price the table lacks (unknown)."""

    rows: dict[tuple[str, str], Price]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Read a table file (default: the pinned ``mlhpc/pricing/prices.yaml``)."""
        path = path or TABLE_PATH
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise PriceTableError(
                f"no price table at {path}", fix=f"give --prices a table file, or drop it to use {TABLE_PATH}"
            ) from None
        except yaml.YAMLError as err:
            raise PriceTableError(
                f"{path} is not valid YAML: {err}", fix="fix the file or restore it from git"
            ) from None
        rows: dict[tuple[str, str], Price] = {}
        for index, raw in enumerate(doc.get("prices") or []):
            try:
                fields = {k: (str(v) if k == "read" else v) for k, v in raw.items()}
                price = Price(**fields)  # type: ignore[arg-type]
                price = Price(**{**fields, "usd": float(price.usd)})  # type: ignore[arg-type]
            except (TypeError, ValueError) as err:
                raise PriceTableError(
                    f"{path}: prices[{index}] is not a price row ({err}): {raw!r}",
                    fix="each row needs key, region, usd, unit, source and read (YYYY-MM-DD)",
                ) from None
            if price.usd < 0:
                raise PriceTableError(
                    f"{path}: prices[{index}] ({price.key}, {price.region}) has a negative price {price.usd}",
                    fix="give the list price in USD (0 only for what AWS bills as free)",
                )
            rows[(price.region, price.key)] = price
        return cls(rows=rows, path=path)

    def get(self, region: str, key: str) -> Price | None:
        """Return the price, or None when the table does not know it (report it as unknown)."""
        return self.rows.get((region, key))

    def regions(self) -> list[str]:
        """Return the regions the table has prices for."""
        return sorted({region for region, _ in self.rows})

    def merged(self, prices: Iterable[Price]) -> PriceTable:
        """Return a copy with these rows added or replacing the same (region, key)."""
        rows = dict(self.rows)
        rows.update({(p.region, p.key): p for p in prices})
        return PriceTable(rows=rows, path=self.path)

    def __iter__(self) -> Iterator[Price]:
        return iter(sorted(self.rows.values(), key=lambda p: (p.region, p.key)))

    def save(self, path: Path | None = None) -> Path:
        """Write the table (sorted by region and key) and return where."""
        target = path or self.path or TABLE_PATH
        head = target.read_text(encoding="utf-8").split("\nprices:", 1)[0] if target.is_file() else ""
        body = yaml.safe_dump({"prices": [p.to_dict() for p in self]}, sort_keys=False, width=200)
        target.write_text((head.rstrip("\n") + "\n" if head else "") + body, encoding="utf-8")
        return target
