"""A run's own ``clean.parquet`` read back as input, natively.

Cleaned incidents (the canonical schema, :mod:`crimecast.data.schema`) can be
cleaned again: ``crimecast clean --out DIR`` then ``--data DIR/clean.parquet``.
When the file's columns have the canonical types, :func:`parse_canonical` builds
the parsed frame from the typed columns directly; otherwise (or for any other
parquet) every column becomes text (:func:`text_frame`) and goes through the
column-map parser, as a CSV would. Both give the same rows, reasons and details.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import polars as pl

from crimecast.data.crime_codes import infer_category
from crimecast.data.mapping import ColumnMap
from crimecast.data.parsing import blank_to_null, blank_to_null_columns
from crimecast.data.schema import CANONICAL_SCHEMA, PARSED_SCHEMA, conform

CANONICAL_MAP = ColumnMap(
    name="canonical", incident_id="incident_id", occurred_at="occurred_at", lat="lat", lon="lon",
    reported_at="reported_at", crime_type="crime_code", crime_desc="crime_desc", area="area_id",
    area_name="area_name", district="district_id", premise="premise")
_TEXT = ("incident_id", "area_id", "area_name", "district_id", "crime_code", "crime_desc",
         "crime_category", "premise")
_TYPED = tuple(c for c in CANONICAL_SCHEMA if c not in ("source_file", "source_row"))


def text_column(series: pl.Series) -> pl.Series:
    """One parquet column as text the parsers accept (datetimes as ISO 8601)."""
    dtype = series.dtype
    if dtype == pl.String:
        return series
    if isinstance(dtype, pl.Datetime):  # as write_csv writes it: 2024-01-01T10:30:00.000000
        digits = {"ms": 3, "us": 6, "ns": 9}[dtype.time_unit or "us"]
        zone = "%z" if dtype.time_zone else ""
        return series.dt.to_string(f"%Y-%m-%dT%H:%M:%S%.{digits}f{zone}")
    if dtype == pl.Date:
        return series.dt.to_string("%Y-%m-%d")
    if not dtype.is_nested():
        try:
            return series.cast(pl.String)
        except pl.exceptions.PolarsError:  # durations, binary that is not UTF-8, ...
            pass
    encode = (lambda v: json.dumps(v, default=str)) if dtype.is_nested() else str
    return pl.Series(series.name, [None if v is None else encode(v) for v in series.to_list()],
                     dtype=pl.String)


def text_frame(frame: pl.DataFrame, keep: Sequence[str] = ()) -> pl.DataFrame:
    """Every column of ``frame`` but those in ``keep`` as text (:func:`text_column`)."""
    if all(dtype == pl.String or name in keep for name, dtype in frame.schema.items()):
        return frame
    return pl.DataFrame([series if series.name in keep else text_column(series)
                         for series in frame.iter_columns()])


def is_native(frame: pl.DataFrame) -> bool:
    """True when ``frame`` holds every canonical column with its canonical type."""
    schema = frame.schema
    return all(schema.get(name) == CANONICAL_SCHEMA[name] for name in _TYPED)


def keep_canonical_flags(parsed: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """A clean.parquet's own category and estimated-time flag win over re-derived ones."""
    own = raw.select(
        blank_to_null(pl.col("crime_category")),
        pl.col("time_is_estimated").str.to_lowercase().replace_strict(
            {"true": True, "false": False}, default=None, return_dtype=pl.Boolean),
    )
    return parsed.with_columns(pl.coalesce(pl.lit(own[c]), c).alias(c) for c in own.columns)


def parse_canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Parse a native canonical frame (see :func:`is_native`) into the parsed schema.

    The same values as the text path (:func:`text_frame`, the canonical column map
    and :func:`keep_canonical_flags`) without turning the columns into text:
    strings stripped with blanks as null, the file's own category and estimated-time
    flag first, and the raw text of a coordinate only where the cleaner quotes it.
    """
    text = blank_to_null_columns(frame, _TEXT)
    occurred, lat, lon = pl.col("occurred_at"), pl.col("lat"), pl.col("lon")
    missing = lat.is_null() | lon.is_null() | lat.is_nan() | lon.is_nan()
    derived = text.per_value("crime_desc", {"_desc_category": infer_category(
        pl.col("crime_desc"))})
    typed = [frame[c] for c in frame.columns if c not in _TEXT]
    parsed = text.frame.hstack(typed).lazy().with_columns(*derived).with_columns(
        crime_category=pl.coalesce("crime_category", "_desc_category"),
        time_is_estimated=pl.coalesce(
            "time_is_estimated", (occurred.dt.minute() == 0) & (occurred.dt.second() == 0)),
        source_file=pl.col("_source_file"),
        source_row=pl.col("_source_row"),
        _time_invalid=pl.lit(False),
        # The cleaner quotes the coordinates' text only when one is missing or NaN.
        _lat_raw=pl.when(missing).then(lat.cast(pl.String)),
        _lon_raw=pl.when(missing).then(lon.cast(pl.String)),
        _area_raw=pl.col("area_id"),
        _area_known=pl.lit(True),
    ).collect()
    return conform(parsed, PARSED_SCHEMA)
