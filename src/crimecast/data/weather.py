"""Los Angeles weather: unit normalisation, source merging, gap reports and joins.

The packaged daily series (2010-01-01 .. 2024-12-30) and hourly slice (2012-10 .. 2017-11)
are derived from public data by ``scripts/build_geo_weather_resources.py``; the pure
functions below do the derivation so that the build and the tests share one code path.

Daily columns: ``date, tmax_c, tmin_c, tavg_c, prcp_mm, wind_ms, source, wind_source``.

* ``tavg_c`` is the mid-range ``(tmax_c + tmin_c) / 2`` where tmax/tmin exist (2010-2019)
  and the provider's daily mean temperature for 2020-2024, where tmax/tmin are null.
* ``wind_ms`` comes from GHCN-Daily ``AWND`` (2019) or from the daily mean of the hourly
  file (2012-10 .. 2017-11). The two instruments disagree (LAX AWND averages ~3.4 m/s,
  the hourly file ~1.2 m/s), so ``wind_source`` says which one a value came from.
* Nothing is imputed here: missing days and values stay missing and are listed by
  :func:`weather_gaps`. (The 2010-2018 provider states that it gap-filled its series.)
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from importlib import resources
from typing import TypeVar

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from crimecast.errors import DataError, DataFileError, SchemaError

logger = logging.getLogger(__name__)

LA_TZ = "America/Los_Angeles"
MM_PER_INCH = 25.4
MS_PER_MPH = 0.44704  # exact: 1609.344 m / 3600 s
KELVIN_OFFSET = 273.15
STATION_LAX = "USW00023174"
STATION_USC = "USW00093134"

DAILY_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "tmax_c": pl.Float64(),
    "tmin_c": pl.Float64(),
    "tavg_c": pl.Float64(),
    "prcp_mm": pl.Float64(),
    "wind_ms": pl.Float64(),
    "source": pl.String(),
    "wind_source": pl.String(),
}
MEASUREMENT_COLUMNS = ("tmax_c", "tmin_c", "tavg_c", "prcp_mm", "wind_ms")
DAILY_RESOURCE = "la_daily_weather.parquet"
HOURLY_RESOURCE = "la_hourly_weather.parquet"
HOURLY_WIND_SOURCE = "hourly_2012_2017_mean"

_Num = TypeVar("_Num", float, np.ndarray, pl.Series, pl.Expr)


def fahrenheit_to_celsius(value: _Num) -> _Num:
    """Convert degrees Fahrenheit to degrees Celsius (floats, arrays, Series or Exprs)."""
    return (value - 32.0) * 5.0 / 9.0


def inches_to_mm(value: _Num) -> _Num:
    """Convert inches to millimetres."""
    return value * MM_PER_INCH


def mph_to_ms(value: _Num) -> _Num:
    """Convert miles per hour to metres per second."""
    return value * MS_PER_MPH


def kelvin_to_celsius(value: _Num) -> _Num:
    """Convert kelvin to degrees Celsius."""
    return value - KELVIN_OFFSET


def _require(raw: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise SchemaError(
            f"{what} lacks column(s) {missing}; found {raw.columns}. "
            f"Pass the unmodified source file."
        )


def _to_date(raw: pl.DataFrame, column: str) -> pl.Expr:
    if raw.schema[column] == pl.Date:
        return pl.col(column)
    return pl.col(column).cast(pl.String).str.strip_chars().str.to_date("%Y-%m-%d")


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(pl.col(c).cast(t) for c, t in DAILY_SCHEMA.items())


def normalise_daily_2010_2018(raw: pl.DataFrame) -> pl.DataFrame:
    """Normalise ``la_daily_2010_2018.csv`` (tmax/tmin in °C, prcp in mm) to the daily schema."""
    _require(raw, ("date", "tmax", "tmin", "prcp"), "la_daily_2010_2018.csv")
    return _finish(
        raw.select(
            _to_date(raw, "date").alias("date"),
            pl.col("tmax").cast(pl.Float64).alias("tmax_c"),
            pl.col("tmin").cast(pl.Float64).alias("tmin_c"),
            ((pl.col("tmax") + pl.col("tmin")) / 2.0).alias("tavg_c"),
            pl.col("prcp").cast(pl.Float64).alias("prcp_mm"),
            pl.lit(None, pl.Float64).alias("wind_ms"),
            pl.lit("la_daily_2010_2018").alias("source"),
            pl.lit(None, pl.String).alias("wind_source"),
        )
    )


def normalise_ghcnd(
    raw: pl.DataFrame, primary: str = STATION_LAX, fallback: str = STATION_USC
) -> pl.DataFrame:
    """Normalise a two-station NOAA GHCN-Daily extract (°F, inches, mph) to the daily schema.

    Station policy: every variable comes from ``primary`` and falls back to ``fallback`` only
    where the primary value is missing. LAX is the default primary because its 2019 monthly
    climatology matches the 2010-2018 series (mean tmax bias -0.2 °C; downtown USC +2.0 °C),
    so choosing it avoids a step change in the merged series. GHCN ``TAVG`` is ignored and
    ``tavg_c`` is the tmax/tmin mid-range, as for 2010-2018.
    """
    needed = ("STATION", "DATE", "TMAX", "TMIN", "PRCP", "AWND")
    _require(raw, needed, "GHCN-Daily extract")
    numeric = ("TMAX", "TMIN", "PRCP", "AWND")
    frame = raw.select(
        pl.col("STATION").cast(pl.String).str.strip_chars(),
        _to_date(raw, "DATE").alias("date"),
        *(
            pl.col(c).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            for c in numeric
        ),
    )

    def station(sid: str, tag: str) -> pl.DataFrame:
        return frame.filter(pl.col("STATION") == sid).select(
            "date", *(pl.col(c).alias(f"{c}_{tag}") for c in numeric)
        )

    both = station(primary, "p").join(station(fallback, "f"), on="date", how="full", coalesce=True)

    def pick(c: str) -> pl.Expr:
        return pl.coalesce(f"{c}_p", f"{c}_f")

    def used(c: str, prefix: str) -> pl.Expr:
        return (
            pl.when(pl.col(f"{c}_p").is_not_null())
            .then(pl.lit(f"{prefix}:{primary}"))
            .when(pl.col(f"{c}_f").is_not_null())
            .then(pl.lit(f"{prefix}:{fallback}"))
            .otherwise(None)
        )

    tmax, tmin = fahrenheit_to_celsius(pick("TMAX")), fahrenheit_to_celsius(pick("TMIN"))
    return _finish(
        both.select(
            "date",
            tmax.alias("tmax_c"),
            tmin.alias("tmin_c"),
            ((tmax + tmin) / 2.0).alias("tavg_c"),
            inches_to_mm(pick("PRCP")).alias("prcp_mm"),
            mph_to_ms(pick("AWND")).alias("wind_ms"),
            used("TMAX", "ghcnd").alias("source"),
            used("AWND", "ghcnd_awnd").alias("wind_source"),
        ).sort("date")
    )


def normalise_daily_2020_2024(raw: pl.DataFrame) -> pl.DataFrame:
    """Normalise ``la_daily_2020_2024.json`` (``temp`` daily mean °F, ``precip`` inches).

    Only ``date``, ``temp`` and ``precip`` are read. The file's ``crimes``/``violent`` columns
    are the outcome being forecast and are dropped here so they can never become features.
    ``precip`` is in inches: yearly sums are 11-38 (2023, a record wet year, is the largest).
    """
    _require(raw, ("date", "temp", "precip"), "la_daily_2020_2024.json")
    return _finish(
        raw.select(
            _to_date(raw, "date").alias("date"),
            pl.lit(None, pl.Float64).alias("tmax_c"),
            pl.lit(None, pl.Float64).alias("tmin_c"),
            fahrenheit_to_celsius(pl.col("temp").cast(pl.Float64)).alias("tavg_c"),
            inches_to_mm(pl.col("precip").cast(pl.Float64)).alias("prcp_mm"),
            pl.lit(None, pl.Float64).alias("wind_ms"),
            pl.lit("la_daily_2020_2024").alias("source"),
            pl.lit(None, pl.String).alias("wind_source"),
        )
    )


def normalise_hourly(raw: pl.DataFrame) -> pl.DataFrame:
    """Normalise ``la_hourly_2012_2017.csv``: UTC text times, temperature in kelvin.

    Returns ``time_utc`` (UTC), ``time_local`` (America/Los_Angeles), ``temp_c``,
    ``humidity_pct``, ``pressure_hpa``, ``wind_ms``, ``wind_dir_deg`` and ``description``.
    Rows are kept even when every reading is null so that gaps stay visible.
    """
    cols = ("datetime", "temperature", "humidity", "pressure", "wind_speed", "wind_direction")
    _require(raw, cols, "hourly weather file")
    utc = pl.col("datetime").cast(pl.String).str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC")
    desc = pl.col("weather_desc") if "weather_desc" in raw.columns else pl.lit(None, pl.String)
    return raw.select(
        utc.alias("time_utc"),
        utc.dt.convert_time_zone(LA_TZ).alias("time_local"),
        kelvin_to_celsius(pl.col("temperature").cast(pl.Float64)).alias("temp_c"),
        pl.col("humidity").cast(pl.Float64).alias("humidity_pct"),
        pl.col("pressure").cast(pl.Float64).alias("pressure_hpa"),
        pl.col("wind_speed").cast(pl.Float64).alias("wind_ms"),
        pl.col("wind_direction").cast(pl.Float64).alias("wind_dir_deg"),
        desc.cast(pl.String).alias("description"),
    ).sort("time_utc")


def daily_wind_from_hourly(hourly: pl.DataFrame, min_hours: int = 18) -> pl.DataFrame:
    """Daily mean wind (m/s) per local calendar day from normalised hourly data.

    Days with fewer than ``min_hours`` non-null readings get a null mean (partial days at the
    ends of the file would otherwise be biased by the diurnal wind cycle).
    """
    return (
        hourly.group_by(pl.col("time_local").dt.date().alias("date"))
        .agg(pl.col("wind_ms").mean().alias("wind_ms"), pl.col("wind_ms").count().alias("hours"))
        .with_columns(
            pl.when(pl.col("hours") >= min_hours).then(pl.col("wind_ms")).alias("wind_ms")
        )
        .sort("date")
    )


def merge_daily_sources(
    parts: Sequence[pl.DataFrame], hourly_wind: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Concatenate normalised daily frames and fill missing wind from ``hourly_wind``.

    ``parts`` must not share dates (raises :class:`DataError` listing the duplicates).
    ``hourly_wind`` (``date, wind_ms``, e.g. from :func:`daily_wind_from_hourly`) only fills
    rows whose ``wind_ms`` is null; such rows get ``wind_source = 'hourly_2012_2017_mean'``.
    """
    merged = pl.concat([_finish(p) for p in parts], how="vertical").sort("date")
    dup = merged.filter(pl.col("date").is_duplicated())["date"].unique().sort()
    if dup.len():
        raise DataError(
            f"daily weather sources overlap on {dup.len()} date(s), first {dup.head(5).to_list()}; "
            "each date must come from exactly one source. Trim one of the sources."
        )
    if hourly_wind is not None:
        extra = hourly_wind.select("date", pl.col("wind_ms").alias("_hw"))
        fill = pl.col("wind_ms").is_null() & pl.col("_hw").is_not_null()
        merged = merged.join(extra, on="date", how="left").with_columns(
            pl.when(fill).then(pl.col("_hw")).otherwise(pl.col("wind_ms")).alias("wind_ms"),
            pl.when(fill)
            .then(pl.lit(HOURLY_WIND_SOURCE))
            .otherwise(pl.col("wind_source"))
            .alias("wind_source"),
        )
    return _finish(merged)


