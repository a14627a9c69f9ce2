"""Cross-field configuration rules: plain functions, each with a stable code and a fix.

A rule takes the whole (already type-checked) :class:`Config` and yields
:class:`ConfigIssue` objects. Errors stop synthesis and ``mlhpc validate`` exits 1;
warnings and infos are printed and do not. Add a rule by writing a function and
listing it in :data:`RULES`; give it the next free code of its family.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from mlhpc.config.issues import ConfigIssue, Level
from mlhpc.config.model import NEURON_CORES, CapacityKind, Config
from mlhpc.contract import gpu_image_parameter
from mlhpc.instances import efa_types, lookup

if TYPE_CHECKING:
    from mlhpc.placement import Refusal
    from mlhpc.spec import WorkloadSpec

Rule = Callable[[Config], Iterator[ConfigIssue]]


def nat_within_azs(config: Config) -> Iterator[ConfigIssue]:
    """NET001: a NAT gateway lives in one AZ's public subnet, so there can be at most one per AZ."""
    net = config.network
    if net.nat_gateways > net.az_count:
        yield ConfigIssue(
            code="NET001",
            path="network.nat_gateways",
            value=net.nat_gateways,
            message=f"{net.nat_gateways} NAT gateways for {net.az_count} Availability Zones: at most one per zone",
            fix=f"set network.nat_gateways to {net.az_count} or fewer (1 is cheapest, {net.az_count} is "
            "zone-redundant)",
        )


def zones_match_count(config: Config) -> Iterator[ConfigIssue]:
    """NET002/NET003: explicit AZ names must number az_count, be distinct and lie in the region."""
    net, region = config.network, config.project.region
    if net.availability_zones is None:
        return
    zones = net.availability_zones
    if len(zones) != net.az_count:
        yield ConfigIssue(
            code="NET002",
            path="network.availability_zones",
            value=list(zones),
            message=f"{len(zones)} zones listed but az_count is {net.az_count}",
            fix=f"list exactly {net.az_count} zones, or set network.az_count to {len(zones)}",
        )
    if len(set(zones)) != len(zones):
        yield ConfigIssue(
            code="NET002",
            path="network.availability_zones",
            value=list(zones),
            message="the same zone is listed twice; subnets must spread over distinct zones",
            fix="list each zone once",
        )
    for index, zone in enumerate(zones):
        if zone[:-1] != region:
            yield ConfigIssue(
                code="NET003",
                path=f"network.availability_zones[{index}]",
                value=zone,
                message=f"zone '{zone}' is not in the project's region {region}",
                fix=f"use a zone of {region} (e.g. '{region}a'), or change project.region to '{zone[:-1]}'",
            )


def subnets_fit(config: Config) -> Iterator[ConfigIssue]:
    """NET005: every AZ gets one public and one private subnet; they must fit inside the VPC CIDR."""
    net = config.network
    vpc = ipaddress.IPv4Network(net.cidr)
    for name, mask in (
        ("public_subnet_mask", net.public_subnet_mask),
        ("private_subnet_mask", net.private_subnet_mask),
    ):
        if mask <= vpc.prefixlen:
            yield ConfigIssue(
                code="NET005",
                path=f"network.{name}",
                value=mask,
                message=f"a /{mask} subnet is not smaller than the /{vpc.prefixlen} VPC",
                fix=f"set network.{name} to more than {vpc.prefixlen} (e.g. {min(vpc.prefixlen + 4, 28)})",
            )
            return
    needed = net.az_count * (2 ** (32 - net.public_subnet_mask) + 2 ** (32 - net.private_subnet_mask))
    if needed > vpc.num_addresses:
        yield ConfigIssue(
            code="NET005",
            path="network.cidr",
            value=net.cidr,
            message=f"{net.az_count} public /{net.public_subnet_mask} and {net.az_count} private "
            f"/{net.private_subnet_mask} subnets need {needed} addresses; /{vpc.prefixlen} has {vpc.num_addresses}",
            fix="use a larger VPC CIDR (e.g. a /16), fewer zones, or larger subnet masks (smaller subnets)",
        )


