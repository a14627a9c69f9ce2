"""The configuration model: one frozen pydantic section per stack.

A YAML file is parsed into :class:`Config`. Every model forbids unknown keys and is
frozen, so a stack receives a section it can neither mistype nor mutate. Units are in
the field names (``retention_days``, ``size_gib``). Rules that involve several fields
live in :mod:`mlhpc.config.rules`, each with a stable code.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_AZ_RE = re.compile(r"^([a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d)([a-z])$")


class Section(BaseModel):
    """Base for every config section: frozen, no unknown keys, validated defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, use_enum_values=False)


def _region(value: str) -> str:
    if not _REGION_RE.match(value):
        raise ValueError(
            f"'{value}' is not an AWS region name; expected a name such as 'us-east-1' or 'eu-west-2'"
        )
    return value


def _az(value: str) -> str:
    if not _AZ_RE.match(value):
        raise ValueError(
            f"'{value}' is not an Availability Zone name; expected a region followed by a letter, "
            "such as 'us-east-1a'"
        )
    return value


def _ipv4_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(
            f"'{value}' is not an IPv4 CIDR block ({err}); use a block such as '10.0.0.0/16'"
        ) from err
    if not 16 <= net.prefixlen <= 24:
        raise ValueError(
            f"a VPC CIDR of /{net.prefixlen} is outside what mlhpc supports (/16 to /24); use e.g. '10.0.0.0/16'"
        )
    if not net.is_private:
        raise ValueError(
            f"'{value}' is not a private (RFC 1918) range; use e.g. '10.0.0.0/16' or '172.16.0.0/16'"
        )
    return value


def _project_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,19}", value):
        suggestion = re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-")[:20] or "mlhpc"
        if not suggestion[0].isalpha():
            suggestion = f"p-{suggestion}"[:20]
        raise ValueError(
            f"'{value}' cannot prefix stack and resource names; use 2-20 lowercase letters, digits or '-', "
            f"starting with a letter, e.g. '{suggestion}'"
        )
    return value