def build_daily_weather(
    raw_2010_2018: pl.DataFrame,
    raw_ghcnd_2019: pl.DataFrame,
    raw_2020_2024: pl.DataFrame,
    raw_hourly: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Build the merged daily series from the four raw source frames (as read from disk)."""
    parts = [
        normalise_daily_2010_2018(raw_2010_2018),
        normalise_ghcnd(raw_ghcnd_2019),
        normalise_daily_2020_2024(raw_2020_2024),
    ]
    wind = None if raw_hourly is None else daily_wind_from_hourly(normalise_hourly(raw_hourly))
    return merge_daily_sources(parts, wind)


class DateRange(BaseModel):
    """An inclusive run of consecutive days."""

    model_config = ConfigDict(frozen=True)
    start: date
    end: date
    days: int


class ColumnGaps(BaseModel):
    """Days in the requested window on which one column has no value."""

    model_config = ConfigDict(frozen=True)
    column: str
    missing_days: int
    ranges: tuple[DateRange, ...]


class WeatherGapReport(BaseModel):
    """What a daily weather frame lacks between ``start`` and ``end`` (inclusive).

    ``missing_dates`` are calendar days with no row. ``columns`` counts, per measurement
    column, the days without a value (missing row or null). ``imputed_days`` counts rows
    flagged in an ``imputed`` column, when the frame has one.
    """

    model_config = ConfigDict(frozen=True)
    start: date
    end: date
    expected_days: int
    present_days: int
    missing_dates: tuple[date, ...]
    missing_ranges: tuple[DateRange, ...]
    duplicate_dates: tuple[date, ...]
    columns: dict[str, ColumnGaps]
    imputed_days: int

    @property
    def complete(self) -> bool:
        """True when every day has a row and every measurement column a value."""
        return not self.missing_dates and all(c.missing_days == 0 for c in self.columns.values())

    def summary(self) -> str:
        """One line per gap kind, for logs and CLI output."""
        lines = [
            f"{self.start}..{self.end}: {self.present_days}/{self.expected_days} days present, "
            f"{len(self.missing_dates)} missing in {len(self.missing_ranges)} range(s)"
        ]
        for c in self.columns.values():
            spans = ", ".join(f"{r.start}..{r.end}" for r in c.ranges[:3])
            more = f" (+{len(c.ranges) - 3} more)" if len(c.ranges) > 3 else ""
            lines.append(f"  {c.column}: {c.missing_days} day(s) missing {spans}{more}".rstrip())
        return "\n".join(lines)


def _ranges(days: Sequence[date]) -> tuple[DateRange, ...]:
    out: list[DateRange] = []
    for d in sorted(days):
        if out and out[-1].end + timedelta(days=1) == d:
            last = out[-1]
            out[-1] = DateRange(start=last.start, end=d, days=last.days + 1)
        else:
            out.append(DateRange(start=d, end=d, days=1))
    return tuple(out)


def weather_gaps(df: pl.DataFrame, start: date, end: date) -> WeatherGapReport:
    """Report missing dates and per-column missing values of a daily frame in ``[start, end]``."""
    if end < start:
        raise ValueError(f"weather_gaps: end {end} is before start {start}")
    _require(df, ("date",), "daily weather frame")
    window = df.filter(pl.col("date").is_between(start, end))
    calendar = pl.date_range(start, end, "1d", eager=True).alias("date").to_frame()
    dups = window.filter(pl.col("date").is_duplicated())["date"].unique().sort().to_list()
    full = calendar.join(window.unique("date", keep="first"), on="date", how="left")
    missing = calendar.filter(~pl.col("date").is_in(window["date"].implode()))["date"].to_list()
    columns = {}
    for col in (c for c in MEASUREMENT_COLUMNS if c in df.columns):
        days = full.filter(pl.col(col).is_null())["date"].to_list()
        columns[col] = ColumnGaps(column=col, missing_days=len(days), ranges=_ranges(days))
    imputed = int(window["imputed"].cast(pl.Boolean).sum()) if "imputed" in df.columns else 0
    return WeatherGapReport(
        start=start,
        end=end,
        expected_days=calendar.height,
        present_days=calendar.height - len(missing),
        missing_dates=tuple(missing),
        missing_ranges=_ranges(missing),
        duplicate_dates=tuple(dups),
        columns=columns,
        imputed_days=imputed,
    )


def weather_for_dates(weather: pl.DataFrame, dates: pl.Series | Sequence[date]) -> pl.DataFrame:
    """Return one weather row per requested date, in request order (nulls where unknown)."""
    keys = dates if isinstance(dates, pl.Series) else pl.Series(list(dates), dtype=pl.Date)
    frame = keys.cast(pl.Date).alias("date").to_frame()
    return frame.join(weather, on="date", how="left", maintain_order="left")


def _resource_bytes(name: str) -> bytes:
    ref = resources.files("crimecast") / "resources" / "weather" / name
    try:
        return ref.read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise DataFileError(
            f"packaged weather resource 'resources/weather/{name}' is missing or unreadable "
            f"({exc}). Reinstall crimecast or rebuild it with "
            "scripts/build_geo_weather_resources.py."
        ) from exc


def load_daily_weather() -> pl.DataFrame:
    """Load the packaged merged daily Los Angeles weather series (see module docstring)."""
    return pl.read_parquet(io.BytesIO(_resource_bytes(DAILY_RESOURCE)))


def load_hourly_weather() -> pl.DataFrame:
    """Load the packaged hourly Los Angeles weather slice (2012-10-01 .. 2017-11-30).

    Columns as :func:`normalise_hourly`; ``temp_c`` is stored rounded to 0.01 °C and
    ``time_local`` (America/Los_Angeles) is derived from ``time_utc`` on load.
    """
    hourly = pl.read_parquet(io.BytesIO(_resource_bytes(HOURLY_RESOURCE)))
    local = pl.col("time_utc").dt.convert_time_zone(LA_TZ).alias("time_local")
    return hourly.select("time_utc", local, pl.exclude("time_utc", "time_local"))
