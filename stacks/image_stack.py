"""ImageStack: the EC2 Image Builder pipelines that bake the mlhpc GPU and Inferentia images (ami/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from mlhpc.ami.manifest import load_manifest
from mlhpc.config.image import GpuImageConfig, ImageConfig, InferentiaImageConfig
from mlhpc.contract import gpu_image_parameter, inferentia_image_parameter
from stacks.constructs.image_builder import (
    GPU_COMPONENTS,
    INFERENTIA_COMPONENTS,
    SCRIPTS_DIR,
    ImageComponents,
    ImageRecipe,
    RecipeInputs,
    component_parameters,
)
from stacks.constructs.nag import acknowledge
from stacks.refs import NetworkRefs


class ImageStack(Stack):
    """Components, recipes, a build infrastructure in a private subnet, distribution and pipelines.

    The pipelines have no schedule unless ``schedule_cron`` is set: a bake costs build-instance
    hours, so it runs when someone starts it. Each distribution writes the new AMI id to an SSM
    parameter (``/<project>/ami/gpu``, ``/<project>/ami/inferentia``) that HpcStack's
    ``hpc.gpu.ami.ssm_parameter`` can name.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ImageConfig,
        project: str,
        network: NetworkRefs,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.scripts = s3_assets.Asset(self, "Scripts", path=str(SCRIPTS_DIR))
        profile = self._add_build_access(network.vpc)
        inputs = RecipeInputs(
            scripts_uri=self.scripts.s3_object_url,
            allow_unverified=config.allow_unverified_downloads,
            driver_policy=config.gpu.driver.value,
            neuron_target=config.inferentia.target.value,
        )
        bakes = [bake for bake in _bakes(config, project) if bake.enabled]
        self.components = ImageComponents(
            self, "Components", prefix=project, version=config.version,
            keys=[key for bake in bakes for key in bake.component_keys],
        )  # fmt: skip
        self.pipelines: dict[str, imagebuilder.CfnImagePipeline] = {}
        self.parameters: dict[str, str] = {}
        manifest = load_manifest()
        for bake in bakes:
            recipe_inputs = RecipeInputs(**{**inputs.__dict__, "gpu": bake.gpu})
            recipe = self._add_recipe(
                config, project, bake,
                {key: component_parameters(manifest, key, recipe_inputs) for key in bake.component_keys},
            )  # fmt: skip
            infrastructure = self._add_infrastructure(
                project, bake, profile=profile, subnet=network.single_zone_subnet
            )
            distribution = self._add_distribution(config, project, bake)
            self._add_pipeline(
                config, project, bake, recipe=recipe, infrastructure=infrastructure, distribution=distribution
            )
            if bake.label == "Gpu" and config.build_on_deploy:
                self._add_image_at_deploy(
                    config, recipe=recipe, infrastructure=infrastructure, distribution=distribution
                )

    def _add_build_access(self, vpc: ec2.IVpc) -> iam.CfnInstanceProfile:
        """Create the build instances' group (HTTPS out only) and role; return their instance profile."""
        self.security_group = ec2.SecurityGroup(
            self, "BuildSecurityGroup", vpc=vpc, allow_all_outbound=False,
            description="Image Builder build and test instances: HTTPS out only",
        )  # fmt: skip
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "Downloads pinned in ami/versions.yaml, package repositories, AWS APIs",
        )
        self.role = iam.Role(
            self,
            "BuildRole",
            description="mlhpc Image Builder build and test instances",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("EC2InstanceProfileForImageBuilder"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore"),
            ],
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadImageScripts",
                actions=["s3:GetObject"],
                resources=[self.scripts.bucket.arn_for_objects(self.scripts.s3_object_key)],
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/EC2InstanceProfileForImageBuilder]",
            "The AWS-maintained minimum for an Image Builder build instance: fetch its components, write its "
            "logs under /aws/imagebuilder, report progress; AWS adds actions as the service changes.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Image Builder runs every component through Systems Manager; this AWS-maintained policy is the "
            "documented minimum for it.",
        )
        return iam.CfnInstanceProfile(self, "BuildInstanceProfile", roles=[self.role.role_name])

    def _add_recipe(
        self, config: ImageConfig, project: str, bake: _Bake, parameters: dict[str, dict[str, str]]
    ) -> ImageRecipe:
        """Create one image's recipe: its parent AMI, components with their parameters, root volume."""
        return ImageRecipe(
            self, f"{bake.label}Recipe", name=f"{project}-{bake.slug}", version=config.version,
            parent_ssm_parameter=bake.recipe.parent_ssm_parameter, components=self.components.components,
            parameters=parameters, root_volume_gib=bake.recipe.root_volume_gib,
            fingerprint=self.scripts.asset_hash,
        )  # fmt: skip

    def _add_infrastructure(
        self, project: str, bake: _Bake, *, profile: iam.CfnInstanceProfile, subnet: ec2.ISubnet
    ) -> imagebuilder.CfnInfrastructureConfiguration:
        """Create where one image builds: its instance types in a private subnet, IMDSv2 only."""
        return imagebuilder.CfnInfrastructureConfiguration(
            self,
            f"{bake.label}Infrastructure",
            name=f"{project}-{bake.slug}-build",
            instance_profile_name=profile.ref,
            instance_types=list(bake.recipe.build_instance_types),
            subnet_id=subnet.subnet_id,
            security_group_ids=[self.security_group.security_group_id],
            # IMDSv2 only on the build and test instances (harden.sh's test phase checks it).
            instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=2
            ),
            terminate_instance_on_failure=True,
            description=f"mlhpc {bake.slug} image builds: private subnet, HTTPS out only, IMDSv2",
        )

    def _add_distribution(
        self, config: ImageConfig, project: str, bake: _Bake
    ) -> imagebuilder.CfnDistributionConfiguration:
        """Create where one image goes: an AMI in each region, its id written to the SSM parameter."""
        label, slug, parameter = bake.label, bake.slug, bake.parameter
        regions = [Aws.REGION, *(r for r in config.distribution_regions if r != self.region)]
        return imagebuilder.CfnDistributionConfiguration(
            self,
            f"{label}Distribution",
            name=f"{project}-{slug}-distribution",
            description=f"mlhpc {slug} image: AMI in {len(regions)} region(s); id written to {parameter}",
            distributions=[
                imagebuilder.CfnDistributionConfiguration.DistributionProperty(
                    region=region,
                    ami_distribution_configuration={
                        "Name": f"{project}-{slug}-{{{{ imagebuilder:buildDate }}}}",
                        "Description": f"mlhpc {slug} image (ami/versions.yaml)",
                        "AmiTags": {"mlhpc:image": slug, "mlhpc:recipe-version": config.version},
                    },
                    ssm_parameter_configurations=(
                        [
                            imagebuilder.CfnDistributionConfiguration.SsmParameterConfigurationProperty(
                                parameter_name=parameter, data_type="aws:ec2:image"
                            )
                        ]
                        if index == 0
                        else None
                    ),
                )
                for index, region in enumerate(regions)
            ],
        )

    def _add_pipeline(
        self,
        config: ImageConfig,
        project: str,
        bake: _Bake,
        *,
        recipe: ImageRecipe,
        infrastructure: imagebuilder.CfnInfrastructureConfiguration,
        distribution: imagebuilder.CfnDistributionConfiguration,
    ) -> None:
        """Create one image's pipeline (scheduled only with schedule_cron) and output how to start it."""
        label, slug, parameter = bake.label, bake.slug, bake.parameter
        pipeline = imagebuilder.CfnImagePipeline(
            self,
            f"{label}Pipeline",
            name=f"{project}-{slug}-image",
            description=f"mlhpc {slug} image: build, validate, test, distribute",
            image_recipe_arn=recipe.recipe.attr_arn,
            infrastructure_configuration_arn=infrastructure.attr_arn,
            distribution_configuration_arn=distribution.attr_arn,
            status="ENABLED",
            enhanced_image_metadata_enabled=True,
            image_tests_configuration=imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=config.build_timeout_minutes
            ),
            schedule=(
                imagebuilder.CfnImagePipeline.ScheduleProperty(
                    schedule_expression=config.schedule_cron,
                    pipeline_execution_start_condition="EXPRESSION_MATCH_ONLY",
                )
                if config.schedule_cron
                else None
            ),
        )
        self.pipelines[label] = pipeline
        self.parameters[label] = parameter
        CfnOutput(self, f"{label}PipelineArn", value=pipeline.attr_arn,
                  description=f"Start a {slug} bake: aws imagebuilder start-image-pipeline-execution --image-pipeline-arn ...")  # fmt: skip
        CfnOutput(self, f"{label}ImageSsmParameter", value=parameter,
                  description=f"SSM parameter holding the latest {slug} AMI id (after the first bake)")  # fmt: skip

    def _add_image_at_deploy(
        self,
        config: ImageConfig,
        *,
        recipe: ImageRecipe,
        infrastructure: imagebuilder.CfnInfrastructureConfiguration,
        distribution: imagebuilder.CfnDistributionConfiguration,
    ) -> None:
        """Bake the GPU image during the deployment (build_on_deploy) and output its ARN and AMI id."""
        image = imagebuilder.CfnImage(
            self, "GpuImage", image_recipe_arn=recipe.recipe.attr_arn,
            infrastructure_configuration_arn=infrastructure.attr_arn,
            distribution_configuration_arn=distribution.attr_arn, enhanced_image_metadata_enabled=True,
            image_tests_configuration=imagebuilder.CfnImage.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=config.build_timeout_minutes
            ),
        )  # fmt: skip
        CfnOutput(self, "GpuImageArn", value=image.attr_arn, description="The GPU image baked at deploy")
        CfnOutput(self, "GpuImageId", value=image.attr_image_id, description="Its AMI id in this region")


@dataclass(frozen=True)
class _Bake:
    """One image ImageStack can bake: its construct-id label, components, recipe section and SSM parameter."""

    label: str  # "Gpu" or "Inferentia": the construct ids' prefix
    enabled: bool
    component_keys: tuple[str, ...]
    recipe: GpuImageConfig | InferentiaImageConfig
    parameter: str  # where the distribution writes the new AMI id
    gpu: bool

    @property
    def slug(self) -> str:
        """Return the label as it appears in names ('gpu', 'inferentia')."""
        return self.label.lower()


def _bakes(config: ImageConfig, project: str) -> tuple[_Bake, _Bake]:
    """Return the GPU and the Inferentia bake, in the order their constructs are created."""
    return (
        _Bake("Gpu", config.gpu.enabled, GPU_COMPONENTS, config.gpu, gpu_image_parameter(project), gpu=True),
        _Bake("Inferentia", config.inferentia.enabled, INFERENTIA_COMPONENTS, config.inferentia,
              inferentia_image_parameter(project), gpu=False),
    )  # fmt: skip
