"""Build the dense (unit × bin) panel with every as-of feature and the labels.

Row ``(u, t)`` describes bin ``[t, t+Δ)``. Its as-of features use only events
known before the forecast is issued: with horizon ``h`` that is before
``t - (h-1)Δ`` (``h = 1``: before ``t``). They are computed at the issue row
``a = t - (h-1)`` and shifted onto ``t``. Calendar and same-bin weather describe
``t`` itself. Targets use the bin's final count.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig
from crimecast.errors import ConfigError, DataError
from crimecast.features.asof import (
    PanelGrid,
    day_window_counts,
    event_table,
    lag_counts,
    occurrence_counts,
    shift_rows,
    trailing_stats,
    window_counts,
)
from crimecast.features.calendar import calendar_features, holiday_dates, join_weather
from crimecast.features.daily import daily_history
from crimecast.features.labels import topk_label, zscore_label
from crimecast.features.meta import build_meta
from crimecast.features.timebins import TimeBinning
from crimecast.features.units import UnitSet

logger = logging.getLogger(__name__)

UNIT = "_u"
BIN = "_b"
AUTO_Z_WINDOW = {"1h": 168, "8h": 42, "12h": 28, "1d": 28, "7d": 8}
AUTO_DAILY_WINDOW = 28


@dataclass(frozen=True)
class FeatureSet:
    """The panel frame and its metadata (``features_meta.json``)."""

    frame: pl.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _per_1000(counts: np.ndarray, population: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (counts * (1000.0 / population[:, None])).astype(np.float32)
    rate[~np.isfinite(rate)] = np.nan
    return rate


def _range(
    events: pl.DataFrame, binning: TimeBinning, start: dt.datetime | None,
    end: dt.datetime | None,
) -> tuple[int, int]:
    if events.height == 0 and (start is None or end is None):
        raise DataError("no events fall inside the study area; nothing to build a panel from.")
    first = binning.index_of(start) if start is not None else int(events["occ"].min())  # type: ignore[arg-type]
    last = binning.index_of(end) if end is not None else int(events["occ"].max())  # type: ignore[arg-type]
    if last < first:
        raise ConfigError(
            f"the panel end must not be before its start; got start={start}, end={end}. "
            "Pass --end after --start."
        )
    return first, last


def _asof_matrices(
    events: pl.DataFrame, grid: PanelGrid, binning: TimeBinning, units: UnitSet,
    config: FeatureConfig,
) -> dict[str, np.ndarray]:
    """Every as-of count feature as a (units × bins) matrix, at issue rows."""
    hours = binning.bins_for
    pop = units.population
    cache: dict[int, np.ndarray] = {}

    def trailing(bins: int) -> np.ndarray:
        # Several features share a window (e.g. 28 days, or 1 day = 1 bin for daily bins).
        if bins not in cache:
            cache[bins] = window_counts(events, grid, bins)
        return cache[bins]

    def days(n: float) -> int:
        return hours(dt.timedelta(days=n))

    out: dict[str, np.ndarray] = {}
    out["count_last_bin"] = trailing(1)
    out["rate_last_bin"] = _per_1000(trailing(1), pop)
    out["count_last_3_mean"] = trailing(3) / 3
    out["rate_last_3_mean"] = _per_1000(trailing(3) / 3, pop)
    out["count_last_6_sum"] = trailing(6)
    out["rate_last_6_sum"] = _per_1000(trailing(6), pop)
    if binning.hours < 24:
        out["rate_same_bin_yesterday"] = _per_1000(lag_counts(events, grid, days(1)), pop)
    if binning.hours < 168:
        out["count_same_bin_last_week"] = lag_counts(events, grid, days(7))
    for name, window, per in (
        ("crime_rate_hourly", 7, 7 * 24), ("crime_rate_daily", 28, 28),
        ("crime_rate_monthly", 90, 3), ("crime_rate_yearly", 365, 1),
    ):
        out[name] = _per_1000(trailing(days(window)) / per, pop)
    # Inputs of the naive baselines (prior counts, historical average, KDE), as of issue time.
    out["count_last_28d"] = trailing(days(28))
    if binning.hours < 168:
        same_slot = sum(lag_counts(events, grid, k * days(7)) for k in range(1, 5))
    else:
        same_slot = trailing(4)
    out["hist_avg_same_slot"] = np.asarray(same_slot) / 4
    kernel = units.kernel_weights(_bandwidth(units, config))
    out["kde_intensity_28d"] = np.asarray(kernel @ trailing(days(28)))
    out["neighbour_count_last_day"] = np.asarray(units.adjacency @ trailing(days(1)))
    out["kde_intensity_7d"] = np.asarray(kernel @ trailing(days(7)))
    lat, lon = events["lat"].to_numpy(), events["lon"].to_numpy()
    event_idx, unit_idx = units.within(lat, lon, config.near_repeat_radius_m)
    near = events[event_idx].with_columns(_u=pl.Series(unit_idx, dtype=pl.Int64))
    out["near_repeat_48h_400m"] = window_counts(
        near, grid, hours(dt.timedelta(hours=config.near_repeat_hours)))
    month = days(30)
    total = trailing(month)
    for category in ("violent", "property"):
        counts = window_counts(events.filter(pl.col("category") == category), grid, month)
        out[f"{category}_count_30d"] = counts
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{category}_share_30d"] = np.where(total > 0, counts / total, 0.0)
    out["_yesterday_known"] = day_window_counts(events, grid, binning)
    settle = days(config.settle_days)
    out["_settled"] = occurrence_counts(events, grid, max_delay=1 + settle)
    return {k: v.astype(np.float32, copy=False) for k, v in out.items()}


def _bandwidth(units: UnitSet, config: FeatureConfig) -> float:
    if config.kde_bandwidth_m is not None:
        return config.kde_bandwidth_m
    if units.kind == "grid":
        return 2 * config.cell_size
    if len(units) < 2:
        return 1000.0
    xy = units.centroids
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    return float(np.median(dist.min(axis=1)))


def build_features(
    clean: pl.DataFrame,
    units: UnitSet,
    config: FeatureConfig,
    weather: pl.DataFrame | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> FeatureSet:
    """Build the feature panel for ``clean`` incidents over ``units``.

    ``start``/``end`` fix the panel's first and last bins (default: the bins of
    the first and last event). ``weather`` is a daily frame (``date, tavg_c,
    tmax_c, wind_ms, prcp_mm``) or None to leave weather out.
    """
    began = time.perf_counter()
    binning = TimeBinning(config.time_bin, config.shift_start_hour)
    area_id = clean["area_id"].to_numpy() if "area_id" in clean.columns else None
    district = clean["district_id"].to_numpy() if "district_id" in clean.columns else None
    unit_index = units.assign(clean["lat"].to_numpy(), clean["lon"].to_numpy(),
                              area_id=area_id, district_id=district)
    events = event_table(clean, unit_index, binning, config.delay_aware)
    first, last = _range(events, binning, start, end)
    grid = PanelGrid(n_units=len(units), first_bin=first, n_bins=last - first + 1)
    if grid.n_units * grid.n_bins > config.max_panel_rows:
        raise ConfigError(
            f"the panel would have {grid.n_units * grid.n_bins:,} rows ({grid.n_units:,} units "
            f"x {grid.n_bins:,} bins), more than max_panel_rows={config.max_panel_rows:,}. "
            "Pass a larger --cell-size or a longer --time-bin."
        )
    z_window = config.z_window or AUTO_Z_WINDOW[config.time_bin]
    matrices = _asof_matrices(events, grid, binning, units, config)
    matrices.update(_history_flags(clean, unit_index, matrices, grid, binning, config, z_window))
    shift = config.horizon - 1
    columns: dict[str, np.ndarray] = {}
    for name in list(matrices):
        columns[name] = shift_rows(matrices.pop(name), shift).ravel()
    counts = occurrence_counts(events, grid)
    columns.update(_targets(counts, config, z_window, first))
    frame = _assemble(columns, grid, binning, units, config, weather, shift)
    meta = build_meta(frame, config, units, grid, binning, events.height, clean.height,
                      z_window=z_window, weather_used=weather is not None,
                      seconds=time.perf_counter() - began)
    logger.info("built %d panel rows x %d features in %.1f s", frame.height,
                len(meta["features"]), time.perf_counter() - began)
    return FeatureSet(frame=frame, meta=meta)


def _history_flags(
    clean: pl.DataFrame, unit_index: np.ndarray, matrices: dict[str, np.ndarray],
    grid: PanelGrid, binning: TimeBinning, config: FeatureConfig, z_window: int,
) -> dict[str, np.ndarray]:
    """The three was-hotspot lags, judged at issue time from settled history."""
    settle = binning.bins_for(dt.timedelta(days=config.settle_days))
    settled = matrices.pop("_settled")
    mean, sd = trailing_stats(settled, z_window, lag=1 + settle)
    threshold = mean + config.z_threshold * np.maximum(sd, config.z_sd_floor)
    last = matrices["count_last_bin"]
    out = {"was_hotspot_last_bin": _flag(last, threshold)}
    issue_days = _bin_days(grid, binning)
    history = daily_history(
        clean, unit_index, delay_aware=config.delay_aware,
        first_day=issue_days.min().astype(dt.date) - dt.timedelta(days=1),
        last_day=issue_days.max().astype(dt.date), settle_days=config.settle_days,
        window_days=AUTO_DAILY_WINDOW, z_threshold=config.z_threshold,
        sd_floor=config.z_sd_floor, n_units=grid.n_units,
    )
    yesterday = matrices.pop("_yesterday_known")
    out["was_daily_hotspot_yesterday"] = _flag(yesterday,
                                               history.yesterday_threshold(issue_days))
    out["was_hotspot_last_year_same_day"] = history.last_year_hotspot(issue_days)
    return out


def _flag(count: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """1 where a known count reaches the threshold (and is at least 1); NaN without one."""
    flag = ((count >= threshold) & (count >= 1)).astype(np.float32)
    flag[np.isnan(threshold)] = np.nan
    return flag


def _bin_days(grid: PanelGrid, binning: TimeBinning) -> np.ndarray:
    """Calendar day (datetime64[D]) of each panel bin's start."""
    hours = (np.arange(grid.first_bin, grid.last_bin + 1, dtype=np.int64) * binning.hours)
    starts = np.datetime64(binning.origin, "h") + hours.astype("timedelta64[h]")
    return starts.astype("datetime64[D]")


