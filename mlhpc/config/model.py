"""The configuration model: :class:`Config`, one frozen pydantic section per stack.

A YAML file is parsed into :class:`Config`. Every model forbids unknown keys and is
frozen, so a stack receives a section it can neither mistype nor mutate. Units are in
the field names (``retention_days``, ``size_gib``). Each section is defined, with the
rules that involve several of its fields (each with a stable code), in its domain's
module: :mod:`~mlhpc.config.project`, :mod:`~mlhpc.config.network`, :mod:`~mlhpc.config.storage`,
:mod:`~mlhpc.config.hpc`, :mod:`~mlhpc.config.image`, :mod:`~mlhpc.config.inference`,
:mod:`~mlhpc.config.analytics`, :mod:`~mlhpc.config.studio`. :mod:`~mlhpc.config.rules` lists the rules.
"""

from __future__ import annotations

from mlhpc.config.analytics import AnalyticsConfig
from mlhpc.config.common import Section
from mlhpc.config.hpc import HpcConfig
from mlhpc.config.image import ImageConfig
from mlhpc.config.inference import InferenceConfig
from mlhpc.config.network import NetworkConfig
from mlhpc.config.project import ProjectConfig
from mlhpc.config.storage import StorageConfig
from mlhpc.config.studio import StudioConfig


class Config(Section):
    """The whole deployment: one section per stack."""

    project: ProjectConfig = ProjectConfig()
    network: NetworkConfig = NetworkConfig()
    storage: StorageConfig = StorageConfig()
    hpc: HpcConfig = HpcConfig()
    image: ImageConfig = ImageConfig()
    inference: InferenceConfig = InferenceConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    studio: StudioConfig = StudioConfig()
