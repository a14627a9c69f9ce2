"""Configuration: YAML files validated into frozen pydantic models."""

from mlhpc.config.issues import ConfigError, ConfigIssue, Level
from mlhpc.config.loader import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    load_config,
    load_config_with_warnings,
    parse_config,
    resolve_config_path,
)
from mlhpc.config.model import Config
from mlhpc.config.network import NetworkConfig
from mlhpc.config.project import ProjectConfig

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Level",
    "NetworkConfig",
    "ProjectConfig",
    "load_config",
    "load_config_with_warnings",
    "parse_config",
    "resolve_config_path",
]
