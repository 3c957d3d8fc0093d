"""Spatial units (places) of the forecasting panel, and the study area they define.

:func:`build_units` turns incident locations into a :class:`UnitSet`; the units together
are the **study area** (PAI divides by the share of it flagged). Only the *history* chooses
it: ``history_mask`` (default: every event) selects the training events, so future events
cannot choose units; later events outside every unit get -1 from ``assign``.

``kind`` (the ``spatial_unit`` option):
``area``
    The polygons of ``boundary``, restricted to the areas the history's events fall in
    (the West LA slice gives one unit). Without ``boundary``, area ids that are all LAPD
    codes 1..21 use the packaged LAPD divisions. Ids are ``str(area id)`` in boundary order;
    population comes from the boundary (LAPD has it), else from ``tracts``, else NaN.
``district``
    Reporting districts present in the history (digit ids zero-padded to 4: ``"163"`` ->
    ``"0163"``), sorted by id. Each is the Voronoi cell of its centroid clipped to its
    area's polygon, so an area's districts tile it. Centroids are the real LAPD ones
    (``resources/generator/districts.csv``) where known, else the median location of the
    district's history events; a district's area is the majority area of its events.
    Without a boundary the cells are clipped to the events' convex hull plus 500 m.
``grid``
    Squares of ``cell_size`` metres aligned to multiples of ``cell_size`` in ``crs``
    (default: the UTM zone of the history's median point). The study area is every cell
    intersecting the polygons of the areas present when a boundary is known, else every
    cell holding a history event. Ids are ``g<cell_size>_<col>_<row>`` with
    ``col = floor(x / cell_size)`` and ``row = floor(y / cell_size)`` (the lower-left
    corner), sorted by (row, col); a point on a shared edge goes to the cell right / above.
``h3``
    H3 cells (``pip install h3``) at the resolution whose mean cell area is nearest
    ``cell_size**2``: those overlapping the boundary, else those holding a history event.

Population of districts and cells is area-weighted from census tracts (tract population x
the share of the tract's area inside the unit): ``tracts`` if given, else the packaged LA
tracts when the boundary is LAPD, else NaN. ``region`` is the area name a unit belongs to:
its own name for areas, the area it overlaps most for cells, the majority area of its
events without a boundary, ``"all"`` with no areas at all. ``adjacency`` is 0/1 and
symmetric: polygons less than 50 m apart (simplified borders leave hairline gaps), queen
(8-neighbour) for the grid, shared edges for H3.

``assign`` uses the area / district id when it names a unit and the location otherwise;
grid and H3 units always use the location.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
import pyproj
import scipy.sparse as sp
import shapely

from crimecast.data.areas import LAPD_AREAS
from crimecast.data.boundaries import load_lapd_divisions, load_tracts
from crimecast.data.geo import (
    WGS84,
    AreaSet,
    assign_area_index,
    to_lonlat,
    to_projected,
    transform_geometry,
)
from crimecast.errors import ConfigError, DataError
from crimecast.features import grid as g
from crimecast.features.unit_ids import IdValues, id_keys, lookup_ids, lookup_keys
from crimecast.synthetic.tables import load_tables

logger = logging.getLogger(__name__)

SPATIAL_UNITS = ("area", "district", "grid", "h3")
MAX_GRID_CELLS = 200_000
ADJACENCY_TOLERANCE_M = 50.0
HULL_BUFFER_M = 500.0
NO_REGION = "all"


@dataclass(frozen=True, eq=False)
class UnitSet:
    """The spatial units of a panel (see the module docstring for each ``kind``).

    ``geometries`` are shapely objects in WGS84 lon/lat, ``projected`` the same in ``crs``
    metres. Grids also carry ``cell_size`` and ``cells`` (``(n, 2)`` int64 col, row).
    """

    kind: str
    ids: tuple[str, ...]
    names: tuple[str, ...]
    region: tuple[str, ...]
    population: np.ndarray
    crs: pyproj.CRS
    centroids: np.ndarray
    geometries: np.ndarray
    projected: np.ndarray
    adjacency: sp.csr_matrix
    cell_size: float | None = None
    cells: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self) -> dict[str, int]:
        """Unit id -> row index."""
        return {u: i for i, u in enumerate(self.ids)}

    @cached_property
    def _key_index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(id_keys(list(self.ids), self.kind).to_list())}

    @cached_property
    def _areas(self) -> AreaSet:
        return AreaSet(np.arange(len(self)), self.ids, self.geometries, source=self.kind)

    @cached_property
    def _lookup(self) -> g.CellLookup:
        assert self.cells is not None
        return g.CellLookup.build(self.cells)

    def assign(
        self, lat: np.ndarray, lon: np.ndarray, area_id: IdValues | None = None,
        district_id: IdValues | None = None,
    ) -> np.ndarray:
        """Unit index of each event (int64), -1 outside the study area.

        ``area`` units use ``area_id`` and ``district`` units ``district_id`` where it names
        a unit; other events, and all events for grid / H3 units, are placed by location.
        """
        la, lo = _coords(lat, lon)
        if self.kind == "grid":
            return self.assign_xy(*to_projected(la, lo, self.crs))
        ids = {"area": area_id, "district": district_id}.get(self.kind)
        out = np.full(la.size, -1, dtype=np.int64)
        if ids is not None:
            out = lookup_ids(ids, self.kind, la.size, self._key_index)
        todo = np.flatnonzero(out < 0)
        if todo.size:
            out[todo] = assign_area_index(la[todo], lo[todo], self._areas)
        return out

    def assign_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Like :meth:`assign` (by location) for coordinates already in ``crs``."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if self.cell_size is None:
            lon, lat = to_lonlat(x, y, self.crs)
            return self.assign(lat, lon)
        col, row, ok = g.cell_of(x, y, self.cell_size)
        return np.where(ok, self._lookup.find(col, row), -1)

    def expected_within(self, radius_m: float) -> float:
        """About how many units lie within ``radius_m`` metres of a point (for memory
        estimates): the disc widened by half a unit's diagonal, over a unit's mean area."""
        if len(self) == 0:
            return 0.0
        area = (self.cell_size**2 if self.cell_size is not None
                else float(np.mean(shapely.area(self.projected))))
        reach = radius_m + math.sqrt(area / 2)
        return float(min(len(self), max(1.0, math.pi * reach**2 / max(area, 1e-9))))

    def within(
        self, lat: np.ndarray, lon: np.ndarray, radius_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(event_idx, unit_idx)`` int64 pairs: the event lies within ``radius_m`` metres of
        the unit's geometry (0 inside it); exact, in no particular (but fixed) order."""
        return self.within_xy(*to_projected(*_coords(lat, lon), self.crs), radius_m)

    def within_xy(self, x: np.ndarray, y: np.ndarray, radius_m: float
                  ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`within` for coordinates already in ``crs``."""
        if not (radius_m >= 0 and math.isfinite(radius_m)):
            raise ConfigError(
                f"radius_m must be >= 0 metres; got {radius_m:g}. Pass a distance such as 400."
            )
        if self.cell_size is not None:
            return g.grid_within(x, y, self._lookup, self.cell_size, float(radius_m))
        return g.polygons_within(x, y, self.projected, float(radius_m))

    def kernel_weights(self, bandwidth_m: float, cutoff: float = 3.0) -> sp.csr_matrix:
        """Row-normalised Gaussian weights ``exp(-d²/2h²)`` between unit centroids, each unit
        itself included, zero beyond ``cutoff * bandwidth_m``."""
        if not (bandwidth_m > 0 and math.isfinite(bandwidth_m)):
            raise ConfigError(
                f"bandwidth_m must be > 0 metres; got {bandwidth_m:g}. Pass 500."
            )
        if not cutoff > 0:
            raise ConfigError(f"cutoff must be > 0 bandwidths; got {cutoff:g}. Pass 3.")
        return g.gaussian_weights(self.centroids, float(bandwidth_m), float(cutoff))

    def to_frame(self) -> pl.DataFrame:
        """One row per unit: ``unit_id, name, region, population, x, y, lon, lat`` (the
        centroid in ``crs`` metres and in WGS84)."""
        x, y = self.centroids[:, 0], self.centroids[:, 1]
        lon, lat = to_lonlat(x, y, self.crs)
        return pl.DataFrame({
            "unit_id": list(self.ids), "name": list(self.names), "region": list(self.region),
            "population": self.population, "x": x, "y": y, "lon": lon, "lat": lat,
        }, schema_overrides={"population": pl.Float64})


def _coords(lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    if la.shape != lo.shape:
        raise ValueError(f"lat has {la.size} values but lon has {lo.size}; they must match")
    return la, lo


def _is_lapd(areas: AreaSet | None) -> bool:
    if areas is None or areas.ids.dtype.kind not in "iu":
        return False
    return [LAPD_AREAS.get(i) for i in areas.ids.tolist()] == list(areas.names)


def _default_boundary(akeys: pl.Series | None) -> AreaSet | None:
    present = set() if akeys is None else set(akeys.drop_nulls().unique().to_list())
    return load_lapd_divisions() if present and present <= set(map(str, LAPD_AREAS)) else None


@dataclass(frozen=True, eq=False)
class _History:
    """The training events that choose the units, and what is known about their areas."""

    la: np.ndarray
    lo: np.ndarray
    akeys: pl.Series | None
    boundary: AreaSet | None
    crs: pyproj.CRS
    tracts: AreaSet | None

    @cached_property
    def area_index(self) -> np.ndarray:
        """Boundary area of each event: by area id where the boundary knows it, else by
        location; -1 in none."""
        assert self.boundary is not None
        keys = id_keys(self.boundary.ids.astype(str), "area").to_list()
        out = np.full(self.la.size, -1, dtype=np.int64)
        if self.akeys is not None:
            out = lookup_keys(self.akeys, {k: i for i, k in enumerate(keys)})
            unknown = self.akeys.filter(pl.Series(out < 0)).drop_nulls()
            if unknown.len():
                logger.warning("%d events have area ids not in %s (e.g. %r); placing them by "
                               "location", unknown.len(), self.boundary.source, unknown[0])
        todo = np.flatnonzero(out < 0)
        out[todo] = assign_area_index(self.la[todo], self.lo[todo], self.boundary)
        return out

    @cached_property
    def present(self) -> np.ndarray:
        """Indices (into the boundary) of the areas holding at least one history event."""
        assert self.boundary is not None
        keep = np.unique(self.area_index[self.area_index >= 0])
        if keep.size == 0:
            raise DataError(
                f"no history event lies in {self.boundary.source} (by area id or location), "
                "so the study area would be empty. Pass a boundary that matches the data, or "
                "--spatial-unit grid."
            )
        return keep

    @cached_property
    def polys(self) -> np.ndarray:
        """The present areas' polygons in ``crs``."""
        assert self.boundary is not None
        return transform_geometry(self.boundary.geometries[self.present], WGS84, self.crs)

    def population(self, projected: np.ndarray) -> np.ndarray:
        tracts = load_tracts() if self.tracts is None and _is_lapd(self.boundary) else self.tracts
        if tracts is None:
            return np.full(len(projected), np.nan)
        return g.interpolate_population(projected, tracts, self.crs)

    def regions(self, projected: np.ndarray, event_unit: Any) -> list[str]:
        """Area name per unit: the present area it overlaps most, else the majority area id
        of its events (``event_unit``: unit index per event), else ``NO_REGION``."""
        if self.boundary is not None:
            cell, poly = shapely.STRtree(self.polys).query(projected, predicate="intersects")
            owner = g.largest_overlap(projected, cell, poly, self.polys)
            names = [self.boundary.names[i] for i in self.present] + [NO_REGION]
            return [names[o] for o in owner.tolist()]  # -1 picks NO_REGION
        if self.akeys is None:
            return [NO_REGION] * len(projected)
        top = g.majority(pl.Series(event_unit), self.akeys)
        return [str(top.get(i, NO_REGION)) for i in range(len(projected))]

    def units(self, kind: str, ids: Sequence[str], names: Sequence[str], region: Sequence[str],
              population: np.ndarray, projected: Any, adjacency: sp.csr_matrix | None = None,
              geometries: np.ndarray | None = None, **grid_fields: Any) -> UnitSet:
        projected = np.asarray(projected, dtype=object)
        if geometries is None:
            geometries = np.asarray(transform_geometry(projected, self.crs, WGS84), dtype=object)
        if adjacency is None:  # H3 cells share exact edges: 1 m only absorbs rounding
            tolerance = 1.0 if kind == "h3" else ADJACENCY_TOLERANCE_M
            adjacency = g.polygon_adjacency(projected, tolerance)
        return UnitSet(
            kind, tuple(ids), tuple(names), tuple(region), np.asarray(population, np.float64),
            self.crs, shapely.get_coordinates(shapely.centroid(projected)), geometries,
            projected, adjacency, **grid_fields,
        )


def _area_units(h: _History) -> UnitSet:
    b = h.boundary
    if b is None:
        if h.akeys is None or h.akeys.null_count() == h.akeys.len():
            raise ConfigError(
                "spatial_unit 'area' needs an area_id column or a boundary; the data has "
                "neither. Pass a boundary GeoJSON or --spatial-unit grid."
            )
        raise ConfigError(
            f"spatial_unit 'area' needs area polygons; the area ids "
            f"{h.akeys.drop_nulls().unique().sort().head(5).to_list()} are not LAPD codes "
            "1..21 and no boundary was given. Pass a boundary GeoJSON or --spatial-unit grid."
        )
    keep = h.present
    names = [b.names[i] for i in keep]
    pop = b.populations[keep] if b.populations is not None else h.population(h.polys)
    ids = [str(v) for v in b.ids[keep].tolist()]
    return h.units("area", ids, names, names, pop, h.polys, geometries=b.geometries[keep])


def _district_units(h: _History, dkeys: pl.Series) -> UnitSet:
    b = h.boundary
    area = h.area_index if b is not None else np.full(h.la.size, -1, dtype=np.int64)
    ids, lat, lon, owner, top_key = g.district_sites(dkeys, area, h.akeys, h.la, h.lo)
    if b is not None and _is_lapd(b):
        t = load_tables()
        row_of = {f"{rd:04d}": k for k, rd in enumerate(t.district_rd.tolist())}
        area_pos = {a: i for i, a in enumerate(b.ids.tolist())}
        for k, row in enumerate(row_of.get(d) for d in ids):  # about 1,100 districts
            if row is not None:
                lat[k], lon[k] = t.district_lat[row], t.district_lon[row]
                owner[k] = owner[k] if owner[k] >= 0 else area_pos.get(t.district_area[row], -1)
    xy = np.column_stack(to_projected(lat, lon, h.crs))
    keep = np.isfinite(xy).all(axis=1) & ((owner >= 0) | (b is None))
    if b is None:
        events = np.column_stack(to_projected(h.la, h.lo, h.crs))
        hull = shapely.convex_hull(shapely.multipoints(events[np.isfinite(events).all(1)]))
        clips = np.asarray([hull.buffer(HULL_BUFFER_M)], dtype=object)
        owner[:] = 0
    else:
        clips = transform_geometry(b.geometries, WGS84, h.crs)
    geoms = g.grouped_voronoi(xy, owner, keep, clips)
    keep &= ~shapely.is_empty(geoms)
    if not keep.all():
        logger.warning("dropped %d district(s) with no location or area, e.g. %s",
                       (~keep).sum(), [ids[i] for i in np.flatnonzero(~keep)[:5]])
    if not keep.any():
        raise DataError("no district of the history has a location, so no district units "
                        "remain. Check the lat/lon columns or pass --spatial-unit area.")
    idx = np.flatnonzero(keep)
    kept = [ids[i] for i in idx]
    region = [str(top_key.get(ids[i], NO_REGION)) if b is None else b.names[owner[i]]
              for i in idx]
    return h.units("district", kept, kept, region, h.population(geoms[idx]), geoms[idx])


def _grid_units(h: _History, cell_size: float, max_cells: int) -> UnitSet:
    point_cell = None
    if h.boundary is not None:
        cells = g.cells_over_polygons(h.polys, cell_size, max_cells)
    else:
        x, y = to_projected(h.la, h.lo, h.crs)
        cells, point_cell = g.cells_of_points(x, y, cell_size, max_cells)
        if len(cells) == 0:
            raise DataError("no history event has coordinates, so the grid study area would "
                            "be empty. Check history_mask and lat/lon, or pass a boundary.")
    boxes = g.cell_boxes(cells, cell_size)
    ids = g.cell_ids(cells, cell_size)
    adjacency = g.grid_adjacency(cells, g.CellLookup.build(cells))
    return h.units("grid", ids, ids, h.regions(boxes, point_cell), h.population(boxes), boxes,
                   adjacency, cell_size=cell_size, cells=cells)


def _h3_units(h: _History, cell_size: float, max_cells: int) -> UnitSet:
    res = g.h3_resolution(cell_size)
    event_cell = None
    if h.boundary is not None:
        estimate = math.ceil(shapely.area(h.polys).sum() / g.h3_mean_area(res))
        g.check_cell_count(estimate, cell_size, max_cells, "h3")
        cells = g.h3_cells_over(shapely.union_all(h.boundary.geometries[h.present]), res)
    else:
        event_cell = g.h3_cells_of_points(h.la, h.lo, res)
        cells = sorted(set(event_cell.tolist()) - {""})
    g.check_cell_count(len(cells), cell_size, max_cells, "h3")
    if not cells:
        raise DataError("no history event has coordinates, so no H3 cell can be chosen.")
    if event_cell is not None:
        pos = {c: i for i, c in enumerate(cells)}
        event_cell = np.array([pos.get(c, -1) for c in event_cell.tolist()])
    geoms = g.h3_polygons(cells)
    proj = transform_geometry(geoms, WGS84, h.crs)
    return h.units("h3", cells, cells, h.regions(proj, event_cell), h.population(proj), proj,
                   geometries=geoms)


def build_units(
    kind: str, lat: np.ndarray, lon: np.ndarray, *, area_id: IdValues | None = None,
    district_id: IdValues | None = None, cell_size: float = 250.0,
    boundary: AreaSet | None = None, crs: str | None = None,
    history_mask: np.ndarray | None = None, tracts: AreaSet | None = None,
    max_cells: int = MAX_GRID_CELLS,
) -> UnitSet:
    """Build the spatial units of ``kind`` (and so the study area) from incident locations.

    Only the events ``history_mask`` selects (the training history; default all) choose the
    units. ``area_id`` / ``district_id`` hold one id per event (str or int, nulls allowed);
    ``boundary`` the area polygons (default: the LAPD divisions for LAPD area ids); ``crs``
    a projected metric CRS (default: UTM zone of the history's median point); ``tracts``
    census tracts for population; ``max_cells`` caps grid / H3 sizes. Raises ConfigError
    for a bad argument, DataError when no unit would remain and DependencyError for ``h3``
    without the h3 package. See the module docstring.
    """
    if kind not in SPATIAL_UNITS:
        raise ConfigError(f"spatial_unit must be one of {', '.join(SPATIAL_UNITS)}; got "
                          f"{kind!r}. Pass --spatial-unit area.")
    cell_size = float(cell_size)
    if not (cell_size > 0 and math.isfinite(cell_size)):
        raise ConfigError(f"cell_size must be > 0 metres; got {cell_size:g}. Pass --cell-size 250.")
    if max_cells < 1:
        raise ConfigError(f"max_cells must be >= 1; got {max_cells}. Pass 200000.")
    la, lo = _coords(lat, lon)
    rows = np.arange(la.size)
    if history_mask is not None:
        mask = np.asarray(history_mask).astype(bool).ravel()
        if mask.size != la.size:
            raise ValueError(f"history_mask has {mask.size} values but lat has {la.size}")
        rows = np.flatnonzero(mask)
    if rows.size == 0:
        raise DataError(f"history_mask selects none of the {la.size:,} events, so no unit can "
                        "be chosen. Widen the training window.")
    akeys = None if area_id is None else id_keys(area_id, "area", la.size, rows)
    dkeys = None
    if kind == "district" and district_id is not None:
        dkeys = id_keys(district_id, "district", la.size, rows)
    if kind == "district" and (dkeys is None or dkeys.null_count() == dkeys.len()):
        raise ConfigError("spatial_unit 'district' needs a district_id column; the data has "
                          "none. Pass --spatial-unit area or grid.")
    if kind == "h3":
        g.h3_resolution(cell_size)  # DependencyError before any work when h3 is missing
    la, lo = la[rows], lo[rows]
    boundary = boundary if boundary is not None else _default_boundary(akeys)
    h = _History(la, lo, akeys, boundary, g.metric_crs(crs, la, lo, boundary), tracts)
    if kind == "area":
        units = _area_units(h)
    elif kind == "district":
        assert dkeys is not None
        units = _district_units(h, dkeys)
    elif kind == "grid":
        units = _grid_units(h, cell_size, max_cells)
    else:
        units = _h3_units(h, cell_size, max_cells)
    logger.info("built %d %s units in %s from %d history events", len(units), kind,
                h.crs.name, rows.size)
    return units
