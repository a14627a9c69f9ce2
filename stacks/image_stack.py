"""ImageStack: the EC2 Image Builder pipelines that bake the mlhpc GPU and Inferentia images (ami/)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from mlhpc.ami.manifest import load_manifest
from mlhpc.config.model import ImageConfig
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
        manifest = load_manifest()
        vpc, subnet = network.vpc, network.single_zone_subnet
        self.scripts = s3_assets.Asset(self, "Scripts", path=str(SCRIPTS_DIR))

        # --- build instances: private subnet, HTTPS out only, IMDSv2, a narrow instance profile ----
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
        profile = iam.CfnInstanceProfile(self, "BuildInstanceProfile", roles=[self.role.role_name])

        inputs = RecipeInputs(
            scripts_uri=self.scripts.s3_object_url,
            allow_unverified=config.allow_unverified_downloads,
            driver_policy=config.gpu.driver.value,
            neuron_target=config.inferentia.target.value,
        )
        keys = [
            *(GPU_COMPONENTS if config.gpu.enabled else ()),
            *(INFERENTIA_COMPONENTS if config.inferentia.enabled else ()),
        ]
        self.components = ImageComponents(
            self, "Components", prefix=project, version=config.version, keys=keys
        )

        self.pipelines: dict[str, imagebuilder.CfnImagePipeline] = {}
        self.parameters: dict[str, str] = {}
        recipes = (
            ("Gpu", config.gpu.enabled, GPU_COMPONENTS, config.gpu, gpu_image_parameter(project), True),
            ("Inferentia", config.inferentia.enabled, INFERENTIA_COMPONENTS, config.inferentia,
             inferentia_image_parameter(project), False),
        )  # fmt: skip
        for label, enabled, component_keys, recipe_config, parameter, gpu in recipes:
            if not enabled:
                continue
            recipe_inputs = RecipeInputs(**{**inputs.__dict__, "gpu": gpu})
            parameters = {key: component_parameters(manifest, key, recipe_inputs) for key in component_keys}
            slug = label.lower()
            recipe = ImageRecipe(
                self, f"{label}Recipe", name=f"{project}-{slug}", version=config.version,
                parent_ssm_parameter=recipe_config.parent_ssm_parameter, components=self.components.components,
                parameters=parameters, root_volume_gib=recipe_config.root_volume_gib,
                fingerprint=self.scripts.asset_hash,
            )  # fmt: skip
            infrastructure = imagebuilder.CfnInfrastructureConfiguration(
                self,
                f"{label}Infrastructure",
                name=f"{project}-{slug}-build",
                instance_profile_name=profile.ref,
                instance_types=list(recipe_config.build_instance_types),
                subnet_id=subnet.subnet_id,
                security_group_ids=[self.security_group.security_group_id],
                # IMDSv2 only on the build and test instances (harden.sh's test phase checks it).
                instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                    http_tokens="required", http_put_response_hop_limit=2
                ),
                terminate_instance_on_failure=True,
                description=f"mlhpc {slug} image builds: private subnet, HTTPS out only, IMDSv2",
            )
            regions = [Aws.REGION, *(r for r in config.distribution_regions if r != self.region)]
            distribution = imagebuilder.CfnDistributionConfiguration(
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
            if label == "Gpu" and config.build_on_deploy:
                image = imagebuilder.CfnImage(
                    self, "GpuImage", image_recipe_arn=recipe.recipe.attr_arn,
                    infrastructure_configuration_arn=infrastructure.attr_arn,
                    distribution_configuration_arn=distribution.attr_arn, enhanced_image_metadata_enabled=True,
                    image_tests_configuration=imagebuilder.CfnImage.ImageTestsConfigurationProperty(
                        image_tests_enabled=True, timeout_minutes=config.build_timeout_minutes
                    ),
                )  # fmt: skip
                CfnOutput(
                    self, "GpuImageArn", value=image.attr_arn, description="The GPU image baked at deploy"
                )
                CfnOutput(
                    self, "GpuImageId", value=image.attr_image_id, description="Its AMI id in this region"
                )
