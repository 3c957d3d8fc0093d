"""Forecasts as GeoJSON (for GIS and CAD systems) and as a patrol-box CSV.

Geometries are serialised once per server (``UnitShapes``); a response joins
the ready-made feature strings of the top units, so ``/hotspots`` costs little
more than the bytes it sends.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import shapely

from crimecast.data.boundaries import load_tracts
from crimecast.data.geo import assign_areas
from crimecast.features.unit_table import table_geometries
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecast

MAP_SIMPLIFY_DEG = 0.0003  # about 30 m: invisible on a phone, a tenth of the bytes


@dataclass(frozen=True, eq=False)
class UnitShapes:
    """Each unit's geometry (GeoJSON text), centroid and bounding box, by unit id."""

    geometry: dict[str, str]
    centroid: dict[str, tuple[float, float]]
    bbox: dict[str, tuple[float, float, float, float]]
    wkt: dict[str, str]
    place: dict[str, str]

    @classmethod
    def from_table(cls, table: pl.DataFrame) -> UnitShapes:
        """Build from a unit table (``units.parquet``)."""
        geoms = table_geometries(table)
        ids = table["unit_id"].cast(pl.Utf8).to_list()
        points = shapely.get_coordinates(shapely.point_on_surface(geoms))
        bounds = shapely.bounds(geoms)
        return cls(
            geometry={u: shapely.to_geojson(g, indent=None) for u, g in zip(ids, geoms,
                                                                            strict=True)},
            centroid={u: (float(p[0]), float(p[1])) for u, p in zip(ids, points, strict=True)},
            bbox={u: tuple(float(v) for v in b) for u, b in zip(ids, bounds, strict=True)},  # type: ignore[misc]
            wkt=dict(zip(ids, table["wkt"].to_list(), strict=True)),
            place=dict(zip(ids, place_names(table, points), strict=True)),
        )


def tract_label(geoid: str) -> str:
    """A census tract's usual name from its 11-digit GEOID: ``06037207301`` -> ``2073.01``."""
    code = geoid[-6:]
    return f"{int(code[:4])}.{code[4:]}" if code[4:] != "00" else str(int(code[:4]))


def place_names(table: pl.DataFrame, points: np.ndarray) -> list[str]:
    """A human name per unit. Named units (areas, districts) keep their name (and their
    division); generated ids (grid cells, H3) become the division, the census tract
    (where the packaged LA tracts cover the unit) and the centre's coordinates, e.g.
    ``Central · tract 2073.01 · 34.04590, -118.25450``."""
    ids = table["unit_id"].cast(pl.Utf8).to_list()
    names = table["name"].cast(pl.Utf8).to_list()
    regions = table["region"].cast(pl.Utf8).to_list()
    lon, lat = points[:, 0], points[:, 1]
    tracts = load_tracts()
    found = assign_areas(lat, lon, tracts)
    out = []
    for unit, name, region, tract, la, lo in zip(ids, names, regions, found, lat, lon,
                                                 strict=True):
        if name and name != unit:
            out.append(name if not region or region in (name, "all") else f"{name} · {region}")
            continue
        parts = [region] if region and region != "all" else []
        if tract != tracts.outside_id:
            parts.append(f"tract {tract_label(str(tract))}")
        parts.append(f"{la:.5f}, {lo:.5f}")
        out.append(" · ".join(parts))
    return out


def tract_outlines(table: pl.DataFrame) -> dict[str, Any]:
    """The packaged census tracts that overlap the units (none outside Los Angeles),
    simplified for drawing."""
    x0, y0, x1, y1 = shapely.total_bounds(table_geometries(table))
    tracts = load_tracts()
    near = shapely.intersects(tracts.geometries, shapely.box(x0, y0, x1, y1))
    features = [{"type": "Feature", "properties": {"tract": tract_label(str(geoid)),
                                                   "population": population},
                 "geometry": json.loads(shapely.to_geojson(
                     shapely.simplify(geometry, MAP_SIMPLIFY_DEG, preserve_topology=True)))}
                for geoid, geometry, population, keep in zip(
                    tracts.ids, tracts.geometries, tracts.populations
                    if tracts.populations is not None else [None] * len(tracts), near,
                    strict=True) if keep]
    return {"type": "FeatureCollection", "features": features}


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="minutes")


def provenance(forecast: Forecast) -> dict[str, Any]:
    """What the forecast rests on: when the latest known event occurred and how many
    events were known at issue time (every forecast output carries both)."""
    through = forecast.data_through
    return {"data_through": _iso(through) if through is not None else None,
            "events_known": forecast.events_known}


def forecast_properties(forecast: Forecast, audit: dict[str, Any], threshold: float,
                        spatial_unit: str, top: int) -> dict[str, Any]:
    """Collection-level properties: the window, the model and how it was computed."""
    return {
        "at": _iso(forecast.at), "issued_at": _iso(forecast.issued_at),
        "window_start": _iso(forecast.window_start), "window_end": _iso(forecast.window_end),
        "horizon": forecast.horizon, "bins": forecast.bins, "unit": spatial_unit,
        "top": top, "units_ranked": forecast.ranked.height, "decision_threshold": threshold,
        "weather_available": forecast.weather_available,
        "events_used": forecast.events_used, **provenance(forecast), **audit,
    }


