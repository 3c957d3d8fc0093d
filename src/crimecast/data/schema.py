"""The canonical incident schema every loader produces.

After loading, every source (LAPD exports, the generic schema, any city through a
YAML column map) is a Polars frame with exactly these columns, in this order.
Columns a source lacks are null.

==================  ============  ==========================================================
column              dtype         meaning
==================  ============  ==========================================================
incident_id         String        source record id (LAPD ``DR_NO``); synthesised as
                                  ``<file stem>:<row>`` when the source has none
occurred_at         Datetime(us)  when it happened, local wall-clock time of the source city
                                  (naive: LAPD publishes local times without an offset)
reported_at         Datetime(us)  when it was reported (LAPD: a date, so midnight), nullable
lat, lon            Float64       WGS 84 degrees, after any CRS transformation
area_id             String        police area (LAPD ``AREA`` 1..21 without zero padding)
area_name           String        police area name
district_id         String        reporting district (LAPD ``Rpt Dist No``)
crime_code          String        source crime code or type
crime_desc          String        source crime description
crime_category      String        ``violent``, ``property`` or ``other``
premise             String        premise description
time_is_estimated   Boolean       time of day is a round hour (incl. 12:00) or unknown
source_file         String        file the row came from
source_row          Int64         1-based data row within that file (the header is row 0)
==================  ============  ==========================================================
"""

from __future__ import annotations

import polars as pl

CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "incident_id": pl.String(),
    "occurred_at": pl.Datetime("us"),
    "reported_at": pl.Datetime("us"),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "area_id": pl.String(),
    "area_name": pl.String(),
    "district_id": pl.String(),
    "crime_code": pl.String(),
    "crime_desc": pl.String(),
    "crime_category": pl.String(),
    "premise": pl.String(),
    "time_is_estimated": pl.Boolean(),
    "source_file": pl.String(),
    "source_row": pl.Int64(),
}
CANONICAL_COLUMNS: tuple[str, ...] = tuple(CANONICAL_SCHEMA)
CRIME_CATEGORIES: tuple[str, ...] = ("violent", "property", "other")

# Diagnostic columns carried from parsing to cleaning: the raw text of fields whose
# parse can fail, so the cleaner can tell "missing" from "unparseable" and quote the
# offending value in the quarantine. They never leave the cleaner.
DIAGNOSTIC_SCHEMA: dict[str, pl.DataType] = {
    "_occurred_raw": pl.String(),
    "_time_raw": pl.String(),
    "_time_invalid": pl.Boolean(),
    "_reported_raw": pl.String(),
    "_lat_raw": pl.String(),
    "_lon_raw": pl.String(),
    "_area_raw": pl.String(),
    "_area_known": pl.Boolean(),
}
PARSED_SCHEMA: dict[str, pl.DataType] = {**CANONICAL_SCHEMA, **DIAGNOSTIC_SCHEMA}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "incident_id": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw": pl.String(),
}


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Return ``frame`` with exactly ``schema``'s columns, in order; missing ones are null."""
    return frame.lazy().select(  # lazy: an eager select copies chunked columns into one
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    ).collect()