def _retention_days(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        pos = bisect.bisect(LOG_RETENTION_DAYS, value)
        near = [
            d
            for d in (
                LOG_RETENTION_DAYS[max(pos - 1, 0)],
                LOG_RETENTION_DAYS[min(pos, len(LOG_RETENTION_DAYS) - 1)],
            )
        ]
        nearest = " or ".join(str(d) for d in dict.fromkeys(near))
        raise ValueError(
            f"CloudWatch Logs cannot keep logs for {value} days; use {nearest} "
            f"(allowed: {', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    return value


def _account(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(
            f"'{value}' is not a 12-digit AWS account id; write all 12 digits in quotes, e.g. '123456789012', "
            "or leave account unset for account-agnostic templates"
        )
    return value


ProjectName = Annotated[str, AfterValidator(_project_name)]
Region = Annotated[str, AfterValidator(_region)]
AvailabilityZone = Annotated[str, AfterValidator(_az)]
VpcCidr = Annotated[str, AfterValidator(_ipv4_cidr)]


def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key '{value}' uses the reserved 'aws:' prefix; choose a key without it")
    return value


TagKey = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+\-@]+$"), AfterValidator(_tag_key)
]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[\w .:/=+\-@]*$")]


class ProjectConfig(Section):
    """Who owns the deployment and where it goes."""

    name: ProjectName = Field(default="mlhpc", description="Prefix of stack and resource names.")
    region: Region = "us-east-1"
    account: Annotated[str, AfterValidator(_account)] | None = Field(
        default=None, description="12-digit account id; unset: account-agnostic templates."
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=lambda: {"Project": "mlhpc"})


class InterfaceEndpoint(StrEnum):
    """AWS services reached privately through interface VPC endpoints."""

    ECR_API = "ecr.api"
    ECR_DKR = "ecr.dkr"
    LOGS = "logs"
    MONITORING = "monitoring"
    SSM = "ssm"
    SSM_MESSAGES = "ssmmessages"
    EC2_MESSAGES = "ec2messages"
    EC2 = "ec2"
    STS = "sts"
    SECRETS_MANAGER = "secretsmanager"
    KMS = "kms"
    SAGEMAKER_API = "sagemaker.api"
    SAGEMAKER_RUNTIME = "sagemaker.runtime"
    BATCH = "batch"
    ECS = "ecs"
    ECS_AGENT = "ecs-agent"
    ECS_TELEMETRY = "ecs-telemetry"
    ELASTIC_FILESYSTEM = "elasticfilesystem"


DEFAULT_INTERFACE_ENDPOINTS: tuple[InterfaceEndpoint, ...] = (
    InterfaceEndpoint.ECR_API,
    InterfaceEndpoint.ECR_DKR,
    InterfaceEndpoint.LOGS,
    InterfaceEndpoint.SSM,
    InterfaceEndpoint.SSM_MESSAGES,
    InterfaceEndpoint.EC2_MESSAGES,
    InterfaceEndpoint.STS,
    InterfaceEndpoint.SECRETS_MANAGER,
    InterfaceEndpoint.SAGEMAKER_API,
    InterfaceEndpoint.SAGEMAKER_RUNTIME,
    InterfaceEndpoint.BATCH,
)


class FlowLogTraffic(StrEnum):
    """Which packets VPC flow logs record."""

    ALL = "ALL"
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"


class FlowLogsConfig(Section):
    """VPC flow logs, delivered to a KMS-encrypted CloudWatch log group."""

    traffic_type: FlowLogTraffic = FlowLogTraffic.ALL
    retention_days: Annotated[int, AfterValidator(_retention_days)] = 90
    max_aggregation_interval_s: Literal[60, 600] = Field(default=600, description="60 or 600 seconds.")


class NetworkConfig(Section):
    """The VPC every other stack lives in."""

    cidr: VpcCidr = "10.0.0.0/16"
    az_count: int = Field(default=2, ge=2, le=6, description="Availability Zones spanned (at least 2).")
    availability_zones: tuple[AvailabilityZone, ...] | None = Field(
        default=None,
        description="Explicit AZ names (length az_count), e.g. where GPU capacity is; "
        "default: the first az_count zones CloudFormation's Fn::GetAZs returns for the account.",
    )
    nat_gateways: int = Field(default=1, ge=0, le=6, description="NAT gateways; 1 keeps the default cheap.")
    public_subnet_mask: int = Field(default=24, ge=16, le=28)
    private_subnet_mask: int = Field(default=20, ge=16, le=28)
    gateway_endpoints: bool = Field(default=True, description="S3 and DynamoDB gateway endpoints (free).")
    interface_endpoints: tuple[InterfaceEndpoint, ...] = DEFAULT_INTERFACE_ENDPOINTS
    flow_logs: FlowLogsConfig = FlowLogsConfig()


# --- storage ----------------------------------------------------------------------------


class RemovalPolicyName(StrEnum):
    """What CloudFormation does with stateful data when its stack is deleted."""

    RETAIN = "retain"
    DESTROY = "destroy"


class BucketsConfig(Section):
    """The datasets, results and checkpoints buckets (plus one for their access logs)."""

    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    checkpoint_expiry_days: int = Field(default=30, ge=1, le=3650, description="Old checkpoints are deleted.")
    results_noncurrent_expiry_days: int = Field(default=90, ge=1, le=3650)
    abort_incomplete_upload_days: int = Field(default=7, ge=1, le=365)
    access_log_expiry_days: int = Field(default=365, ge=1, le=3650)


class EfsThroughput(StrEnum):
    """EFS throughput modes."""

    ELASTIC = "elastic"
    BURSTING = "bursting"


class EfsConfig(Section):
    """EFS for home directories and shared software, mounted at /efs with TLS."""

    enabled: bool = True
    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    throughput_mode: EfsThroughput = EfsThroughput.ELASTIC
    backups: bool = True
    infrequent_access_after_days: Literal[1, 7, 14, 30, 60, 90, 180, 270, 365] | None = 30


class FsxDeploymentType(StrEnum):
    """FSx for Lustre deployment types (SSD)."""

    SCRATCH_1 = "SCRATCH_1"
    SCRATCH_2 = "SCRATCH_2"
    PERSISTENT_1 = "PERSISTENT_1"
    PERSISTENT_2 = "PERSISTENT_2"


class FsxConfig(Section):
    """FSx for Lustre scratch at /fsx, in the EFA compute zone, linked to the datasets bucket."""

    enabled: bool = True
    deployment_type: FsxDeploymentType = FsxDeploymentType.PERSISTENT_2
    storage_capacity_gib: int = Field(default=1200, ge=1200, le=2_000_000)
    throughput_mib_per_tib: int | None = Field(
        default=125,
        description="MB/s per TiB of storage: PERSISTENT_1 50/100/200, PERSISTENT_2 125/250/500/1000.",
    )
    data_compression: bool = True
    removal_policy: RemovalPolicyName = RemovalPolicyName.RETAIN
    datasets_path: str = Field(default="/datasets", pattern=r"^/[A-Za-z0-9_./-]*$")


class StorageConfig(Section):
    """StorageStack: S3, EFS and FSx for Lustre."""

    buckets: BucketsConfig = BucketsConfig()
    efs: EfsConfig = EfsConfig()
    fsx: FsxConfig = FsxConfig()


# --- hpc --------------------------------------------------------------------------------

ECS_GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"


class CapacityKind(StrEnum):
    """How On-Demand capacity is reserved."""

    RESERVATION = "reservation"
    CAPACITY_BLOCK = "capacity_block"


class CapacityConfig(Section):
    """An On-Demand Capacity Reservation or a Capacity Block for ML the GPU nodes launch into."""

    kind: CapacityKind
    id: str = Field(pattern=r"^cr-[0-9a-f]{8,17}$", description="The reservation id, cr-...")


class AmiConfig(Section):
    """The machine image of the GPU nodes: an id, or an SSM parameter holding one."""

    image_id: str | None = Field(default=None, pattern=r"^ami-[0-9a-f]{8,17}$")
    ssm_parameter: str = Field(default=ECS_GPU_AMI_PARAMETER, pattern=r"^/[\w./-]+$")


class GpuComputeConfig(Section):
    """The GPU compute environments (On-Demand and Spot) for distributed training."""

    enabled: bool = Field(
        default=True, description="false: a CPU-only cluster (no GPU environments or queues)."
    )
    instance_types: tuple[str, ...] = Field(default=("g5.12xlarge",), min_length=1)
    efa: bool = True
    zone_indexes: tuple[int, ...] = Field(
        default=(0,), min_length=1, description="Private subnets (by zone index) the GPU nodes may use."
    )
    placement_group: bool = True
    min_vcpus: int = Field(default=0, ge=0)
    max_vcpus: int = Field(default=96, ge=1)
    on_demand: bool = True
    spot: bool = True
    capacity: CapacityConfig | None = None
    root_volume_gib: int = Field(default=200, ge=30, le=16384)
    hugepages_2mib: int = Field(default=5128, ge=0, le=1_000_000, description="2 MiB huge pages for EFA.")
    ami: AmiConfig = AmiConfig()


class CpuComputeConfig(Section):
    """The CPU compute environment for light jobs (sweeps, preprocessing)."""

    instance_types: tuple[str, ...] = Field(default=("c6i.large", "c6i.xlarge", "c6i.2xlarge", "m6i.xlarge"))
    min_vcpus: int = Field(default=0, ge=0)
    max_vcpus: int = Field(default=64, ge=1)
    spot: bool = True


class HpcConfig(Section):
    """HpcStack: the Batch cluster, its queues, job definitions, images and alarms."""

    gpu: GpuComputeConfig = GpuComputeConfig()
    cpu: CpuComputeConfig = CpuComputeConfig()
    job_log_retention_days: Annotated[int, AfterValidator(_retention_days)] = 30
    retry_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per job; only host/Spot loss retries."
    )
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    image_tag: str = Field(
        default="0.1.0",
        pattern=r"^[\w][\w.-]{0,127}$",
        description="Image tag the job definitions run (ECR tags are immutable).",
    )


