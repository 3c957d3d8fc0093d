"""The settings model: every section of crimecast's configuration and how it is loaded.

The three files mirror the original SageMaker design's ``config.yaml``,
``feature_config.yaml`` and ``model_config.yaml`` (ours is ``models.yaml``):

* ``config.yaml``: data, cleaning, generator and pipeline parameters;
* ``feature_config.yaml``: the panel, as-of rules and labels;
* ``models.yaml``: the estimators and their hyper-parameters.

Every value has a default here, so crimecast runs with no YAML at all; the YAML
files in the repository restate those defaults for users to edit. CLI flags
override values through :meth:`Settings.with_overrides`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crimecast.config.crime_types import CRIME_TYPES
from crimecast.config.generator import GeneratorConfig
from crimecast.errors import ConfigError

CONFIG_FILES: dict[str, str] = {
    "config.yaml": "main",
    "feature_config.yaml": "features",
    "models.yaml": "models",
}

# LAPD crime codes for offences that are mostly discovered by police activity
# rather than reported by victims. Forecasting them forecasts enforcement, so
# they are excluded by default (see the README's "Responsible use" section).
DEFAULT_ENFORCEMENT_CODES: tuple[str, ...] = (
    "231",  # assault with deadly weapon on police officer
    "437",  # resisting arrest
    "438",  # reckless driving
    "439",  # false police report
    "623",  # battery on police
    "762",  # lewd conduct
    "805",  # pimping
    "806",  # pandering
    "845",  # sex offender registrant out of compliance
    "865",  # drugs, to a minor
    "882",  # inciting a riot
    "884",  # failure to disperse
    "903",  # contempt of court
    "931",  # replica firearms
)
# Matched case-insensitively against the crime description of any source.
DEFAULT_ENFORCEMENT_PATTERNS: tuple[str, ...] = (
    "NARCOTIC",
    "DRUG",
    "LIQUOR LAW",
    "PROSTITUTION",
    "RESISTING ARREST",
    "WARRANT",
    "TRAFFIC STOP",
)


class FrozenModel(BaseModel):
    """Base for every config model: immutable and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class CleaningConfig(FrozenModel):
    """Rules applied by :func:`crimecast.data.clean.clean_incidents`."""

    min_date: dt.date = dt.date(2010, 1, 1)
    max_date: dt.date | None = Field(
        default=None, description="Latest allowed occurrence date; None means today."
    )
    exclude_enforcement_driven: bool = True
    enforcement_codes: tuple[str, ...] = DEFAULT_ENFORCEMENT_CODES
    enforcement_patterns: tuple[str, ...] = DEFAULT_ENFORCEMENT_PATTERNS
    study_area_buffer_m: float = Field(default=250.0, ge=0)
    check_study_area: bool = True

    @field_validator("enforcement_codes", mode="before")
    @classmethod
    def _codes_as_str(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value)
        return value