def egress_warnings(config: Config) -> Iterator[ConfigIssue]:
    """NET006/NET007: NAT choices that are legal but have consequences a person should know."""
    net = config.network
    if net.nat_gateways == 0:
        yield ConfigIssue(
            code="NET006",
            level=Level.WARNING,
            path="network.nat_gateways",
            value=0,
            message="no NAT gateway: private subnets are isolated and reach AWS only through VPC endpoints",
            fix="keep it if images come from ECR through the endpoints; set 1 to allow package and image pulls",
        )
    elif net.nat_gateways < net.az_count:
        yield ConfigIssue(
            code="NET007",
            level=Level.INFO,
            path="network.nat_gateways",
            value=net.nat_gateways,
            message=f"{net.nat_gateways} NAT gateway(s) for {net.az_count} zones: cheaper, but a zone outage can "
            "cut egress for the others",
            fix=f"set network.nat_gateways: {net.az_count} for production",
        )


# --- storage ------------------------------------------------------------------------------

# FSx for Lustre SSD capacity: 1200 GiB, 2400 GiB, then multiples of the increment.
FSX_INCREMENT_GIB = {"SCRATCH_1": 3600, "SCRATCH_2": 2400, "PERSISTENT_1": 2400, "PERSISTENT_2": 2400}
FSX_THROUGHPUT = {"PERSISTENT_1": (50, 100, 200), "PERSISTENT_2": (125, 250, 500, 1000)}


def fsx_valid_capacities(deployment: str, up_to: int) -> list[int]:
    """Return the allowed capacities (GiB) of a deployment type up to a size."""
    step = FSX_INCREMENT_GIB[deployment]
    sizes = [1200, 2400, *list(range(step, up_to + step, step))]
    return sorted(set(s for s in sizes if s >= 1200))


def fsx_capacity(config: Config) -> Iterator[ConfigIssue]:
    """STO001/STO002: FSx capacity and throughput must be values FSx accepts for the deployment type."""
    fsx = config.storage.fsx
    if not fsx.enabled:
        return
    kind = fsx.deployment_type.value
    size = fsx.storage_capacity_gib
    valid = fsx_valid_capacities(kind, size + FSX_INCREMENT_GIB[kind])
    if size not in valid:
        lower = max(v for v in valid if v < size)
        upper = min(v for v in valid if v > size)
        step = FSX_INCREMENT_GIB[kind]
        yield ConfigIssue(
            code="STO001",
            path="storage.fsx.storage_capacity_gib",
            value=size,
            message=f"{kind} file systems come in 1200, 2400 or multiples of {step} GiB; {size} GiB is not one",
            fix=f"use {upper} (the next valid size) or {lower}",
        )
    allowed = FSX_THROUGHPUT.get(kind)
    given = fsx.throughput_mib_per_tib
    if allowed is None and given is not None:
        yield ConfigIssue(
            code="STO002",
            path="storage.fsx.throughput_mib_per_tib",
            value=given,
            message=f"{kind} file systems have a fixed throughput; it cannot be set",
            fix="remove storage.fsx.throughput_mib_per_tib (or write null)",
        )
    elif allowed is not None and given not in allowed:
        yield ConfigIssue(
            code="STO002",
            path="storage.fsx.throughput_mib_per_tib",
            value=given,
            message=f"{kind} supports {', '.join(map(str, allowed))} MB/s per TiB",
            fix=f"use one of: {', '.join(map(str, allowed))}",
        )


# --- hpc ------------------------------------------------------------------------------------


def gpu_instance_types(config: Config) -> Iterator[ConfigIssue]:
    """HPC001/HPC005/HPC008: GPU types must be GPU types, with EFA when EFA is on."""
    gpu = config.hpc.gpu
    if not gpu.enabled:
        return
    for index, name in enumerate(gpu.instance_types):
        path = f"hpc.gpu.instance_types[{index}]"
        facts = lookup(name)
        if facts is None:
            yield ConfigIssue(
                code="HPC005",
                level=Level.WARNING,
                path=path,
                value=name,
                message=f"mlhpc does not know {name}, so it cannot check GPUs or EFA offline",
                fix="check it with `mlhpc validate FILE --online`, or use a type from mlhpc/instances.py",
            )
            continue
        if facts.gpus == 0 and facts.accelerator != "neuron":
            yield ConfigIssue(
                code="HPC008",
                path=path,
                value=name,
                message=f"{name} has no GPU, but it is listed for the GPU compute environment",
                fix="move it to hpc.cpu.instance_types, or choose a GPU type such as g5.12xlarge or p5.48xlarge",
            )
        elif gpu.efa and not facts.efa:
            suggestions = (
                ", ".join(
                    t
                    for t in efa_types()
                    if (lookup(t) or facts).gpu == facts.gpu and (lookup(t) or facts).gpus > 0
                )
                or "p4d.24xlarge, p5.48xlarge"
            )
            yield ConfigIssue(
                code="HPC001",
                path=path,
                value=name,
                message=f"{name} does not support EFA, but hpc.gpu.efa is true",
                fix=f"choose an EFA type ({suggestions}), or set hpc.gpu.efa: false",
            )