# --- image ------------------------------------------------------------------------------

AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
_SSM_PARAMETER = r"^/[\w./-]+$"


class DriverPolicy(StrEnum):
    """What the GPU image does about the NVIDIA driver."""

    KEEP_BASE = "keep_base"  # keep the parent image's driver when it runs the CUDA pin
    INSTALL_PINNED = "install_pinned"  # install the manifest's driver on a parent without one


class NeuronTarget(StrEnum):
    """Which Neuron set of ami/versions.yaml the Inferentia image gets."""

    INF1 = "inf1"
    INF2 = "inf2"


class GpuImageConfig(Section):
    """The GPU training image recipe: drivers, CUDA, EFA, NCCL, aws-ofi-nccl, MPI, DCGM."""

    enabled: bool = True
    parent_ssm_parameter: str = Field(
        default=ECS_GPU_AMI_PARAMETER,
        pattern=_SSM_PARAMETER,
        description="SSM parameter holding the parent AMI id (default: the ECS GPU-optimized AL2023 AMI, "
        "which Batch needs: ECS agent, NVIDIA driver and container toolkit).",
    )
    driver: DriverPolicy = DriverPolicy.KEEP_BASE
    build_instance_types: tuple[str, ...] = Field(
        default=("g5.12xlarge",), min_length=1, description="GPU types the build and test instances use."
    )
    root_volume_gib: int = Field(default=100, ge=30, le=2048)


