"""Parsing LAPD open-data exports into the canonical schema.

Handles the variants found in the wild:

* the standard export: ``02/23/2024 12:00:00 AM`` dates with a dummy midnight and
  the real time of day in ``TIME OCC`` as integer HHMM (``615`` is 06:15);
* the West LA variant: ``10/15/2020 0:00`` dates, a second ``DATE OCC`` column
  holding an Excel serial date, and extra calendar columns (ignored);
* samples whose ``Crm Cd 2..4`` headers are blank (read as ``Unnamed: i``).
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from crimecast.data.areas import LAPD_AREAS
from crimecast.data.crime_codes import infer_category, load_crime_codes
from crimecast.data.parsing import (
    TextColumns,
    blank_to_null_columns,
    parse_clock,
    parse_datetime_series,
    parse_float,
)
from crimecast.data.schema import PARSED_SCHEMA, conform

LAPD_REQUIRED_COLUMNS: tuple[str, ...] = (
    "DR_NO",
    "DATE OCC",
    "TIME OCC",
    "AREA",
    "Crm Cd",
    "LAT",
    "LON",
)
LAPD_OPTIONAL_COLUMNS: tuple[str, ...] = (
    "Date Rptd",
    "AREA NAME",
    "Rpt Dist No",
    "Crm Cd Desc",
    "Premis Desc",
)


def _strip_zeros(expr: pl.Expr) -> pl.Expr:
    """Normalise zero-padded integer codes ("03" -> "3"); non-integers stay as text."""
    as_int = expr.cast(pl.Int64, strict=False)
    return pl.when(as_int.is_not_null()).then(as_int.cast(pl.String)).otherwise(expr)


def _text(raw: pl.DataFrame) -> TextColumns:
    """Every column parse_lapd reads, stripped with blanks as null, plus the row's source."""
    text = blank_to_null_columns(raw, LAPD_REQUIRED_COLUMNS + LAPD_OPTIONAL_COLUMNS)
    return replace(text, frame=text.frame.hstack([raw["_source_file"], raw["_source_row"]]))


def _by_code(text: TextColumns) -> list[pl.Expr]:
    """The normalised crime code and the code table's description and category."""
    codes = load_crime_codes()
    code = _strip_zeros(pl.col("Crm Cd"))

    def looked_up(column: str) -> pl.Expr:
        return code.replace_strict(codes["crime_code"], codes[column], default=None)

    return text.per_value("Crm Cd", {
        "_code": code, "_code_desc": looked_up("crime_desc"),
        "_code_category": looked_up("crime_category")})


def _days(text: TextColumns, name: str) -> list[pl.Expr]:
    """A date column parsed once per distinct value, as midnight of its day."""
    column = text.frame[name]
    distinct = text.distinct.get(name)
    if distinct is None:
        return [pl.lit(parse_datetime_series(column).dt.truncate("1d")).alias(f"_{name}_day")]
    days = parse_datetime_series(distinct, sample=column).dt.truncate("1d")
    return [pl.col(name).replace_strict(distinct, days, return_dtype=days.dtype)
            .alias(f"_{name}_day")]


def _category_of_description(text: TextColumns) -> list[pl.Expr]:
    """The keyword category of each description (infer_category says ``other`` for none)."""
    return text.per_value("Crm Cd Desc", {"_desc_category": infer_category(pl.col("Crm Cd Desc"))})


def parse_lapd(raw: pl.DataFrame) -> pl.DataFrame:
    """Parse a raw LAPD table (all text columns) into the canonical + diagnostic schema."""
    text = _text(raw)
    clock, time_invalid = parse_clock(pl.col("TIME OCC"), "hhmm")
    district = pl.col("Rpt Dist No").cast(pl.Int64, strict=False)
    area = pl.col("AREA").cast(pl.Int64, strict=False)
    minutes = pl.col("_minutes")
    parsed = text.frame.lazy().with_columns(
        *text.per_value("TIME OCC", {"_minutes": clock, "_time_invalid": time_invalid}),
        *text.per_value("Rpt Dist No", {"district_id": pl.when(district.is_not_null())
                        .then(district.cast(pl.String).str.zfill(4))
                        .otherwise(pl.col("Rpt Dist No"))}),
        *text.per_value("AREA", {
            "_area_int": area, "_area_canonical": area.replace_strict(
                list(LAPD_AREAS), list(LAPD_AREAS.values()), default=None,
                return_dtype=pl.String)}),
        *_by_code(text),
        *_days(text, "DATE OCC"),
        *_days(text, "Date Rptd"),
        *_category_of_description(text),
    ).select(
        incident_id=pl.col("DR_NO"),
        occurred_at=pl.col("_DATE OCC_day") + pl.duration(minutes=minutes),
        reported_at=pl.col("_Date Rptd_day"),
        lat=parse_float(pl.col("LAT")),
        lon=parse_float(pl.col("LON")),
        area_id=pl.col("_area_int").cast(pl.String),
        area_name=pl.coalesce(pl.col("_area_canonical"), pl.col("AREA NAME")),
        district_id=pl.col("district_id"),
        crime_code=pl.col("_code"),
        crime_desc=pl.coalesce(pl.col("Crm Cd Desc"), pl.col("_code_desc")),
        crime_category=pl.coalesce(pl.col("_code_category"), pl.col("_desc_category")),
        premise=pl.col("Premis Desc"),
        # LAPD writes 1200 (and often other round hours) when the time is unknown.
        time_is_estimated=(minutes % 60 == 0) | (minutes == 1),
        source_file=pl.col("_source_file"),
        source_row=pl.col("_source_row"),
        _occurred_raw=pl.col("DATE OCC"),
        _time_raw=pl.col("TIME OCC"),
        _time_invalid=pl.col("_time_invalid"),
        _reported_raw=pl.col("Date Rptd"),
        _lat_raw=pl.col("LAT"),
        _lon_raw=pl.col("LON"),
        _area_raw=pl.col("AREA"),
        _area_known=pl.col("_area_canonical").is_not_null(),
    ).collect()
    return conform(parsed, PARSED_SCHEMA)
