"""Typed, frozen configuration loaded from the YAML files in ``config/``.

The bottom of crimecast's layers above :mod:`crimecast.errors`: nothing here imports
another crimecast package. :mod:`~crimecast.config.settings` holds :class:`Settings` and
its sections and loads them; :mod:`~crimecast.config.generator` holds the tunables of
the synthetic generator, one of those sections.

The names below are imported on first use (PEP 562), so that importing a light module
of this package (:mod:`~crimecast.config.crime_types`, which the CLI's ``--help`` reads)
does not load pydantic and YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives.
_HOME = {name: "crimecast.config.settings" for name in __all__}
_HOME["GeneratorConfig"] = "crimecast.config.generator"


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
