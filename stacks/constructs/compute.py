"""Batch compute for GPU and CPU nodes: the node launch template and the compute environment around it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlhpc.config.hpc import CapacityConfig, CapacityKind


class NodeLaunchTemplate(Construct):
    """The launch template every Batch node starts from.

    IMDSv2 is required with a hop limit of 2 (the extra hop lets containers on the
    bridge network reach the instance metadata service); the root volume is encrypted
    gp3; the user data is MIME multipart (what Batch merges). With ``efa_interfaces``
    > 0 it attaches one EFA interface per network card — card 0 carries the primary
    ENA+EFA interface, the others are EFA-only (no IP address used) — and puts the
    security groups on those interfaces, because EC2 refuses instance-level security
    groups beside network interfaces.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        security_groups: Sequence[ec2.ISecurityGroup],
        user_data: str,
        root_volume_gib: int,
        efa_interfaces: int = 0,
        capacity: CapacityConfig | None = None,
        volume_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.efa_interfaces = efa_interfaces
        group_ids = [sg.security_group_id for sg in security_groups]
        data: dict[str, Any] = {
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 2,
                "HttpEndpoint": "enabled",
            },
            "BlockDeviceMappings": [
                {
                    "DeviceName": "/dev/xvda",
                    "Ebs": {
                        "VolumeSize": root_volume_gib,
                        "VolumeType": "gp3",
                        "Encrypted": True,
                        "DeleteOnTermination": True,
                        **({"KmsKeyId": volume_key.key_arn} if volume_key else {}),
                    },
                }
            ],
            "UserData": user_data,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "mlhpc:node", "Value": construct_id}]}
            ],
        }
        if efa_interfaces > 0:
            data["NetworkInterfaces"] = [
                {
                    "NetworkCardIndex": card,
                    "DeviceIndex": 0 if card == 0 else 1,
                    "InterfaceType": "efa" if card == 0 else "efa-only",
                    "Groups": group_ids,
                    "DeleteOnTermination": True,
                }
                for card in range(efa_interfaces)
            ]
        if capacity is not None:
            data["CapacityReservationSpecification"] = {
                "CapacityReservationTarget": {"CapacityReservationId": capacity.id}
            }
            if capacity.kind is CapacityKind.CAPACITY_BLOCK:
                data["InstanceMarketOptions"] = {"MarketType": "capacity-block"}
        self.resource = ec2.CfnLaunchTemplate(self, "Resource", launch_template_data={})
        # Written in CloudFormation's own casing as a raw override: the L1 struct classes
        # have no type for efa-only interfaces on secondary network cards.
        self.resource.add_property_override("LaunchTemplateData", data)
        self.launch_template = ec2.LaunchTemplate.from_launch_template_attributes(
            self,
            "Imported",
            launch_template_id=self.resource.ref,
            version_number=self.resource.attr_latest_version_number,
        )

    @property
    def uses_network_interfaces(self) -> bool:
        """True when security groups live on the template's network interfaces."""
        return self.efa_interfaces > 0


class NodeComputeEnvironment(Construct):
    """A managed EC2 Batch compute environment on a node launch template.

    When the launch template carries network interfaces (EFA), Batch rejects a
    compute environment that also lists security groups ("Either compute environment
    Security Groups or Network Interfaces in Launch template are exclusively
    allowed"), while the CDK L2 always writes them; this construct removes them from
    the compute environment so they live only on the interfaces.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: Sequence[ec2.ISubnet],
        instance_types: Sequence[str],
        launch_template: NodeLaunchTemplate,
        security_groups: Sequence[ec2.ISecurityGroup],
        instance_role: iam.IRole,
        min_vcpus: int,
        max_vcpus: int,
        spot: bool,
        gpu: bool,
        placement_group: ec2.IPlacementGroup | None = None,
        image: ec2.IMachineImage | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        image_type = (
            batch.EcsMachineImageType.ECS_AL2023_NVIDIA if gpu else batch.EcsMachineImageType.ECS_AL2023
        )
        self.environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "Environment",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnets=list(subnets)),
            instance_types=[ec2.InstanceType(t) for t in instance_types],
            use_optimal_instance_classes=False,
            launch_template=launch_template.launch_template,
            security_groups=list(security_groups),
            instance_role=instance_role,
            minv_cpus=min_vcpus,
            maxv_cpus=max_vcpus,
            spot=spot,
            allocation_strategy=batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
            if spot
            else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
            placement_group=placement_group,
            images=[batch.EcsMachineImage(image=image, image_type=image_type)]
            if image
            else [batch.EcsMachineImage(image_type=image_type)],
            update_to_latest_image_version=image is None,
            replace_compute_environment=False,
        )
        if launch_template.uses_network_interfaces:
            cfn = self.environment.node.default_child
            assert isinstance(cfn, CfnResource)
            cfn.add_property_deletion_override("ComputeResources.SecurityGroupIds")
