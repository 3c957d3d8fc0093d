"""Area boundaries, vectorised point-in-polygon and coordinate transforms.

Packaged boundaries (``resources/geo``, built by ``scripts/build_geo_weather_resources.py``)
and every :class:`AreaSet` are lon/lat EPSG:4326; buffers and distances use a UTM projection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyproj
import shapely
from shapely.geometry import mapping, shape

from crimecast.data.areas import LAPD_AREAS
from crimecast.data.study_mask import raster_of
from crimecast.errors import CRSError, DataFileError, SchemaError

logger = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
LA_UTM = "EPSG:32611"  # UTM zone 11N: metric, < 0.1 % scale error across Los Angeles
OUTSIDE_INT = -1
OUTSIDE_STR = ""
_OK_CRS = {"EPSG:4326", "OGC:CRS84", "EPSG:4269"}  # lon/lat; NAD83 differs by < 2 m


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


def _crs_of(doc: dict[str, Any], label: str) -> pyproj.CRS | None:
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name")
    if name is None:
        return None
    try:
        crs = pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"boundary file {label} declares an unknown CRS {name!r}. Reproject it to "
            "EPSG:4326 (the GeoJSON standard) or declare a valid EPSG code."
        ) from exc
    auth = crs.to_authority()
    return None if auth and ":".join(auth) in _OK_CRS else crs


def _property(props: dict[str, Any], prop: str, i: int, label: str, kind: str) -> Any:
    # The column map's boundary_id_property / boundary_name_property choose these.
    key = f"boundary_{kind}_property" if kind != "population" else "the population property"
    if prop not in props:
        raise SchemaError(
            f"boundary file {label} has no property '{prop}' on feature {i}; "
            f"available: {sorted(props)}. Set {key} to one of them."
        )
    v = props[prop]
    if kind == "id" and v is None:
        raise SchemaError(
            f"boundary file {label} has a null '{prop}' on feature {i}; every feature needs "
            f"an id. Fill it in or set another {key}."
        )
    numeric = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
    if kind == "population" and v is not None and not numeric:
        raise SchemaError(
            f"boundary file {label} property '{prop}' on feature {i} is {v!r}, not a number. "
            f"Fix the value or omit {key}."
        )
    return v


def areas_from_geojson(
    doc: str | dict[str, Any],
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
    label: str = "'<memory>'",
) -> AreaSet:
    """Build an :class:`AreaSet` from GeoJSON text or a parsed FeatureCollection (rules as
    :func:`load_area_geojson`); ``label`` names the source in error messages."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise DataFileError(
                f"boundary file {label} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}). Export the boundaries as GeoJSON (RFC 7946)."
            ) from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise DataFileError(
            f"boundary file {label} is not a GeoJSON FeatureCollection (top-level type is "
            f"{kind!r}). Export the boundaries as a FeatureCollection of polygons."
        )
    features = doc.get("features") or []
    if not features:
        raise DataFileError(
            f"boundary file {label} has no features; at least one Polygon or MultiPolygon "
            "feature is required."
        )
    ids, names, pops, geoms = [], [], [], []
    for i, feat in enumerate(features):
        props = (feat.get("properties") if isinstance(feat, dict) else None) or {}
        ids.append(_property(props, id_property, i, label, "id"))
        name = (
            ids[-1] if name_property is None else _property(props, name_property, i, label, "name")
        )
        names.append(str(name))
        if population_property is not None:
            v = _property(props, population_property, i, label, "population")
            pops.append(np.nan if v is None else float(v))
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        gtype = geom.get("type") if isinstance(geom, dict) else None
        if gtype not in ("Polygon", "MultiPolygon"):
            raise DataFileError(
                f"boundary file {label} feature {i} has geometry type {gtype!r}; area "
                "boundaries must be Polygon or MultiPolygon. Remove or convert that feature."
            )
        try:
            geoms.append(shape(geom))
        except (ValueError, TypeError, IndexError, KeyError, shapely.errors.ShapelyError) as exc:
            raise DataFileError(
                f"boundary file {label} feature {i} has unreadable coordinates ({exc}). "
                "Fix the feature's geometry."
            ) from exc
    garr = np.asarray(geoms, dtype=object)
    crs = _crs_of(doc, label)
    if crs is not None:
        logger.info("reprojecting boundary file %s from %s to EPSG:4326", label, crs.name)
        garr = transform_geometry(garr, crs, WGS84)
    minx, miny, maxx, maxy = shapely.total_bounds(garr)
    if min(minx, miny) < -180 or maxx > 180 or maxy > 90 or miny < -90:
        raise DataFileError(
            f"boundary file {label} has coordinates outside longitude/latitude range (bounds "
            f"{[round(float(b), 3) for b in (minx, miny, maxx, maxy)]}); GeoJSON must be in "
            "EPSG:4326. Reproject the file or declare its CRS in a 'crs' member."
        )
    bad = ~shapely.is_valid(garr)
    if bad.any():
        logger.warning("boundary file %s: repairing %d invalid polygon(s)", label, bad.sum())
        garr[bad] = shapely.make_valid(garr[bad])
    ints = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in ids)
    return AreaSet(
        ids=np.asarray(ids, dtype=np.int64) if ints else np.asarray([str(v) for v in ids]),
        names=tuple(names),
        geometries=garr,
        populations=None if population_property is None else np.asarray(pops, dtype=np.float64),
        source=f"boundary file {label}",
    )


