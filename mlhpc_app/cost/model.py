"""What a config costs, read from its synthesized templates and priced from the pinned table.

Every CloudFormation resource type the stacks emit is in exactly one class:

* **priced** (:data:`PRICED`): it costs money by existing (a NAT gateway, an FSx file system, a KMS
  key) or at full scale (a Batch compute environment's instances); a function turns each such
  resource into :class:`Line` s with quantities taken from the template;
* **usage-only** (:data:`USAGE`): it costs only what is done with it (bytes stored, requests made);
  its unit prices are listed, never a guessed volume;
* **free** (:data:`FREE`): AWS bills nothing for it (IAM, subnets, route tables, job definitions).

A type in none of them is a :class:`UnclassifiedResource` error, so a new resource in a stack must
be classified before `mlhpc cost` reports anything (``tests/cost/test_coverage.py`` synthesizes every
config and checks). Quantities are per month for idle lines (:data:`HOURS_PER_MONTH` hours) and per
hour for compute; a price the table lacks leaves the line's cost unknown, never 0.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlhpc import pricing
from mlhpc.errors import MlhpcError
from mlhpc.instances import lookup
from mlhpc.pricing import HOURS_PER_MONTH, Price, PriceTable
from mlhpc_app.emulate.template import Assembly


class Kind(StrEnum):
    """When a line costs money."""

    IDLE = "idle"  # every month the stack exists, whether anything runs or not (USD per month)
    FULL_SCALE = "full-scale"  # per hour while the compute runs at its ceiling (USD per hour)
    RUNNING = "running"  # per hour while it runs; it stops itself when idle (USD per hour)
    USAGE = "usage"  # per unit used; no quantity is guessed


@dataclass(frozen=True)
class Line:
    """One itemised cost: ``quantity`` units of ``key`` at the table's price (None: unknown)."""

    stack: str
    resource: str  # logical id(s) in the template
    item: str  # what a person reads: "NAT gateway", "interface endpoint ecr.api (2 zones)"
    kind: Kind
    key: str
    quantity: float | None  # in the price's unit, per month (IDLE) or per hour; None for USAGE
    price: Price | None
    note: str = ""

    @property
    def usd(self) -> float | None:
        """Return the line's cost (per month or per hour by kind); None when the price is unknown."""
        if self.quantity is None or self.price is None:
            return None
        return self.quantity * self.price.usd

    def to_dict(self) -> dict[str, Any]:
        """Return the line as JSON-ready data (the same numbers the table prints)."""
        return {
            "stack": self.stack,
            "resource": self.resource,
            "item": self.item,
            "kind": self.kind.value,
            "key": self.key,
            "quantity": self.quantity,
            "unit": self.price.unit if self.price else None,
            "unit_usd": self.price.usd if self.price else None,
            "usd": None if self.usd is None else round(self.usd, 4),
            "source": self.price.source if self.price else None,
            "read": self.price.read if self.price else None,
            "known": self.price is not None,
            "note": self.note,
        }


@dataclass(frozen=True)
class ComputeLine:
    """A Batch compute environment (or EKS/EMR node group) at full scale: nodes x instance price."""

    stack: str
    resource: str
    item: str
    market: str  # "on-demand" or "spot"
    instance_type: str
    nodes: int
    price: Price | None  # the On-Demand instance-hour
    spot_cap_fraction: float | None = None  # Spot: the max price as a fraction of On-Demand
    note: str = ""

    @property
    def on_demand_usd_per_hour(self) -> float | None:
        """Return nodes x the On-Demand price (None when unknown)."""
        return None if self.price is None else self.nodes * self.price.usd

    @property
    def usd_per_hour(self) -> float | None:
        """Return the hourly cost at full scale: On-Demand, or None for Spot (its price varies)."""
        return self.on_demand_usd_per_hour if self.market == "on-demand" else None

    @property
    def spot_max_usd_per_hour(self) -> float | None:
        """Return the most Spot can cost at full scale: the cap times On-Demand (None if unknown)."""
        if self.market != "spot" or self.spot_cap_fraction is None or self.on_demand_usd_per_hour is None:
            return None
        return self.on_demand_usd_per_hour * self.spot_cap_fraction

    def to_dict(self) -> dict[str, Any]:
        """Return the line as JSON-ready data."""
        rnd = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {
            "stack": self.stack,
            "resource": self.resource,
            "item": self.item,
            "market": self.market,
            "instance_type": self.instance_type,
            "nodes": self.nodes,
            "instance_usd_per_hour": self.price.usd if self.price else None,
            "usd_per_hour": rnd(self.usd_per_hour),
            "on_demand_usd_per_hour": rnd(self.on_demand_usd_per_hour),
            "spot_max_usd_per_hour": rnd(self.spot_max_usd_per_hour),
            "source": self.price.source if self.price else None,
            "known": self.usd_per_hour is not None,
            "note": self.note,
        }


