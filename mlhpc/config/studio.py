"""The studio domain: a VPC-only SageMaker Studio domain, and the STU rules.

STU001 reads ``analytics.enabled`` and STU002 ``network.interface_endpoints`` / ``nat_gateways``: they
are studio rules because they state what a Studio domain needs of the other sections.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from mlhpc.config.common import Section
from mlhpc.config.issues import ConfigIssue, Level

if TYPE_CHECKING:
    from mlhpc.config.model import Config


class StudioInstanceType(StrEnum):
    """Small JupyterLab instance types for the default space settings."""

    T3_MEDIUM = "ml.t3.medium"
    T3_LARGE = "ml.t3.large"
    M5_LARGE = "ml.m5.large"
    M5_XLARGE = "ml.m5.xlarge"
    M6I_LARGE = "ml.m6i.large"
    M6I_XLARGE = "ml.m6i.xlarge"


class StudioConfig(Section):
    """StudioStack: a VPC-only SageMaker Studio domain that reaches EMR privately."""

    enabled: bool = Field(
        default=False, description="A Studio domain (EFS, apps) costs money; off by default."
    )
    user_profiles: tuple[Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")], ...] = Field(
        default=("studio-user",), min_length=1
    )
    default_instance_type: StudioInstanceType = StudioInstanceType.T3_MEDIUM
    idle_timeout_minutes: int = Field(default=60, ge=60, le=525_600, description="JupyterLab idle shutdown.")
    ebs_volume_gib: int = Field(default=5, ge=5, le=16384, description="Default space storage per user.")


# --- rules ------------------------------------------------------------------------------------


STUDIO_ENDPOINTS = ("sagemaker.api", "sagemaker.runtime", "sts", "logs")


def studio_network(config: Config) -> Iterator[ConfigIssue]:
    """STU001/STU002: a VPC-only domain reaches SageMaker through endpoints (or NAT) and EMR if enabled."""
    if not config.studio.enabled:
        return
    if not config.analytics.enabled:
        yield ConfigIssue(
            code="STU001",
            level=Level.WARNING,
            path="studio.enabled",
            value=True,
            message="Studio is enabled without analytics: the domain has no EMR cluster to query",
            fix="set analytics.enabled: true to give Studio Trino/Hive, or keep it for notebooks only",
        )
    have = {e.value for e in config.network.interface_endpoints}
    missing = [e for e in STUDIO_ENDPOINTS if e not in have]
    if missing:
        no_nat = config.network.nat_gateways == 0
        yield ConfigIssue(
            code="STU002",
            level=Level.ERROR if no_nat else Level.INFO,
            path="network.interface_endpoints",
            value=missing,
            message=f"a VPC-only Studio domain calls {', '.join(missing)}; without "
            + (
                "a NAT gateway it cannot reach them"
                if no_nat
                else "their endpoints that traffic goes through NAT"
            ),
            fix=f"add {', '.join(missing)} to network.interface_endpoints",
        )
