"""What the stacks write and the CLI reads, written once: stack ids and names, output keys, SSM parameters.

The stacks and the CLI meet at CloudFormation: ``cdk deploy HpcStack`` creates ``<project>-hpc``
with outputs, and ``mlhpc submit`` finds the queue, job definition, image repository and buckets by
reading those outputs back. Each name on that boundary is declared here and imported by both sides,
so a renamed output cannot leave the CLI reading a key no stack writes
(``tests/test_contract.py`` synthesizes every config and checks each key the CLI reads against
the template of the stack it reads it from).

CloudFormation outputs are strings. An :class:`Output` knows its value's type and does the one
encoding and decoding of it (``GpuQueueEfa`` is a bool on both sides, ``"true"``/``"false"`` only
on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from mlhpc.config.hpc import HpcConfig

T = TypeVar("T", str, bool)


class StackId(StrEnum):
    """Construct ids of the stacks: what `cdk deploy` takes (a public contract)."""

    NETWORK = "NetworkStack"
    STORAGE = "StorageStack"
    HPC = "HpcStack"
    IMAGE = "ImageStack"
    INFERENCE = "InferenceStack"
    ANALYTICS = "AnalyticsStack"
    STUDIO = "StudioStack"

    @property
    def part(self) -> str:
        """Return the suffix of the CloudFormation stack name: HpcStack -> 'hpc'."""
        return self.value.removesuffix("Stack").lower()


# Every stack the app can build, in dependency order.
STACK_IDS: tuple[StackId, ...] = tuple(StackId)


def stack_name(project: str, stack: StackId) -> str:
    """Return the CloudFormation name of a stack: `<project>-<part>` (two projects share an account)."""
    return f"{project}-{stack.part}"


def pascal(name: str) -> str:
    """Return a workload name in PascalCase, as output keys spell it (pinn -> Pinn, a_b -> AB)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


@dataclass(frozen=True)
class Output(Generic[T]):
    """One stack output: the stack that writes it, its key, and the type of its value."""

    stack: StackId
    key: str
    kind: type[T]
    what: str  # what the CLI uses it for, in its error when the output is missing

    def encode(self, value: T) -> str:
        """Return the string CloudFormation stores for a value."""
        if self.kind is bool:
            return "true" if value else "false"
        return str(value)

    def decode(self, text: str) -> T:
        """Return the value of an output string (raise ValueError for a string the stack never writes)."""
        if self.kind is bool:
            if text not in ("true", "false"):
                raise ValueError(f"output {self.key} of {self.stack} is {text!r}, not 'true' or 'false'")
            return text == "true"
        return text


class QueueKind(StrEnum):
    """The job queues of HpcStack, as `mlhpc submit --queue` names them."""

    GPU = "gpu"
    GPU_SPOT = "gpu-spot"
    CPU = "cpu"

    @property
    def construct_name(self) -> str:
        """Return the queue's name inside HpcStack (construct ids and metric dimensions)."""
        return {"gpu": "GpuOnDemand", "gpu-spot": "GpuSpot", "cpu": "Cpu"}[self.value]

    @property
    def output(self) -> Output[str]:
        """Return the output holding the queue's ARN."""
        return Output(StackId.HPC, f"JobQueue{self.construct_name}", str, f"the {self.value} job queue")


# StorageStack
DATASETS_BUCKET = Output(StackId.STORAGE, "DatasetsBucketName", str, "where inputs live")
RESULTS_BUCKET = Output(StackId.STORAGE, "ResultsBucketName", str, "where job outputs go")
CHECKPOINTS_BUCKET = Output(StackId.STORAGE, "CheckpointsBucketName", str, "where checkpoints go")
DATA_KEY = Output(StackId.STORAGE, "DataKeyArn", str, "the KMS key of the buckets and file systems")
EFS_FILE_SYSTEM = Output(StackId.STORAGE, "EfsFileSystemId", str, "EFS mounted at /efs")
FSX_FILE_SYSTEM = Output(StackId.STORAGE, "FsxFileSystemId", str, "FSx for Lustre mounted at /fsx")
FSX_MOUNT_NAME = Output(StackId.STORAGE, "FsxMountName", str, "the Lustre mount name")

# HpcStack
GPU_QUEUE_EFA = Output(StackId.HPC, "GpuQueueEfa", bool, "whether the GPU queues' nodes have EFA")
JOB_LOG_GROUP = Output(StackId.HPC, "JobLogGroupName", str, "where job logs go")
SAGEMAKER_ROLE = Output(StackId.HPC, "SageMakerRoleArn", str, "the role SageMaker training jobs run as")
JOB_ALERTS_TOPIC = Output(StackId.HPC, "JobAlertsTopicArn", str, "the SNS topic told about failed jobs")
IMAGE_BUILD_PROJECT = Output(
    StackId.HPC, "ImageBuildProjectName", str, "the CodeBuild project that builds workload images"
)


