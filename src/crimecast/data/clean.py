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
from crimecast.data.canonical import text_frame
from crimecast.data.geo import AreaSet, points_in_study_area
from crimecast.data.load import RawTable
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


def _enforcement_expr(config: CleaningConfig, descriptions: pl.Series) -> pl.Expr:
    by_code = pl.col("crime_code").is_in(list(config.enforcement_codes))
    if not config.enforcement_patterns:
        return by_code
    pattern = "(?i)" + "|".join(re.escape(p) for p in config.enforcement_patterns)
    # The patterns are matched once per distinct description, not once per row.
    distinct = descriptions.fill_null("").unique()
    matching = distinct.filter(distinct.str.contains(pattern))
    return by_code | pl.col("crime_desc").fill_null("").is_in(matching.implode())


def _rules(
    config: CleaningConfig, max_date: dt.date, descriptions: pl.Series
) -> list[tuple[str, pl.Expr, pl.Expr]]:
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
        rules.append(("enforcement_driven_excluded", _enforcement_expr(config, descriptions),
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


def _later_copies(ids: pl.Series, passing: pl.Series) -> pl.Series:
    """True for a passing row whose id an earlier passing row already has.

    Ids are compared exactly, but only among the rows whose 64-bit hash repeats:
    a sort of hashes finds those far faster than a hash set of a million strings.
    """
    hashes = pl.select(pl.when(passing).then(ids.hash())).to_series()
    ordered = hashes.drop_nulls().sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    duplicate = np.zeros(ids.len(), dtype=bool)
    if repeated.len():
        at = (hashes.is_in(repeated.implode()) & passing).arg_true()
        duplicate[at.to_numpy()] = ~ids.gather(at).is_first_distinct().to_numpy()
    return pl.Series("_duplicate", duplicate)


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
    rules = _rules(config, max_date, parsed["crime_desc"])
    codes = [code for code, _, _ in rules] + ["duplicate_id"]
    # A row's reason is the first rule it fails, kept as that rule's number.
    rule = pl.coalesce([pl.when(failing.fill_null(False)).then(pl.lit(i, pl.UInt8))
                        for i, (_, failing, _) in enumerate(rules)])
    # Lazy steps throughout: an eager with_columns would copy every column into one chunk.
    staged = parsed.lazy().with_columns(_study_area_mask(parsed, study_area)) \
        .with_columns(_rule=rule).collect()
    # Duplicates are judged among rows that pass every other rule, so a valid record
    # is kept even when an earlier copy of its id was quarantined for another reason.
    duplicate = _later_copies(staged["incident_id"], staged["_rule"].is_null())
    staged = staged.lazy().with_columns(
        _rule=pl.when(duplicate).then(pl.lit(len(rules), pl.UInt8)).otherwise(pl.col("_rule"))
    ).collect()
    clean = staged.lazy().filter(pl.col("_rule").is_null()).select(CANONICAL_COLUMNS).collect()
    # Details quote the offending values, so they are written for quarantined rows only.
    texts = [text for _, _, text in rules]
    texts.append(pl.format("incident id '{}' seen before", pl.col("incident_id")))
    detail = pl.coalesce([pl.when(pl.col("_rule") == i).then(text) for i, text in enumerate(texts)])
    quarantined = staged.lazy().filter(pl.col("_rule").is_not_null()).collect().with_columns(
        reason=pl.col("_rule").replace_strict(list(range(len(codes))), codes,
                                              return_dtype=pl.String),
        detail=detail,
    )
    quarantine = conform(quarantined, QUARANTINE_SCHEMA)
    report = _report(staged, clean, quarantine, codes)
    if report.rows_in != report.rows_clean + report.rows_quarantined:
        raise ReconciliationError(
            f"row accounting failed: rows_in={report.rows_in} != rows_clean="
            f"{report.rows_clean} + rows_quarantined={report.rows_quarantined}. "
            "This is a bug in crimecast; please report it with the input file."
        )
    logger.info("cleaned %d rows: %d clean, %d quarantined", report.rows_in,
                report.rows_clean, report.rows_quarantined)
    return CleanResult(clean=clean, quarantine=quarantine, report=report)


def _report(
    staged: pl.DataFrame, clean: pl.DataFrame, quarantine: pl.DataFrame, codes: list[str]
) -> CleanReport:
    by_reason = {
        row["reason"]: row["len"]
        for row in quarantine.group_by("reason").len()
        .sort(["len", "reason"], descending=[True, False]).iter_rows(named=True)
    }
    excluded_rule = codes.index("enforcement_driven_excluded") if (
        "enforcement_driven_excluded" in codes) else -1
    excluded = (
        staged.lazy().filter(pl.col("_rule") == excluded_rule)
        .group_by(pl.format("{} {}", pl.col("crime_code"), pl.col("crime_desc").fill_null(""))
                  .alias("type"))
        .len()
        .sort(["len", "type"], descending=[True, False])  # ties in a fixed order
        .collect()
    )
    files = (
        staged.lazy().group_by("source_file", maintain_order=True)
        .agg(
            rows_in=pl.len(),
            rows_clean=pl.col("_rule").is_null().sum(),
            rows_quarantined=pl.col("_rule").is_not_null().sum(),
        ).collect()
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
        # Record r is row r - 1 of its raw frame (read_raw_csv numbers them so).
        at = (rows["source_row"] - 1).cast(pl.UInt32)
        picked = text_frame(raw.frame.select(pl.col(original).gather(at)))
        parts.append(rows.with_columns(raw=picked.select(pl.struct(original).struct.json_encode())
                                       .to_series()))
    if not parts:
        return quarantine
    return conform(pl.concat(parts, how="vertical"), QUARANTINE_SCHEMA)


def report_json(report: CleanReport) -> dict[str, object]:
    """Return the report as a plain JSON-ready dict (key order as documented)."""
    return json.loads(report.model_dump_json())
