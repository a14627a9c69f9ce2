"""The BERT image's Neuron variants: one per Inferentia generation, pinned to ami/versions.yaml's Neuron lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlhpc import contract
from mlhpc.ami.manifest import load_manifest

DOCKERFILE = Path(__file__).resolve().parents[3] / "workloads" / "bert" / "Dockerfile"
# Dockerfile ARG -> the key of the AMI manifest's `container:` entry it must equal, per stage.
PINS = {
    "neuron": ("neuron_inf2", {
        "NEURON_RUNTIME_VERSION": "aws-neuronx-runtime-lib",
        "NEURON_COLLECTIVES_VERSION": "aws-neuronx-collectives",
        "NEURONX_CC_VERSION": "neuronx-cc",
        "TORCH_NEURONX_VERSION": "torch-neuronx",
    }),
    "inf1": ("neuron_inf1", {"TORCH_NEURON_VERSION": "torch-neuron", "NEURON_CC_VERSION": "neuron-cc"}),
}  # fmt: skip


def stages(text: str) -> dict[str, str]:
    """Return each named stage's text (FROM line included)."""
    parts = re.split(r"(?m)^(?=FROM )", text)
    named = {}
    for part in parts:
        match = re.match(r"FROM (\S+) AS (\S+)", part)
        if match:
            named[match.group(2)] = part
    return named


def args(stage: str) -> dict[str, str]:
    return dict(re.findall(r"(?m)^ARG (\w+)=(\S+)$", stage))


def test_every_variant_the_stacks_can_pick_is_a_stage() -> None:
    named = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert set(contract.IMAGE_VARIANTS.values()) | {"cpu"} <= set(named)


@pytest.mark.parametrize("variant", sorted(PINS))
def test_neuron_pins_are_the_ami_manifests(variant: str) -> None:
    artifact, wanted = PINS[variant]
    container = load_manifest().artifact(artifact).container or {}
    stage = stages(DOCKERFILE.read_text(encoding="utf-8"))[variant]
    found = args(stage)
    assert {arg: found.get(arg) for arg in wanted} == {arg: container[key] for arg, key in wanted.items()}
    # and the stage installs what it pins (an ARG nothing reads would pin nothing)
    for arg in wanted:
        assert f"${{{arg}}}" in stage, arg
    python = re.match(r"FROM python:(\d+\.\d+)\.", stage) or re.match(
        r"FROM python:(\d+\.\d+)\.", stages(DOCKERFILE.read_text(encoding="utf-8"))["base"]
    )
    assert python and python.group(1) == container["python"]


def test_inf1_has_its_own_python_and_framework_and_inf2_never_gets_torch_neuron() -> None:
    named = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert named["inf1"].startswith("FROM python:3.10.")  # torch-neuron's torch 1.13 has no 3.11 wheels
    assert "torch-neuron==" in named["inf1"] and "torch-neuronx" not in named["inf1"]
    assert "torch-neuronx==" in named["neuron"] and "torch-neuron==" not in named["neuron"]


def test_a_drifted_pin_is_caught(tmp_path: Path) -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    container = load_manifest().artifact("neuron_inf2").container or {}
    drifted = text.replace(f"NEURONX_CC_VERSION={container['neuronx-cc']}", "NEURONX_CC_VERSION=2.0.0.0")
    assert drifted != text
    assert args(stages(drifted)["neuron"])["NEURONX_CC_VERSION"] != container["neuronx-cc"]


@pytest.mark.parametrize(
    ("instance_type", "variant"),
    [("inf2.xlarge", "neuron"), ("trn1.2xlarge", "neuron"), ("inf1.6xlarge", "inf1"), ("m6i.large", None)],
)
def test_image_variant_of_an_instance_family(instance_type: str, variant: str | None) -> None:
    assert contract.image_variant(instance_type) == variant
    reference = contract.image_reference("r", "1.0", variant)
    assert reference == (f"r:1.0-{variant}" if variant else "r:1.0")