def job_definition_output(workload: str) -> Output[str]:
    """Return the output holding a workload's Batch job definition ARN."""
    return Output(StackId.HPC, f"JobDefinition{pascal(workload)}", str, f"the job definition of {workload}")


def repository_name(project: str, image: str) -> str:
    """Return the ECR repository name of a workload image: `<project>/<last part of spec.image>`."""
    return f"{project}/{image.rsplit('/', maxsplit=1)[-1]}"


# --- images: one tag per deployment ------------------------------------------------------------
# Every backend runs the same image: Batch job definitions (synthesized by HpcStack), SageMaker
# training requests and EKS manifests (made by the CLI, whose Target reads the same config) all
# take their tag from image_tag() and write it with image_reference(). The repositories' tags are
# immutable, so a tag names one build: new code needs a new hpc.image_tag.


def image_tag(hpc: HpcConfig) -> str:
    """Return the image tag of a deployment (`hpc.image_tag`), the one every backend runs."""
    return hpc.image_tag


# A workload image built for an accelerator family other than CPU/GPU is a build variant of the same
# Dockerfile (`--build-arg VARIANT=<variant>`), pushed under the deployment's tag plus `-<variant>`:
# torch-neuronx (Inf2, Trn1) and torch-neuron (Inf1) cannot share an image — different torch, Python
# and compiler — and a model compiled for one generation does not run on the other.
IMAGE_VARIANTS: dict[str, str] = {"inf2": "neuron", "trn1": "neuron", "inf1": "inf1"}


def image_variant(instance_type: str) -> str | None:
    """Return the image variant an instance type's family needs (None: the default CPU/GPU image)."""
    return IMAGE_VARIANTS.get(instance_type.split(".", 1)[0])


def variant_tag(tag: str, variant: str | None = None) -> str:
    """Return the tag of an image variant: ``<tag>-<variant>``, or the tag itself for the default image."""
    if variant is not None and variant not in IMAGE_VARIANTS.values():
        raise ValueError(
            f"unknown image variant {variant!r}; use one of {sorted(set(IMAGE_VARIANTS.values()))}"
        )
    return f"{tag}-{variant}" if variant else tag


def image_reference(repository: str, tag: str, variant: str | None = None) -> str:
    """Return `<repository>:<tag>[-<variant>]`: the image a workload runs (repository URI, or name in a dry run).

    ``tag`` is :func:`image_tag` of the deployment's config; nothing else names a tag. ``variant``
    is one of :data:`IMAGE_VARIANTS`' values (:func:`image_variant` of the node group's instance type).
    """
    return f"{repository}:{variant_tag(tag, variant)}"


def split_repository_uri(uri: str) -> tuple[str, str]:
    """Return (registry host, repository name) of an ECR repository URI.

    ``123456789012.dkr.ecr.us-east-1.amazonaws.com/mlhpc/pinn`` ->
    (``123456789012.dkr.ecr.us-east-1.amazonaws.com``, ``mlhpc/pinn``).
    """
    registry, _, name = uri.partition("/")
    return registry, name


class ImageBuildEnv(StrEnum):
    """The variables `mlhpc image build --in-account` overrides and the CodeBuild build spec reads."""

    WORKLOAD = "WORKLOAD"
    REPOSITORY_URI = "REPOSITORY_URI"
    IMAGE_TAG = "IMAGE_TAG"  # the tag pushed, the variant's suffix included
    IMAGE_VARIANT = "IMAGE_VARIANT"  # the Dockerfile's VARIANT build argument ("" for the default image)


def repository_output(workload: str) -> Output[str]:
    """Return the output holding a workload's ECR repository URI."""
    return Output(StackId.HPC, f"Repository{pascal(workload)}Uri", str, f"the image repository of {workload}")


# SSM parameters ImageStack's distributions write and HpcStack (or the user's config) reads.
def gpu_image_parameter(project: str) -> str:
    """Return the SSM parameter ImageStack's distribution writes the GPU image id to."""
    return f"/{project}/ami/gpu"


def inferentia_image_parameter(project: str) -> str:
    """Return the SSM parameter ImageStack's distribution writes the Inferentia image id to."""
    return f"/{project}/ami/inferentia"


# Workload Jobs on the EKS cluster (`mlhpc submit --backend eks`): InferenceStack gives this service
# account of this namespace the job role through EKS Pod Identity, and every Job's pod runs as it.
# (The nodes' IMDS hop limit is 1, so a pod without it would have no AWS credentials at all.)
EKS_JOB_NAMESPACE = "default"
EKS_JOB_SERVICE_ACCOUNT = "mlhpc-jobs"