class UnclassifiedResource(MlhpcError):
    """A template holds a resource type the cost model neither prices nor marks free or usage-only."""


@dataclass
class Estimate:
    """Every line of one config's cost, and the totals of what is known."""

    project: str
    region: str
    lines: list[Line] = field(default_factory=list)
    compute: list[ComputeLine] = field(default_factory=list)

    def of(self, kind: Kind) -> list[Line]:
        """Return the lines of one kind."""
        return [line for line in self.lines if line.kind is kind]

    @property
    def idle_monthly_usd(self) -> float:
        """Return the sum of the idle lines whose price is known (see :attr:`idle_unknown`)."""
        return sum(line.usd for line in self.of(Kind.IDLE) if line.usd is not None)

    @property
    def idle_unknown(self) -> list[Line]:
        """Return the idle lines whose price the table lacks (the total leaves them out)."""
        return [line for line in self.of(Kind.IDLE) if line.usd is None]

    @property
    def stacks(self) -> list[str]:
        """Return the stacks the estimate covers, in template order."""
        return list(dict.fromkeys([*(line.stack for line in self.lines), *(c.stack for c in self.compute)]))

    def idle_by_stack(self) -> dict[str, float]:
        """Return each stack's known idle monthly total."""
        out = dict.fromkeys(self.stacks, 0.0)
        for line in self.of(Kind.IDLE):
            if line.usd is not None:
                out[line.stack] += line.usd
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the estimate as JSON-ready data: every line, and the totals the table prints."""
        return {
            "project": self.project,
            "region": self.region,
            "hours_per_month": HOURS_PER_MONTH,
            "idle_monthly_usd": round(self.idle_monthly_usd, 2),
            "idle_complete": not self.idle_unknown,
            "idle_unknown": [f"{line.stack} {line.item} ({line.key})" for line in self.idle_unknown],
            "idle_monthly_usd_by_stack": {k: round(v, 2) for k, v in self.idle_by_stack().items()},
            "idle": [line.to_dict() for line in self.of(Kind.IDLE)],
            "full_scale": [c.to_dict() for c in self.compute],
            "full_scale_extra": [line.to_dict() for line in self.of(Kind.FULL_SCALE)],
            "running": [line.to_dict() for line in self.of(Kind.RUNNING)],
            "usage": [line.to_dict() for line in self.of(Kind.USAGE)],
        }


# --- the classification -----------------------------------------------------------------------

FREE = frozenset(
    {
        "AWS::Batch::JobDefinition",
        "AWS::Batch::JobQueue",
        "AWS::CloudFormation::Stack",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::LaunchTemplate",
        "AWS::EC2::PlacementGroup",
        "AWS::EC2::Route",
        "AWS::EC2::RouteTable",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::Subnet",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EFS::AccessPoint",
        "AWS::EFS::MountTarget",
        "AWS::EKS::AccessEntry",
        "AWS::EKS::Addon",
        "AWS::EKS::PodIdentityAssociation",
        "AWS::EMR::SecurityConfiguration",
        "AWS::Events::Rule",  # scheduled rules and AWS service events are not charged
        "AWS::FSx::DataRepositoryAssociation",  # the S3 requests it makes are S3 usage
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::ImageBuilder::Component",
        "AWS::ImageBuilder::DistributionConfiguration",
        "AWS::ImageBuilder::ImageRecipe",
        "AWS::ImageBuilder::InfrastructureConfiguration",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::Route53::RecordSet",  # records are free; the zone and its queries are billed
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SSM::Parameter",  # standard tier
        "AWS::SageMaker::StudioLifecycleConfig",
        "AWS::SageMaker::UserProfile",  # its apps are billed by the hour while they run (the domain's line)
        # custom resources run their provider's Lambda only at deploy time (the functions' usage lines)
        "Custom::AWSCDK-EKS-HelmChart",  # the chart's pods run on the cluster's nodes (their line)
        "Custom::AWSCDK-EKS-KubernetesResource",
        "Custom::SelfSignedTlsBundle",
        "Custom::VpcRestrictDefaultSG",
    }
)

# usage-only: the unit prices a person needs to reckon with their own volumes
USAGE: dict[str, tuple[tuple[str, str], ...]] = {
    "AWS::S3::Bucket": ((pricing.S3_STANDARD_GB_MONTH, "storage"),),
    "AWS::EFS::FileSystem": (
        (pricing.EFS_STANDARD_GB_MONTH, "storage (elastic throughput billed per GB moved)"),
    ),
    "AWS::Logs::LogGroup": (
        (pricing.LOGS_INGESTED_GB, "ingestion"),
        (pricing.LOGS_STORED_GB_MONTH, "storage"),
    ),
    "AWS::EC2::FlowLog": ((pricing.LOGS_INGESTED_GB, "flow log records delivered to CloudWatch Logs"),),
    "AWS::Lambda::Function": (
        (pricing.LAMBDA_REQUESTS_1M, "requests"),
        (pricing.LAMBDA_GB_SECOND, "duration"),
    ),
    "AWS::ECR::Repository": ((pricing.ECR_GB_MONTH, "image storage"),),
    "AWS::CodeBuild::Project": ((pricing.CODEBUILD_MINUTE, "build minutes (in-account image builds)"),),
    "AWS::SNS::Topic": ((pricing.SNS_EMAIL_100K, "email notifications"),),
    "AWS::StepFunctions::StateMachine": ((pricing.STATES_TRANSITIONS_1K, "state transitions (deploy time)"),),
    "AWS::APS::Workspace": (
        (pricing.AMP_SAMPLES_INGESTED_10M, "metric samples ingested"),
        (pricing.AMP_STORAGE_GB_MONTH, "metrics stored"),
        (pricing.AMP_QUERY_SAMPLES_1B, "query samples processed (KEDA's and Grafana's queries)"),
    ),
}

Pricer = Callable[["_Context", str, dict[str, Any]], Iterator[Line | ComputeLine]]


@dataclass
class _Context:
    assembly: Assembly
    table: PriceTable
    stack: str  # the template (a nested stack's own)
    label: str  # the deployable stack it belongs to

    @property
    def region(self) -> str:
        return self.assembly.region

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.assembly.templates[self.stack].get("Resources") or {})

    def price(self, key: str) -> Price | None:
        return self.table.get(self.region, key)

    def line(
        self, logical: str, item: str, kind: Kind, key: str, quantity: float | None, *, note: str = ""
    ) -> Line:
        return Line(self.label, logical, item, kind, key, quantity, self.price(key), note)

    def logical_of(self, ref: Any) -> str | None:
        """Return the logical id a Ref / GetAtt points at, if it is in this template."""
        if isinstance(ref, dict) and "Ref" in ref:
            return str(ref["Ref"])
        if isinstance(ref, dict) and "Fn::GetAtt" in ref:
            target = ref["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
        return None

    def root_volume_gib(self, launch_template: Any) -> int:
        """Return the EBS GiB a launch template gives each instance (0 when it sets none)."""
        logical = self.logical_of(launch_template)
        template = self.resources.get(logical or "", {})
        data = (template.get("Properties") or {}).get("LaunchTemplateData") or {}
        return sum(
            int((m.get("Ebs") or {}).get("VolumeSize", 0)) for m in data.get("BlockDeviceMappings") or []
        )


def _monthly(count: float) -> float:
    return count * HOURS_PER_MONTH


def _nat_gateway(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    yield ctx.line(logical, "NAT gateway", Kind.IDLE, pricing.NAT_GATEWAY_HOUR, _monthly(1))
    yield ctx.line(logical, "NAT gateway data processed", Kind.USAGE, pricing.NAT_GATEWAY_GB, None)


def _eip(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    yield ctx.line(
        logical, "public IPv4 address (the NAT gateway's)", Kind.IDLE, pricing.PUBLIC_IPV4_HOUR, _monthly(1)
    )


def _endpoint(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    if props.get("VpcEndpointType", "Gateway") != "Interface":
        return  # gateway endpoints (S3, DynamoDB) are free
    service = str(ctx.assembly.resolve(ctx.stack, props.get("ServiceName", ""))).rsplit(".", 1)[-1]
    name = _endpoint_name(str(ctx.assembly.resolve(ctx.stack, props.get("ServiceName", ""))), ctx.region)
    zones = len(props.get("SubnetIds") or []) or 1
    yield ctx.line(
        logical, f"interface endpoint {name or service} ({zones} zones)", Kind.IDLE,
        pricing.INTERFACE_ENDPOINT_AZ_HOUR, _monthly(zones),
    )  # fmt: skip
    yield ctx.line(
        logical,
        f"interface endpoint {name or service} data processed",
        Kind.USAGE,
        pricing.INTERFACE_ENDPOINT_GB,
        None,
    )


def _endpoint_name(service: str, region: str) -> str:
    """Return ``ecr.api`` from ``com.amazonaws.us-east-1.ecr.api``."""
    return service.split(f".{region}.", 1)[-1] if f".{region}." in service else service


def _fsx(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    lustre = props.get("LustreConfiguration") or {}
    deployment = str(lustre.get("DeploymentType", "SCRATCH_2"))
    throughput = lustre.get("PerUnitStorageThroughput")
    gib = int(props.get("StorageCapacity", 0))
    key = pricing.fsx_lustre_gb_month(deployment, int(throughput) if throughput else None)
    tier = f" at {throughput} MB/s/TiB" if throughput else ""
    yield ctx.line(logical, f"FSx for Lustre {deployment}{tier}, {gib:,} GiB", Kind.IDLE, key, float(gib))


def _kms(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    rotates = bool((res.get("Properties") or {}).get("EnableKeyRotation"))
    note = "rotation adds $1/month per new backing key after each yearly rotation" if rotates else ""
    yield ctx.line(logical, "KMS customer managed key", Kind.IDLE, pricing.KMS_KEY_MONTH, 1.0, note=note)
    yield ctx.line(logical, "KMS requests", Kind.USAGE, pricing.KMS_REQUESTS_10K, None)


def _dashboard(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    yield ctx.line(logical, "CloudWatch dashboard", Kind.IDLE, pricing.CLOUDWATCH_DASHBOARD_MONTH, 1.0)


def _alarm(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    metrics = [m for m in props.get("Metrics") or [] if "MetricStat" in m] or (
        [1] if props.get("MetricName") else []
    )
    count = max(len(metrics), 1)
    yield ctx.line(logical, f"CloudWatch alarm ({count} metric{'s' if count > 1 else ''})", Kind.IDLE,
                   pricing.CLOUDWATCH_ALARM_METRIC_MONTH, float(count))  # fmt: skip


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_PER_MONTH = {"minute": HOURS_PER_MONTH * 60, "hour": HOURS_PER_MONTH, "day": HOURS_PER_MONTH / 24}


def runs_per_month(schedule: str) -> float | None:
    """Return how often a ``rate(N unit)`` schedule fires in a month (None for a cron expression)."""
    m = _RATE.match(schedule.strip())
    if not m:
        return None
    return _PER_MONTH[m.group(2).rstrip("s")] / int(m.group(1))


def _function(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    """A scheduled function's requests are known from its schedule; what it publishes too."""
    from stacks.lambdas.queue_metrics import STATUSES

    props = res.get("Properties") or {}
    runs = None
    for rule_id, rule in ctx.resources.items():
        rprops = rule.get("Properties") or {}
        if rule["Type"] != "AWS::Events::Rule" or not rprops.get("ScheduleExpression"):
            continue
        if any(ctx.logical_of(t.get("Arn")) == logical for t in rprops.get("Targets") or []):
            runs = runs_per_month(str(rprops["ScheduleExpression"]))
            if runs is None:
                continue
            yield ctx.line(
                f"{logical}, {rule_id}", f"scheduled function: {runs:,.0f} runs a month", Kind.IDLE,
                pricing.LAMBDA_REQUESTS_1M, runs / 1e6, note=f"{rprops['ScheduleExpression']}; duration is usage",
            )  # fmt: skip
    queues = ((props.get("Environment") or {}).get("Variables") or {}).get("QUEUES")
    if queues is not None:  # stacks/lambdas/queue_metrics.py: one metric per queue and status
        names = json.loads(str(ctx.assembly.resolve(ctx.stack, queues)))
        metrics = len(names) * len(STATUSES)
        yield ctx.line(logical, f"queue-metrics custom metrics ({len(names)} queue(s) x {len(STATUSES)} statuses)",
                       Kind.IDLE, pricing.CLOUDWATCH_CUSTOM_METRIC_MONTH, float(metrics))  # fmt: skip
        if runs is not None:
            calls = runs * math.ceil(metrics / 20)  # PutMetricData takes 20 data points a call
            yield ctx.line(logical, f"queue-metrics PutMetricData calls ({calls:,.0f} a month)", Kind.IDLE,
                           pricing.CLOUDWATCH_API_1K, calls / 1000)  # fmt: skip


