"""``features_meta.json``: what every column is, how it was computed, and the label."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import polars as pl

from crimecast.config import FeatureConfig
from crimecast.features.asof import PanelGrid
from crimecast.features.catalog import KEYS, SPECS, TARGETS, lookback_days
from crimecast.features.context import Horizon
from crimecast.features.timebins import TimeBinning

if TYPE_CHECKING:
    from crimecast.features.units import UnitSet

AS_OF_RULE = (
    "A row for unit u and bin [t, t+step) uses only events with occurred_at < t - (h-1)*step "
    "and, when delay_aware, reported_at < t - (h-1)*step (h = horizon). Trailing windows end "
    "at the issue time; settled statistics use only events known within settle_days of "
    "their bin and only bins at least settle_days old."
)


def positive_rate(frame: pl.DataFrame) -> float | None:
    """Share of labelled rows whose hotspot label is 1 (None without labels)."""
    if "target_hotspot" not in frame.columns:
        return None
    labelled = frame["target_hotspot"].drop_nulls().cast(pl.Float64)
    return float(labelled.sum()) / labelled.len() if labelled.len() else None


def _days(value: float) -> float | None:
    """Look-back days for JSON: None for all history."""
    return None if math.isinf(value) else round(value, 6)


def feature_columns(frame: pl.DataFrame) -> list[str]:
    """The model-input columns of a feature frame, in order."""
    return [c for c in frame.columns if c in SPECS]


def build_meta(
    frame: pl.DataFrame, config: FeatureConfig, units: UnitSet, grid: PanelGrid,
    binning: TimeBinning, events_used: int, events_in: int, *, z_window: int,
    weather_used: bool, seconds: float,
) -> dict[str, Any]:
    """Describe the panel: features (name, group, dtype, original name), targets, label."""
    labelled = (frame["target_hotspot"].drop_nulls() if "target_hotspot" in frame.columns
                else pl.Series([], dtype=pl.Int8))
    horizon = Horizon.of(config, z_window)
    features = [
        {
            "name": name,
            "group": SPECS[name].group,
            "dtype": str(frame.schema[name]),
            "description": SPECS[name].description,
            "original_name": SPECS[name].original,
            "window": SPECS[name].window,
            "lookback_days": _days(lookback_days(name, horizon)),
            "is_target": False,
        }
        for name in feature_columns(frame)
    ]
    targets = [
        {"name": name, "dtype": str(frame.schema[name]), "description": text, "is_target": True}
        for name, text in TARGETS.items()
        if name in frame.columns
    ]
    return {
        "keys": list(KEYS),
        "crime_types": list(config.crime_types) or "all",
        "features": features,
        "targets": targets,
        "label": {
            "rule": config.label,
            "z_threshold": config.z_threshold,
            "z_window_bins": z_window,
            "z_sd_floor": config.z_sd_floor,
            "topk_pct": config.topk_pct,
            "rows_labelled": int(labelled.len()),
            "positive_rate": positive_rate(frame),
        },
        "panel": {
            "rows": frame.height,
            "units": grid.n_units,
            "bins": grid.n_bins,
            "first_bin_start": str(binning.start_of(grid.first_bin)),
            "last_bin_start": str(binning.start_of(grid.last_bin)),
            "spatial_unit": units.kind,
            "cell_size_m": config.cell_size if units.kind == "grid" else None,
            "crs": units.crs.to_string(),
            "time_bin": config.time_bin,
            "shift_start_hour": config.shift_start_hour if config.time_bin in ("8h", "12h")
            else None,
        },
        "as_of": {
            "rule": AS_OF_RULE,
            "delay_aware": config.delay_aware,
            "horizon_bins": config.horizon,
            "settle_days": config.settle_days,
            "sepp": config.sepp,
            "weather": config.weather if weather_used else "none",
        },
        "events": {"in": events_in, "in_study_area": events_used,
                   "outside_study_area": events_in - events_used},
        "build_seconds": round(seconds, 3),
    }
