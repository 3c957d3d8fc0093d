"""Areas, vectorised point-in-polygon and coordinate transforms.

Every :class:`AreaSet` is lon/lat EPSG:4326 (loaded from GeoJSON by
:mod:`crimecast.data.boundaries`; packaged ones in ``resources/geo``, built by
``scripts/build_geo_weather_resources.py``); buffers and distances use a UTM projection.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import polars as pl
import pyproj
import shapely

from crimecast.data.study_mask import raster_of
from crimecast.errors import CRSError, SchemaError

WGS84 = "EPSG:4326"
LA_UTM = "EPSG:32611"  # UTM zone 11N: metric, < 0.1 % scale error across Los Angeles
OUTSIDE_INT = -1
OUTSIDE_STR = ""


@dataclass(frozen=True, eq=False)
class _Grid:
    # Regular lon/lat grid: ``full[cell]`` is the only area covering the cell (else -1);
    # (pair_cell, pair_area), sorted by area, lists cells that need a point-in-polygon test.
    x0: float
    y0: float
    x1: float
    y1: float
    dx: float
    dy: float
    n: int
    full: np.ndarray
    pair_cell: np.ndarray
    pair_area: np.ndarray


@dataclass(frozen=True, eq=False)
class AreaSet:
    """Named polygon areas: ``ids`` int64 (LAPD ``AREA``) or str (GEOIDs) array, ``geometries``
    object array of shapely (Multi)Polygons in lon/lat, ``populations`` float64 array or None."""

    ids: np.ndarray
    names: tuple[str, ...]
    geometries: np.ndarray
    populations: np.ndarray | None = None
    source: str = "area set"

    def __post_init__(self) -> None:
        n = len(self.ids)
        pops = n if self.populations is None else len(self.populations)
        if n == 0 or not len(self.names) == len(self.geometries) == pops == n:
            raise ValueError(f"{self.source}: needs >= 1 area and one name/geometry/pop per id")
        uniq, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise SchemaError(
                f"{self.source} has duplicate area ids {uniq[counts > 1][:5].tolist()}; area "
                "ids must be unique. Merge those features or choose another id property."
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def outside_id(self) -> int | str:
        """The marker :func:`assign_areas` returns for points outside every area."""
        return OUTSIDE_INT if self.ids.dtype.kind in "iu" else OUTSIDE_STR

    @cached_property
    def grid(self) -> _Grid:
        """Lookup grid over the (prepared) geometries for :func:`assign_area_index`."""
        shapely.prepare(self.geometries)
        x0, y0, x1, y1 = shapely.total_bounds(self.geometries)
        n = int(np.clip(np.sqrt(len(self)) * 6, 16, 256))
        dx, dy = max((x1 - x0) / n, 1e-9), max((y1 - y0) / n, 1e-9)
        iy, ix = np.divmod(np.arange(n * n), n)
        boxes = shapely.box(x0 + ix * dx, y0 + iy * dy, x0 + (ix + 1) * dx, y0 + (iy + 1) * dy)
        cell, area = shapely.STRtree(self.geometries).query(boxes, predicate="intersects")
        sole = np.bincount(cell, minlength=n * n)[cell] == 1
        sole[sole] = shapely.covers(self.geometries[area[sole]], boxes[cell[sole]])
        full = np.full(n * n, -1, dtype=np.int64)
        full[cell[sole]] = area[sole]
        order = np.lexsort((cell[~sole], area[~sole]))
        return _Grid(x0, y0, x1, y1, dx, dy, n, full, cell[~sole][order], area[~sole][order])

    def to_frame(self) -> pl.DataFrame:
        """Attribute table: ``id, name, population``."""
        pops = self.populations if self.populations is not None else [None] * len(self)
        return pl.DataFrame(
            {"id": self.ids, "name": list(self.names), "population": pops},
            schema_overrides={"population": pl.Float64},
        )


def resolve_crs(crs: pyproj.CRS | str | int) -> pyproj.CRS:
    """Parse a CRS given as ``pyproj.CRS``, EPSG int, ``'EPSG:xxxx'``, WKT or PROJ string."""
    if isinstance(crs, pyproj.CRS):
        return crs
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"unknown CRS {crs!r}: pyproj cannot parse it. Pass an EPSG code such as 'EPSG:32611'"
            " (UTM 11N, Los Angeles) or 'EPSG:2913' (Oregon North, ft), or a WKT string."
        ) from exc


def utm_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The WGS 84 UTM zone CRS containing a point (EPSG:326zz north, 327zz south).

    The Norway/Svalbard zone exceptions are ignored. Los Angeles gives EPSG:32611.
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise CRSError(
            f"utm_crs_for: ({lon}, {lat}) is not a longitude/latitude pair; longitude must be "
            "in [-180, 180] and latitude in [-90, 90]. Check the argument order (lon, lat)."
        )
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


@lru_cache(maxsize=64)
def _transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def to_projected(
    lat: np.ndarray, lon: np.ndarray, crs: pyproj.CRS | str | int = LA_UTM
) -> tuple[np.ndarray, np.ndarray]:
    """Transform lon/lat (EPSG:4326) arrays to ``(x, y)`` in ``crs`` (metres for UTM)."""
    t = _transformer(pyproj.CRS.from_user_input(WGS84), resolve_crs(crs))
    x, y = t.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    return np.asarray(x), np.asarray(y)


def to_lonlat(
    x: np.ndarray, y: np.ndarray, crs: pyproj.CRS | str | int
) -> tuple[np.ndarray, np.ndarray]:
    """Transform ``(x, y)`` arrays in ``crs`` to ``(lon, lat)`` arrays in EPSG:4326."""
    t = _transformer(resolve_crs(crs), pyproj.CRS.from_user_input(WGS84))
    lon, lat = t.transform(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.asarray(lon), np.asarray(lat)


def transform_geometry(geom: Any, src: pyproj.CRS | str | int, dst: pyproj.CRS | str | int) -> Any:
    """Reproject a shapely geometry (or array of them) from ``src`` to ``dst``."""
    t = _transformer(resolve_crs(src), resolve_crs(dst))

    def fn(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(t.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geom, fn)


def _points(lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    la = np.asarray(lat, dtype=np.float64).ravel()
    lo = np.asarray(lon, dtype=np.float64).ravel()
    if la.shape != lo.shape:
        raise ValueError(f"lat has {la.size} values but lon has {lo.size}; they must match")
    return la, lo, np.isfinite(la) & np.isfinite(lo)


def assign_area_index(lat: np.ndarray, lon: np.ndarray, areas: AreaSet) -> np.ndarray:
    """Index (into ``areas``) of the area containing each point, or -1 outside every area.

    Points on a shared border, or in overlapping areas, go to the lowest index; NaN
    coordinates are outside. Points in grid cells that lie inside a single area are
    assigned directly; the rest are tested against the prepared polygons that touch their
    cell with ``shapely.intersects_xy`` (no point geometries are created).
    """
    la, lo, ok = _points(lat, lon)
    out = np.full(la.size, -1, dtype=np.int64)
    g = areas.grid
    idx = np.flatnonzero(ok & (lo >= g.x0) & (lo <= g.x1) & (la >= g.y0) & (la <= g.y1))
    cx, cy = np.floor((lo - g.x0) / g.dx), np.floor((la - g.y0) / g.dy)
    cell = np.minimum(cy[idx], g.n - 1).astype(np.int64) * g.n
    cell += np.minimum(cx[idx], g.n - 1).astype(np.int64)
    out[idx] = g.full[cell]
    todo = out[idx] < 0
    rest, rcell = idx[todo], cell[todo]
    # Expand the grid's (cell, area) pairs into (point, area) candidate pairs.
    order = np.argsort(rcell, kind="stable")
    counts = np.bincount(rcell, minlength=g.n * g.n)
    starts = np.cumsum(counts) - counts
    per_pair = counts[g.pair_cell]
    rep = np.repeat(np.arange(per_pair.size), per_pair)
    if rep.size == 0:
        return out
    offset = np.arange(rep.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    cand_pt, cand_area = rest[order[starts[g.pair_cell][rep] + offset]], g.pair_area[rep]
    cuts = np.flatnonzero(np.diff(cand_area)) + 1
    for group, a in zip(np.split(cand_pt, cuts), cand_area[np.r_[0, cuts]], strict=True):
        group = group[out[group] < 0]
        if group.size:
            hit = shapely.intersects_xy(areas.geometries[a], lo[group], la[group])
            out[group[hit]] = a
    return out


def assign_areas(lat: np.ndarray, lon: np.ndarray, areas: AreaSet) -> np.ndarray:
    """Area id containing each point; ``areas.outside_id`` (-1 or ``""``) outside all areas."""
    index = assign_area_index(lat, lon, areas)
    outside = np.asarray(areas.outside_id, dtype=areas.ids.dtype)
    return np.where(index >= 0, areas.ids[np.clip(index, 0, None)], outside)


def study_area(areas: AreaSet, buffer_m: float = 0.0) -> Any:
    """Union of all areas, optionally buffered by ``buffer_m`` metres (negative shrinks).

    The buffer is applied in the UTM zone of the union's centroid, then converted back to
    EPSG:4326, so it is a true distance rather than degrees.
    """
    union = shapely.union_all(areas.geometries)
    if buffer_m == 0:
        return union
    c = union.centroid
    crs = utm_crs_for(c.x, c.y)
    projected = transform_geometry(union, WGS84, crs)
    return transform_geometry(projected.buffer(buffer_m), crs, WGS84)


def points_in_study_area(lat: np.ndarray, lon: np.ndarray, geom: Any) -> np.ndarray:
    """Boolean mask: point inside (or on the border of) ``geom``; NaN coordinates are False."""
    la, lo, ok = _points(lat, lon)
    out = np.zeros(la.size, dtype=bool)
    out[ok] = raster_of(geom).contains_xy(lo[ok], la[ok])
    return out
