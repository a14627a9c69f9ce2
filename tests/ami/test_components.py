"""Every component document validates against the Image Builder component schema and fits its recipes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlhpc.ami.manifest import load_manifest
from stacks.constructs.image_builder import (
    GPU_COMPONENTS,
    INFERENTIA_COMPONENTS,
    RecipeInputs,
    component_parameters,
)
from tests.ami.conftest import AMI, COMPONENTS, SCRIPTS

SCHEMA = json.loads((AMI / "component.schema.json").read_text(encoding="utf-8"))
DOCUMENTS = sorted(COMPONENTS.glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_component_document_is_valid(path: Path) -> None:
    document = load(path)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [phase["name"] for phase in document["phases"]] == ["build", "validate", "test"]
    for phase in document["phases"]:
        names = [step["name"] for step in phase["steps"]]
        assert len(names) == len(set(names)), f"step names repeat in {phase['name']}"
    # Image Builder inline component data is limited to 16,000 characters.
    assert len(path.read_text(encoding="utf-8")) < 16_000


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.pop("schemaVersion"), "schemaVersion"),
        (lambda d: d["phases"][0].update(name="deploy"), "deploy"),
        (lambda d: d["phases"][0]["steps"][0].update(action="RunBash"), "RunBash"),
        (lambda d: d["phases"][0]["steps"][0].update(onFailure="Retry"), "Retry"),
        (lambda d: d["phases"][0]["steps"][0].update(inputs={"command": "ls"}), "command"),
    ],
    ids=["no-schema-version", "unknown-phase", "unknown-action", "bad-on-failure", "bad-bash-inputs"],
)
def test_the_schema_rejects_broken_documents(mutate: Any, where: str) -> None:
    document = load(COMPONENTS / "cuda.yaml")
    mutate(document)
    with pytest.raises(jsonschema.ValidationError, match=where):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def declared(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Return (all parameter names, those without a default)."""
    names, required = set(), set()
    for item in document.get("parameters", []):
        ((name, spec),) = item.items()
        names.add(name)
        if "default" not in spec:
            required.add(name)
    return names, required


@pytest.mark.parametrize("key", sorted({*GPU_COMPONENTS, *INFERENTIA_COMPONENTS}))
def test_recipes_pass_exactly_the_parameters_each_component_declares(key: str) -> None:
    names, required = declared(load(COMPONENTS / f"{key}.yaml"))
    for target in ("inf1", "inf2"):
        given = component_parameters(
            load_manifest(),
            key,
            RecipeInputs(scripts_uri="s3://bucket/key.zip", allow_unverified=False, neuron_target=target),
        )
        assert set(given) <= names, f"{key} gets undeclared parameters {set(given) - names}"
        assert required <= set(given), f"{key} misses {required - set(given)}"
        assert all(value for value in given.values()), "Image Builder parameter values cannot be empty"


def test_every_script_a_component_runs_exists() -> None:
    for path in DOCUMENTS:
        for script in {
            w for w in path.read_text(encoding="utf-8").split() if w.startswith("/opt/mlhpc/ami/")
        }:
            name = script.removeprefix("/opt/mlhpc/ami/").rstrip("'\"")
            if name.endswith(".sh") and "*" not in name:
                assert (SCRIPTS / name).is_file(), f"{path.name} runs {name}"


def test_neuron_parameters_follow_the_target() -> None:
    manifest = load_manifest()
    inf1 = component_parameters(
        manifest, "neuron", RecipeInputs(scripts_uri="s3://b/k", allow_unverified=False, neuron_target="inf1")
    )
    assert "aws-neuronx-dkms-2.24." in inf1["Packages"] and "runtime-lib" not in inf1["Packages"]
    assert inf1["KeySha256"] == "none"  # null in the manifest: the script refuses it without the override
