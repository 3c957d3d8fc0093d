"""Spatial units as a table (``units.parquet``) and back.

A model is trained on one set of units; serving must score exactly those units,
whatever data store it reads events from. The table keeps each unit's exact
WGS 84 geometry (WKB; the WKT column is for people and GIS tools), so
:func:`units_from_table` rebuilds the same :class:`UnitSet`: the same projected
polygons, centroids and adjacency, hence bit-identical features.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
import pyproj
import shapely

from crimecast.data.geo import WGS84, transform_geometry
from crimecast.errors import DataError
from crimecast.features import grid as g
from crimecast.features.units import ADJACENCY_TOLERANCE_M, UnitSet

UNIT_COLUMNS = ("unit_id", "name", "region", "population", "area_km2", "wkt", "wkb")
_CELL_ID = re.compile(r"^g[^_]+_(-?\d+)_(-?\d+)$")


def unit_table(units: UnitSet) -> pl.DataFrame:
    """Units with region, population, area (km²) and WGS 84 geometry (WKT and exact WKB)."""
    area = (np.full(len(units), (units.cell_size or 0) ** 2 / 1e6) if units.kind == "grid"
            else shapely.area(units.projected) / 1e6)
    return pl.DataFrame({
        "unit_id": list(units.ids), "name": list(units.names), "region": list(units.region),
        "population": units.population, "area_km2": area,
        "wkt": shapely.to_wkt(units.geometries, rounding_precision=6).tolist(),
        "wkb": shapely.to_wkb(units.geometries).tolist(),
    }, schema_overrides={"population": pl.Float64, "wkb": pl.Binary})


def table_geometries(table: pl.DataFrame) -> np.ndarray:
    """The units' WGS 84 geometries: exact from WKB, else (older tables) from WKT."""
    if "wkb" in table.columns:
        return np.asarray(shapely.from_wkb(table["wkb"].to_list()), dtype=object)
    return np.asarray(shapely.from_wkt(table["wkt"].to_list()), dtype=object)


def units_from_table(table: pl.DataFrame, kind: str, crs: str,
                     cell_size: float | None = None) -> UnitSet:
    """Rebuild the :class:`UnitSet` a model was trained on from its unit table.

    ``kind`` and ``crs`` come from the panel metadata (``features_meta.json``);
    ``cell_size`` is required for grid units, whose cells are read from their ids.
    """
    missing = [c for c in ("unit_id", "name", "region", "population") if c not in table.columns]
    if missing or not ({"wkb", "wkt"} & set(table.columns)):
        raise DataError(f"the unit table lacks column(s) {missing or ['wkb']}; it must come "
                        "from a crimecast run's units.parquet.")
    if table.height == 0:
        raise DataError("the unit table is empty; the model has no units to score.")
    metric = pyproj.CRS.from_user_input(crs)
    ids = table["unit_id"].cast(pl.Utf8).to_list()
    population = table["population"].cast(pl.Float64).to_numpy()
    if kind == "grid":
        if cell_size is None:
            raise DataError("grid units need the cell size; features_meta.json has none.")
        cells = np.asarray([_cell_of(u) for u in ids], dtype=np.int64).reshape(-1, 2)
        projected = g.cell_boxes(cells, cell_size)
        geometries = np.asarray(transform_geometry(projected, metric, WGS84), dtype=object)
        adjacency = g.grid_adjacency(cells, g.CellLookup.build(cells))
        extra: dict[str, Any] = {"cell_size": float(cell_size), "cells": cells}
    else:
        geometries = table_geometries(table)
        projected = np.asarray(transform_geometry(geometries, WGS84, metric), dtype=object)
        tolerance = 1.0 if kind == "h3" else ADJACENCY_TOLERANCE_M
        adjacency = g.polygon_adjacency(projected, tolerance)
        extra = {}
    return UnitSet(kind, tuple(ids), tuple(table["name"].cast(pl.Utf8).to_list()),
                   tuple(table["region"].cast(pl.Utf8).to_list()), population, metric,
                   shapely.get_coordinates(shapely.centroid(projected)), geometries, projected,
                   adjacency, **extra)


def _cell_of(unit_id: str) -> tuple[int, int]:
    match = _CELL_ID.match(unit_id)
    if match is None:
        raise DataError(f"grid unit id must look like g<size>_<col>_<row>; got '{unit_id}'.")
    return int(match.group(1)), int(match.group(2))
