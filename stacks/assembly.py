"""Build the CDK app for a config: the stacks, their wiring, tags and cdk-nag."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from mlhpc.config.model import Config
from stacks.network_stack import NetworkStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def feature_flags() -> dict[str, Any]:
    """Return the context of cdk.json (the feature flags), so tests build the app `cdk` builds."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return context


# Construct ids are a public contract: `cdk deploy HpcStack` and the CLI name them.
NETWORK = "NetworkStack"
# Every stack the app builds, in dependency order.
STACK_IDS: tuple[str, ...] = (NETWORK,)


@dataclass
class Assembly:
    """The app and the stacks it holds, by construct id."""

    app: App
    stacks: dict[str, Stack]


def build_app(
    config: Config,
    *,
    outdir: str | None = None,
    context: dict[str, Any] | None = None,
    nag: bool = True,
) -> Assembly:
    """Create every stack for a config; cdk-nag AwsSolutions checks run at synthesis."""
    app = App(outdir=outdir, context={**feature_flags(), **(context or {})})
    project = config.project
    env = Environment(account=project.account, region=project.region)

    network = NetworkStack(
        app,
        NETWORK,
        stack_name=f"{project.name}-network",
        description="mlhpc: VPC, subnets, NAT, VPC endpoints and flow logs",
        env=env,
        config=config.network,
    )

    for key, value in project.tags.items():
        Tags.of(app).add(key, value)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Assembly(app=app, stacks={NETWORK: network})