class InferentiaImageConfig(Section):
    """The Inferentia image recipe: the Neuron driver, runtime and tools."""

    enabled: bool = False
    target: NeuronTarget = NeuronTarget.INF2
    parent_ssm_parameter: str = Field(default=AL2023_AMI_PARAMETER, pattern=_SSM_PARAMETER)
    build_instance_types: tuple[str, ...] = Field(default=("inf2.xlarge",), min_length=1)
    root_volume_gib: int = Field(default=60, ge=30, le=2048)


class ImageConfig(Section):
    """ImageStack: the EC2 Image Builder pipelines that bake the images described in ami/."""

    enabled: bool = Field(default=False, description="Build ImageStack (a bake costs build-instance hours).")
    version: str = Field(
        default="1.0.0",
        pattern=r"^\d+\.\d+\.\d+$",
        description="Semantic version of the recipes and components; Image Builder versions are immutable, "
        "so bump it whenever ami/ changes.",
    )
    schedule_cron: str | None = Field(
        default=None,
        pattern=r"^cron\(.+\)$",
        description="e.g. 'cron(0 6 ? * sun *)'; unset: the pipelines run only when started by hand.",
    )
    allow_unverified_downloads: bool = Field(
        default=False, description="Install downloads whose versions.yaml sha256 is null (not recommended)."
    )
    build_on_deploy: bool = Field(
        default=False, description="Also bake one GPU image during `cdk deploy` (slow: an hour or more)."
    )
    distribution_regions: tuple[Region, ...] = Field(
        default=(),
        description="Other regions the images are copied to (the stack's region always gets them).",
    )
    build_timeout_minutes: int = Field(default=360, ge=60, le=720)
    gpu: GpuImageConfig = GpuImageConfig()
    inferentia: InferentiaImageConfig = InferentiaImageConfig()


# --- inference --------------------------------------------------------------------------

# NeuronCores per instance (AWS instance pages): what one node can give the BERT pods.
NEURON_CORES: dict[str, int] = {
    "inf1.xlarge": 4, "inf1.2xlarge": 4, "inf1.6xlarge": 16, "inf1.24xlarge": 64,
    "inf2.xlarge": 2, "inf2.8xlarge": 2, "inf2.24xlarge": 12, "inf2.48xlarge": 24,
}  # fmt: skip


def _neuron_instance(value: str) -> str:
    if value not in NEURON_CORES:
        raise ValueError(
            f"'{value}' is not an Inferentia instance type mlhpc knows; use one of {', '.join(NEURON_CORES)} "
            "(inf2 is the default; inf1 needs torch-neuron)"
        )
    return value


