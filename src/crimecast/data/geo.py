"""Area boundaries, vectorised point-in-polygon and coordinate transforms.

Packaged boundary sets (EPSG:4326 GeoJSON under ``crimecast/resources/geo``, derived by
``scripts/build_geo_weather_resources.py``): the 21 LAPD divisions with population, the LA
County census tracts that overlap them, the LAPD stations and the Portland Police districts.
Geometries are always longitude/latitude (EPSG:4326); distances and buffers are computed in
a projected CRS (UTM) because degrees are not a unit of length.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
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
from crimecast.errors import CRSError, DataFileError, SchemaError

logger = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
LA_UTM = "EPSG:32611"  # UTM zone 11N: metric, < 0.1 % scale error across Los Angeles
OUTSIDE_INT = -1
OUTSIDE_STR = ""
_OK_CRS = {"EPSG:4326", "OGC:CRS84", "EPSG:4269"}  # lon/lat; NAD83 differs by < 2 m


@dataclass(frozen=True, eq=False)
class AreaSet:
    """A set of named polygon areas in EPSG:4326.

    ``ids`` is an int64 array (LAPD ``AREA`` codes) or a str array (tract GEOIDs, Portland
    districts); ``geometries`` is an object array of shapely Polygon/MultiPolygon (lon/lat);
    ``populations`` is a float64 array or None.
    """

    ids: np.ndarray
    names: tuple[str, ...]
    geometries: np.ndarray
    populations: np.ndarray | None = None
    source: str = "areas"

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.names) != n or len(self.geometries) != n:
            raise SchemaError(
                f"{self.source}: {n} ids, {len(self.names)} names and {len(self.geometries)} "
                "geometries; every area needs exactly one of each."
            )
        if self.populations is not None and len(self.populations) != n:
            raise SchemaError(f"{self.source}: {len(self.populations)} populations for {n} areas")
        uniq, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise SchemaError(
                f"{self.source}: duplicate area ids {uniq[counts > 1][:5].tolist()}; "
                "area ids must be unique. Merge those features or choose another id property."
            )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def outside_id(self) -> int | str:
        """The marker :func:`assign_areas` returns for points outside every area."""
        return OUTSIDE_INT if self.ids.dtype.kind in "iu" else OUTSIDE_STR

    @cached_property
    def tree(self) -> shapely.STRtree:
        """STRtree over the (prepared) geometries; built on first use."""
        shapely.prepare(self.geometries)
        return shapely.STRtree(self.geometries)

    def to_frame(self) -> pl.DataFrame:
        """Attribute table: ``id, name, population``."""
        pops = self.populations if self.populations is not None else [None] * len(self)
        return pl.DataFrame(
            {"id": self.ids, "name": list(self.names), "population": pops},
            schema_overrides={"population": pl.Float64},
        )


def _coerce_ids(values: Sequence[Any]) -> np.ndarray:
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in values], dtype=str)


def resolve_crs(crs: pyproj.CRS | str | int) -> pyproj.CRS:
    """Parse a CRS given as ``pyproj.CRS``, EPSG int, ``'EPSG:xxxx'``, WKT or PROJ string."""
    if isinstance(crs, pyproj.CRS):
        return crs
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"unknown CRS {crs!r}: pyproj cannot parse it. Pass an EPSG code such as "
            "'EPSG:32611' (UTM 11N, Los Angeles) or 'EPSG:2913' (Oregon North, ft), "
            "or a WKT string."
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

    Points on a shared border, or in overlapping areas, go to the lowest index. NaN
    coordinates are outside. Candidates come from the STRtree bounding-box query, then each
    prepared polygon tests only its own candidates with ``shapely.intersects_xy``.
    """
    la, lo, ok = _points(lat, lon)
    out = np.full(la.size, -1, dtype=np.int64)
    idx = np.flatnonzero(ok)
    if idx.size == 0 or len(areas) == 0:
        return out
    pt, poly = areas.tree.query(shapely.points(lo[idx], la[idx]))
    order = np.argsort(poly, kind="stable")
    pt, poly = pt[order], poly[order]
    cuts = np.flatnonzero(np.diff(poly)) + 1
    for group, p in zip(np.split(pt, cuts), poly[np.r_[0, cuts]], strict=True):
        cand = idx[group]
        cand = cand[out[cand] < 0]
        if cand.size:
            hit = shapely.intersects_xy(areas.geometries[p], lo[cand], la[cand])
            out[cand[hit]] = p
    return out