def hotspot_features(forecast: Forecast, shapes: UnitShapes, audit: dict[str, Any],
                     top: int) -> list[str]:
    """One GeoJSON Feature (text) per unit of the ``top`` ranked, in rank order."""
    out: list[str] = []
    window = {"window_start": _iso(forecast.window_start),
              "window_end": _iso(forecast.window_end), **provenance(forecast)}
    for row in forecast.ranked.head(top).iter_rows(named=True):
        props = {
            "rank": row["rank"], "unit_id": row["unit_id"], "name": row["name"],
            "place": shapes.place[row["unit_id"]],
            "centre_lon": round(shapes.centroid[row["unit_id"]][0], 6),
            "centre_lat": round(shapes.centroid[row["unit_id"]][1], 6),
            "region": row["region"], "score": round(row["score"], 6),
            "peak_score": round(row["peak_score"], 6),
            "peak_bin_start": _iso(row["peak_bin_start"]),
            "flagged_bins": row["flagged_bins"], "hotspot": row["flagged_bins"] > 0,
            "expected_count": round(row["expected_count"], 3),
            "area_km2": round(row["area_km2"], 4), **window, **audit,
        }
        out.append('{"type":"Feature","id":' + json.dumps(row["unit_id"]) + ',"geometry":'
                   + shapes.geometry[row["unit_id"]] + ',"properties":'
                   + json.dumps(props, separators=(",", ":")) + "}")
    return out


def feature_collection(features: list[str], properties: dict[str, Any]) -> bytes:
    """Join Feature texts into a FeatureCollection."""
    return ('{"type":"FeatureCollection","properties":'
            + json.dumps(properties, separators=(",", ":")) + ',"features":['
            + ",".join(features) + "]}").encode()


def hotspots_geojson(forecast: Forecast, shapes: UnitShapes, bundle: ModelBundle,
                     top: int) -> bytes:
    """The ``/hotspots`` answer: the top units as a FeatureCollection with the model's ids."""
    audit = bundle.audit()
    return feature_collection(
        hotspot_features(forecast, shapes, audit, top),
        forecast_properties(forecast, audit, bundle.threshold,
                            bundle.feature_config.spatial_unit, top))


def patrol_boxes(forecast: Forecast, shapes: UnitShapes, top: int,
                 audit: dict[str, Any]) -> pl.DataFrame:
    """The top units as rows a dispatch/CAD system can import: rank, place, box, window."""
    ranked = forecast.ranked.head(top)
    ids = ranked["unit_id"].to_list()
    boxes = np.asarray([shapes.bbox[u] for u in ids]).reshape(-1, 4)
    points = np.asarray([shapes.centroid[u] for u in ids]).reshape(-1, 2)
    return pl.DataFrame({
        "rank": ranked["rank"], "unit_id": ids, "name": ranked["name"],
        "place": [shapes.place[u] for u in ids],
        "region": ranked["region"], "score": ranked["score"].round(6),
        "flagged_bins": ranked["flagged_bins"],
        "expected_count": ranked["expected_count"].round(3),
        "window_start": [_iso(forecast.window_start)] * len(ids),
        "window_end": [_iso(forecast.window_end)] * len(ids),
        "centre_lat": points[:, 1].round(6), "centre_lon": points[:, 0].round(6),
        "min_lon": boxes[:, 0].round(6), "min_lat": boxes[:, 1].round(6),
        "max_lon": boxes[:, 2].round(6), "max_lat": boxes[:, 3].round(6),
        "model_name": [audit["model_name"]] * len(ids),
        # An unregistered model has no version: an empty cell, never the text "None".
        "model_version": pl.Series([audit["model_version"]] * len(ids), dtype=pl.Int64),
        "run_id": pl.Series([audit["run_id"]] * len(ids), dtype=pl.Utf8),
        "crime_types": [audit.get("crime_types", "all")] * len(ids),
        "data_through": pl.Series([provenance(forecast)["data_through"]] * len(ids),
                                  dtype=pl.Utf8),
        "events_known": pl.Series([forecast.events_known] * len(ids), dtype=pl.Int64),
        "wkt": [shapes.wkt[u] for u in ids],
    })


def boundaries(table: pl.DataFrame) -> dict[str, Any]:
    """Region outlines (units dissolved by region), simplified for drawing."""
    geoms = table_geometries(table)
    regions = table["region"].cast(pl.Utf8).to_list()
    features = []
    for region in sorted(set(regions)):
        parts = [g for g, r in zip(geoms, regions, strict=True) if r == region]
        outline = shapely.union_all(parts) if len(parts) > 1 else parts[0]
        outline = shapely.simplify(outline, MAP_SIMPLIFY_DEG, preserve_topology=True)
        label = shapely.get_coordinates(shapely.point_on_surface(outline))[0]
        features.append({"type": "Feature", "properties": {
                            "region": region, "label_lon": round(float(label[0]), 6),
                            "label_lat": round(float(label[1]), 6)},
                         "geometry": json.loads(shapely.to_geojson(outline))})
    return {"type": "FeatureCollection", "features": features}