class DataConfig(FrozenModel):
    """Where incident data comes from."""

    schema_name: str = Field(default="auto", alias="schema")
    paths: tuple[str, ...] = ()
    encoding: str = "utf-8"

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class FeatureConfig(FrozenModel):
    """The panel, as-of semantics and labels (``feature_config.yaml``)."""

    spatial_unit: Literal["area", "district", "grid", "h3"] = "area"
    cell_size: float = Field(default=250.0, gt=0)
    time_bin: Literal["1h", "8h", "12h", "1d", "7d"] = "1h"
    shift_start_hour: int = Field(default=6, ge=0, le=23)
    delay_aware: bool = True
    horizon: int = Field(default=1, ge=1)
    weather: Literal["same_bin", "lagged", "none"] = "same_bin"
    label: Literal["zscore", "topk", "count"] = "zscore"
    # Forecast only these crime types (crimecast.config.crime_types); empty: all.
    crime_types: list[str] = Field(default_factory=list)

    @field_validator("crime_types", mode="before")
    @classmethod
    def _known_types(cls, value: Any) -> list[str]:
        names = [v.strip() for v in value.split(",")] if isinstance(value, str) else \
            list(value or [])
        unknown = [n for n in names if n not in CRIME_TYPES]
        if unknown:
            raise ValueError(f"must be among {', '.join(CRIME_TYPES)}; {unknown[0]!r} is not "
                             "one (pass e.g. --crime-types burglary,vehicle)")
        return sorted(set(names))
    z_threshold: float = 1.4
    z_window: int | None = Field(default=None, ge=2)
    z_sd_floor: float = Field(default=0.5, gt=0)
    topk_pct: float = Field(default=10.0, gt=0, le=100)
    settle_days: int = Field(default=14, ge=0)
    near_repeat_radius_m: float = Field(default=400.0, gt=0)
    near_repeat_hours: int = Field(default=48, ge=1)
    kde_bandwidth_m: float | None = Field(default=None, gt=0)
    sepp: dict[str, float] | None = Field(
        default=None, description="SEPP parameters (background_per_day, theta, omega_per_day, "
        "sigma_m); None = the defaults. `crimecast run` fits them on training events.")
    # Memory for one time block of the panel (per worker); the panel itself may be any size.
    block_memory_mb: float = Field(default=4096.0, gt=0)
    # `crimecast features`: the whole panel, or (large panels) the training design: every
    # row with an event plus a weighted sample of empty rows, built without the panel.
    rows: Literal["auto", "all", "sampled"] = "auto"
    whole_panel_rows: int = Field(default=20_000_000, ge=1)
    design_rows: int = Field(default=2_000_000, ge=1)
    # `crimecast run` on a streamed panel: every unit of a sample of validation bins.
    validation_rows: int = Field(default=1_000_000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _drop_retired(cls, value: Any) -> Any:
        # Models trained before panels were built in blocks carry max_panel_rows.
        if isinstance(value, dict) and "max_panel_rows" in value:
            value = {k: v for k, v in value.items() if k != "max_panel_rows"}
        return value


class ModelSpec(FrozenModel):
    """One named estimator and its hyper-parameters."""

    params: dict[str, Any] = Field(default_factory=dict)


class ModelsConfig(FrozenModel):
    """The estimator registry's configuration (``models.yaml``)."""

    default: str = "lightgbm"
    random_state: int = 42
    models: dict[str, ModelSpec] = Field(default_factory=dict)


class PipelineConfig(FrozenModel):
    """The original design's pipeline parameters plus ours."""

    model_type: str = "lightgbm"
    train_test_split_ratio: float = Field(default=0.8, gt=0, lt=1)
    use_smote: bool = False
    class_weight: bool = False
    f1_threshold: float = Field(default=0.18, ge=0, le=1)
    objective: Literal["auto", "binary", "poisson", "lambdarank"] = "auto"
    gate_metric: Literal["auto", "pai@1%", "pai@5%", "pai@10%", "hit_rate@1%", "hit_rate@5%",
                         "pei_star@1%", "pei_star@5%", "pr_auc", "roc_auc", "f1"] = "auto"
    register_best: bool = False
    # Above this many training rows, the learned model trains on every row with an event
    # plus a weighted sample of the empty ones (crimecast.models.sampling).
    max_train_rows: int = Field(default=5_000_000, ge=1000)
    runs_dir: str = "runs"
    tracking_uri: str | None = None


class ServingConfig(FrozenModel):
    """``crimecast serve`` / ``predict``: binding, auth and request limits."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    model: str = "models:/crimecast-hotspots@champion"
    token_env: str = "CRIMECAST_TOKEN"
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_rows: int = Field(default=10_000, ge=1)
    # SageMaker ends an invocation after 60 s; answer first, with a clear 503.
    request_timeout_s: float = Field(default=55.0, gt=0, le=60)
    max_top: int = Field(default=1000, ge=1)
    max_horizon_days: int = Field(default=7, ge=1, le=28)
    cache_windows: int = Field(default=64, ge=1)
    # A window that starts this long after the last known event forecasts from stale data:
    # refused (409 / exit 2) unless allow_stale is asked for. 14 days is the settling time.
    stale_after_days: float = Field(default=14.0, ge=0)
    # The map's background: a tile URL template with {z}, {x} and {y} (an agency may point
    # it at its own tile server), or "none" for fully offline use (outlines, tracts and
    # names still show). OpenStreetMap's standard tiles need their attribution shown.
    tiles: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tiles_attribution: str = "© OpenStreetMap contributors"
    # Every forecast served (/hotspots, /invocations, predict, brief) is appended to Parquet
    # parts in this folder: a path (a relative one is under the runs folder) or "none".
    forecast_log: str = "forecast_log"
    forecast_log_max_bytes: int = Field(default=1024**3, ge=1024 * 1024)  # oldest parts go
    # How often the server writes a part (rows wait in memory until then).
    forecast_log_flush_seconds: float = Field(default=5.0, gt=0, le=300)
    # With a challenger (serve --challenger): the share of requests it answers (the
    # champion then scores in shadow); 0 = shadow only. The split's random seed.
    challenger_share: float = Field(default=0.0, ge=0.0, le=1.0)
    challenger_seed: int = 0

    @field_validator("tiles")
    @classmethod
    def _tile_template(cls, value: str) -> str:
        if value == "none":
            return value
        if not value.startswith(("https://", "http://", "/")) or not all(
                f"{{{k}}}" in value for k in "zxy"):
            raise ValueError("must be 'none' or a tile URL template with {z}, {x} and {y}, "
                             "e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png")
        return value

    @field_validator("forecast_log")
    @classmethod
    def _log_folder(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a folder or 'none'")
        return value.strip()


class ComputeConfig(FrozenModel):
    """Where independent blocks run (``--executor``): local, dask or tcp://HOST:PORT."""

    executor: str = "local"
    workers: int | None = Field(default=None, ge=1)  # None: one per CPU core (local)

    @field_validator("executor")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ("local", "serial", "dask") and not value.startswith("tcp://"):
            raise ValueError("must be local, dask or tcp://HOST:PORT")
        return value


class MonitoringConfig(FrozenModel):
    """``crimecast monitor``: the recent window and the thresholds of its decision.

    The decision is ``retrain`` when any rule fires on the last ``window_weeks`` weeks."""

    window_weeks: int = Field(default=2, ge=1, le=26)
    # the reference: the last weeks of the training data
    reference_weeks: int = Field(default=8, ge=2, le=104)
    # realised PAI@1% below (1 - pai_drop) x the card's test PAI@1%
    pai_drop: float = Field(default=0.3, gt=0, lt=1)
    # the best naive forecaster's realised PAI@1% above (1 + naive_margin) x the champion's
    naive_margin: float = Field(default=0.1, ge=0)
    # any feature's PSI above this; null: reported, not a rule (see monitoring in config.yaml)
    psi_feature: float | None = Field(default=None, gt=0)
    psi_mix: float = Field(default=0.1, gt=0)  # PSI of the area or crime-category mix
    volume_change: float = Field(default=0.3, gt=0)  # weekly events off the reference by this share
    delay_change_days: float = Field(default=2.0, gt=0)  # median reporting delay moved by this
    estimated_change: float = Field(default=0.1, gt=0)  # share of estimated times moved by this
    min_events: int = Field(default=200, ge=1)  # fewer events in the window: no decision on mix


class Settings(FrozenModel):
    """All configuration, as one typed object passed through crimecast."""

    data: DataConfig = DataConfig()
    cleaning: CleaningConfig = CleaningConfig()
    generator: GeneratorConfig = GeneratorConfig()
    pipeline: PipelineConfig = PipelineConfig()
    features: FeatureConfig = FeatureConfig()
    models: ModelsConfig = ModelsConfig()
    serving: ServingConfig = ServingConfig()
    compute: ComputeConfig = ComputeConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    def with_overrides(self, section: str, **values: Any) -> Settings:
        """Return a copy with ``values`` set on ``section``; None values are ignored.

        This is how CLI flags override YAML: the flags that were not given are None.
        """
        given = {k: v for k, v in values.items() if v is not None}
        if not given:
            return self
        current = getattr(self, section)
        merged = {**current.model_dump(by_alias=True), **_aliased(current, given)}
        try:
            updated = type(current).model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe_validation(exc, f"option for {section}")) from exc
        return self.model_copy(update={section: updated})


