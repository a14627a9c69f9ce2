"""Options every AWS-facing command shares, defined once, and the target they resolve to."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from mlhpc import contract
from mlhpc.aws.session import Aws
from mlhpc.aws.stacks import Deployment
from mlhpc.config import load_config, resolve_config_path

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


@dataclass
class Target:
    """The project and region the command works on, with its AWS session and stack outputs (lazy)."""

    config_path: Path
    project: str
    config_region: str
    region: str | None
    profile: str | None
    image_tag: str  # the one tag of the deployment (mlhpc.contract.image_tag): every backend runs it
    _aws: Aws | None = None
    _deployment: Deployment | None = field(default=None)

    @property
    def aws(self) -> Aws:
        """Return the session (checks region and credentials on first use)."""
        if self._aws is None:
            self._aws = Aws.connect(
                region=self.region, profile=self.profile, config_region=self.config_region
            )
        return self._aws

    @property
    def deployment(self) -> Deployment:
        """Return the StorageStack and HpcStack outputs (read on first use)."""
        if self._deployment is None:
            self._deployment = Deployment.load(self.aws, self.project)
        return self._deployment


def target(config: Path | None, region: str | None, profile: str | None) -> Target:
    """Resolve the config file (for the project name) and remember region and profile."""
    path = resolve_config_path(config)
    cfg = load_config(path)
    return Target(
        config_path=path,
        project=cfg.project.name,
        config_region=cfg.project.region,
        region=region,
        profile=profile,
        image_tag=contract.image_tag(cfg.hpc),
    )
