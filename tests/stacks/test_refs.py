"""Stacks receive small frozen bundles (stacks.refs) of what they use from other stacks, not the stacks."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from aws_cdk import Stack

from stacks.analytics_stack import AnalyticsStack
from stacks.image_stack import ImageStack
from stacks.inference_stack import InferenceStack
from stacks.refs import AnalyticsRefs, NetworkRefs, StorageRefs
from stacks.studio_stack import StudioStack


def _stack_types(annotation: object) -> list[type]:
    """Return the Stack subclasses an annotation names (through unions and Optional)."""
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, Stack) else []
    return [t for arg in typing.get_args(annotation) for t in _stack_types(arg)]


@pytest.mark.parametrize("stack", [AnalyticsStack, StudioStack, InferenceStack, ImageStack])
def test_a_stack_takes_no_other_stack(stack: type[Stack]) -> None:
    hints = typing.get_type_hints(stack.__init__)
    taken = {name: _stack_types(hint) for name, hint in hints.items() if name != "scope"}
    assert not {name: types for name, types in taken.items() if types}


@pytest.mark.parametrize("bundle", [NetworkRefs, StorageRefs, AnalyticsRefs])
def test_bundles_are_frozen(bundle: type) -> None:
    assert dataclasses.is_dataclass(bundle) and bundle.__dataclass_params__.frozen