def _targets(
    counts: np.ndarray, config: FeatureConfig, z_window: int, first_bin: int
) -> dict[str, np.ndarray]:
    z, zscore_hot = zscore_label(counts, z_window, config.z_threshold, config.z_sd_floor)
    out = {"target_count": counts.ravel(), "target_zscore": z.ravel()}
    if config.label == "zscore":
        out["target_hotspot"] = zscore_hot.ravel()
    elif config.label == "topk":
        out["target_hotspot"] = topk_label(counts, config.topk_pct, first_bin).ravel()
    return out


def per_bin_context(
    grid: PanelGrid, binning: TimeBinning, config: FeatureConfig,
    weather: pl.DataFrame | None, shift: int,
) -> pl.DataFrame:
    """Calendar and weather for each bin (computed once per bin, then tiled)."""
    bins = pl.DataFrame({BIN: np.arange(grid.first_bin, grid.last_bin + 1, dtype=np.int64)})
    bins = bins.with_columns(bin_start=binning.start(BIN))
    first_day = binning.start_of(grid.first_bin).date()
    last_day = binning.start_of(grid.last_bin).date() + dt.timedelta(days=8)
    bins = bins.with_columns(
        calendar_features(pl.col("bin_start"), binning.hours, holiday_dates(first_day, last_day))
    )
    if weather is not None and config.weather != "none":
        if config.weather == "same_bin":
            day = pl.col("bin_start").dt.date()
        else:  # the last fully observed day before the forecast is issued
            day = (binning.start(pl.col(BIN) - shift) - pl.duration(days=1)).dt.date()
        bins = join_weather(bins.with_columns(_wday=day), weather, "_wday").drop("_wday")
    return bins