def efa_counts_agree(config: Config) -> Iterator[ConfigIssue]:
    """HPC011: one launch template attaches a fixed number of EFA interfaces, so the types must agree."""
    gpu = config.hpc.gpu
    if not gpu.enabled or not gpu.efa:
        return
    counts = {
        t: facts.efa_interfaces for t in gpu.instance_types if (facts := lookup(t)) is not None and facts.efa
    }
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{t} {n}" for t, n in counts.items())
        largest = max(counts, key=lambda t: counts[t])
        same = sorted(
            (t for t in efa_types() if (f := lookup(t)) is not None and f.efa_interfaces == counts[largest]),
            key=lambda t: -difflib.SequenceMatcher(None, t, largest).ratio(),
        )
        yield ConfigIssue(
            code="HPC011",
            path="hpc.gpu.instance_types",
            value=list(gpu.instance_types),
            message="one launch template serves the GPU environment, but these types have different EFA "
            f"interface counts: {listed}",
            fix=f"list types with the same count (e.g. only {' and '.join(same[:2])}), or set hpc.gpu.efa: false",
        )


def gpu_zones(config: Config) -> Iterator[ConfigIssue]:
    """HPC002/HPC006: zone indexes exist; EFA and cluster placement groups stay in one zone."""
    gpu, net = config.hpc.gpu, config.network
    for index, zone in enumerate(gpu.zone_indexes):
        if not 0 <= zone < net.az_count:
            yield ConfigIssue(
                code="HPC006",
                path=f"hpc.gpu.zone_indexes[{index}]",
                value=zone,
                message=f"zone index {zone} does not exist: the VPC has {net.az_count} zones (0-{net.az_count - 1})",
                fix=f"use an index from 0 to {net.az_count - 1}",
            )
    if len(set(gpu.zone_indexes)) > 1 and (gpu.efa or gpu.placement_group):
        why = (
            "EFA traffic cannot cross Availability Zones"
            if gpu.efa
            else "a cluster placement group is one zone"
        )
        yield ConfigIssue(
            code="HPC002",
            path="hpc.gpu.zone_indexes",
            value=list(gpu.zone_indexes),
            message=f"GPU compute spans {len(set(gpu.zone_indexes))} zones, but {why}",
            fix=f"keep one zone (e.g. zone_indexes: [{gpu.zone_indexes[0]}]), or set efa: false and "
            "placement_group: false for independent single-node jobs",
        )


def capacity_conflicts(config: Config) -> Iterator[ConfigIssue]:
    """HPC003/HPC004: a Capacity Block cannot take a placement group or Spot."""
    gpu = config.hpc.gpu
    if gpu.capacity is None or gpu.capacity.kind is not CapacityKind.CAPACITY_BLOCK:
        return
    if gpu.placement_group:
        yield ConfigIssue(
            code="HPC003",
            path="hpc.gpu.placement_group",
            value=True,
            message="a Capacity Block is already placed in an UltraCluster; launches with a placement group fail",
            fix="set hpc.gpu.placement_group: false while hpc.gpu.capacity is a capacity_block",
        )
    if gpu.spot:
        yield ConfigIssue(
            code="HPC004",
            path="hpc.gpu.spot",
            value=True,
            message="a Capacity Block is reserved On-Demand capacity; a Spot environment cannot use it",
            fix="set hpc.gpu.spot: false while hpc.gpu.capacity is a capacity_block",
        )


