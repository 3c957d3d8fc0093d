"""Parsing LAPD open-data exports into the canonical schema.

Handles the variants found in the wild:

* the standard export: ``02/23/2024 12:00:00 AM`` dates with a dummy midnight and
  the real time of day in ``TIME OCC`` as integer HHMM (``615`` is 06:15);
* the West LA variant: ``10/15/2020 0:00`` dates, a second ``DATE OCC`` column
  holding an Excel serial date, and extra calendar columns (ignored);
* samples whose ``Crm Cd 2..4`` headers are blank (read as ``Unnamed: i``).
"""

from __future__ import annotations

import polars as pl

from crimecast.data.areas import LAPD_AREAS
from crimecast.data.crime_codes import infer_category, load_crime_codes
from crimecast.data.parsing import (
    blank_to_null,
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


def _col(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name in frame.columns:
        return blank_to_null(pl.col(name))
    return pl.lit(None, pl.String)


def _strip_zeros(expr: pl.Expr) -> pl.Expr:
    """Normalise zero-padded integer codes ("03" -> "3"); non-integers stay as text."""
    as_int = expr.cast(pl.Int64, strict=False)
    return pl.when(as_int.is_not_null()).then(as_int.cast(pl.String)).otherwise(expr)


def _dates(raw: pl.DataFrame, name: str) -> pl.Series:
    text = raw.select(_col(raw, name)).to_series()
    return parse_datetime_series(text)


def parse_lapd(raw: pl.DataFrame) -> pl.DataFrame:
    """Parse a raw LAPD table (all text columns) into the canonical + diagnostic schema."""
    occurred_raw = _col(raw, "DATE OCC")
    time_raw = _col(raw, "TIME OCC")
    minutes, time_invalid = parse_clock(time_raw, "hhmm")
    occurred_day = pl.lit(_dates(raw, "DATE OCC")).dt.truncate("1d")
    area_int = _col(raw, "AREA").cast(pl.Int64, strict=False)
    area_names = pl.DataFrame(
        {"_area_int": list(LAPD_AREAS), "_area_canonical": list(LAPD_AREAS.values())},
        schema={"_area_int": pl.Int64, "_area_canonical": pl.String},
    )
    codes = load_crime_codes().select(
        pl.col("crime_code").alias("_code"),
        pl.col("crime_desc").alias("_code_desc"),
        pl.col("crime_category").alias("_code_category"),
    )
    district_int = _col(raw, "Rpt Dist No").cast(pl.Int64, strict=False)

    parsed = (
        raw.with_columns(
            _area_int=area_int,
            _code=_strip_zeros(_col(raw, "Crm Cd")),
        )
        .join(area_names, on="_area_int", how="left", maintain_order="left")
        .join(codes, on="_code", how="left", maintain_order="left")
        .select(
            incident_id=_col(raw, "DR_NO"),
            occurred_at=occurred_day + pl.duration(minutes=minutes),
            reported_at=pl.lit(_dates(raw, "Date Rptd")).dt.truncate("1d"),
            lat=parse_float(_col(raw, "LAT")),
            lon=parse_float(_col(raw, "LON")),
            area_id=pl.col("_area_int").cast(pl.String),
            area_name=pl.coalesce(pl.col("_area_canonical"), _col(raw, "AREA NAME")),
            district_id=pl.when(district_int.is_not_null())
            .then(district_int.cast(pl.String).str.zfill(4))
            .otherwise(_col(raw, "Rpt Dist No")),
            crime_code=pl.col("_code"),
            crime_desc=pl.coalesce(_col(raw, "Crm Cd Desc"), pl.col("_code_desc")),
            crime_category=pl.coalesce(
                pl.col("_code_category"), infer_category(_col(raw, "Crm Cd Desc"))
            ),
            premise=_col(raw, "Premis Desc"),
            # LAPD writes 1200 (and often other round hours) when the time is unknown.
            time_is_estimated=(minutes % 60 == 0) | (minutes == 1),
            source_file=pl.col("_source_file"),
            source_row=pl.col("_source_row"),
            _occurred_raw=occurred_raw,
            _time_raw=time_raw,
            _time_invalid=time_invalid,
            _reported_raw=_col(raw, "Date Rptd"),
            _lat_raw=_col(raw, "LAT"),
            _lon_raw=_col(raw, "LON"),
            _area_raw=_col(raw, "AREA"),
            _area_known=pl.col("_area_canonical").is_not_null(),
        )
    )
    return conform(parsed, PARSED_SCHEMA)
