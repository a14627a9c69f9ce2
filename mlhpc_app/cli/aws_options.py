"""Options every AWS-facing command shares, defined once (the target they resolve to: mlhpc_app.aws.target)."""

from __future__ import annotations

import typer

from mlhpc_app.aws.target import Target, target

__all__ = [
    "CONFIG_OPTION",
    "POLL_OPTION",
    "PROFILE_OPTION",
    "REGION_OPTION",
    "SETS_OPTION",
    "Target",
    "target",
]

CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    help="Config file naming the project (default: $MLHPC_CONFIG or config/default.yaml).",
)
REGION_OPTION = typer.Option(
    None, "--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)."
)
PROFILE_OPTION = typer.Option(None, "--profile", help="AWS profile to use.")
POLL_OPTION = typer.Option(10.0, "--poll-s", min=0.0, help="Seconds between status polls while following.")
SETS_OPTION = typer.Option([], "--set", "-s", help="Workload argument as key=value (repeatable).")
