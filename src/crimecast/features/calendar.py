"""Calendar and weather features of the *target* bin.

The calendar is known in advance, so these describe the bin being forecast.
Same-bin weather stands in for a weather forecast (a real deployment would
use the forecast issued before the bin); ``weather: lagged`` uses only the last
fully observed day before the forecast is issued instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import holidays
import polars as pl

WEATHER_COLUMNS: dict[str, str] = {
    "tavg_c": "temp_c",
    "tmax_c": "tmax_c",
    "wind_ms": "wind_ms",
    "prcp_mm": "prcp_mm",
}


def holiday_dates(first: dt.date, last: dt.date) -> list[dt.date]:
    """US federal holidays (observed dates) between two dates, from the holidays library."""
    calendar = holidays.country_holidays("US", years=range(first.year, last.year + 1))
    return sorted(d for d in calendar if first <= d <= last)


def _cyclic(position: pl.Expr, period: int, wave: Callable[[float], float]) -> pl.Expr:
    """``wave(2π · position / period)`` from a table of the ``period`` values: the same
    bits whatever the batch (vectorised sin/cos round a batch's tail differently)."""
    table = [wave(2 * math.pi * k / period) for k in range(period)]
    return position.replace_strict(list(range(period)), table, return_dtype=pl.Float64)


def calendar_features(
    bin_start: pl.Expr, step_hours: int, holidays_list: list[dt.date]
) -> list[pl.Expr]:
    """Cyclical hour/day-of-week/month, year, holiday and weekend flags of each bin."""
    hour = bin_start.dt.hour()
    dow = bin_start.dt.weekday() - 1  # Monday = 0
    month = bin_start.dt.month() - 1
    # A bin is a holiday bin when any calendar day it touches is a holiday.
    touched = [(bin_start + pl.duration(hours=h)).dt.date() for h in range(0, step_hours, 24)]
    touched.append((bin_start + pl.duration(hours=step_hours, microseconds=-1)).dt.date())
    hol = pl.Series(holidays_list, dtype=pl.Date)
    is_holiday = pl.any_horizontal([d.is_in(hol.implode()) for d in touched])
    is_weekend = bin_start.dt.weekday() >= 6
    return [
        _cyclic(hour, 24, math.sin).alias("hour_sin"),
        _cyclic(hour, 24, math.cos).alias("hour_cos"),
        _cyclic(dow, 7, math.sin).alias("dow_sin"),
        _cyclic(dow, 7, math.cos).alias("dow_cos"),
        _cyclic(month, 12, math.sin).alias("month_sin"),
        _cyclic(month, 12, math.cos).alias("month_cos"),
        bin_start.dt.year().cast(pl.Int32).alias("year"),
        is_holiday.cast(pl.Int8).alias("is_holiday"),
        is_weekend.cast(pl.Int8).alias("is_weekend"),
        (is_holiday | is_weekend).cast(pl.Int8).alias("is_weekend_or_holiday"),
    ]


def join_weather(
    frame: pl.DataFrame, weather: pl.DataFrame, day_column: str
) -> pl.DataFrame:
    """Left-join daily weather on ``day_column`` (a Date), renaming to feature names."""
    daily = weather.select(
        pl.col("date").alias(day_column),
        *(pl.col(src).cast(pl.Float64).alias(dst) for src, dst in WEATHER_COLUMNS.items()),
    )
    return frame.join(daily, on=day_column, how="left", maintain_order="left")
