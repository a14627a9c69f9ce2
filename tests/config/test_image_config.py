"""The image section and its IMG rules: exact messages and fixes."""

from __future__ import annotations

import pytest

from mlhpc.config import ConfigError, Level, parse_config
from mlhpc.config.rules import check_rules

ON = "image:\n  enabled: true\n  allow_unverified_downloads: true\n"

ERRORS = [
    (
        "image:\n  enabled: true\n  gpu: {enabled: false}\n",
        "image",
        "IMG001",
        "image.enabled is true but neither the GPU nor the Inferentia recipe is enabled",
        "set image.gpu.enabled: true and/or image.inferentia.enabled: true, or image.enabled: false",
    ),
    (
        ON + "  gpu:\n    build_instance_types: [c6i.4xlarge]\n",
        "image.gpu.build_instance_types[0]",
        "IMG002",
        "c6i.4xlarge cannot run the gpu image's bake-time tests (they need the accelerator)",
        "use an NVIDIA GPU type such as g5.12xlarge",
    ),
    (
        ON + "  inferentia:\n    enabled: true\n    target: inf1\n    build_instance_types: [inf2.xlarge]\n",
        "image.inferentia.build_instance_types[0]",
        "IMG002",
        "inf2.xlarge cannot run the inferentia image's bake-time tests (they need the accelerator)",
        "use an inf1 type such as inf1.xlarge",
    ),
    (
        "image:\n  enabled: true\n",
        "image.allow_unverified_downloads",
        "IMG003",
        "the enabled recipes install repositories.nvidia_cuda, artifacts.cloudwatch_agent and ami/versions.yaml "
        "has no sha256 for them, so every bake would stop with 'refusing to install'",
        "add the published SHA-256 of each to ami/versions.yaml, or accept the risk with "
        "image.allow_unverified_downloads: true",
    ),
    (
        "image:\n  enabled: true\n  gpu: {enabled: false}\n  inferentia: {enabled: true}\n",
        "image.allow_unverified_downloads",
        "IMG003",
        "the enabled recipes install repositories.neuron, artifacts.cloudwatch_agent and ami/versions.yaml "
        "has no sha256 for them, so every bake would stop with 'refusing to install'",
        "add the published SHA-256 of each to ami/versions.yaml, or accept the risk with "
        "image.allow_unverified_downloads: true",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "code", "message", "fix"), ERRORS, ids=[f"{e[2]}-{i}" for i, e in enumerate(ERRORS)]
)
def test_image_errors(text: str, path: str, code: str, message: str, fix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="bad.yaml")
    issues = [i for i in caught.value.issues if i.path == path and i.code == code]
    assert issues, [(i.code, i.path, i.message) for i in caught.value.issues]
    assert (issues[0].message, issues[0].fix) == (message, fix)


def test_install_pinned_driver_also_needs_the_driver_checksum() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("image:\n  enabled: true\n  gpu: {driver: install_pinned}\n")
    (issue,) = [i for i in caught.value.issues if i.code == "IMG003"]
    assert issue.message.startswith(
        "the enabled recipes install repositories.nvidia_cuda, artifacts.cloudwatch_agent, artifacts.nvidia_driver and"
    )


def test_the_override_is_a_warning_that_names_what_goes_unverified() -> None:
    _, notes = parse_config(ON)
    (warning,) = [n for n in notes if n.code == "IMG004"]
    assert warning.level is Level.WARNING
    assert warning.message == (
        "downloads without a checksum in ami/versions.yaml are installed unverified "
        "(repositories.nvidia_cuda, artifacts.cloudwatch_agent)"
    )


def test_pointing_hpc_at_the_pipeline_parameter_is_a_note_about_the_first_bake() -> None:
    config, _ = parse_config(ON + "hpc:\n  gpu:\n    ami: {ssm_parameter: /mlhpc/ami/gpu}\n")
    (note,) = [i for i in check_rules(config) if i.code == "IMG005"]
    assert note.level is Level.INFO
    assert (
        note.fix
        == "deploy ImageStack and run its GPU pipeline (mlhpc-gpu-image) once before deploying HpcStack"
    )


def test_image_is_off_by_default_and_no_rule_fires() -> None:
    config, _ = parse_config("")
    assert config.image.enabled is False
    assert [i for i in check_rules(config) if i.code.startswith("IMG")] == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("image:\n  version: latest\n", "image.version"),
        ("image:\n  schedule_cron: 'every sunday'\n", "image.schedule_cron"),
        ("image:\n  inferentia: {target: inf3}\n", "image.inferentia.target"),
        ("image:\n  gpu: {driver: newest}\n", "image.gpu.driver"),
    ],
)
def test_bad_image_values_are_schema_errors(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert any(i.path == where for i in caught.value.issues), [i.path for i in caught.value.issues]
