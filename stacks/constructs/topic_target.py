"""Services publishing to a KMS-encrypted SNS topic: an EventBridge rule, CloudWatch alarms; each allowed narrowly.

CDK's ``aws_events_targets.SnsTopic`` grants ``events.amazonaws.com`` ``sns:Publish`` on the topic
and ``kms:Decrypt``/``kms:GenerateDataKey*`` on its key with no condition, so any rule of any
account could publish through them (the confused-deputy case the EventBridge and SNS guides warn
about). :class:`TopicTarget` only names the topic; :func:`allow_rule_to_publish` and
:func:`allow_alarms_to_publish` write the grants, each with a sid:

* on the topic, ``sns:Publish`` tied to the caller with ``aws:SourceAccount`` and ``aws:SourceArn``
  (the rule's ARN; this account's alarms), the conditions the SNS guide documents for both services;
* on the key, the use of the key for this topic's messages only: the encryption context SNS puts on
  every data key of a topic, ``aws:sns:topicArn``. The source keys are not used there: a service
  publishing to an encrypted topic reaches KMS through SNS, and such a request is not documented to
  carry them (a condition on an absent key denies, and every alert would be dropped without a trace).
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs

EVENTS = "events.amazonaws.com"
CLOUDWATCH = "cloudwatch.amazonaws.com"


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


def topic_context(topic_arn: str) -> dict[str, Any]:
    """Return the key-policy condition that limits a grant to the data keys of one topic's messages."""
    return {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}}


def _allow_key_for_topic(key: kms.IKey, *, sid: str, service: str, topic_arn: str) -> None:
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(service)],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy "*" means this key only
            conditions=topic_context(topic_arn),
        )
    )


def allow_rule_to_publish(*, topic: sns.Topic, key: kms.IKey, rule_arn: str, topic_arn: str) -> None:
    """Let EventBridge publish to ``topic`` for the rule ``rule_arn`` only, and use ``key`` for its messages.

    ``rule_arn`` and ``topic_arn`` are strings built from fixed names, not ``Ref`` s: the key policy
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
    _allow_key_for_topic(
        key, sid="AllowEventBridgeRuleToPublishEncrypted", service=EVENTS, topic_arn=topic_arn
    )


def allow_alarms_to_publish(*, topic: sns.Topic, key: kms.IKey, topic_arn: str) -> None:
    """Let this account's CloudWatch alarms publish to ``topic`` and use ``key`` for its messages.

    Without the key grant CloudWatch cannot publish to a KMS-encrypted topic at all: the alarm goes
    to ALARM and nobody hears of it.
    """
    alarms = Stack.of(topic).format_arn(
        service="cloudwatch", resource="alarm", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
    )
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowAlarmsToPublish",
            principals=[iam.ServicePrincipal(CLOUDWATCH)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": alarms},
            },
        )
    )
    _allow_key_for_topic(key, sid="AllowAlarmsToPublishEncrypted", service=CLOUDWATCH, topic_arn=topic_arn)


def topic_arn_of(scope: Stack, name: str) -> str:
    """Return the ARN of a topic of ``scope`` named ``name`` (a string: see :func:`allow_rule_to_publish`)."""
    return scope.format_arn(service="sns", resource=name, arn_format=ArnFormat.NO_RESOURCE_NAME)