def assign_areas(lat: np.ndarray, lon: np.ndarray, areas: AreaSet) -> np.ndarray:
    """Area id containing each point; ``areas.outside_id`` (-1 or ``""``) outside all areas."""
    index = assign_area_index(lat, lon, areas)
    ids = (
        areas.ids[np.clip(index, 0, None)] if len(areas) else np.empty(index.size, areas.ids.dtype)
    )
    return np.where(index >= 0, ids, np.asarray(areas.outside_id, dtype=areas.ids.dtype))


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
    shapely.prepare(geom)
    out = np.zeros(la.size, dtype=bool)
    out[ok] = shapely.intersects_xy(geom, lo[ok], la[ok])
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


def _property(props: dict[str, Any], prop: str, i: int, label: str, flag: str) -> Any:
    if prop not in props:
        raise SchemaError(
            f"boundary file {label} has no property '{prop}' on feature {i}; "
            f"available: {sorted(props)}. Pass {flag} with one of them."
        )
    return props[prop]


def areas_from_geojson(
    doc: Any,
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
    label: str = "'<memory>'",
) -> AreaSet:
    """Build an :class:`AreaSet` from a parsed GeoJSON FeatureCollection (see
    :func:`load_area_geojson` for the rules); ``label`` names the source in errors."""
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
        gid = _property(props, id_property, i, label, "--area-id-property")
        if gid is None:
            raise SchemaError(
                f"boundary file {label} has a null '{id_property}' on feature {i}; every "
                "feature needs an id. Fill it in or pass another --area-id-property."
            )
        ids.append(gid)
        if name_property is None:
            names.append(str(gid))
        else:
            names.append(str(_property(props, name_property, i, label, "--area-name-property")))
        if population_property is not None:
            v = _property(props, population_property, i, label, "--area-population-property")
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise SchemaError(
                    f"boundary file {label} property '{population_property}' on feature {i} "
                    f"is {v!r}, not a number. Fix the value or omit --area-population-property."
                )
            pops.append(np.nan if v is None else float(v))
        gtype = ((feat.get("geometry") or {}).get("type")) if isinstance(feat, dict) else None
        if gtype not in ("Polygon", "MultiPolygon"):
            raise DataFileError(
                f"boundary file {label} feature {i} has geometry type {gtype!r}; area "
                "boundaries must be Polygon or MultiPolygon. Remove or convert that feature."
            )
        try:
            geoms.append(shape(feat["geometry"]))
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
    return AreaSet(
        ids=_coerce_ids(ids),
        names=tuple(names),
        geometries=garr,
        populations=None if population_property is None else np.asarray(pops, dtype=np.float64),
        source=label,
    )


def load_area_geojson(
    path: str | Path,
    id_property: str,
    name_property: str | None = None,
    population_property: str | None = None,
) -> AreaSet:
    """Load any polygon GeoJSON FeatureCollection as an :class:`AreaSet`.

    Features must be Polygon/MultiPolygon with a unique, non-null ``id_property``. A legacy
    ``crs`` member other than EPSG:4326/CRS84/EPSG:4269 is reprojected to EPSG:4326.
    Raises :class:`DataFileError` (missing, unreadable or non-GeoJSON file), ``SchemaError``
    (missing/null/duplicate id, non-numeric population) or ``CRSError`` (unknown CRS).
    """
    label = f"'{path}'"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataFileError(
            f"boundary file {label} does not exist. Pass the path of a GeoJSON "
            "FeatureCollection of Polygon/MultiPolygon features."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(
            f"boundary file {label} cannot be read as UTF-8 text ({exc}). "
            "Pass a GeoJSON file encoded as UTF-8."
        ) from exc
    return _parse_and_build(text, label, id_property, name_property, population_property)


def _parse_and_build(
    text: str, label: str, id_property: str, name_property: str | None, pop_property: str | None
) -> AreaSet:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"boundary file {label} is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}). Export the boundaries as GeoJSON (RFC 7946)."
        ) from exc
    return areas_from_geojson(doc, id_property, name_property, pop_property, label)


