"""EC2 Image Builder pieces for the mlhpc images: components from ami/components, recipes whose
component parameters come from ami/versions.yaml, and one pipeline per recipe.

Image Builder components and recipes are immutable per (name, version). Their names here
carry a digest of what they contain, so a change to ami/ (a document, a pin, the scripts)
creates new ones instead of failing on an existing version; the pipeline moves to them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Token
from aws_cdk import aws_imagebuilder as imagebuilder
from constructs import Construct

from mlhpc.ami.manifest import Artifact, Manifest

AMI_DIR = Path(__file__).resolve().parents[2] / "ami"
COMPONENTS_DIR = AMI_DIR / "components"
SCRIPTS_DIR = AMI_DIR / "scripts"

GPU_COMPONENTS: tuple[str, ...] = (
    "base", "nvidia-driver", "cuda", "efa", "gdrcopy", "nccl", "aws-ofi-nccl", "nccl-tests", "dcgm",
    "cloudwatch-agent",
)  # fmt: skip
INFERENTIA_COMPONENTS: tuple[str, ...] = ("base", "neuron", "cloudwatch-agent")


def digest(*parts: str) -> str:
    """Return 8 hex digits identifying the content of a component or recipe."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _download(artifact: Artifact, *, allow_unverified: bool) -> dict[str, str]:
    return {
        "Version": artifact.version,
        "Url": artifact.url or "",
        # Image Builder parameters cannot be empty: "none" is what the scripts read as "no checksum".
        "Sha256": artifact.sha256 or "none",
        "AllowUnverified": _flag(allow_unverified),
    }


def _package(manifest: Manifest, artifact: Artifact, *, allow_unverified: bool) -> dict[str, str]:
    repo = manifest.repositories[artifact.repository or ""]
    return {
        "Packages": " ".join(artifact.package_specs()),
        "RepoUrl": repo.baseurl,
        "KeyUrl": repo.gpgkey_url,
        "KeySha256": repo.gpgkey_sha256 or "none",
        "AllowUnverified": _flag(allow_unverified),
    }


@dataclass(frozen=True)
class RecipeInputs:
    """What a recipe's component parameters are made from, besides the manifest."""

    scripts_uri: str
    allow_unverified: bool
    driver_policy: str = "keep_base"
    neuron_target: str = "inf2"
    gpu: bool = True


def component_parameters(manifest: Manifest, key: str, inputs: RecipeInputs) -> dict[str, str]:
    """Return the parameter values a component gets in a recipe, every version from the manifest."""
    allow = inputs.allow_unverified
    archs = " ".join(manifest.cuda_architectures)
    art = manifest.artifact
    match key:
        case "base":
            return {"ScriptsS3Uri": inputs.scripts_uri}
        case "nvidia-driver":
            minimum = art("cuda").minimum_driver or ""
            return {**_download(art("nvidia_driver"), allow_unverified=allow), "Policy": inputs.driver_policy,
                    "MinimumDriver": minimum}  # fmt: skip
        case "cuda" | "gdrcopy" | "aws-ofi-nccl":
            return _download(art(key.replace("-", "_")), allow_unverified=allow)
        case "efa":
            return {**_download(art("efa_installer"), allow_unverified=allow),
                    "OpenMpiVersion": art("openmpi").version}  # fmt: skip
        case "nccl" | "nccl-tests":
            return {
                **_download(art(key.replace("-", "_")), allow_unverified=allow),
                "CudaArchitectures": archs,
            }
        case "dcgm":
            return _package(manifest, art("dcgm"), allow_unverified=allow)
        case "neuron":
            return _package(manifest, art(f"neuron_{inputs.neuron_target}"), allow_unverified=allow)
        case "cloudwatch-agent":
            return {**_download(art("cloudwatch_agent"), allow_unverified=allow), "Gpu": _flag(inputs.gpu)}
    raise KeyError(f"no parameters are defined for component '{key}'")


class ImageComponents(Construct):
    """One Image Builder component per document in ami/components that a recipe uses."""

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, version: str, keys: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.components: dict[str, imagebuilder.CfnComponent] = {}
        for key in dict.fromkeys(keys):
            data = (COMPONENTS_DIR / f"{key}.yaml").read_text(encoding="utf-8")
            self.components[key] = imagebuilder.CfnComponent(
                self,
                "".join(part.capitalize() for part in key.split("-")),
                name=f"{prefix}-{key}-{digest(data)}",
                platform="Linux",
                version=version,
                data=data,
                description=f"mlhpc {key} (ami/components/{key}.yaml)",
                supported_os_versions=["Amazon Linux 2023"],
            )


class ImageRecipe(Construct):
    """A recipe: parent image from an SSM parameter, components with manifest parameters, encrypted gp3 root."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        version: str,
        parent_ssm_parameter: str,
        components: Mapping[str, imagebuilder.CfnComponent],
        parameters: Mapping[str, Mapping[str, str]],
        root_volume_gib: int,
        fingerprint: str,
    ) -> None:
        super().__init__(scope, construct_id)
        entries = [
            imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(
                component_arn=components[key].attr_arn,
                parameters=[
                    imagebuilder.CfnImageRecipe.ComponentParameterProperty(name=k, value=[v])
                    for k, v in parameters[key].items()
                ],
            )
            for key in parameters
        ]
        # Tokens (the scripts' S3 URL) print differently on every synthesis: the fingerprint (the
        # scripts asset hash) stands in for them, so the name changes only when content does.
        stable = {
            key: {k: v for k, v in values.items() if not Token.is_unresolved(v)}
            for key, values in parameters.items()
        }
        content = json.dumps(
            {"parent": parent_ssm_parameter, "root": root_volume_gib, "parameters": stable,
             "components": [components[k].name for k in parameters], "fingerprint": fingerprint},
            sort_keys=True,
        )  # fmt: skip
        self.recipe = imagebuilder.CfnImageRecipe(
            self,
            "Resource",
            name=f"{name}-{digest(content)}",
            version=version,
            # Image Builder resolves "ssm:<name>" to the parameter's AMI id when a build starts.
            parent_image=f"ssm:{parent_ssm_parameter}",
            components=entries,
            working_directory="/var/tmp",
            block_device_mappings=[
                imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                    device_name="/dev/xvda",
                    ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                        volume_size=root_volume_gib,
                        volume_type="gp3",
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ],
            # Keep the SSM agent: nodes are reached through Session Manager, never SSH.
            additional_instance_configuration=imagebuilder.CfnImageRecipe.AdditionalInstanceConfigurationProperty(
                systems_manager_agent=imagebuilder.CfnImageRecipe.SystemsManagerAgentProperty(
                    uninstall_after_build=False
                )
            ),
            description=f"mlhpc {name}: components and versions from ami/",
        )
