"""Build the packaged geography and weather resources from the real data in shared/data.

One-off script: it reads ``../shared/data`` (relative to the repository root) and writes
compact derived files into ``src/crimecast/resources/geo/`` and ``.../weather/``. The
product never reads ``shared/data`` at run time; it loads only these files through
``crimecast.data.geo`` and ``crimecast.data.weather``.

Needs shapely >= 2.2 (``coverage_clean``) and, for the Portland shapefile only, ``pyshp``
(``pip install pyshp``); the product itself depends on neither.

Usage::

    .venv/bin/python scripts/build_geo_weather_resources.py [--shared PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyproj
import shapely
from shapely.geometry import mapping, shape

from crimecast.data import boundaries, geo, weather
from crimecast.data.areas import LAPD_AREAS, area_id_for_name

logger = logging.getLogger("build_geo_weather_resources")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "src" / "crimecast" / "resources"

SIMPLIFY_M = 20.0  # Douglas-Peucker tolerance; well below a city block (~100 m)
CLEAN_GAP_M = 2.0  # the source divisions have ~350 slivers of 0-2 m² between neighbours
MIN_TRACT_SHARE = 0.01  # tracts with < 1 % of their area inside LAPD are edge misalignments
COORD_DECIMALS = 6  # ~0.1 m, far finer than the simplification
PORTLAND_PRECINCTS = {"NO": "North", "CE": "Central", "EA": "East"}

SOURCES = {
    "weather": [
        "weather/la_daily_2010_2018.csv",
        "weather/la_ghcnd_2019_lax_usc.csv",
        "weather/la_daily_2020_2024.json",
        "weather/la_hourly_2012_2017.csv",
    ],
    "geo": [
        "geo/lapd_divisions.geojson",
        "geo/lapd_divisions_population.geojson",
        "geo/la_county_tracts_population.geojson",
        "geo/lapd_stations.geojson",
        "portland_nij/portland-police-districts.zip",
    ],
}


def _round(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))


def _clean_simplify(
    geoms: np.ndarray, crs: str, tolerance_m: float, src: str = geo.WGS84
) -> np.ndarray:
    """Clean a polygon coverage and simplify it without opening gaps between neighbours.

    ``coverage_simplify`` moves each shared edge once for both polygons, unlike per-polygon
    ``simplify``, which leaves slivers and overlaps along every border.
    """
    unit_m = pyproj.CRS.from_user_input(crs).axis_info[0].unit_conversion_factor
    projected = geoms if src == crs else geo.transform_geometry(geoms, src, crs)
    cleaned = shapely.coverage_clean(projected, gap_width=CLEAN_GAP_M / unit_m)
    simplified = shapely.coverage_simplify(cleaned, tolerance_m / unit_m)
    out = _round(geo.transform_geometry(simplified, crs, geo.WGS84))
    invalid = int((~shapely.is_valid(out)).sum())
    if invalid:
        logger.warning("%d polygon(s) invalid after simplification; repairing", invalid)
        out = shapely.make_valid(out)
    return np.asarray(out, dtype=object)


def _write_geojson(path: Path, features: list[dict[str, Any]]) -> None:
    # One feature per line: compact, yet diffs stay readable.
    body = ",\n".join(json.dumps(f, separators=(",", ":")) for f in features)
    path.write_text('{"type":"FeatureCollection","features":[\n' + body + "\n]}\n")
    logger.info("wrote %s (%d features, %.0f KB)", path, len(features), path.stat().st_size / 1e3)


def _feature(props: dict[str, Any], geom: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": mapping(geom)}


def _read_features(path: Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    feats = json.loads(path.read_text())["features"]
    return [f["properties"] for f in feats], np.asarray([shape(f["geometry"]) for f in feats])


def _division_id(name: str) -> int:
    # areas.py knows "West LA" but not the population file's "West Los Angeles".
    code = area_id_for_name(name) or area_id_for_name(name.replace("Los Angeles", "LA"))
    if code is None:
        raise ValueError(f"unknown LAPD division name {name!r}")
    return code


def build_divisions(shared: Path, out: Path) -> Any:
    """LAPD divisions with population; returns the unsimplified union (for the tracts)."""
    props, geoms = _read_features(shared / "geo" / "lapd_divisions.geojson")
    ids = [int(p["PREC"]) for p in props]
    if sorted(ids) != sorted(LAPD_AREAS):
        raise ValueError(f"PREC values {sorted(ids)} are not 1..21")
    pop_props, pop_geoms = _read_features(shared / "geo" / "lapd_divisions_population.geojson")
    # The population file is EPSG:4269 (NAD83); it is only used for a containment check.
    population = {_division_id(p["district"]): int(p["population"]) for p in pop_props}
    if sorted(population) != sorted(LAPD_AREAS):
        raise ValueError(f"population districts map to {sorted(population)}, not 1..21")
    check = geo.AreaSet(np.asarray(ids), tuple(map(str, ids)), geoms)
    rep = shapely.point_on_surface(pop_geoms)
    got = geo.assign_areas(shapely.get_y(rep), shapely.get_x(rep), check)
    want = [_division_id(p["district"]) for p in pop_props]
    if got.tolist() != want:
        raise ValueError(f"population polygons fall in divisions {got.tolist()}, want {want}")
    simple = _clean_simplify(geoms, geo.LA_UTM, SIMPLIFY_M)
    feats = [
        _feature({"area_id": i, "area_name": LAPD_AREAS[i], "population": population[i]}, g)
        for i, g in sorted(zip(ids, simple, strict=True), key=lambda t: t[0])
    ]
    _write_geojson(out / "lapd_divisions.geojson", feats)
    logger.info("division population total %d", sum(population.values()))
    return shapely.union_all(geo.transform_geometry(geoms, geo.WGS84, geo.LA_UTM))


def build_tracts(shared: Path, out: Path, lapd_union_utm: Any) -> None:
    """Census tracts overlapping the LAPD union, with their share of area inside it."""
    props, geoms = _read_features(shared / "geo" / "la_county_tracts_population.geojson")
    utm = geo.transform_geometry(geoms, geo.WGS84, geo.LA_UTM)
    shapely.prepare(lapd_union_utm)
    share = shapely.area(shapely.intersection(utm, lapd_union_utm)) / shapely.area(utm)
    keep = np.flatnonzero(share >= MIN_TRACT_SHARE)
    simple = _clean_simplify(geoms[keep], geo.LA_UTM, SIMPLIFY_M)
    feats = [
        _feature(
            {
                "GEOID": str(props[k]["GEOID"]),
                "population": int(props[k]["population"]),
                "lapd_share": round(float(share[k]), 3),
            },
            g,
        )
        for k, g in zip(keep, simple, strict=True)
    ]
    _write_geojson(out / "la_tracts_lapd.geojson", feats)
    logger.info(
        "tracts kept %d of %d (touching: %d); area-weighted population inside LAPD %.0f",
        len(keep),
        len(geoms),
        int((share > 0).sum()),
        float(sum(props[k]["population"] * share[k] for k in range(len(props)))),
    )


def build_portland(shared: Path, out: Path) -> None:
    """Portland Police districts: shapefile in EPSG:2913 (Oregon North, intl ft) to 4326."""
    import shapefile  # pyshp: a build-time dependency only

    with zipfile.ZipFile(shared / "portland_nij" / "portland-police-districts.zip") as zf:
        part = {n.rsplit(".", 1)[-1].lower(): zf.read(n) for n in zf.namelist()}
    prj = pyproj.CRS.from_wkt(part["prj"].decode())
    epsg = prj.to_epsg(min_confidence=25)
    if epsg != 2913:
        raise ValueError(f"Portland .prj is EPSG:{epsg}, expected 2913 ({prj.name})")
    reader = shapefile.Reader(
        shp=io.BytesIO(part["shp"]), shx=io.BytesIO(part["shx"]), dbf=io.BytesIO(part["dbf"])
    )
    recs = [r.as_dict() for r in reader.records()]
    native = np.asarray([shape(s.__geo_interface__) for s in reader.shapes()], dtype=object)
    # Clean and simplify in the native CRS (its unit, the international foot, is converted).
    simple = _clean_simplify(native, "EPSG:2913", SIMPLIFY_M, src="EPSG:2913")
    feats = [
        _feature(
            {
                "district": str(r["DISTRICT"]).strip(),
                "name": f"District {str(r['DISTRICT']).strip()}",
                "precinct": PORTLAND_PRECINCTS.get(str(r["PRECINCT"]).strip(), r["PRECINCT"]),
            },
            g,
        )
        for r, g in zip(recs, simple, strict=True)
    ]
    _write_geojson(out / "portland_police_districts.geojson", feats)
    calls = pl.read_csv(shared / "portland_nij" / "portland_cfs_2016_aug_nov.csv.gz")
    lon, lat = geo.to_lonlat(
        calls["x_coordinate"].to_numpy(), calls["y_coordinate"].to_numpy(), 2913
    )
    districts = boundaries.load_area_geojson(out / "portland_police_districts.geojson", "district")
    inside = geo.assign_area_index(lat, lon, districts)
    logger.info("Portland NIJ calls inside a district: %.2f %%", 100 * float((inside >= 0).mean()))


def build_weather(shared: Path, out: Path) -> None:
    """Merged daily series and the hourly slice, as zstd Parquet."""
    w = shared / "weather"
    raw_hourly = pl.read_csv(w / "la_hourly_2012_2017.csv")
    daily = weather.build_daily_weather(
        pl.read_csv(w / "la_daily_2010_2018.csv"),
        pl.read_csv(w / "la_ghcnd_2019_lax_usc.csv", infer_schema_length=0),
        pl.read_json(w / "la_daily_2020_2024.json"),
        raw_hourly,
    )
    daily.write_parquet(out / weather.DAILY_RESOURCE, compression="zstd", compression_level=19)
    # The hourly temperatures are interpolated to 1e-9 K; 0.01 °C keeps the file small.
    # time_local is derived again on load; delta-encoding the regular hourly timestamps
    # shrinks that column from ~180 KB to a few KB.
    hourly = weather.normalise_hourly(raw_hourly).with_columns(pl.col("temp_c").round(2))
    hourly.drop("time_local").write_parquet(
        out / weather.HOURLY_RESOURCE,
        compression="zstd",
        compression_level=19,
        use_pyarrow=True,
        pyarrow_options={
            "use_dictionary": ["description"],
            "column_encoding": {"time_utc": "DELTA_BINARY_PACKED"},
        },
    )
    report = weather.weather_gaps(daily, date(2010, 1, 1), date(2024, 12, 31))
    logger.info("daily weather %d rows; gaps:\n%s", daily.height, report.summary())


def _write_sources(shared: Path, out: Path, kind: str) -> None:
    entries = [
        {"file": rel, "sha256": hashlib.sha256((shared / rel).read_bytes()).hexdigest()}
        for rel in SOURCES[kind]
    ]
    note = {
        "built_by": "scripts/build_geo_weather_resources.py",
        "sources": entries,
        "licence": "City of Los Angeles / LAPD open data (CC0 1.0), NOAA (public domain), "
        "US Census Bureau (public domain), City of Portland open data",
    }
    (out / "SOURCES.json").write_text(json.dumps(note, indent=2) + "\n")


def main() -> None:
    """Build every geo and weather resource."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    geo_out, weather_out = args.out / "geo", args.out / "weather"
    geo_out.mkdir(parents=True, exist_ok=True)
    weather_out.mkdir(parents=True, exist_ok=True)
    build_weather(args.shared, weather_out)
    union = build_divisions(args.shared, geo_out)
    build_tracts(args.shared, geo_out, union)
    (geo_out / "lapd_stations.geojson").write_bytes(
        (args.shared / "geo" / "lapd_stations.geojson").read_bytes()
    )
    build_portland(args.shared, geo_out)
    _write_sources(args.shared, geo_out, "geo")
    _write_sources(args.shared, weather_out, "weather")
    total = sum(p.stat().st_size for d in (geo_out, weather_out) for p in d.iterdir())
    logger.info("resources total %.0f KB", total / 1e3)


if __name__ == "__main__":
    main()
