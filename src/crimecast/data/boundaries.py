"""Area boundaries from GeoJSON: files a user names and the packaged ones.

Every :class:`~crimecast.data.geo.AreaSet` built here is lon/lat EPSG:4326; a legacy
``crs`` member naming another system is reprojected on load.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.geometry import mapping, shape

from crimecast.data.areas import LAPD_AREAS
from crimecast.data.geo import WGS84, AreaSet, transform_geometry
from crimecast.errors import CRSError, DataFileError, SchemaError

logger = logging.getLogger(__name__)

_OK_CRS = {"EPSG:4326", "OGC:CRS84", "EPSG:4269"}  # lon/lat; NAD83 differs by < 2 m


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