def _public_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"'{value}' is not an IPv4 CIDR block ({err}); use e.g. '203.0.113.0/24'") from err
    if net.prefixlen < 8:
        raise ValueError(
            f"'{value}' opens the Kubernetes API to {net.num_addresses} addresses; list your office or VPN "
            "ranges (e.g. '203.0.113.0/24'), or leave public_endpoint_cidrs empty for a private endpoint"
        )
    return value


def _role_arn(value: str) -> str:
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise ValueError(f"'{value}' is not an IAM role ARN; use e.g. 'arn:aws:iam::123456789012:role/Admin'")
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


class InferenceServiceConfig(Section):
    """The BERT service the cluster runs."""

    namespace: str = Field(default="bert", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    image_tag: str = Field(default="0.1.0", pattern=r"^[\w][\w.-]{0,127}$")
    model_prefix: str = Field(
        default="models/bert/",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/$",
        description="Prefix in the datasets bucket holding the model (Hugging Face format); pods read only it.",
    )
    neuron_cores_per_pod: int = Field(default=1, ge=1, le=64)
    replicas_min: int = Field(default=1, ge=1, le=100)
    replicas_max: int = Field(default=4, ge=1, le=100)
    max_batch_size: int = Field(default=8, ge=1, le=256)
    target_cpu_percent: int = Field(default=70, ge=10, le=100)


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
    control_plane_log_retention_days: Annotated[int, AfterValidator(_retention_days)] = 90
    system_nodes: SystemNodesConfig = SystemNodesConfig()
    neuron_nodes: NeuronNodesConfig = NeuronNodesConfig()
    neuron_scheduler: bool = Field(default=False, description="Install the Neuron scheduler extension.")
    service: InferenceServiceConfig = InferenceServiceConfig()


# --- analytics (EMR, LDAP) and studio ---------------------------------------------------------

_LDAP_NAME = r"^[a-z][a-z0-9_-]{1,31}$"
_DNS_ZONE = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.){1,4}[a-z]{2,63}$"
_S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+$"


class QueryEngine(StrEnum):
    """The SQL engine EMR runs next to Hive: Trino (EMR's 'trino') or PrestoDB (EMR's 'presto')."""

    TRINO = "trino"
    PRESTODB = "prestodb"


