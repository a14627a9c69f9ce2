"""Acknowledge cdk-nag findings next to the construct they concern, one reason each."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding on a construct (and its children).

    ``rule`` is the id cdk-nag prints, without the pack prefix, e.g. ``"AwsSolutions-IAM4"``
    or ``"AwsSolutions-IAM5[Resource::*]"``. The reason must convince a security reviewer.
    """
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))
