"""Load, clean and write incidents: the ``crimecast clean`` job as one function."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from crimecast.config import CleaningConfig
from crimecast.data.boundaries import (
    load_area_geojson,
    load_lapd_divisions,
    load_portland_districts,
)
from crimecast.data.clean import CleanResult, attach_raw_values, clean_incidents, report_json
from crimecast.data.crime_codes import select_crime_types
from crimecast.data.geo import AreaSet, assign_area_index, study_area
from crimecast.data.load import load_incidents
from crimecast.data.mapping import ColumnMap
from crimecast.data.output import write_json, write_parquet
from crimecast.errors import DataFileError

logger = logging.getLogger(__name__)

BUILTIN_BOUNDARIES = ("lapd_divisions", "portland_districts")


def boundary_areas(column_map: ColumnMap | None) -> AreaSet | None:
    """Return the polygons that define a source's study area, or None.

    LAPD data uses the 21 divisions; a column map may name a built-in boundary
    (``lapd_divisions``, ``portland_districts``) or a GeoJSON file in its
    ``boundary`` key (ids from ``boundary_id_property``).
    """
    name = "lapd_divisions" if column_map is None else column_map.boundary
    if name is None:
        return None
    if name == "lapd_divisions":
        return load_lapd_divisions()
    if name == "portland_districts":
        return load_portland_districts()
    assert column_map is not None
    if not Path(name).is_file():
        raise DataFileError(
            f"boundary file '{name}' named by column map '{column_map.name}' does not exist. "
            f"Use one of {list(BUILTIN_BOUNDARIES)} or a GeoJSON path."
        )
    return load_area_geojson(
        name, column_map.boundary_id_property, column_map.boundary_name_property
    )


def fill_areas_from_boundary(parsed: pl.DataFrame, areas: AreaSet) -> pl.DataFrame:
    """Fill a null ``area_id``/``area_name`` with the boundary polygon holding the point.

    Sources without an area column (Portland calls for service) still get areas,
    so per-area breakdowns work for them. Points outside every polygon stay null.
    """
    if parsed["area_id"].null_count() == 0:
        return parsed
    lat = parsed["lat"].fill_null(np.nan).to_numpy()
    lon = parsed["lon"].fill_null(np.nan).to_numpy()
    lookup = pl.DataFrame(
        {
            "_area_index": np.arange(len(areas), dtype=np.int64),
            "_area_id": [str(i) for i in areas.ids.tolist()],
            "_area_name": list(areas.names),
        }
    )
    return (
        parsed.with_columns(_area_index=pl.Series(assign_area_index(lat, lon, areas)))
        .join(lookup, on="_area_index", how="left", maintain_order="left")
        .with_columns(
            area_id=pl.coalesce("area_id", "_area_id"),
            area_name=pl.coalesce("area_name", "_area_name"),
        )
        .drop("_area_index", "_area_id", "_area_name")
    )


def prepare_incidents(
    paths: Sequence[str],
    schema: str,
    config: CleaningConfig,
    encoding: str = "utf-8",
    today: dt.date | None = None,
    crime_types: Sequence[str] = (),
) -> CleanResult:
    """Read ``paths`` with ``schema``, clean them and attach raw values to the quarantine;
    with ``crime_types`` keep only the clean rows of those types (``--crime-types``)."""
    loaded = load_incidents(paths, schema=schema, encoding=encoding)
    areas = boundary_areas(loaded.column_map)
    parsed = loaded.parsed
    boundary = None
    if areas is not None:
        parsed = fill_areas_from_boundary(parsed, areas)
        if config.check_study_area:
            boundary = study_area(areas, buffer_m=config.study_area_buffer_m)
    result = clean_incidents(parsed, config, study_area=boundary, today=today)
    quarantine = attach_raw_values(result.quarantine, loaded.raw)
    clean = select_crime_types(result.clean, list(crime_types))
    report = result.report.model_copy(update={
        "blank_lines_skipped": loaded.blank_lines, "crime_types": sorted(crime_types),
        "rows_clean": clean.height,
        "rows_other_crime_types": result.clean.height - clean.height})
    if crime_types:
        logger.info("crime types %s: %d of %d clean rows", ", ".join(crime_types),
                    clean.height, result.clean.height)
    return CleanResult(clean=clean, quarantine=quarantine, report=report, areas=areas)


def write_clean_outputs(result: CleanResult, out_dir: Path) -> dict[str, Path]:
    """Write ``clean.parquet``, ``quarantine.parquet`` and ``clean_report.json``."""
    paths = {
        "clean": out_dir / "clean.parquet",
        "quarantine": out_dir / "quarantine.parquet",
        "report": out_dir / "clean_report.json",
    }
    write_parquet(result.clean, paths["clean"])
    write_parquet(result.quarantine, paths["quarantine"])
    write_json(report_json(result.report), paths["report"])
    logger.info("wrote %s", out_dir)
    return paths
