"""The config loader: every shipped file is valid; bad files report every problem with its exact text."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mlhpc.config import Config, ConfigError, Level, load_config, load_config_with_warnings, parse_config
from tests.conftest import CONFIG_FILES, config_id


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_every_shipped_config_is_valid(path: Path) -> None:
    config, notes = load_config_with_warnings(path)
    assert isinstance(config, Config)
    assert all(n.level is not Level.ERROR for n in notes)


def test_default_file_matches_model_defaults() -> None:
    """config/default.yaml only makes the defaults explicit; the two must not drift apart."""
    from_file = load_config(Path(__file__).resolve().parents[2] / "config" / "default.yaml")
    default = Config()
    assert from_file.network == default.network
    assert from_file.project.region == default.project.region


def test_empty_file_gives_the_defaults() -> None:
    config, _ = parse_config("")
    assert config == Config()


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValidationError):
        config.network.nat_gateways = 3  # type: ignore[misc]


# Each row: YAML text, the path reported, the exact message, the exact fix.
BAD_INPUTS = [
    (
        "network:\n  nat_gateway: 1\n",
        "network.nat_gateway",
        "unknown key 'nat_gateway' (did you mean 'nat_gateways'?)",
        "rename it to 'nat_gateways'; allowed keys here: availability_zones, az_count, cidr, flow_logs, "
        "gateway_endpoints, interface_endpoints, nat_gateways, private_subnet_mask, public_subnet_mask",
    ),
    (
        "netwrk:\n  cidr: 10.0.0.0/16\n",
        "netwrk",
        "unknown key 'netwrk' (did you mean 'network'?)",
        "rename it to 'network'; allowed keys here: analytics, hpc, image, inference, network, project, storage, "
        "studio",
    ),
    (
        "network:\n  cidr: 10.0.0.0/33\n",
        "network.cidr",
        "'10.0.0.0/33' is not an IPv4 CIDR block ('33' is not a valid netmask)",
        "use a block such as '10.0.0.0/16'",
    ),
    (
        "network:\n  cidr: 8.8.0.0/16\n",
        "network.cidr",
        "'8.8.0.0/16' is not a private (RFC 1918) range",
        "use e.g. '10.0.0.0/16' or '172.16.0.0/16'",
    ),
    (
        "network:\n  cidr: 10.0.0.0/8\n",
        "network.cidr",
        "a VPC CIDR of /8 is outside what mlhpc supports (/16 to /24)",
        "use e.g. '10.0.0.0/16'",
    ),
    (
        "network:\n  az_count: 1\n",
        "network.az_count",
        "az_count must be >= 2 and <= 6",
        "set az_count to a value >= 2 and <= 6",
    ),
    (
        "network:\n  nat_gateways: many\n",
        "network.nat_gateways",
        "nat_gateways must be a whole number",
        "write nat_gateways as a whole number",
    ),
    (
        "network:\n  flow_logs:\n    traffic_type: all\n",
        "network.flow_logs.traffic_type",
        "'all' is not one of the allowed values: ALL, ACCEPT, REJECT",
        "use 'ALL'",
    ),
    (
        "network:\n  interface_endpoints: [ecr-api]\n",
        "network.interface_endpoints[0]",
        "'ecr-api' is not one of the allowed values: ecr.api, ecr.dkr, logs, monitoring, ssm, ssmmessages, "
        "ec2messages, ec2, sts, secretsmanager, kms, sagemaker.api, sagemaker.runtime, batch, ecs, ecs-agent, "
        "ecs-telemetry, elasticfilesystem",
        "use 'ecr.api'",
    ),
    (
        "network:\n  flow_logs:\n    retention_days: 100\n",
        "network.flow_logs.retention_days",
        "CloudWatch Logs cannot keep logs for 100 days",
        "use 90 or 120 (allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, "
        "2192, 2557, 2922, 3288, 3653)",
    ),
    (
        "network:\n  flow_logs:\n    max_aggregation_interval_s: 300\n",
        "network.flow_logs.max_aggregation_interval_s",
        "300 is not one of the allowed values: 60, 600",
        "use one of: 60, 600",
    ),
    (
        "project:\n  name: My_Project\n",
        "project.name",
        "'My_Project' cannot prefix stack and resource names",
        "use 2-20 lowercase letters, digits or '-', starting with a letter, e.g. 'my-project'",
    ),
    (
        "project:\n  region: us-east\n",
        "project.region",
        "'us-east' is not an AWS region name",
        "expected a name such as 'us-east-1' or 'eu-west-2'",
    ),
    (
        "project:\n  account: '12345'\n",
        "project.account",
        "'12345' is not a 12-digit AWS account id",
        "write all 12 digits in quotes, e.g. '123456789012', or leave account unset for account-agnostic templates",
    ),
    (
        "project:\n  tags:\n    'aws:owner': me\n",
        "project.tags.aws:owner.[key]",
        "tag key 'aws:owner' uses the reserved 'aws:' prefix",
        "choose a key without it",
    ),
    (
        "network: 10.0.0.0/16\n",
        "network",
        "network must be a mapping of keys (key: value lines, indented)",
        "write network as a mapping of keys (key: value lines, indented)",
    ),
    # cross-field rules
    (
        "network:\n  nat_gateways: 3\n",
        "network.nat_gateways",
        "3 NAT gateways for 2 Availability Zones: at most one per zone",
        "set network.nat_gateways to 2 or fewer (1 is cheapest, 2 is zone-redundant)",
    ),
    (
        "network:\n  availability_zones: [us-east-1a]\n",
        "network.availability_zones",
        "1 zones listed but az_count is 2",
        "list exactly 2 zones, or set network.az_count to 1",
    ),
    (
        "network:\n  availability_zones: [us-east-1a, us-west-2b]\n",
        "network.availability_zones[1]",
        "zone 'us-west-2b' is not in the project's region us-east-1",
        "use a zone of us-east-1 (e.g. 'us-east-1a'), or change project.region to 'us-west-2'",
    ),
    (
        "network:\n  cidr: 10.0.0.0/24\n  public_subnet_mask: 26\n  private_subnet_mask: 25\n",
        "network.cidr",
        "2 public /26 and 2 private /25 subnets need 384 addresses; /24 has 256",
        "use a larger VPC CIDR (e.g. a /16), fewer zones, or larger subnet masks (smaller subnets)",
    ),
    (
        "network:\n  cidr: 10.0.0.0/20\n  private_subnet_mask: 20\n",
        "network.private_subnet_mask",
        "a /20 subnet is not smaller than the /20 VPC",
        "set network.private_subnet_mask to more than 20 (e.g. 24)",
    ),
]


@pytest.mark.parametrize(("text", "path", "message", "fix"), BAD_INPUTS, ids=[row[1] for row in BAD_INPUTS])
def test_bad_input_is_reported_with_path_message_and_fix(
    text: str, path: str, message: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bad.yaml")
    issues = [i for i in caught.value.issues if i.path == path]
    assert issues, f"no issue at {path}; got {[i.path for i in caught.value.issues]}"
    assert issues[0].message == message
    assert issues[0].fix == fix


def test_three_mistakes_are_reported_together_with_lines(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        "project:\n"
        "  name: mlhpc\n"
        "network:\n"
        "  cidr: 10.0.0.0/33\n"
        "  nat_gateway: 1\n"
        "  flow_logs:\n"
        "    retention_days: 100\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [(i.path, i.line) for i in caught.value.issues]
    assert found == [
        ("network.cidr", 4),
        ("network.nat_gateway", 5),
        ("network.flow_logs.retention_days", 7),
    ]
    text = str(caught.value)
    assert text.startswith(f"{path}: 3 problems found")
    assert text.count("fix:") == 3
    assert f"{path}:5 network.nat_gateway" in text


def test_duplicate_keys_are_errors_not_silently_overwritten() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("network:\n  nat_gateways: 1\n  nat_gateways: 2\n")
    (issue,) = caught.value.issues
    assert issue.code == "YAML"
    assert issue.line == 3
    assert issue.message == (
        "key 'nat_gateways' appears twice (first on line 2); YAML would silently keep only the last one"
    )


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("network:\n  cidr: [10.0.0.0/16\n")
    (issue,) = caught.value.issues
    assert issue.code == "YAML"
    assert issue.line == 3
    assert issue.message.startswith("not valid YAML")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("- a\n- b\n")
    assert "must be a mapping of sections" in caught.value.issues[0].message


def test_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    (issue,) = caught.value.issues
    assert issue.code == "FILE"
    assert issue.fix == "pass an existing file, e.g. config/default.yaml or one of config/examples/*.yaml"


def test_mlhpc_config_env_selects_the_file(monkeypatch: pytest.MonkeyPatch, write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config("project:\n  name: from-env\n")
    monkeypatch.setenv("MLHPC_CONFIG", str(path))
    assert load_config().project.name == "from-env"
    assert load_config(None).project.name == "from-env"


def test_warnings_do_not_stop_loading() -> None:
    config, notes = parse_config("network:\n  nat_gateways: 0\n")
    assert config.network.nat_gateways == 0
    assert [(n.code, n.level) for n in notes] == [("NET006", Level.WARNING)]


def test_single_nat_is_an_info_note() -> None:
    _, notes = parse_config("network:\n  nat_gateways: 1\n")
    assert [n.code for n in notes] == ["NET007"]
    _, notes = parse_config("network:\n  nat_gateways: 2\n")
    assert notes == []


# Storage and cluster rules: each row is YAML, path, exact message, exact fix.
CLUSTER_RULES = [
    (
        "hpc:\n  gpu:\n    instance_types: [g5.2xlarge]\n",
        "hpc.gpu.instance_types[0]",
        "g5.2xlarge does not support EFA, but hpc.gpu.efa is true",
        "choose an EFA type (g5.12xlarge, g5.16xlarge, g5.24xlarge, g5.48xlarge, g5.8xlarge), or set hpc.gpu.efa: false",
    ),
    (
        "hpc:\n  gpu:\n    zone_indexes: [0, 1]\n",
        "hpc.gpu.zone_indexes",
        "GPU compute spans 2 zones, but EFA traffic cannot cross Availability Zones",
        "keep one zone (e.g. zone_indexes: [0]), or set efa: false and placement_group: false for independent "
        "single-node jobs",
    ),
    (
        "hpc:\n  gpu:\n    spot: false\n    capacity: {kind: capacity_block, id: cr-0123456789abcdef0}\n",
        "hpc.gpu.placement_group",
        "a Capacity Block is already placed in an UltraCluster; launches with a placement group fail",
        "set hpc.gpu.placement_group: false while hpc.gpu.capacity is a capacity_block",
    ),
    (
        "hpc:\n  gpu:\n    placement_group: false\n    capacity: {kind: capacity_block, id: cr-0123456789abcdef0}\n",
        "hpc.gpu.spot",
        "a Capacity Block is reserved On-Demand capacity; a Spot environment cannot use it",
        "set hpc.gpu.spot: false while hpc.gpu.capacity is a capacity_block",
    ),
    (
        "storage:\n  fsx:\n    storage_capacity_gib: 3000\n",
        "storage.fsx.storage_capacity_gib",
        "PERSISTENT_2 file systems come in 1200, 2400 or multiples of 2400 GiB; 3000 GiB is not one",
        "use 4800 (the next valid size) or 2400",
    ),
    (
        "storage:\n  fsx:\n    deployment_type: SCRATCH_1\n    throughput_mib_per_tib: null\n    storage_capacity_gib: 4800\n",
        "storage.fsx.storage_capacity_gib",
        "SCRATCH_1 file systems come in 1200, 2400 or multiples of 3600 GiB; 4800 GiB is not one",
        "use 7200 (the next valid size) or 3600",
    ),
    (
        "storage:\n  fsx:\n    throughput_mib_per_tib: 200\n",
        "storage.fsx.throughput_mib_per_tib",
        "PERSISTENT_2 supports 125, 250, 500, 1000 MB/s per TiB",
        "use one of: 125, 250, 500, 1000",
    ),
    (
        "storage:\n  fsx:\n    deployment_type: SCRATCH_2\n",
        "storage.fsx.throughput_mib_per_tib",
        "SCRATCH_2 file systems have a fixed throughput; it cannot be set",
        "remove storage.fsx.throughput_mib_per_tib (or write null)",
    ),
    (
        "hpc:\n  gpu:\n    instance_types: [c6i.large]\n    efa: false\n",
        "hpc.gpu.instance_types[0]",
        "c6i.large has no GPU, but it is listed for the GPU compute environment",
        "move it to hpc.cpu.instance_types, or choose a GPU type such as g5.12xlarge or p5.48xlarge",
    ),
    (
        "hpc:\n  gpu:\n    instance_types: [p5.48xlarge]\n    max_vcpus: 96\n",
        "hpc.gpu.max_vcpus",
        "max_vcpus 96 cannot fit one 192-vCPU instance, so Batch never scales",
        "set hpc.gpu.max_vcpus to at least 192 (a multiple of it for several nodes)",
    ),
    (
        "hpc:\n  gpu:\n    zone_indexes: [2]\n",
        "hpc.gpu.zone_indexes[0]",
        "zone index 2 does not exist: the VPC has 2 zones (0-1)",
        "use an index from 0 to 1",
    ),
    (
        "hpc:\n  gpu:\n    instance_types: [g5.12xlarge, p4d.24xlarge]\n    max_vcpus: 192\n",
        "hpc.gpu.instance_types",
        "one launch template serves the GPU environment, but these types have different EFA interface counts: "
        "g5.12xlarge 1, p4d.24xlarge 4",
        "list types with the same count (e.g. only p4d.24xlarge and p4de.24xlarge), or set hpc.gpu.efa: false",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "message", "fix"),
    CLUSTER_RULES,
    ids=[r[1] + str(i) for i, r in enumerate(CLUSTER_RULES)],
)
def test_cluster_rules(text: str, path: str, message: str, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bad.yaml")
    issues = [i for i in caught.value.issues if i.path == path]
    assert issues, f"no issue at {path}; got {[(i.path, i.message) for i in caught.value.issues]}"
    assert (issues[0].message, issues[0].fix) == (message, fix)


def test_fsx_valid_sizes_follow_the_published_increments() -> None:
    from mlhpc.config.storage import fsx_valid_capacities

    assert fsx_valid_capacities("PERSISTENT_2", 9600) == [1200, 2400, 4800, 7200, 9600]
    assert fsx_valid_capacities("SCRATCH_1", 10800) == [1200, 2400, 3600, 7200, 10800]


def test_unknown_instance_type_is_a_warning_not_an_error() -> None:
    _, notes = parse_config("hpc:\n  gpu:\n    instance_types: [p9.hypothetical]\n")
    assert [(n.code, n.level) for n in notes if n.code.startswith("HPC")] == [("HPC005", Level.WARNING)]
