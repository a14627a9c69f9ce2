"""Build the CDK app for a config: the stacks, their wiring, tags and cdk-nag."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from mlhpc import contract
from mlhpc.config.model import Config
from mlhpc.contract import StackId, stack_name
from mlhpc.spec import WorkloadSpec
from stacks.analytics_stack import AnalyticsStack
from stacks.constructs.framework import FrameworkTidy
from stacks.hpc_stack import HpcStack
from stacks.image_stack import ImageStack
from stacks.inference_stack import InferenceStack
from stacks.network_stack import NetworkStack
from stacks.refs import AnalyticsRefs, NetworkRefs, StorageRefs
from stacks.storage_stack import StorageStack
from stacks.studio_stack import StudioStack
from workloads.registry import all_specs

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def feature_flags() -> dict[str, Any]:
    """Return the context of cdk.json (the feature flags), so tests build the app `cdk` builds."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return context


# Construct ids are a public contract (`cdk deploy HpcStack`, the CLI): mlhpc.contract owns them.
NETWORK, STORAGE, HPC, IMAGE = StackId.NETWORK, StackId.STORAGE, StackId.HPC, StackId.IMAGE
INFERENCE = StackId.INFERENCE  # only when inference.enabled
ANALYTICS = StackId.ANALYTICS  # only when analytics.enabled
STUDIO = StackId.STUDIO  # only when studio.enabled


@dataclass
class Assembly:
    """The app and the stacks it holds, by construct id."""

    app: App
    stacks: dict[str, Stack]


def build_app(
    config: Config,
    *,
    outdir: str | None = None,
    context: dict[str, Any] | None = None,
    nag: bool = True,
    specs: dict[str, WorkloadSpec] | None = None,
) -> Assembly:
    """Create every stack for a config; cdk-nag AwsSolutions checks run at synthesis."""
    app = App(outdir=outdir, context={**feature_flags(), **(context or {})})
    project = config.project
    env = Environment(account=project.account, region=project.region)

    network = NetworkStack(
        app,
        NETWORK,
        stack_name=stack_name(project.name, NETWORK),
        description="mlhpc: VPC, subnets, NAT, VPC endpoints and flow logs",
        env=env,
        config=config.network,
    )

    compute_subnet = network.private_subnet_list[config.hpc.gpu.zone_indexes[0]]
    storage = StorageStack(
        app,
        STORAGE,
        stack_name=stack_name(project.name, STORAGE),
        description="mlhpc: S3 buckets, EFS and FSx for Lustre",
        env=env,
        config=config.storage,
        project=project.name,
        vpc=network.vpc,
        compute_subnet=compute_subnet,
    )
    # Every stack after these two receives bundles of what it uses, not the stacks (stacks.refs).
    network_refs, storage_refs = _network_refs(network), _storage_refs(storage)
    hpc = HpcStack(
        app,
        HPC,
        stack_name=stack_name(project.name, HPC),
        description="mlhpc: EFA GPU cluster on AWS Batch, job queues and job definitions",
        env=env,
        config=config.hpc,
        project=project.name,
        network=network_refs,
        storage=storage_refs,
        specs=all_specs() if specs is None else specs,
    )

    stacks: dict[str, Stack] = {NETWORK: network, STORAGE: storage, HPC: hpc}
    if config.image.enabled:
        stacks[IMAGE] = ImageStack(
            app,
            IMAGE,
            stack_name=stack_name(project.name, IMAGE),
            description="mlhpc: EC2 Image Builder pipelines for the GPU and Inferentia images (ami/)",
            env=env,
            config=config.image,
            project=project.name,
            network=network_refs,
        )
    if config.inference.enabled:  # optional: an EKS control plane and Inferentia nodes cost money
        stacks[INFERENCE] = InferenceStack(
            app,
            INFERENCE,
            stack_name=stack_name(project.name, INFERENCE),
            description="mlhpc: EKS with CPU and Inferentia node groups serving BERT",
            env=env,
            config=config.inference,
            project=project.name,
            network=network_refs,
            storage=storage_refs,
            repository=hpc.repositories.get("bert"),
            image_tag=contract.image_tag(config.hpc),
        )
    analytics_refs = None
    if config.analytics.enabled:
        analytics = AnalyticsStack(
            app,
            ANALYTICS,
            stack_name=stack_name(project.name, ANALYTICS),
            description="mlhpc: EMR (Hive, Spark, Trino/Presto) on the Glue catalog behind LDAP over TLS",
            env=env,
            config=config.analytics,
            project=project.name,
            network=network_refs,
            storage=storage_refs,
            bucket_removal=config.storage.buckets.removal_policy,
        )
        stacks[ANALYTICS] = analytics
        analytics_refs = _analytics_refs(analytics)
    if config.studio.enabled:
        stacks[STUDIO] = StudioStack(
            app,
            STUDIO,
            stack_name=stack_name(project.name, STUDIO),
            description="mlhpc: VPC-only SageMaker Studio domain with access to EMR",
            env=env,
            config=config.studio,
            project=project.name,
            network=network_refs,
            storage=storage_refs,
            analytics=analytics_refs,
        )

    for key, value in project.tags.items():
        Tags.of(app).add(key, value)
    # CDK's own constructs (providers, EKS roles) brought up to the guardrails, in every stack.
    Aspects.of(app).add(FrameworkTidy())
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Assembly(app=app, stacks=stacks)


def _network_refs(network: NetworkStack) -> NetworkRefs:
    """Return what other stacks use of NetworkStack."""
    return NetworkRefs(
        vpc=network.vpc,
        private_subnets=tuple(network.private_subnet_list),
        endpoints_security_group=network.endpoints.security_group,
    )


def _storage_refs(storage: StorageStack) -> StorageRefs:
    """Return what other stacks use of StorageStack."""
    return StorageRefs(
        key=storage.key,
        datasets=storage.datasets,
        results=storage.results,
        checkpoints=storage.checkpoints,
        data_access_policy=storage.data_access_policy,
        efs_client_security_group=storage.efs_client_security_group,
        efs_root_role_path=storage.efs_root_role_path,
        efs=storage.efs,
        lustre=storage.lustre,
    )


def _analytics_refs(analytics: AnalyticsStack) -> AnalyticsRefs:
    """Return what StudioStack uses of AnalyticsStack."""
    return AnalyticsRefs(
        engine=analytics.engine,
        cluster_id=analytics.cluster.cluster_id,
        query_clients_security_group=analytics.query_clients_security_group,
        query_secrets=tuple(analytics.query_secrets.values()),
        client_ca_uri=analytics.client_ca_uri,
        client_ca_object_arn=analytics.client_ca_object_arn,
        key=analytics.key,
    )
