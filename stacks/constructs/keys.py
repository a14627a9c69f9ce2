"""Key-policy statements shared by every stack that encrypts log groups with its own KMS key."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

LOGS_KEY_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def allow_cloudwatch_logs(
    key: kms.IKey, *, resource: str = "log-group:*", sid: str = "AllowCloudWatchLogs"
) -> None:
    """Let CloudWatch Logs use a key for this account's log groups matching ``resource``.

    CloudWatch Logs encrypts on the log group's behalf; the encryption-context condition
    limits the grant to log groups (``arn:...:logs:REGION:ACCOUNT:<resource>``) of this account.
    """
    region = Stack.of(key).region
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
            actions=LOGS_KEY_ACTIONS,
            resources=["*"],  # in a key policy "*" means this key only
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{region}:{Aws.ACCOUNT_ID}:{resource}"
                }
            },
        )
    )
