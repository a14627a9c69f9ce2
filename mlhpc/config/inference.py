"""The inference domain: EKS with CPU and Inferentia node groups serving BERT, and the INF rules."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field

from mlhpc.config.common import RetentionDays, Section
from mlhpc.config.issues import ConfigIssue
from mlhpc.errors import echo, shorten

if TYPE_CHECKING:
    from mlhpc.config.model import Config


# NeuronCores per instance (AWS instance pages): what one node can give the BERT pods.
NEURON_CORES: dict[str, int] = {
    "inf1.xlarge": 4, "inf1.2xlarge": 4, "inf1.6xlarge": 16, "inf1.24xlarge": 64,
    "inf2.xlarge": 2, "inf2.8xlarge": 2, "inf2.24xlarge": 12, "inf2.48xlarge": 24,
}  # fmt: skip


def _neuron_instance(value: str) -> str:
    if value not in NEURON_CORES:
        raise ValueError(
            f"{echo(value)} is not an Inferentia instance type mlhpc knows; use one of {', '.join(NEURON_CORES)} "
            "(inf2 is the default; inf1 needs torch-neuron)"
        )
    return value


def _public_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(
            f"{echo(value)} is not an IPv4 CIDR block ({shorten(str(err))}); use e.g. '203.0.113.0/24'"
        ) from err
    if net.prefixlen < 8:
        raise ValueError(
            f"{echo(value)} opens the Kubernetes API to {net.num_addresses} addresses; list your office or VPN "
            "ranges (e.g. '203.0.113.0/24'), or leave public_endpoint_cidrs empty for a private endpoint"
        )
    return value


def _role_arn(value: str) -> str:
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise ValueError(
            f"{echo(value)} is not an IAM role ARN; use e.g. 'arn:aws:iam::123456789012:role/Admin'"
        )
    return value


class SystemNodesConfig(Section):
    """The CPU node group for cluster add-ons (CoreDNS, the Neuron scheduler) and CPU pods."""

    instance_types: tuple[str, ...] = Field(default=("m6i.large",), min_length=1)
    min_size: int = Field(default=1, ge=1, le=100)
    desired_size: int = Field(default=2, ge=1, le=100)
    max_size: int = Field(default=3, ge=1, le=100)
    disk_size_gib: int = Field(default=50, ge=20, le=16384)


class NeuronNodesConfig(Section):
    """The Inferentia node group: accelerated (Neuron) AMI, labelled and tainted for Neuron pods only."""

    instance_types: tuple[Annotated[str, AfterValidator(_neuron_instance)], ...] = Field(
        default=("inf2.xlarge",), min_length=1
    )
    min_size: int = Field(default=0, ge=0, le=100)
    desired_size: int = Field(default=1, ge=0, le=100)
    max_size: int = Field(default=2, ge=1, le=100)
    disk_size_gib: int = Field(default=100, ge=50, le=16384)
    ami_release_version: str | None = Field(
        default=None,
        pattern=r"^\d+\.\d+\.\d+-\d{8}$",
        description="EKS AMI release (e.g. '1.35.0-20260101') pinning the Neuron driver; unset: latest.",
    )

    @property
    def family(self) -> str:
        """Return the instance family of the group (inf1 or inf2; INF004 keeps it to one)."""
        return self.instance_types[0].split(".", 1)[0]


class InferenceServiceConfig(Section):
    """The BERT service the cluster runs."""

    namespace: str = Field(default="bert", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    model_prefix: str = Field(
        default="models/bert/",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$",
        description="Prefix in the datasets bucket holding the model (Hugging Face format); pods read only it.",
    )
    neuron_cores_per_pod: int = Field(default=1, ge=1, le=64)
    replicas_min: int = Field(default=1, ge=1, le=100)
    replicas_max: int = Field(default=4, ge=1, le=100)
    max_batch_size: int = Field(default=8, ge=1, le=256)
    target_cpu_percent: int = Field(
        default=70, ge=10, le=100, description="Only without the metrics workspace: CPU HPA target."
    )
    target_queue_pairs_per_replica: int = Field(
        default=16, ge=1, le=10_000, description="KEDA: queued pairs per replica it scales to keep."
    )
    target_p99_latency_ms: int = Field(
        default=250, ge=10, le=60_000, description="KEDA: p99 request latency above which it adds replicas."
    )


class InferenceConfig(Section):
    """InferenceStack: EKS with CPU and Inferentia node groups serving BERT (off by default: EKS costs money)."""

    enabled: bool = False
    kubernetes_version: Literal["1.35"] = Field(
        default="1.35", description="EKS version; the kubectl Lambda layer is pinned to match."
    )
    public_endpoint_cidrs: tuple[Annotated[str, AfterValidator(_public_cidr)], ...] = Field(
        default=(), description="Empty: private API endpoint only; else public access from these ranges."
    )
    admin_role_arns: tuple[Annotated[str, AfterValidator(_role_arn)], ...] = Field(
        default=(), description="IAM roles given cluster-admin through EKS access entries."
    )
    control_plane_log_retention_days: RetentionDays = 90
    system_nodes: SystemNodesConfig = SystemNodesConfig()
    neuron_nodes: NeuronNodesConfig = NeuronNodesConfig()
    neuron_scheduler: bool = Field(default=False, description="Install the Neuron scheduler extension.")
    alarm_email: str | None = Field(
        default=None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Subscribed to the serving alarms (pods that no node can hold, the metrics pipeline).",
    )
    service: InferenceServiceConfig = InferenceServiceConfig()


# --- rules ------------------------------------------------------------------------------------


def inference_rules(config: Config) -> Iterator[ConfigIssue]:
    """INF001-INF004: node group sizes, replica range, NeuronCores per pod, one Neuron generation."""
    inference = config.inference
    if not inference.enabled:
        return
    for name, group in (("system_nodes", inference.system_nodes), ("neuron_nodes", inference.neuron_nodes)):
        if not group.min_size <= group.desired_size <= group.max_size:
            yield ConfigIssue(
                code="INF001",
                path=f"inference.{name}",
                value=f"{group.min_size}/{group.desired_size}/{group.max_size}",
                message=f"node group sizes min {group.min_size}, desired {group.desired_size}, max "
                f"{group.max_size} are not in order, so EKS rejects the node group",
                fix=f"set inference.{name} so that min_size <= desired_size <= max_size",
            )
    service = inference.service
    if service.replicas_min > service.replicas_max:
        yield ConfigIssue(
            code="INF002",
            path="inference.service.replicas_min",
            value=service.replicas_min,
            message=f"replicas_min {service.replicas_min} is above replicas_max {service.replicas_max}",
            fix="set inference.service.replicas_min <= replicas_max",
        )
    smallest = min(inference.neuron_nodes.instance_types, key=lambda t: NEURON_CORES[t])
    if service.neuron_cores_per_pod > NEURON_CORES[smallest]:
        yield ConfigIssue(
            code="INF003",
            path="inference.service.neuron_cores_per_pod",
            value=service.neuron_cores_per_pod,
            message=f"a pod asks for {service.neuron_cores_per_pod} NeuronCores but {smallest} has only "
            f"{NEURON_CORES[smallest]}, so it can never be scheduled there",
            fix=f"set neuron_cores_per_pod to at most {NEURON_CORES[smallest]}, or use larger instance types",
        )
    families = sorted({t.split(".")[0] for t in inference.neuron_nodes.instance_types})
    if len(families) > 1:
        yield ConfigIssue(
            code="INF004",
            path="inference.neuron_nodes.instance_types",
            value=list(inference.neuron_nodes.instance_types),
            message="inf1 and inf2 in one node group: a model compiled for one cannot run on the other "
            "(torch-neuron vs torch-neuronx)",
            fix="keep one family per config: inf2 (default) or inf1",
        )
