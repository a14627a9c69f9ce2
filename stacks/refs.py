"""What one stack hands to another: small frozen bundles, built in ``stacks.assembly``, never whole stacks.

A stack that receives a bundle can use only what the bundle names, so the dependency between
two stacks is written in one place (the dataclass) and a new cross-stack reference is a
visible change to it. Each field is an interface type (``ec2.IVpc``, ``kms.IKey``, ...), as
the CDK design guidelines ask of construct props.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager

from mlhpc.config.analytics import QueryEngine
from stacks.constructs.lustre import LustreScratch


@dataclass(frozen=True)
class NetworkRefs:
    """The VPC (NetworkStack) a stack places its resources in."""

    vpc: ec2.IVpc
    private_subnets: tuple[ec2.ISubnet, ...]  # one per zone, in the zone order of network.availability_zones
    endpoints_security_group: ec2.ISecurityGroup  # the interface endpoints' group

    @property
    def single_zone_subnet(self) -> ec2.ISubnet:
        """Return the subnet of services that live in one zone (Image Builder, EMR, LDAP): the first private one."""
        return self.private_subnets[0]


@dataclass(frozen=True)
class StorageRefs:
    """The project's data (StorageStack): buckets, their key, the jobs' access policy, the file systems."""

    key: kms.IKey  # encrypts the buckets and file systems
    datasets: s3.IBucket
    results: s3.IBucket
    checkpoints: s3.IBucket
    data_access_policy: iam.IManagedPolicy  # read datasets, read/write results and checkpoints
    efs_client_security_group: ec2.ISecurityGroup
    efs_root_role_path: str  # IAM path of the roles the file system policy lets mount EFS as root
    efs: efs.IFileSystem | None = None
    lustre: LustreScratch | None = None


@dataclass(frozen=True)
class AnalyticsRefs:
    """What Studio apps use of AnalyticsStack: the cluster, the group its query ports admit, secrets, CA."""

    engine: QueryEngine
    cluster_id: str
    query_clients_security_group: ec2.ISecurityGroup  # admitted to Trino/Presto and HiveServer2
    query_secrets: tuple[secretsmanager.ISecret, ...]  # the query users' credentials
    client_ca_uri: str  # s3:// URI of the PEM clients verify the coordinator with
    client_ca_object_arn: str
    key: kms.IKey  # encrypts the query secrets
