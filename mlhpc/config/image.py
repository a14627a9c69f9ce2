"""The image domain: the Image Builder recipes for the GPU and Inferentia images, and the IMG rules.

IMG005 reads ``hpc.gpu.ami.ssm_parameter``: it is an image rule because what it asks for is a bake
of the GPU image before HpcStack is deployed.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field

from mlhpc.config.common import ECS_GPU_AMI_PARAMETER, Region, Section
from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.contract import gpu_image_parameter
from mlhpc.instances import lookup

if TYPE_CHECKING:
    from mlhpc.config.model import Config


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


# --- rules ------------------------------------------------------------------------------------


def image_recipes(config: Config) -> Iterator[ConfigIssue]:
    """IMG001-IMG005: the image pipelines have a recipe, build on matching hardware and can verify what they install."""
    image = config.image
    if not image.enabled:
        return
    if not image.gpu.enabled and not image.inferentia.enabled:
        yield ConfigIssue(
            code="IMG001",
            path="image",
            message="image.enabled is true but neither the GPU nor the Inferentia recipe is enabled",
            fix="set image.gpu.enabled: true and/or image.inferentia.enabled: true, or image.enabled: false",
        )
    for section, recipe, wanted in (
        ("gpu", image.gpu, "an NVIDIA GPU type such as g5.12xlarge"),
        (
            "inferentia",
            image.inferentia,
            f"an {image.inferentia.target.value} type such as {image.inferentia.target.value}.xlarge",
        ),
    ):
        if not recipe.enabled:
            continue
        for index, name in enumerate(recipe.build_instance_types):
            known = lookup(name)
            if section == "gpu":
                ok = known is None or known.gpus > 0
            else:
                ok = name.startswith(f"{image.inferentia.target.value}.") or (
                    image.inferentia.target.value == "inf2" and name.startswith("trn")
                )
            if not ok:
                yield ConfigIssue(
                    code="IMG002",
                    path=f"image.{section}.build_instance_types[{index}]",
                    value=name,
                    message=f"{name} cannot run the {section} image's bake-time tests (they need the accelerator)",
                    fix=f"use {wanted}",
                )
    needed = _unverified_for(config)
    if needed and not image.allow_unverified_downloads:
        yield ConfigIssue(
            code="IMG003",
            path="image.allow_unverified_downloads",
            value=False,
            message="the enabled recipes install "
            + ", ".join(needed)
            + " and ami/versions.yaml has no sha256 "
            "for them, so every bake would stop with 'refusing to install'",
            fix="add the published SHA-256 of each to ami/versions.yaml, or accept the risk with "
            "image.allow_unverified_downloads: true",
        )
    if image.allow_unverified_downloads:
        yield ConfigIssue(
            code="IMG004",
            level=Level.WARNING,
            path="image.allow_unverified_downloads",
            value=True,
            message="downloads without a checksum in ami/versions.yaml are installed unverified"
            + (f" ({', '.join(needed)})" if needed else ""),
            fix="add their SHA-256 to ami/versions.yaml and set image.allow_unverified_downloads: false",
        )
    if image.gpu.enabled and config.hpc.gpu.ami.ssm_parameter == gpu_image_parameter(config.project.name):
        yield ConfigIssue(
            code="IMG005",
            level=Level.INFO,
            path="hpc.gpu.ami.ssm_parameter",
            value=config.hpc.gpu.ami.ssm_parameter,
            message="HpcStack takes the GPU nodes' AMI from the parameter the image pipeline writes; it exists "
            "only after the first bake",
            fix=f"deploy ImageStack and run its GPU pipeline ({config.project.name}-gpu-image) once before "
            "deploying HpcStack",
        )


def _unverified_for(config: Config) -> list[str]:
    """Return the manifest entries without a checksum that the enabled recipes would install."""
    from mlhpc.ami.manifest import load_manifest

    manifest = load_manifest()
    image = config.image
    wanted: list[str] = []
    if image.gpu.enabled:
        wanted += [
            "cuda",
            "efa_installer",
            "gdrcopy",
            "nccl",
            "aws_ofi_nccl",
            "nccl_tests",
            "dcgm",
            "cloudwatch_agent",
        ]
        if image.gpu.driver.value == "install_pinned":
            wanted.append("nvidia_driver")
    if image.inferentia.enabled:
        wanted += [f"neuron_{image.inferentia.target.value}", "cloudwatch_agent"]
    missing: list[str] = []
    for name in dict.fromkeys(wanted):
        artifact = manifest.artifact(name)
        if not artifact.verified:
            missing.append(f"artifacts.{name}")
        if artifact.repository and not manifest.repositories[artifact.repository].verified:
            missing.append(f"repositories.{artifact.repository}")
    return list(dict.fromkeys(missing))
