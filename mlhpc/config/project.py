"""The project domain: who owns the deployment and where it goes.

The project section has no cross-field rules of its own; rules elsewhere read ``project.region``
(NET003) and ``project.name`` (IMG005).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from mlhpc.config.common import Region, Section
from mlhpc.errors import echo


def _project_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,19}", value):
        suggestion = re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-")[:20] or "mlhpc"
        if not suggestion[0].isalpha():
            suggestion = f"p-{suggestion}"[:20]
        raise ValueError(
            f"{echo(value)} cannot prefix stack and resource names; use 2-20 lowercase letters, digits or '-', "
            f"starting with a letter, e.g. '{suggestion}'"
        )
    return value


def _account(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise ValueError(
            f"{echo(value)} is not a 12-digit AWS account id; write all 12 digits in quotes, e.g. '123456789012', "
            "or leave account unset for account-agnostic templates"
        )
    return value


ProjectName = Annotated[str, AfterValidator(_project_name)]


def _tag_key(value: str) -> str:
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key {echo(value)} uses the reserved 'aws:' prefix; choose a key without it")
    return value


TagKey = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[\w .:/=+\-@]+$"), AfterValidator(_tag_key)
]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[\w .:/=+\-@]*$")]


class ProjectConfig(Section):
    """Who owns the deployment and where it goes."""

    name: ProjectName = Field(default="mlhpc", description="Prefix of stack and resource names.")
    region: Region = "us-east-1"
    account: Annotated[str, AfterValidator(_account)] | None = Field(
        default=None, description="12-digit account id; unset: account-agnostic templates."
    )
    tags: dict[TagKey, TagValue] = Field(default_factory=lambda: {"Project": "mlhpc"})
