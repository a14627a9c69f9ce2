"""Where an AWS-facing command works: the project of a config, a region and profile, and (lazily) the session and stack outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlhpc import contract
from mlhpc.config import load_config, resolve_config_path
from mlhpc_app.aws.session import Aws
from mlhpc_app.aws.stacks import Deployment


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
