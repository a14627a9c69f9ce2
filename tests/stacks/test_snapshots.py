"""One snapshot per synthesized stack of the default config: every template change shows up as a diff.

Accept an intended change with `make snapshot-update` and review the diff in the commit.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from mlhpc.contract import STACK_IDS
from stacks.assembly import ANALYTICS, STUDIO
from tests.conftest import REPO, load_template

pytestmark = pytest.mark.synth

ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def mask(node: Any) -> Any:
    """Replace asset hashes and drop CDK's version metadata, which change without our code changing."""
    if isinstance(node, dict):
        return {
            key: mask(value)
            for key, value in node.items()
            if key not in ("CDKMetadata", "CDKMetadataAvailable")
            and not (key == "Type" and value == "AWS::CDK::Metadata")
        }
    if isinstance(node, list):
        return [mask(value) for value in node]
    if isinstance(node, str):
        return ASSET_HASH.sub("<asset-hash>", node)
    return node


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_mask_replaces_hashes_and_metadata() -> None:
    template = {
        "Resources": {
            "CDKMetadata": {"Type": "AWS::CDK::Metadata"},
            "Fn": {"Properties": {"S3Key": "a" * 64 + ".zip"}},
        },
        "Conditions": {"CDKMetadataAvailable": {}},
    }
    assert mask(template) == {
        "Resources": {"Fn": {"Properties": {"S3Key": "<asset-hash>.zip"}}},
        "Conditions": {},
    }


# Optional stacks are off in the default config: their snapshot comes from an example that enables them.
SNAPSHOT_CONFIGS = {
    "ImageStack": REPO / "config" / "examples" / "p5-efa-training.yaml",
    "InferenceStack": REPO / "config" / "examples" / "inferentia-bert.yaml",
    ANALYTICS: REPO / "config" / "examples" / "analytics-studio.yaml",
    STUDIO: REPO / "config" / "examples" / "analytics-studio.yaml",
}


@pytest.mark.parametrize("stack", STACK_IDS)
def test_default_config_snapshot(stack: str, synth_config: Any, snapshot_json: SnapshotAssertion) -> None:
    result = synth_config(SNAPSHOT_CONFIGS.get(stack, REPO / "config" / "default.yaml"))
    assert mask(load_template(result, stack)) == snapshot_json