def _resource_text(name: str) -> str:
    ref = resources.files("crimecast") / "resources" / "geo" / name
    try:
        return ref.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise DataFileError(
            f"packaged boundary resource 'resources/geo/{name}' is missing or unreadable "
            f"({exc}). Reinstall crimecast or rebuild it with "
            "scripts/build_geo_weather_resources.py."
        ) from exc


def _load_resource(name: str, id_prop: str, name_prop: str | None, pop: str | None) -> AreaSet:
    return _parse_and_build(
        _resource_text(name), f"'resources/geo/{name}'", id_prop, name_prop, pop
    )


def load_lapd_divisions() -> AreaSet:
    """The 21 LAPD divisions: ids = ``AREA`` codes 1..21, canonical names, population."""
    areas = _load_resource("lapd_divisions.geojson", "area_id", "area_name", "population")
    if sorted(areas.ids.tolist()) != sorted(LAPD_AREAS):
        raise DataFileError(
            f"packaged LAPD divisions have ids {sorted(areas.ids.tolist())}, expected 1..21. "
            "Rebuild them with scripts/build_geo_weather_resources.py."
        )
    return _reorder(areas, np.argsort(areas.ids))


def load_tracts() -> AreaSet:
    """2020 LA County census tracts overlapping the LAPD divisions (ids = GEOID strings).

    The file's ``lapd_share`` property (share of tract area inside LAPD) is not carried
    by the AreaSet; read it with :func:`load_geojson_resource` when needed.
    """
    return _load_resource("la_tracts_lapd.geojson", "GEOID", None, "population")


def load_portland_districts() -> AreaSet:
    """The 60 Portland Police districts (ids like ``'510'``, names ``'District 510 (NO)'``)."""
    return _load_resource("portland_police_districts.geojson", "district", "name", None)


def load_geojson_resource(name: str) -> dict[str, Any]:
    """Parsed packaged GeoJSON, e.g. ``'lapd_stations.geojson'`` (for serving as is)."""
    doc: dict[str, Any] = json.loads(_resource_text(name))
    return doc


def load_lapd_stations() -> pl.DataFrame:
    """The 21 LAPD stations: ``area_id, division, address, lat, lon``."""
    rows = load_geojson_resource("lapd_stations.geojson")["features"]
    return pl.DataFrame(
        {
            "area_id": [int(f["properties"]["PREC"]) for f in rows],
            "division": [str(f["properties"]["DIVISION"]) for f in rows],
            "address": [str(f["properties"]["LOCATION"]) for f in rows],
            "lat": [float(f["geometry"]["coordinates"][1]) for f in rows],
            "lon": [float(f["geometry"]["coordinates"][0]) for f in rows],
        }
    ).sort("area_id")


def _reorder(areas: AreaSet, order: np.ndarray) -> AreaSet:
    return AreaSet(
        ids=areas.ids[order],
        names=tuple(areas.names[i] for i in order),
        geometries=areas.geometries[order],
        populations=None if areas.populations is None else areas.populations[order],
        source=areas.source,
    )


def areas_to_geojson(
    areas: AreaSet, geometry_fn: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """GeoJSON FeatureCollection (EPSG:4326) with ``id, name, population`` properties.

    ``geometry_fn`` optionally maps each geometry first (e.g. a simplification for serving).
    """
    features = []
    for i in range(len(areas)):
        geom = areas.geometries[i] if geometry_fn is None else geometry_fn(areas.geometries[i])
        pop = None if areas.populations is None else areas.populations[i]
        gid = areas.ids[i].item()
        features.append(
            {
                "type": "Feature",
                "id": gid,
                "properties": {
                    "id": gid,
                    "name": areas.names[i],
                    "population": None if pop is None or np.isnan(pop) else float(pop),
                },
                "geometry": mapping(geom),
            }
        )
    return {"type": "FeatureCollection", "features": features}
