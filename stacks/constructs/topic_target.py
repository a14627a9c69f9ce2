"""An EventBridge rule publishing to a KMS-encrypted SNS topic, allowed for that one rule only.

CDK's ``aws_events_targets.SnsTopic`` grants ``events.amazonaws.com`` ``sns:Publish`` on the topic
and ``kms:Decrypt``/``kms:GenerateDataKey*`` on its key with no condition, so any rule of any
account could publish through them (the confused-deputy case the EventBridge and SNS guides warn
about). :class:`TopicTarget` only names the topic; :func:`allow_rule_to_publish` writes both
grants with ``aws:SourceAccount`` and ``aws:SourceArn`` (the rule's ARN) conditions and a sid.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Aws
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs

EVENTS = "events.amazonaws.com"


@jsii.implements(events.IRuleTarget)
class TopicTarget:
    """A rule target that is the topic's ARN and nothing else: no grant (see :func:`allow_rule_to_publish`)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        """Return the target: the topic's ARN (EventBridge uses the topic policy, never a role, for SNS)."""
        return events.RuleTargetConfig(arn=self._topic.topic_arn)


def source_conditions(rule_arn: str) -> dict[str, Any]:
    """Return the conditions that tie a grant to EventBridge calls made for ``rule_arn`` in this account."""
    return {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnEquals": {"aws:SourceArn": rule_arn}}


def allow_rule_to_publish(*, topic: sns.Topic, key: kms.IKey, rule_arn: str) -> None:
    """Let EventBridge publish to ``topic`` (and use its ``key``) for the rule ``rule_arn`` only.

    ``rule_arn`` is a string built from the rule's name, not the rule's ``Ref``: the key policy
    lives in the key, which the topic and so the rule depend on, and a reference would be a cycle.
    """
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowEventBridgeRuleToPublish",
            principals=[iam.ServicePrincipal(EVENTS)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=source_conditions(rule_arn),
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowEventBridgeRuleToPublishEncrypted",
            principals=[iam.ServicePrincipal(EVENTS)],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy "*" means this key only
            conditions=source_conditions(rule_arn),
        )
    )
