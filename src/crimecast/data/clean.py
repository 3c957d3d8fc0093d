"""Cleaning parsed incidents into a clean table and a quarantine, with reasons.

Every rule has a reason code (:data:`REASONS`, in the order they are checked;
a row gets the first reason that applies). Rows that fail go to the quarantine
with the reason, a detail naming the offending value, and the original row.
Nothing is dropped silently: ``rows_in == rows_clean + rows_quarantined`` is
checked here on every call and raises :class:`ReconciliationError` otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from shapely.geometry.base import BaseGeometry

from crimecast.config import CleaningConfig
from crimecast.data.geo import AreaSet, points_in_study_area
from crimecast.data.load import SOURCE_ROW, RawTable
from crimecast.data.schema import CANONICAL_COLUMNS, QUARANTINE_SCHEMA, conform
from crimecast.errors import ReconciliationError

logger = logging.getLogger(__name__)

REASONS: dict[str, str] = {
    "missing_incident_id": "the record has no incident id",
    "unparseable_occurred_at": "the occurrence date is missing, unparseable or impossible",
    "invalid_time_of_day": "the time of day is not a valid clock time (e.g. 2400 or negative)",
    "occurred_in_future": "the occurrence is after the configured maximum date",
    "occurred_before_min_date": "the occurrence is before the configured minimum date",
    "unparseable_reported_at": "the report date is present but unparseable",
    "reported_before_occurred": "the report date is before the occurrence date",
    "missing_coordinates": "latitude or longitude is missing or not a number",
    "zero_coordinates": "latitude or longitude is 0 (the source's 'no location' marker)",
    "coordinates_out_of_range": "latitude is outside [-90, 90] or longitude outside [-180, 180]",
    "outside_study_area": "the location is outside the study area",
    "unknown_area_code": "the area code is not one of the known areas",
    "missing_crime_type": "the record has no crime code or type",
    "enforcement_driven_excluded": "an enforcement-driven crime type, excluded by config",
    "duplicate_id": "a later record with an incident id already seen (the first is kept)",
}


class CleanReport(BaseModel):
    """Row accounting of one cleaning run (written as ``clean_report.json``)."""

    model_config = ConfigDict(frozen=True)

    rows_in: int
    rows_clean: int
    rows_quarantined: int
    by_reason: dict[str, int]
    excluded_crime_types: dict[str, int]
    time_is_estimated: int
    occurred_min: str | None
    occurred_max: str | None
    files: dict[str, dict[str, int]]
    # Blank lines between records are not records: not in rows_in, but never silent.
    blank_lines_skipped: int = 0
    rules: dict[str, str] = REASONS
    # With --crime-types: the types kept and the clean rows of other types set aside (not
    # quarantined: they are valid, just not this model's). rows_in = rows_clean +
    # rows_quarantined + rows_other_crime_types.
    crime_types: list[str] = []
    rows_other_crime_types: int = 0


@dataclass(frozen=True)
class CleanResult:
    """The clean table (canonical schema), the quarantine and the report.

    ``areas`` holds the boundary polygons that defined the study area, when known.
    """

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    report: CleanReport
    areas: AreaSet | None = None


def _enforcement_expr(config: CleaningConfig) -> pl.Expr:
    by_code = pl.col("crime_code").is_in(list(config.enforcement_codes))
    if not config.enforcement_patterns:
        return by_code
    pattern = "(?i)" + "|".join(re.escape(p) for p in config.enforcement_patterns)
    return by_code | pl.col("crime_desc").fill_null("").str.contains(pattern)


def _rules(config: CleaningConfig, max_date: dt.date) -> list[tuple[str, pl.Expr, pl.Expr]]:
    """(reason, failing condition, detail) in the order they are checked."""
    occurred_day = pl.col("occurred_at").dt.date()
    lat, lon = pl.col("lat"), pl.col("lon")
    value = pl.format
    rules = [
        ("missing_incident_id", pl.col("incident_id").is_null(), pl.lit("incident id is empty")),
        ("unparseable_occurred_at", pl.col("occurred_at").is_null() & ~pl.col("_time_invalid"),
         value("occurred date '{}'", pl.col("_occurred_raw").fill_null(""))),
        ("invalid_time_of_day", pl.col("_time_invalid"),
         value("time '{}'", pl.col("_time_raw").fill_null(""))),
        ("occurred_in_future", occurred_day > max_date,
         value("occurred {} > max date {}", occurred_day, pl.lit(str(max_date)))),
        ("occurred_before_min_date", occurred_day < config.min_date,
         value("occurred {} < min date {}", occurred_day, pl.lit(str(config.min_date)))),
        ("unparseable_reported_at",
         pl.col("_reported_raw").is_not_null() & pl.col("reported_at").is_null(),
         value("reported date '{}'", pl.col("_reported_raw"))),
        ("reported_before_occurred", pl.col("reported_at").dt.date() < occurred_day,
         value("reported {} < occurred {}", pl.col("reported_at").dt.date(), occurred_day)),
        ("missing_coordinates", lat.is_null() | lon.is_null() | lat.is_nan() | lon.is_nan(),
         value("lat '{}', lon '{}'", pl.col("_lat_raw").fill_null(""),
               pl.col("_lon_raw").fill_null(""))),
        ("zero_coordinates", (lat == 0) | (lon == 0), value("lat {}, lon {}", lat, lon)),
        ("coordinates_out_of_range", (lat.abs() > 90) | (lon.abs() > 180),
         value("lat {}, lon {}", lat, lon)),
        ("outside_study_area", ~pl.col("_in_study_area"), value("lat {}, lon {}", lat, lon)),
        ("unknown_area_code", pl.col("_area_raw").is_not_null() & ~pl.col("_area_known"),
         value("area '{}'", pl.col("_area_raw"))),
        ("missing_crime_type", pl.col("crime_code").is_null(), pl.lit("crime code is empty")),
    ]
    if config.exclude_enforcement_driven:
        rules.append(("enforcement_driven_excluded", _enforcement_expr(config),
                      value("{} {}", pl.col("crime_code"), pl.col("crime_desc").fill_null(""))))
    return rules


def _study_area_mask(parsed: pl.DataFrame, study_area: BaseGeometry | None) -> pl.Series:
    if study_area is None:
        return pl.Series("_in_study_area", np.ones(parsed.height, dtype=bool))
    lat = parsed["lat"].fill_null(np.nan).to_numpy()
    lon = parsed["lon"].fill_null(np.nan).to_numpy()
    finite = np.isfinite(lat) & np.isfinite(lon)
    inside = np.ones(parsed.height, dtype=bool)  # non-finite rows fail an earlier rule
    if finite.any():
        inside[finite] = points_in_study_area(lat[finite], lon[finite], study_area)
    return pl.Series("_in_study_area", inside)


def clean_incidents(
    parsed: pl.DataFrame,
    config: CleaningConfig,
    study_area: BaseGeometry | None = None,
    today: dt.date | None = None,
) -> CleanResult:
    """Apply every rule to ``parsed`` and split it into clean and quarantined rows.

    ``study_area`` (WGS 84) enables the ``outside_study_area`` rule; ``today``
    is the default maximum occurrence date when the config sets none.
    """
    max_date = config.max_date or today or dt.date.today()
    rules = _rules(config, max_date)
    reason: pl.Expr = pl.lit(None, pl.String)
    detail: pl.Expr = pl.lit(None, pl.String)
    for code, failing, text in reversed(rules):
        hit = failing.fill_null(False)
        reason = pl.when(hit).then(pl.lit(code)).otherwise(reason)
        detail = pl.when(hit).then(text).otherwise(detail)
    staged = parsed.with_columns(_study_area_mask(parsed, study_area)).with_columns(
        _reason=reason, _detail=detail
    )
    # Duplicates are judged among rows that pass every other rule, so a valid record
    # is kept even when an earlier copy of its id was quarantined for another reason.
    passing = pl.col("_reason").is_null()
    duplicate = passing & ~pl.col("incident_id").is_first_distinct().over(passing)
    staged = staged.with_columns(
        _reason=pl.when(duplicate).then(pl.lit("duplicate_id")).otherwise(pl.col("_reason")),
        _detail=pl.when(duplicate)
        .then(pl.format("incident id '{}' seen before", pl.col("incident_id")))
        .otherwise(pl.col("_detail")),
    )
    clean = staged.filter(pl.col("_reason").is_null()).select(CANONICAL_COLUMNS)
    quarantined = staged.filter(pl.col("_reason").is_not_null())
    quarantine = conform(
        quarantined.rename({"_reason": "reason", "_detail": "detail"}), QUARANTINE_SCHEMA
    )
    report = _report(staged, clean, quarantine)
    if report.rows_in != report.rows_clean + report.rows_quarantined:
        raise ReconciliationError(
            f"row accounting failed: rows_in={report.rows_in} != rows_clean="
            f"{report.rows_clean} + rows_quarantined={report.rows_quarantined}. "
            "This is a bug in crimecast; please report it with the input file."
        )
    logger.info("cleaned %d rows: %d clean, %d quarantined", report.rows_in,
                report.rows_clean, report.rows_quarantined)
    return CleanResult(clean=clean, quarantine=quarantine, report=report)


def _report(staged: pl.DataFrame, clean: pl.DataFrame, quarantine: pl.DataFrame) -> CleanReport:
    by_reason = {
        row["reason"]: row["len"]
        for row in quarantine.group_by("reason").len().sort("len", descending=True).iter_rows(
            named=True
        )
    }
    excluded = (
        staged.filter(pl.col("_reason") == "enforcement_driven_excluded")
        .group_by(pl.format("{} {}", pl.col("crime_code"), pl.col("crime_desc").fill_null(""))
                  .alias("type"))
        .len()
        .sort("len", descending=True)
    )
    files = (
        staged.group_by("source_file", maintain_order=True)
        .agg(
            rows_in=pl.len(),
            rows_clean=pl.col("_reason").is_null().sum(),
            rows_quarantined=pl.col("_reason").is_not_null().sum(),
        )
    )
    occurred = clean["occurred_at"]
    return CleanReport(
        rows_in=staged.height,
        rows_clean=clean.height,
        rows_quarantined=quarantine.height,
        by_reason=by_reason,
        excluded_crime_types={r["type"]: r["len"] for r in excluded.iter_rows(named=True)},
        time_is_estimated=int(clean["time_is_estimated"].sum()),
        occurred_min=str(occurred.min()) if clean.height else None,
        occurred_max=str(occurred.max()) if clean.height else None,
        files={
            r["source_file"]: {k: int(r[k]) for k in ("rows_in", "rows_clean", "rows_quarantined")}
            for r in files.iter_rows(named=True)
        },
    )


def attach_raw_values(quarantine: pl.DataFrame, raws: Sequence[RawTable]) -> pl.DataFrame:
    """Fill the quarantine's ``raw`` column with each row's original values as JSON."""
    parts = []
    for raw in raws:
        rows = quarantine.filter(pl.col("source_file") == raw.path)
        if rows.height == 0:
            continue
        original = [c for c in raw.frame.columns if not c.startswith("_")]
        encoded = raw.frame.join(
            rows.select(pl.col("source_row").alias(SOURCE_ROW)), on=SOURCE_ROW, how="semi"
        ).select(
            pl.col(SOURCE_ROW).alias("source_row"),
            pl.struct(original).struct.json_encode().alias("_raw_json"),
        )
        parts.append(
            rows.join(encoded, on="source_row", how="left", maintain_order="left")
            .with_columns(raw=pl.col("_raw_json"))
            .drop("_raw_json")
        )
    if not parts:
        return quarantine
    return conform(pl.concat(parts, how="vertical"), QUARANTINE_SCHEMA)


def report_json(report: CleanReport) -> dict[str, object]:
    """Return the report as a plain JSON-ready dict (key order as documented)."""
    return json.loads(report.model_dump_json())
