"""Map a retention period in days (config) to CDK's RetentionDays enum."""

from aws_cdk import aws_logs as logs

from mlhpc.config.common import LOG_RETENTION_DAYS

# jsii enums carry names, not numbers; both lists run in the same (ascending) order.
_BY_DAYS: dict[int, logs.RetentionDays] = dict(
    zip(
        LOG_RETENTION_DAYS,
        [m for m in logs.RetentionDays if m is not logs.RetentionDays.INFINITE],
        strict=True,
    )
)


def retention(days: int) -> logs.RetentionDays:
    """Return the RetentionDays member for a number of days the config model accepted."""
    return _BY_DAYS[days]
