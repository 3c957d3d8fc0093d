"""The panel's frame: keys, per-unit and per-bin context, feature and target columns.

:func:`per_bin_context` computes the calendar and weather once per bin; :func:`assemble`
tiles it over the rows and adds every feature column, NaN already null where undefined.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig
from crimecast.features.asof import PanelGrid
from crimecast.features.calendar import calendar_features, holiday_dates, join_weather
from crimecast.features.timebins import TimeBinning

if TYPE_CHECKING:
    from crimecast.features.build import PanelInputs

UNIT = "_u"
BIN = "_b"


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


def assemble(
    columns: dict[str, np.ndarray], unit: np.ndarray, bin_: np.ndarray, inputs: PanelInputs,
    shift: int, nan_as_null: bool = True, per_bin: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Build the frame of rows ``(unit, bin_)``: keys, per-unit and per-bin context
    (``per_bin``: :func:`per_bin_context` of bins ``min(bin_)..max(bin_)``, computed here
    when not given), features, targets."""
    units = inputs.units
    first = int(bin_.min()) if bin_.size else 0
    if per_bin is None:
        span = PanelGrid(n_units=len(units), first_bin=first,
                         n_bins=int(bin_.max()) - first + 1 if bin_.size else 0)
        per_bin = per_bin_context(span, inputs.binning, inputs.config, inputs.weather, shift)
    at = bin_ - first
    data: dict[str, pl.Series] = {
        UNIT: pl.Series(unit),
        BIN: pl.Series(bin_),
        "unit_id": pl.Series(list(units.ids)).gather(unit),
        "region": pl.Series(list(units.region)).gather(unit),
        "population": pl.Series("population", units.population.astype(np.float32)[unit],
                                nan_to_null=nan_as_null),
    }
    tiled = per_bin.drop(BIN)[at]  # one gather of every per-bin column (each alone: 2x)
    data.update({name: tiled[name] for name in tiled.columns})
    del tiled
    # Each column is built once, NaN already null (float32 features; the 0/1 flags as Int8):
    # no second copy of the frame to fill its NaNs.
    for name in list(columns):
        values = columns.pop(name)
        if name == "target_count":
            data[name] = pl.Series(name, values.astype(np.int32))
        elif name.startswith("was_") or name == "target_hotspot":
            data[name] = pl.Series(name, values.astype(np.float32, copy=False),
                                   nan_to_null=True).cast(pl.Int8)
        else:
            data[name] = pl.Series(name, values.astype(np.float32, copy=False),
                                   nan_to_null=nan_as_null)
        del values
    return pl.DataFrame(data)