def load_area_geojson(
    path: str | Path,
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
) -> AreaSet:
    """Load any polygon GeoJSON FeatureCollection as an :class:`AreaSet`.

    Features must be (Multi)Polygons with a unique, non-null ``id_property``; a legacy ``crs``
    member other than EPSG:4326/CRS84/4269 is reprojected to EPSG:4326. Raises DataFileError
    (missing, unreadable or invalid file), SchemaError (missing/null/duplicate id, non-numeric
    population) or CRSError (unknown CRS).
    """
    label = f"'{path}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "does not exist" if isinstance(exc, FileNotFoundError) else f"is unreadable ({exc})"
        raise DataFileError(
            f"boundary file {label} {why}. Pass the path of a UTF-8 GeoJSON FeatureCollection "
            "of Polygon/MultiPolygon features."
        ) from exc
    return areas_from_geojson(text, id_property, name_property, population_property, label)


def _resource_text(name: str) -> str:
    ref = resources.files("crimecast") / "resources" / "geo" / name
    try:
        return ref.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise DataFileError(
            f"packaged resource 'resources/geo/{name}' is missing or unreadable ({exc}). "
            "Reinstall crimecast or rebuild it with scripts/build_geo_weather_resources.py."
        ) from exc


def _load_resource(name: str, id_prop: str, name_prop: str | None, pop: str | None) -> AreaSet:
    label = f"'resources/geo/{name}'"
    return areas_from_geojson(_resource_text(name), id_prop, name_prop, pop, label)


def load_lapd_divisions() -> AreaSet:
    """The 21 LAPD divisions in ``AREA`` order: ids 1..21, names as ``LAPD_AREAS``, population
    (2020s estimates, 3.9M in total)."""
    areas = _load_resource("lapd_divisions.geojson", "area_id", "area_name", "population")
    if [LAPD_AREAS.get(i) for i in areas.ids.tolist()] != list(areas.names):
        raise DataFileError(
            "packaged 'resources/geo/lapd_divisions.geojson' does not list the 21 divisions in "
            "AREA order with canonical names. Rebuild it with build_geo_weather_resources.py."
        )
    return areas


def load_tracts() -> AreaSet:
    """2020 LA County census tracts overlapping the LAPD divisions (ids = GEOID strings).

    Tracts with >= 1 % of their area inside LAPD are kept; each one's share (``lapd_share``)
    is in the file (see :func:`load_geojson_resource`), not in the AreaSet.
    """
    return _load_resource("la_tracts_lapd.geojson", "GEOID", None, "population")


def load_portland_districts() -> AreaSet:
    """The 60 Portland Police districts (ids like ``'510'``, names like ``'District 510'``)."""
    return _load_resource("portland_police_districts.geojson", "district", "name", None)


def load_geojson_resource(name: str) -> dict[str, Any]:
    """A packaged GeoJSON as a dict, e.g. ``'lapd_stations.geojson'`` (21 stations, ``PREC``
    = area id) or ``'la_tracts_lapd.geojson'`` (with ``lapd_share``), for serving as is."""
    doc: dict[str, Any] = json.loads(_resource_text(name))
    return doc


def areas_to_geojson(areas: AreaSet) -> dict[str, Any]:
    """GeoJSON FeatureCollection (EPSG:4326) with ``id, name, population`` properties."""
    pops = [None] * len(areas) if areas.populations is None else areas.populations.tolist()
    features = [
        {
            "type": "Feature",
            "id": gid,
            "properties": {"id": gid, "name": name, "population": None if p != p else p},
            "geometry": mapping(geom),
        }
        for gid, name, p, geom in zip(
            areas.ids.tolist(), areas.names, pops, areas.geometries, strict=True
        )
    ]
    return {"type": "FeatureCollection", "features": features}