def vcpu_limits(config: Config) -> Iterator[ConfigIssue]:
    """HPC007: max_vcpus must fit at least one instance of the largest type, and exceed min_vcpus."""
    for section, compute in (("gpu", config.hpc.gpu), ("cpu", config.hpc.cpu)):
        known = [lookup(t) for t in compute.instance_types]
        largest = max((t.vcpus for t in known if t is not None), default=0)
        if largest and compute.max_vcpus < largest:
            yield ConfigIssue(
                code="HPC007",
                path=f"hpc.{section}.max_vcpus",
                value=compute.max_vcpus,
                message=f"max_vcpus {compute.max_vcpus} cannot fit one {largest}-vCPU instance, so Batch never scales",
                fix=f"set hpc.{section}.max_vcpus to at least {largest} (a multiple of it for several nodes)",
            )
        if compute.min_vcpus > compute.max_vcpus:
            yield ConfigIssue(
                code="HPC007",
                path=f"hpc.{section}.min_vcpus",
                value=compute.min_vcpus,
                message=f"min_vcpus {compute.min_vcpus} is above max_vcpus {compute.max_vcpus}",
                fix="set min_vcpus to 0 (an idle cluster then costs nothing) or raise max_vcpus",
            )
    if config.hpc.gpu.enabled and not config.hpc.gpu.on_demand and not config.hpc.gpu.spot:
        yield ConfigIssue(
            code="HPC009",
            path="hpc.gpu",
            message="neither on_demand nor spot is enabled, so there is no GPU queue",
            fix="set hpc.gpu.on_demand: true (or spot: true), or hpc.gpu.enabled: false for a CPU-only cluster",
        )
    if config.hpc.gpu.enabled and config.hpc.gpu.efa and not config.storage.fsx.enabled:
        yield ConfigIssue(
            code="HPC010",
            level=Level.INFO,
            path="storage.fsx.enabled",
            value=False,
            message="EFA training without FSx for Lustre reads data from S3 or EFS, which is usually the bottleneck",
            fix="set storage.fsx.enabled: true for multi-node training",
        )


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


def ldap_directory(config: Config) -> Iterator[ConfigIssue]:
    """ANA001-ANA004: users, groups and the query group of the managed directory must agree."""
    ana = config.analytics
    ldap = ana.ldap
    if not ana.enabled or ldap.existing is not None:
        return
    seen: set[str] = set()
    for index, user in enumerate(ldap.users):
        if user.name in seen:
            yield ConfigIssue(
                code="ANA004",
                path=f"analytics.ldap.users[{index}].name",
                value=user.name,
                message=f"user '{user.name}' is listed twice; each uid is one directory entry and one secret",
                fix="list each user once",
            )
        seen.add(user.name)
        for group in user.groups:
            if group not in ldap.groups:
                yield ConfigIssue(
                    code="ANA001",
                    path=f"analytics.ldap.users[{index}].groups",
                    value=list(user.groups),
                    message=f"user '{user.name}' is in group '{group}', which analytics.ldap.groups does not list",
                    fix=f"add '{group}' to analytics.ldap.groups, or remove it from the user's groups",
                )
    members = {group for user in ldap.users for group in user.groups}
    for index, group in enumerate(ldap.groups):
        if group not in members:
            yield ConfigIssue(
                code="ANA002",
                path=f"analytics.ldap.groups[{index}]",
                value=group,
                message=f"group '{group}' has no member; an LDAP groupOfNames needs at least one",
                fix=f"add '{group}' to some user's groups, or remove it from analytics.ldap.groups",
            )
    if ldap.query_group not in ldap.groups:
        yield ConfigIssue(
            code="ANA003",
            path="analytics.ldap.query_group",
            value=ldap.query_group,
            message=f"query group '{ldap.query_group}' is not one of analytics.ldap.groups, so nobody could query",
            fix=f"set query_group to one of: {', '.join(ldap.groups) or '(add a group first)'}",
        )


