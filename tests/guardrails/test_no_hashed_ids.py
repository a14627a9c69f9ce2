"""No acknowledgment or skip names a hashed logical id: a CDK upgrade that rehashes ids must not drop one.

cdk-nag acknowledgments are tied to constructs (``stacks.constructs.nag.acknowledge`` on the construct,
finding ids built from ``get_logical_id`` of a construct found in the tree), checkov skips to id
prefixes with a glob. A literal like ``IsCompleteHandler7073F4DA`` in the code would silently stop
matching (or match something else) when the hash changes, so this test rejects it wherever it is written.
"""

from __future__ import annotations

import ast
import re

import pytest

from mlhpc_app.guardrails.tools import CHECKOV_SKIPS, load_skips
from tests.conftest import REPO

# CDK appends 8 upper-case hex digits to a logical id (and to nested-stack template names). Two forms,
# so that numbers in messages ('123456789012') do not count: after a letter, or with a letter A-F in it.
_AFTER_LETTER = r"(?<=[A-Za-z])[0-9A-F]{8}(?![0-9A-Za-z])"
_WITH_HEX_LETTER = r"(?<=[A-Za-z0-9])(?=[0-9]{0,7}[A-F])[0-9A-F]{8}(?![0-9A-Za-z])"
HASHED_ID = re.compile(f"{_AFTER_LETTER}|{_WITH_HEX_LETTER}")

# Where acknowledgments, suppressions and skips are written.
SOURCES = sorted([*(REPO / "stacks").rglob("*.py"), *(REPO / "mlhpc" / "guardrails").rglob("*.py")])


def hashed_strings(source: str) -> list[tuple[int, str]]:
    """Return (line, text) of every string literal in Python source that contains a hashed logical id."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and HASHED_ID.search(node.value)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Resource::<IsCompleteHandler7073F4DA.Arn>:*",
        'Policy::{"Fn::If":["ClusterHasEcrPublic8EE1114E",{}]}',
        "ProviderframeworkonTimeout0B47CA38",
        "InferenceStackawscdkawseksKubectlProvider5C0D0AC1.nested.template.json",
        "Subnet1ABCD1234",
    ],
)
def test_the_pattern_finds_cdk_hashes(text: str) -> None:
    assert HASHED_ID.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "AWS::IAM::Policy.QueueMetricsRoleDefaultPolicy*",
        "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore",
        "e.g. '123456789012'",
        "sha256:" + "a" * 64,
        "AwsSolutions-IAM5[Resource::*]",
    ],
)
def test_the_pattern_leaves_other_text_alone(text: str) -> None:
    assert not HASHED_ID.search(text)


def test_no_source_in_stacks_or_guardrails_spells_a_hashed_logical_id() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {text[:120]!r}"
        for path in SOURCES
        for line, text in hashed_strings(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "reach the construct instead (node.find_child, Stack.get_logical_id) or match its id prefix with a "
        "glob:\n" + "\n".join(found)
    )


def test_no_checkov_skip_pattern_holds_a_hash() -> None:
    patterns = [p for skip in load_skips() for p in (*skip.resources, *skip.templates)]
    assert patterns
    assert not [p for p in patterns if HASHED_ID.search(p)], CHECKOV_SKIPS
    # ...nor anywhere else in the file (a comment that names one would soon be wrong).
    assert not HASHED_ID.search(CHECKOV_SKIPS.read_text(encoding="utf-8"))
