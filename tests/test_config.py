"""Configuration: the shipped YAML restates the defaults; overrides and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from crimecast.config import Settings, load_settings
from crimecast.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_yaml_equals_the_built_in_defaults() -> None:
    loaded = load_settings(REPO / "config")
    defaults = Settings()
    for section in ("data", "cleaning", "generator", "pipeline", "features"):
        assert getattr(loaded, section) == getattr(defaults, section), section


def test_cli_style_overrides_replace_only_given_values() -> None:
    settings = Settings().with_overrides("features", time_bin="1d", cell_size=None)
    assert settings.features.time_bin == "1d"
    assert settings.features.cell_size == Settings().features.cell_size


def test_invalid_override_names_the_field_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        Settings().with_overrides("features", time_bin="2h")
    assert str(err.value).startswith("invalid option for features: time_bin: Input should be ")
    assert str(err.value).endswith("; got '2h'. Fix the value and retry.")


def test_unknown_yaml_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "feature_config.yaml").write_text("time_bins: 1h\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(err.value) == (
        f"invalid configuration in '{tmp_path}': features.time_bins: Extra inputs are not "
        "permitted; got '1h'. Fix the value and retry."
    )


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("cleaning: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(err.value).startswith(f"config file '{tmp_path / 'config.yaml'}' is not valid YAML")
