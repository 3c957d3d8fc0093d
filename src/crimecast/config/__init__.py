"""Typed, frozen configuration loaded from the YAML files in ``config/``.

The bottom of crimecast's layers above :mod:`crimecast.errors`: nothing here imports
another crimecast package. :mod:`~crimecast.config.settings` holds :class:`Settings` and
its sections and loads them; :mod:`~crimecast.config.generator` holds the tunables of
the synthetic generator, one of those sections.
"""

from crimecast.config.generator import GeneratorConfig
from crimecast.config.settings import (
    CONFIG_FILES,
    DEFAULT_ENFORCEMENT_CODES,
    DEFAULT_ENFORCEMENT_PATTERNS,
    CleaningConfig,
    ComputeConfig,
    DataConfig,
    FeatureConfig,
    FrozenModel,
    ModelsConfig,
    ModelSpec,
    MonitoringConfig,
    PipelineConfig,
    ServingConfig,
    Settings,
    default_config_dir,
    load_settings,
    read_yaml,
)

__all__ = [
    "CONFIG_FILES",
    "DEFAULT_ENFORCEMENT_CODES",
    "DEFAULT_ENFORCEMENT_PATTERNS",
    "CleaningConfig",
    "ComputeConfig",
    "DataConfig",
    "FeatureConfig",
    "FrozenModel",
    "GeneratorConfig",
    "ModelSpec",
    "ModelsConfig",
    "MonitoringConfig",
    "PipelineConfig",
    "ServingConfig",
    "Settings",
    "default_config_dir",
    "load_settings",
    "read_yaml",
]
