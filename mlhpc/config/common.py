"""What every config domain shares: the :class:`Section` base, region names, log retention, removal policy.

Each domain module (:mod:`~mlhpc.config.project`, :mod:`~mlhpc.config.network`, ...) builds on this one
and on nothing else of :mod:`mlhpc.config` but :mod:`~mlhpc.config.issues`, so a domain can be read
and changed on its own.
"""

from __future__ import annotations

import bisect
import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from mlhpc.errors import echo

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


class Section(BaseModel):
    """Base for every config section: frozen, no unknown keys, validated defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, use_enum_values=False)


def _region(value: str) -> str:
    if not _REGION_RE.match(value):
        raise ValueError(
            f"{echo(value)} is not an AWS region name; expected a name such as 'us-east-1' or 'eu-west-2'"
        )
    return value


def _retention_days(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        pos = bisect.bisect(LOG_RETENTION_DAYS, value)
        near = [
            d
            for d in (
                LOG_RETENTION_DAYS[max(pos - 1, 0)],
                LOG_RETENTION_DAYS[min(pos, len(LOG_RETENTION_DAYS) - 1)],
            )
        ]
        nearest = " or ".join(str(d) for d in dict.fromkeys(near))
        raise ValueError(
            f"CloudWatch Logs cannot keep logs for {value} days; use {nearest} "
            f"(allowed: {', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    return value


Region = Annotated[str, AfterValidator(_region)]
RetentionDays = Annotated[int, AfterValidator(_retention_days)]


class RemovalPolicyName(StrEnum):
    """What CloudFormation does with stateful data when its stack is deleted."""

    RETAIN = "retain"
    DESTROY = "destroy"


# The ECS GPU-optimized AL2023 AMI: what Batch GPU nodes boot by default (ECS agent, NVIDIA driver,
# container toolkit), and so the default parent of the GPU image (hpc and image both use it).
ECS_GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