def _secret(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    yield ctx.line(logical, "Secrets Manager secret", Kind.IDLE, pricing.SECRET_MONTH, 1.0)


def _hosted_zone(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    yield ctx.line(logical, "Route 53 hosted zone", Kind.IDLE, pricing.HOSTED_ZONE_MONTH, 1.0)
    yield ctx.line(logical, "Route 53 queries", Kind.USAGE, pricing.ROUTE53_QUERIES_1M, None)


def _eks_cluster(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    version = (props.get("Config") or props).get("version") or props.get("Version") or "?"
    yield ctx.line(logical, f"EKS control plane (Kubernetes {version})", Kind.IDLE, pricing.EKS_CLUSTER_HOUR,
                   _monthly(1), note="standard support; a version past it bills the extended-support rate")  # fmt: skip


def _amp_scraper(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    del res
    yield ctx.line(logical, "Managed Prometheus collector (scraper)", Kind.IDLE, pricing.AMP_COLLECTOR_HOUR,
                   _monthly(1), note="plus each sample it collects (amp/collector-samples/10m)")  # fmt: skip


def _instances(
    ctx: _Context, logical: str, item: str, instance_type: str, *, count: int, volume_gib: int, kind: Kind
) -> Iterator[Line]:
    hours = _monthly(count) if kind is Kind.IDLE else float(count)
    yield ctx.line(
        logical, f"{item}: {count} x {instance_type}", kind, pricing.instance_hour(instance_type), hours
    )
    if volume_gib:
        gb_months = count * volume_gib * (1.0 if kind is Kind.IDLE else 1 / HOURS_PER_MONTH)
        yield ctx.line(
            logical, f"{item}: {count} x {volume_gib} GiB gp3", kind, pricing.EBS_GP3_GB_MONTH, gb_months
        )


def _nodegroup(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    scaling = props.get("ScalingConfig") or {}
    types = props.get("InstanceTypes") or ["?"]
    volume = ctx.root_volume_gib((props.get("LaunchTemplate") or {}).get("Id")) or int(
        props.get("DiskSize", 20)
    )
    desired = int(scaling.get("DesiredSize", scaling.get("MinSize", 0)))
    name = str(props.get("NodegroupName") or logical)
    if desired:
        yield from _instances(
            ctx,
            logical,
            f"EKS node group {name} (desired)",
            types[0],
            count=desired,
            volume_gib=volume,
            kind=Kind.IDLE,
        )
    maximum = int(scaling.get("MaxSize", desired))
    yield ComputeLine(
        ctx.label, logical, f"EKS node group {name} at max_size", "spot" if props.get("CapacityType") == "SPOT"
        else "on-demand", types[0], maximum, ctx.price(pricing.instance_hour(types[0])),
        1.0 if props.get("CapacityType") == "SPOT" else None,
    )  # fmt: skip


def _ec2_instance(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    volume = sum(
        int((m.get("Ebs") or {}).get("VolumeSize", 0)) for m in props.get("BlockDeviceMappings") or []
    )
    yield from _instances(
        ctx,
        logical,
        "EC2 instance",
        str(props.get("InstanceType")),
        count=1,
        volume_gib=volume,
        kind=Kind.IDLE,
    )


def _emr(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    instances = props.get("Instances") or {}
    idle = (props.get("AutoTerminationPolicy") or {}).get("IdleTimeout")
    note = f"terminates itself after {int(idle) // 60} idle minutes" if idle else "runs until terminated"
    for group_key in ("MasterInstanceGroup", "CoreInstanceGroup", "TaskInstanceGroup"):
        group = instances.get(group_key)
        if not group:
            continue
        itype, count = str(group["InstanceType"]), int(group.get("InstanceCount", 1))
        ebs = sum(
            int(c["VolumeSpecification"]["SizeInGB"]) * int(c.get("VolumesPerInstance", 1))
            for c in (group.get("EbsConfiguration") or {}).get("EbsBlockDeviceConfigs") or []
        )
        name = f"EMR {group.get('Name', group_key)}"
        yield from _instances(ctx, logical, name, itype, count=count, volume_gib=ebs, kind=Kind.RUNNING)
        yield ctx.line(logical, f"{name}: EMR fee, {count} x {itype}", Kind.RUNNING, pricing.emr_fee_hour(itype),
                       float(count), note=note)  # fmt: skip


def _sagemaker_domain(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    spec = ((props.get("DefaultSpaceSettings") or props.get("DefaultUserSettings") or {}).get("JupyterLabAppSettings")
            or {}).get("DefaultResourceSpec") or {}  # fmt: skip
    itype = str(spec.get("InstanceType", "ml.t3.medium"))
    yield ctx.line(logical, f"Studio JupyterLab app ({itype}) per hour it runs", Kind.USAGE,
                   pricing.sagemaker_hour(itype), None, note="apps stop after their idle timeout")  # fmt: skip
    yield ctx.line(
        logical, "Studio home directories (the domain's EFS)", Kind.USAGE, pricing.EFS_STANDARD_GB_MONTH, None
    )


def _image_pipeline(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    props = res.get("Properties") or {}
    infra = ctx.resources.get(ctx.logical_of(props.get("InfrastructureConfigurationArn")) or "", {})
    for itype in (infra.get("Properties") or {}).get("InstanceTypes") or []:
        yield ctx.line(logical, f"image build instance {itype} per build hour", Kind.USAGE, pricing.instance_hour(itype), None,
                       note="scheduled builds: none" if not props.get("Schedule") else "on its schedule")  # fmt: skip


def _compute_environment(ctx: _Context, logical: str, res: dict[str, Any]) -> Iterator[Line | ComputeLine]:
    """The compute at full scale: max_vcpus of the costliest listed type, On-Demand or Spot."""
    cr = (res.get("Properties") or {}).get("ComputeResources") or {}
    spot = cr.get("Type") in ("SPOT", "FARGATE_SPOT")
    types = [str(t) for t in cr.get("InstanceTypes") or []]
    max_vcpus, min_vcpus = int(cr.get("MaxvCpus", 0)), int(cr.get("MinvCpus", 0))
    volume = ctx.root_volume_gib((cr.get("LaunchTemplate") or {}).get("LaunchTemplateId"))
    cap = float(cr["BidPercentage"]) / 100 if cr.get("BidPercentage") else 1.0  # Batch's default cap: 100 %
    options = []
    for name in types:
        facts = lookup(name)
        nodes = max_vcpus // facts.vcpus if facts else 0
        price = ctx.price(pricing.instance_hour(name))
        options.append((nodes * price.usd if price else math.inf, name, nodes, price))
    if not options:
        return
    unknown = [name for cost, name, _, _ in options if cost == math.inf]
    _, name, nodes, price = max(options, key=lambda o: (o[0], o[1]))
    others = [n for n in types if n != name]
    note = (
        f"the costliest of {', '.join(types)} filling {max_vcpus} vCPUs" if others else f"{max_vcpus} vCPUs"
    )
    if unknown:
        price = None
        note += f"; no price for {', '.join(unknown)}"
    label = f"Batch {'Spot' if spot else 'On-Demand'} environment {logical}"
    yield ComputeLine(ctx.label, logical, label, "spot" if spot else "on-demand", name, nodes, price,
                      cap if spot else None, note)  # fmt: skip
    if volume and nodes:
        yield ctx.line(logical, f"{label}: {nodes} x {volume} GiB gp3 root volumes", Kind.FULL_SCALE,
                       pricing.EBS_GP3_GB_MONTH, nodes * volume / HOURS_PER_MONTH)  # fmt: skip
    if min_vcpus:
        cheapest = min(
            types,
            key=lambda n: (ctx.price(pricing.instance_hour(n)) or Price("", "", math.inf, "", "", "")).usd,
        )
        facts = lookup(cheapest)
        count = math.ceil(min_vcpus / facts.vcpus) if facts else 1
        yield from _instances(
            ctx,
            logical,
            f"{label} min_vcpus {min_vcpus}",
            cheapest,
            count=count,
            volume_gib=volume,
            kind=Kind.IDLE,
        )


PRICED: dict[str, Pricer] = {
    "AWS::EC2::NatGateway": _nat_gateway,
    "AWS::EC2::EIP": _eip,
    "AWS::EC2::VPCEndpoint": _endpoint,
    "AWS::FSx::FileSystem": _fsx,
    "AWS::KMS::Key": _kms,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::Lambda::Function": _function,
    "AWS::SecretsManager::Secret": _secret,
    "AWS::Route53::HostedZone": _hosted_zone,
    "Custom::AWSCDK-EKS-Cluster": _eks_cluster,
    "AWS::EKS::Cluster": _eks_cluster,
    "AWS::APS::Scraper": _amp_scraper,
    "AWS::EKS::Nodegroup": _nodegroup,
    "AWS::EC2::Instance": _ec2_instance,
    "AWS::EMR::Cluster": _emr,
    "AWS::SageMaker::Domain": _sagemaker_domain,
    "AWS::ImageBuilder::ImagePipeline": _image_pipeline,
    "AWS::Batch::ComputeEnvironment": _compute_environment,
}


def classification(resource_type: str) -> str | None:
    """Return "priced", "usage" or "free" for a resource type, or None when it is unclassified."""
    if resource_type in PRICED:
        return "priced"
    if resource_type in USAGE:
        return "usage"
    return "free" if resource_type in FREE else None


def estimate(assembly: Assembly, table: PriceTable) -> Estimate:
    """Itemise every resource of every template of the assembly; raise on an unclassified type."""
    unclassified = sorted(
        {
            (r["Type"], stack)
            for stack, template in assembly.templates.items()
            for r in (template.get("Resources") or {}).values()
            if classification(r["Type"]) is None
        }
    )
    if unclassified:
        listed = ", ".join(f"{kind} ({stack})" for kind, stack in unclassified)
        raise UnclassifiedResource(
            f"the cost model does not know {listed}",
            fix="add the type to PRICED, USAGE or FREE in mlhpc_app/cost/model.py (with its price key)",
        )
    result = Estimate(project=assembly.project, region=assembly.region)
    for stack, template in assembly.templates.items():
        ctx = _Context(assembly, table, stack, _stack_label(stack, assembly.templates))
        for logical, res in (template.get("Resources") or {}).items():
            kind = res["Type"]
            if kind in PRICED:
                for line in PRICED[kind](ctx, logical, res):
                    if isinstance(line, ComputeLine):
                        result.compute.append(line)
                    else:
                        result.lines.append(line)
            for key, what in USAGE.get(kind, ()):
                result.lines.append(ctx.line(logical, f"{_short(kind)} {what}", Kind.USAGE, key, None))
    return result


def _stack_label(stack: str, templates: dict[str, Any]) -> str:
    """Return the deployable stack a template belongs to (a CDK nested stack's parent)."""
    if not stack.endswith(".nested"):
        return stack
    return next((s for s in templates if not s.endswith(".nested") and stack.startswith(s)), stack)


def _short(resource_type: str) -> str:
    """Return ``S3 Bucket`` for ``AWS::S3::Bucket``."""
    return " ".join(resource_type.split("::")[1:])