class EmrConfig(Section):
    """The EMR cluster: release, instance groups, scaling and idle auto-termination."""

    release_label: str = Field(
        default="emr-7.5.0", pattern=r"^emr-7\.\d{1,2}\.\d{1,2}$", description="An EMR 7.x release label."
    )
    query_engine: QueryEngine = QueryEngine.TRINO
    primary_instance_type: str = Field(default="m6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_instance_type: str = Field(default="m6i.xlarge", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    core_instance_count: int = Field(default=2, ge=1, le=100)
    max_instance_count: int = Field(
        default=6,
        ge=2,
        le=200,
        description="Managed scaling ceiling: primary excluded, core + task instances.",
    )
    ebs_volume_gib: int = Field(default=64, ge=32, le=16384, description="gp3 data volume per instance.")
    idle_timeout_s: int = Field(
        default=3600, ge=60, le=604_800, description="Auto-terminate after this long without running work."
    )
    log_expiry_days: int = Field(default=30, ge=1, le=3650)


class LdapUserConfig(Section):
    """A directory user; the password is generated in Secrets Manager, never written anywhere."""

    name: str = Field(pattern=_LDAP_NAME, description="The uid, also the Trino/Hive user name.")
    groups: tuple[Annotated[str, Field(pattern=_LDAP_NAME)], ...] = ("analysts",)


class ExistingDirectoryConfig(Section):
    """A directory you already run (Active Directory, OpenLDAP): EMR authenticates against it over LDAPS."""

    url: str = Field(pattern=r"^ldaps://[A-Za-z0-9.-]+(:\d{1,5})?$", description="ldaps://host[:port] only.")
    user_bind_pattern: str = Field(
        description="DN of a user with ${USER} for the name, e.g. uid=${USER},ou=people,dc=corp,dc=example"
    )
    ca_certificate_s3_uri: str = Field(
        pattern=_S3_URI, description="PEM of the CA that signed the directory."
    )
    query_user_secret_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws[\w-]*:secretsmanager:")], ...] = ()


class LdapConfig(Section):
    """The directory HiveServer2 and Trino/Presto authenticate against: our OpenLDAP, or an existing one."""

    existing: ExistingDirectoryConfig | None = None
    instance_type: str = Field(default="t3.small", pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
    base_dn: str = Field(default="dc=mlhpc,dc=internal", pattern=r"^dc=[a-z0-9-]+(,dc=[a-z0-9-]+)*$")
    users: tuple[LdapUserConfig, ...] = Field(default=(LdapUserConfig(name="studio-user"),), min_length=1)
    groups: tuple[Annotated[str, Field(pattern=_LDAP_NAME)], ...] = ("analysts",)
    query_group: str = Field(
        default="analysts",
        pattern=_LDAP_NAME,
        description="Only members may use HiveServer2 and Trino/Presto.",
    )


class TlsConfig(Section):
    """In-transit TLS for EMR: a PEM zip you provide, or a generated self-signed one (not for production)."""

    certificate_bundle_s3_uri: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+\.zip$",
        description="EMR PEM zip (privateKey.pem, certificateChain.pem, trustedCertificates.pem); "
        "unset: a self-signed bundle is generated at deploy time.",
    )
    ca_certificate_s3_uri: str | None = Field(
        default=None, pattern=_S3_URI, description="PEM of the CA of that bundle, for clients (Studio)."
    )


class AnalyticsConfig(Section):
    """AnalyticsStack: EMR with Hive, Spark and Trino/Presto on the Glue catalog, LDAP over TLS."""

    enabled: bool = Field(
        default=False, description="EMR and LDAP cost money while they run; off by default."
    )
    dns_zone: str = Field(
        default="analytics.mlhpc.internal",
        pattern=_DNS_ZONE,
        description="Private hosted zone: ldap.<zone> and query.<zone> (the TLS names clients use).",
    )
    emr: EmrConfig = EmrConfig()
    ldap: LdapConfig = LdapConfig()
    tls: TlsConfig = TlsConfig()
    airports_prefix: str = Field(
        default="tables/airports/",
        pattern=r"^[a-z0-9][a-z0-9_/-]*/$",
        description="Prefix in the datasets bucket holding the airports CSV (sample or full).",
    )


class StudioInstanceType(StrEnum):
    """Small JupyterLab instance types for the default space settings."""

    T3_MEDIUM = "ml.t3.medium"
    T3_LARGE = "ml.t3.large"
    M5_LARGE = "ml.m5.large"
    M5_XLARGE = "ml.m5.xlarge"
    M6I_LARGE = "ml.m6i.large"
    M6I_XLARGE = "ml.m6i.xlarge"


class StudioConfig(Section):
    """StudioStack: a VPC-only SageMaker Studio domain that reaches EMR privately."""

    enabled: bool = Field(
        default=False, description="A Studio domain (EFS, apps) costs money; off by default."
    )
    user_profiles: tuple[Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")], ...] = Field(
        default=("studio-user",), min_length=1
    )
    default_instance_type: StudioInstanceType = StudioInstanceType.T3_MEDIUM
    idle_timeout_minutes: int = Field(default=60, ge=60, le=525_600, description="JupyterLab idle shutdown.")
    ebs_volume_gib: int = Field(default=5, ge=5, le=16384, description="Default space storage per user.")


class Config(Section):
    """The whole deployment: one section per stack."""

    project: ProjectConfig = ProjectConfig()
    network: NetworkConfig = NetworkConfig()
    storage: StorageConfig = StorageConfig()
    hpc: HpcConfig = HpcConfig()
    image: ImageConfig = ImageConfig()
    inference: InferenceConfig = InferenceConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    studio: StudioConfig = StudioConfig()