def _assemble(
    columns: dict[str, np.ndarray], grid: PanelGrid, binning: TimeBinning, units: UnitSet,
    config: FeatureConfig, weather: pl.DataFrame | None, shift: int,
) -> pl.DataFrame:
    """Build the unit-major frame: keys, per-unit and per-bin context, features, targets."""
    per_bin = per_bin_context(grid, binning, config, weather, shift)
    data: dict[str, pl.Series] = {
        UNIT: pl.Series(np.repeat(np.arange(grid.n_units, dtype=np.int64), grid.n_bins)),
        BIN: pl.Series(np.tile(per_bin[BIN].to_numpy(), grid.n_units)),
        "unit_id": pl.Series(list(units.ids)).gather(
            np.repeat(np.arange(grid.n_units), grid.n_bins)),
        "region": pl.Series(list(units.region)).gather(
            np.repeat(np.arange(grid.n_units), grid.n_bins)),
        "population": pl.Series(np.repeat(units.population.astype(np.float32), grid.n_bins)),
    }
    for name in per_bin.columns:
        if name != BIN:
            data[name] = pl.Series(name, np.tile(per_bin[name].to_numpy(), grid.n_units))
    for name in list(columns):
        values = columns.pop(name)
        data[name] = pl.Series(name, values.astype(np.int32) if name == "target_count"
                               else values.astype(np.float32, copy=False))
    frame = pl.DataFrame(data)
    flags = [c for c in frame.columns if c.startswith("was_") or c == "target_hotspot"]
    return frame.with_columns(
        pl.col(pl.Float32).fill_nan(None),
    ).with_columns(pl.col(flags).cast(pl.Int8))