def analytics_network(config: Config) -> Iterator[ConfigIssue]:
    """ANA005/ANA006: EMR and the LDAP host need egress; a real TLS bundle needs its CA for clients."""
    ana = config.analytics
    if not ana.enabled:
        return
    if config.network.nat_gateways == 0:
        yield ConfigIssue(
            code="ANA005",
            path="network.nat_gateways",
            value=0,
            message="analytics is enabled but the private subnets have no NAT gateway: the LDAP host cannot "
            "install slapd and EMR cannot reach its service endpoints",
            fix="set network.nat_gateways: 1 (or more), or set analytics.enabled: false",
        )
    tls = ana.tls
    if (tls.certificate_bundle_s3_uri is None) != (tls.ca_certificate_s3_uri is None):
        yield ConfigIssue(
            code="ANA006",
            path="analytics.tls",
            value={k: v for k, v in tls.model_dump().items() if v},
            message="a TLS bundle and the PEM of its CA go together: clients (Studio, Data Wrangler) verify "
            "the coordinator with the CA",
            fix="set both certificate_bundle_s3_uri and ca_certificate_s3_uri, or neither (self-signed)",
        )


STUDIO_ENDPOINTS = ("sagemaker.api", "sagemaker.runtime", "sts", "logs")


def studio_network(config: Config) -> Iterator[ConfigIssue]:
    """STU001/STU002: a VPC-only domain reaches SageMaker through endpoints (or NAT) and EMR if enabled."""
    if not config.studio.enabled:
        return
    if not config.analytics.enabled:
        yield ConfigIssue(
            code="STU001",
            level=Level.WARNING,
            path="studio.enabled",
            value=True,
            message="Studio is enabled without analytics: the domain has no EMR cluster to query",
            fix="set analytics.enabled: true to give Studio Trino/Hive, or keep it for notebooks only",
        )
    have = {e.value for e in config.network.interface_endpoints}
    missing = [e for e in STUDIO_ENDPOINTS if e not in have]
    if missing:
        no_nat = config.network.nat_gateways == 0
        yield ConfigIssue(
            code="STU002",
            level=Level.ERROR if no_nat else Level.INFO,
            path="network.interface_endpoints",
            value=missing,
            message=f"a VPC-only Studio domain calls {', '.join(missing)}; without "
            + (
                "a NAT gateway it cannot reach them"
                if no_nat
                else "their endpoints that traffic goes through NAT"
            ),
            fix=f"add {', '.join(missing)} to network.interface_endpoints",
        )


# --- workloads on the cluster -----------------------------------------------------------------
# These rules need the workload specs as well as the config, so they are not in RULES (which every
# load of a config runs, and which must not import every workload): `mlhpc validate`, `app.py`
# and HpcStack call them.


def placement_issue(refusal: Refusal) -> ConfigIssue:
    """Return the config issue of a workload Batch could never start (HPC012-HPC017).

    HPC016 (the cluster has no queue of the kind the workload needs, e.g. a GPU workload on
    a CPU-only cluster) is an INFO: HpcStack emits no job definition for it. The others are
    errors: the workload has a queue but could never start there, so synthesis stops.
    """
    fit = f" Instance types that would fit: {', '.join(refusal.would_fit[:8])}." if refusal.would_fit else ""
    return ConfigIssue(
        code=refusal.code,
        level=Level.INFO if refusal.absent else Level.ERROR,
        path=refusal.path,
        message=refusal.message
        + ("; no Batch job definition is made for it" if refusal.absent else "")
        + ("" if refusal.absent else "." + fit),
        fix=refusal.fix,
    )


def workload_placement(config: Config, specs: Mapping[str, WorkloadSpec] | None = None) -> list[ConfigIssue]:
    """HPC012-HPC017: every workload's Batch job fits the queue it is routed to (mlhpc.placement)."""
    from mlhpc import placement

    if specs is None:
        from mlhpc.registry import all_specs

        specs = all_specs()
    envs = placement.environments(config.hpc)
    issues = []
    for spec in specs.values():
        result = placement.place(spec, envs)
        if isinstance(result, placement.Refusal):
            issues.append(placement_issue(result))
    return issues


RULES: tuple[Rule, ...] = (
    nat_within_azs,
    zones_match_count,
    subnets_fit,
    egress_warnings,
    fsx_capacity,
    gpu_instance_types,
    efa_counts_agree,
    gpu_zones,
    capacity_conflicts,
    vcpu_limits,
    image_recipes,
    inference_rules,
    ldap_directory,
    analytics_network,
    studio_network,
)


def check_rules(config: Config) -> list[ConfigIssue]:
    """Run every rule and return all issues, errors first."""
    found = [issue for rule in RULES for issue in rule(config)]
    order = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}
    return sorted(found, key=lambda i: order[i.level])
