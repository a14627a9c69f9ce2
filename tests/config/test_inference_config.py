"""The inference section: single-field validators and the INF0xx rules, with their exact texts."""

from __future__ import annotations

import pytest

from mlhpc.config import ConfigError, parse_config

ON = "inference:\n  enabled: true\n"


def issues(text: str) -> dict[str, tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bad.yaml")
    return {i.path: (i.message, i.fix) for i in caught.value.issues}


def test_off_by_default_and_rules_skip_a_disabled_section() -> None:
    config, _ = parse_config("inference:\n  service:\n    replicas_min: 9\n    replicas_max: 2\n")
    assert config.inference.enabled is False


def test_sizes_out_of_order_are_inf001() -> None:
    found = issues(ON + "  neuron_nodes:\n    min_size: 2\n    desired_size: 1\n")
    assert found["inference.neuron_nodes"] == (
        "node group sizes min 2, desired 1, max 2 are not in order, so EKS rejects the node group",
        "set inference.neuron_nodes so that min_size <= desired_size <= max_size",
    )


def test_replicas_inf002() -> None:
    found = issues(ON + "  service:\n    replicas_min: 5\n    replicas_max: 2\n")
    assert found["inference.service.replicas_min"] == (
        "replicas_min 5 is above replicas_max 2",
        "set inference.service.replicas_min <= replicas_max",
    )


def test_more_neuroncores_than_the_instance_has_is_inf003() -> None:
    found = issues(ON + "  service:\n    neuron_cores_per_pod: 4\n")
    assert found["inference.service.neuron_cores_per_pod"] == (
        "a pod asks for 4 NeuronCores but inf2.xlarge has only 2, so it can never be scheduled there",
        "set neuron_cores_per_pod to at most 2, or use larger instance types",
    )


def test_mixed_generations_are_inf004() -> None:
    found = issues(ON + "  neuron_nodes:\n    instance_types: [inf1.xlarge, inf2.xlarge]\n")
    assert "inf1 and inf2 in one node group" in found["inference.neuron_nodes.instance_types"][0]


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("  neuron_nodes:\n    instance_types: [g5.xlarge]\n", "inference.neuron_nodes.instance_types[0]",
         "is not an Inferentia instance type"),
        ("  public_endpoint_cidrs: ['0.0.0.0/0']\n", "inference.public_endpoint_cidrs[0]",
         "'0.0.0.0/0' opens the Kubernetes API to 4294967296 addresses"),
        ("  admin_role_arns: ['Admin']\n", "inference.admin_role_arns[0]", "'Admin' is not an IAM role ARN"),
        ("  kubernetes_version: '1.29'\n", "inference.kubernetes_version", "1.35"),
    ],
)  # fmt: skip
def test_single_field_checks(text: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ON + text, source="bad.yaml")
    texts = [i.message + " " + i.fix for i in caught.value.issues if i.path == path]
    assert any(fragment in t for t in texts), texts