def _aliased(model: BaseModel, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        field = type(model).model_fields.get(key)
        out[field.alias if field is not None and field.alias else key] = value
    return out


def _describe_validation(exc: ValidationError, where: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}; got {err.get('input')!r}")
    return f"invalid {where}: " + "; ".join(parts) + ". Fix the value and retry."


def default_config_dir() -> Path | None:
    """Return ``./config`` when it holds crimecast YAML files, else None."""
    candidate = Path.cwd() / "config"
    if any((candidate / name).is_file() for name in CONFIG_FILES):
        return candidate
    return None


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, raising :class:`ConfigError` with the file name on failure."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}.") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file '{path}' is not valid YAML: {exc}. Fix the syntax."
        ) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file '{path}' must hold a mapping at the top level; "
            f"got {type(loaded).__name__}."
        )
    return loaded


def load_settings(config_dir: Path | None = None) -> Settings:
    """Load :class:`Settings` from ``config_dir`` (default: ``./config`` if present).

    Missing files fall back to the defaults defined in this module.
    """
    directory = config_dir if config_dir is not None else default_config_dir()
    if directory is None:
        return Settings()
    if not directory.is_dir():
        raise ConfigError(
            f"config directory '{directory}' does not exist. Pass --config with a folder "
            "holding config.yaml, feature_config.yaml and models.yaml."
        )
    merged: dict[str, Any] = {}
    for name, role in CONFIG_FILES.items():
        path = directory / name
        if not path.is_file():
            continue
        content = read_yaml(path)
        if role == "main":
            merged.update(content)
        else:
            merged[role] = content
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc, f"configuration in '{directory}'")) from exc
