"""The ``crimecast features`` job: clean incidents, build units and the panel, write it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from crimecast.config import CleaningConfig, FeatureConfig
from crimecast.data.clean import CleanResult
from crimecast.data.output import write_json, write_parquet
from crimecast.data.prepare import prepare_incidents
from crimecast.data.weather import load_daily_weather
from crimecast.executor import Executor
from crimecast.features.build import FeatureSet, build_features
from crimecast.features.units import UnitSet, build_units

logger = logging.getLogger(__name__)

LA_CENTRE = (34.05, -118.25)
LA_RADIUS_KM = 80.0


@dataclass(frozen=True)
class FeatureJobResult:
    """What the features job produced."""

    cleaned: CleanResult
    units: UnitSet
    features: FeatureSet


def history_mask(clean: pl.DataFrame, train_share: float) -> np.ndarray:
    """Events in the first ``train_share`` of the time range: the training history.

    Units chosen from events (a grid without boundary polygons) use only these,
    so that events in the evaluation period cannot decide which places exist.
    """
    occurred = clean["occurred_at"]
    first, last = occurred.min(), occurred.max()
    assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
    cutoff = first + (last - first) * train_share
    return (occurred < cutoff).to_numpy()


def weather_for(clean: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame | None:
    """The embedded LA daily weather when the data is in Los Angeles, else None."""
    if config.weather == "none" or clean.height == 0:
        return None
    lat = float(clean["lat"].median())  # type: ignore[arg-type]
    lon = float(clean["lon"].median())  # type: ignore[arg-type]
    km = 111.0 * np.hypot(lat - LA_CENTRE[0], (lon - LA_CENTRE[1]) * np.cos(np.radians(lat)))
    if km > LA_RADIUS_KM:
        logger.warning("data centre is %.0f km from Los Angeles: no weather features "
                       "(only LA weather is embedded)", km)
        return None
    return load_daily_weather()


def build_units_for(clean: pl.DataFrame, result: CleanResult, config: FeatureConfig,
                    train_share: float = 0.8) -> UnitSet:
    """Build the spatial units for ``config.spatial_unit`` from cleaned incidents."""
    return build_units(
        config.spatial_unit,
        clean["lat"].to_numpy(),
        clean["lon"].to_numpy(),
        area_id=clean["area_id"].to_numpy(),
        district_id=clean["district_id"].to_numpy(),
        cell_size=config.cell_size,
        boundary=result.areas,
        history_mask=history_mask(clean, train_share),
    )


def run_features(
    paths: Sequence[str], schema: str, cleaning: CleaningConfig, config: FeatureConfig,
    encoding: str = "utf-8", today: dt.date | None = None, train_share: float = 0.8,
    executor: Executor | None = None,
) -> FeatureJobResult:
    """Clean the files and build the feature panel (no writing); its time blocks run
    through ``executor``."""
    cleaned = prepare_incidents(paths, schema, cleaning, encoding=encoding, today=today)
    units = build_units_for(cleaned.clean, cleaned, config, train_share)
    features = build_features(cleaned.clean, units, config,
                              weather=weather_for(cleaned.clean, config), executor=executor)
    return FeatureJobResult(cleaned=cleaned, units=units, features=features)


def write_features(features: FeatureSet, out_dir: Path) -> dict[str, Path]:
    """Write ``features.parquet`` and ``features_meta.json``."""
    paths = {"features": out_dir / "features.parquet", "meta": out_dir / "features_meta.json"}
    write_parquet(features.frame.drop("_u", "_b"), paths["features"])
    write_json(features.meta, paths["meta"])
    return paths
