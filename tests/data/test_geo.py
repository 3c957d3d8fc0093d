"""Tests for crimecast.data.geo and crimecast.data.boundaries: packaged boundaries,
point-in-polygon, CRS helpers, errors."""

from __future__ import annotations

import json
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyproj
import pytest
import shapely

from crimecast.data import boundaries, geo
from crimecast.data.areas import LAPD_AREAS
from crimecast.errors import CRSError, DataFileError, SchemaError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data not available")


@pytest.fixture(scope="module")
def divisions() -> geo.AreaSet:
    return boundaries.load_lapd_divisions()


# --- packaged boundaries ------------------------------------------------------------------


def test_lapd_divisions(divisions: geo.AreaSet) -> None:
    assert divisions.ids.tolist() == list(range(1, 22))
    assert list(divisions.names) == list(LAPD_AREAS.values())
    assert divisions.populations is not None
    assert divisions.populations.sum() == 3_898_700
    assert shapely.is_valid(divisions.geometries).all()
    assert divisions.to_frame().filter(pl.col("id") == 8)["population"].item() == 242_400


def test_tracts_and_portland_and_stations() -> None:
    tracts = boundaries.load_tracts()
    assert len(tracts) == 1136
    assert all(g.startswith("06037") and len(g) == 11 for g in tracts.ids.tolist())
    assert tracts.populations is not None
    assert 3.8e6 < tracts.populations.sum() < 4.1e6
    props = boundaries.load_geojson_resource("la_tracts_lapd.geojson")["features"][0]["properties"]
    assert set(props) == {"GEOID", "population", "lapd_share"}  # no crime_count / risk
    pdx = boundaries.load_portland_districts()
    assert len(pdx) == 60 and pdx.ids[0] == "510" and pdx.names[0] == "District 510"
    stations = boundaries.load_geojson_resource("lapd_stations.geojson")["features"]
    assert len(stations) == 21


def test_each_station_lies_in_its_own_division(divisions: geo.AreaSet) -> None:
    feats = boundaries.load_geojson_resource("lapd_stations.geojson")["features"]
    lon, lat = np.array([f["geometry"]["coordinates"] for f in feats]).T
    got = geo.assign_areas(lat, lon, divisions)
    assert got.tolist() == [f["properties"]["PREC"] for f in feats]


def test_packaged_resources_are_small() -> None:
    root = resources.files("crimecast") / "resources"
    total = sum(f.stat().st_size for d in ("geo", "weather") for f in Path(str(root / d)).iterdir())
    assert total < 1_500_000


# --- point in polygon ---------------------------------------------------------------------


def test_known_points(divisions: geo.AreaSet) -> None:
    lat = np.array([34.0522, 34.0407, 33.95, 34.0522, np.nan])
    lon = np.array([-118.2437, -118.4541, -118.65, np.nan, -118.2437])
    out = geo.assign_areas(lat, lon, divisions)
    assert out.dtype == np.int64
    # LAPD HQ -> Central; West LA; Santa Monica Bay -> outside; NaNs -> outside
    assert out.tolist() == [1, 8, -1, -1, -1]


def test_string_ids_use_empty_outside_marker() -> None:
    tracts = boundaries.load_tracts()
    out = geo.assign_areas(np.array([34.0522, 33.95]), np.array([-118.2437, -118.65]), tracts)
    assert out[0].startswith("06037") and out[1] == geo.OUTSIDE_STR == tracts.outside_id


def test_grid_lookup_matches_brute_force(divisions: geo.AreaSet) -> None:
    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = shapely.total_bounds(divisions.geometries)
    lat, lon = rng.uniform(y0 - 0.02, y1 + 0.02, 30_000), rng.uniform(x0 - 0.02, x1 + 0.02, 30_000)
    want = np.full(lat.size, -1)
    for i in reversed(range(len(divisions))):
        want[shapely.intersects_xy(divisions.geometries[i], lon, lat)] = i
    np.testing.assert_array_equal(geo.assign_area_index(lat, lon, divisions), want)


def test_box_areas_edges_and_outside() -> None:
    boxes = geo.AreaSet(
        ids=np.array([10, 20]),
        names=("left", "right"),
        geometries=np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]),
    )
    lon = np.array([0.5, 1.5, 1.0, 2.0, 2.0000001, 0.5])
    lat = np.array([0.5, 0.5, 0.5, 1.0, 0.5, -0.1])
    # the shared edge goes to the lower index; the max corner is inside; beyond is outside
    assert geo.assign_areas(lat, lon, boxes).tolist() == [10, 20, 10, 20, -1, -1]


def test_assign_one_million_points_is_fast(divisions: geo.AreaSet) -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(33.7, 34.35, 1_000_000)
    lon = rng.uniform(-118.67, -118.15, 1_000_000)
    geo.assign_areas(lat[:10], lon[:10], divisions)  # build the lookup grid once
    start = time.perf_counter()
    out = geo.assign_areas(lat, lon, divisions)
    assert time.perf_counter() - start < 5.0  # ~0.3 s measured on 2 cores
    assert 0.3 < (out > 0).mean() < 0.5


@needs_shared
def test_real_lapd_points_fall_in_union_and_their_own_area(divisions: geo.AreaSet) -> None:
    df = pl.read_csv(SHARED / "lapd" / "lapd_2024_02_citywide.csv.gz", infer_schema_length=0)
    df = df.select(
        pl.col("LAT").cast(pl.Float64), pl.col("LON").cast(pl.Float64), pl.col("AREA").cast(int)
    ).filter((pl.col("LAT") != 0) & (pl.col("LON") != 0))
    lat, lon = df["LAT"].to_numpy(), df["LON"].to_numpy()
    inside = geo.points_in_study_area(lat, lon, geo.study_area(divisions, buffer_m=50)).mean()
    assert inside >= 0.99  # measured 100 % (99.66 % without the buffer)
    agree = (geo.assign_areas(lat, lon, divisions) == df["AREA"].to_numpy()).mean()
    assert agree >= 0.98  # measured 98.7 %; misses lie within ~6 m of the right division


@needs_shared
def test_portland_calls_fall_in_districts_after_reprojection() -> None:
    calls = pl.read_csv(SHARED / "portland_nij" / "portland_cfs_2016_aug_nov.csv.gz")
    x, y = calls["x_coordinate"].to_numpy(), calls["y_coordinate"].to_numpy()
    lon, lat = geo.to_lonlat(x, y, "EPSG:2913")
    assert 45.4 < np.median(lat) < 45.65 and -122.8 < np.median(lon) < -122.5
    inside = (geo.assign_area_index(lat, lon, boundaries.load_portland_districts()) >= 0).mean()
    assert inside >= 0.99  # measured 99.67 %


@needs_shared
def test_portland_shapefile_prj_is_epsg_2913() -> None:
    with zipfile.ZipFile(SHARED / "portland_nij" / "portland-police-districts.zip") as zf:
        prj = zf.read("Portland_Police_Districts.prj").decode()
    assert pyproj.CRS.from_wkt(prj).to_epsg(min_confidence=25) == 2913


# --- study area and CRS helpers -----------------------------------------------------------


def test_study_area_buffer_is_in_metres(divisions: geo.AreaSet) -> None:
    union = geo.study_area(divisions)
    coords = shapely.get_coordinates(union)
    west_lon, west_lat = coords[np.argmin(coords[:, 0])]
    x, y = geo.to_projected(np.array([west_lat] * 2), np.array([west_lon] * 2))
    lon, lat = geo.to_lonlat(x - np.array([50.0, 150.0]), y, geo.LA_UTM)
    buffered = geo.study_area(divisions, buffer_m=100)
    assert geo.points_in_study_area(lat, lon, buffered).tolist() == [True, False]
    assert geo.points_in_study_area(lat, lon, union).tolist() == [False, False]


def test_utm_crs_for() -> None:
    assert geo.utm_crs_for(-118.2437, 34.0522).to_epsg() == 32611
    assert geo.utm_crs_for(-122.68, 45.52).to_epsg() == 32610
    assert geo.utm_crs_for(151.2, -33.9).to_epsg() == 32756
    assert geo.utm_crs_for(180.0, 0.0).to_epsg() == 32660
    with pytest.raises(CRSError) as exc:
        geo.utm_crs_for(34.05, -118.24)
    assert str(exc.value) == (
        "utm_crs_for: (34.05, -118.24) is not a longitude/latitude pair; longitude must be in "
        "[-180, 180] and latitude in [-90, 90]. Check the argument order (lon, lat)."
    )


def test_projection_round_trip() -> None:
    lat, lon = np.array([34.0522, 33.75]), np.array([-118.2437, -118.29])
    x, y = geo.to_projected(lat, lon, geo.LA_UTM)
    assert 380_000 < x[0] < 390_000 and 3_765_000 < y[0] < 3_775_000
    lon2, lat2 = geo.to_lonlat(x, y, 32611)
    np.testing.assert_allclose(lat2, lat, atol=1e-9)
    np.testing.assert_allclose(lon2, lon, atol=1e-9)


def test_unknown_crs() -> None:
    with pytest.raises(CRSError) as exc:
        geo.to_projected(np.array([34.0]), np.array([-118.0]), "EPSG:999999")
    assert str(exc.value) == (
        "unknown CRS 'EPSG:999999': pyproj cannot parse it. Pass an EPSG code such as "
        "'EPSG:32611' (UTM 11N, Los Angeles) or 'EPSG:2913' (Oregon North, ft), or a WKT string."
    )


# --- user GeoJSON files and errors ---------------------------------------------------------


def _square(x: float, y: float) -> dict[str, Any]:
    ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _write(tmp_path: Path, doc: Any, name: str = "areas.geojson") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _fc(*features: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features), **extra}


def _feat(props: dict[str, Any], geom: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": geom or _square(-118.3, 34.0)}


def test_user_geojson_round_trip(tmp_path: Path, divisions: geo.AreaSet) -> None:
    path = _write(tmp_path, boundaries.areas_to_geojson(divisions))
    back = boundaries.load_area_geojson(path, "id", "name", "population")
    assert back.ids.tolist() == divisions.ids.tolist()
    assert back.names == divisions.names
    np.testing.assert_array_equal(back.populations, divisions.populations)
    assert shapely.equals(back.geometries, divisions.geometries).all()


def test_user_geojson_with_projected_crs_member_is_reprojected(tmp_path: Path) -> None:
    x, y = 7_640_000.0, 684_000.0  # Portland in EPSG:2913 feet
    ring = [[x, y], [x + 500, y], [x + 500, y + 500], [x, y + 500], [x, y]]
    doc = _fc(
        _feat({"d": "A"}, {"type": "Polygon", "coordinates": [ring]}),
        crs={"type": "name", "properties": {"name": "EPSG:2913"}},
    )
    areas = boundaries.load_area_geojson(_write(tmp_path, doc), "d")
    lon, lat = areas.geometries[0].centroid.x, areas.geometries[0].centroid.y
    assert -122.8 < lon < -122.5 and 45.4 < lat < 45.7
    assert areas.ids.dtype.kind == "U" and areas.populations is None


def test_missing_id_property_message(tmp_path: Path) -> None:
    path = _write(tmp_path, _fc(_feat({"A": 1, "B": 2})), "x.geojson")
    with pytest.raises(SchemaError) as exc:
        boundaries.load_area_geojson(path, "PREC")
    assert str(exc.value) == (
        f"boundary file '{path}' has no property 'PREC' on feature 0; available: ['A', 'B']. "
        "Set boundary_id_property to one of them."
    )


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        ("{not json", DataFileError,
         "boundary file '{p}' is not valid JSON (Expecting property name enclosed in double "
         "quotes at line 1, column 2). Export the boundaries as GeoJSON (RFC 7946)."),
        ({"type": "Feature"}, DataFileError,
         "boundary file '{p}' is not a GeoJSON FeatureCollection (top-level type is 'Feature'). "
         "Export the boundaries as a FeatureCollection of polygons."),
        (_fc(), DataFileError,
         "boundary file '{p}' has no features; at least one Polygon or MultiPolygon feature "
         "is required."),
        (_fc(_feat({"id": 1}, {"type": "Point", "coordinates": [0, 0]})), DataFileError,
         "boundary file '{p}' feature 0 has geometry type 'Point'; area boundaries must be "
         "Polygon or MultiPolygon. Remove or convert that feature."),
        (_fc(_feat({"id": 1}, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})),
         DataFileError,
         "boundary file '{p}' feature 0 has unreadable coordinates (A linearring requires at "
         "least 4 coordinates.). Fix the feature's geometry."),
        (_fc(_feat({"id": None})), SchemaError,
         "boundary file '{p}' has a null 'id' on feature 0; every feature needs an id. Fill it "
         "in or set another boundary_id_property."),
        (_fc(_feat({"id": 1}), _feat({"id": 1})), SchemaError,
         "boundary file '{p}' has duplicate area ids [1]; area ids must be unique. Merge those "
         "features or choose another id property."),
        (_fc(_feat({"id": 1, "pop": "many"})), SchemaError,
         "boundary file '{p}' property 'pop' on feature 0 is 'many', not a number. Fix the "
         "value or omit the population property."),
        (_fc(_feat({"id": 1}, _square(7_640_000.0, 684_000.0))), DataFileError,
         "boundary file '{p}' has coordinates outside longitude/latitude range (bounds "
         "[7640000.0, 684000.0, 7640000.01, 684000.01]); GeoJSON must be in EPSG:4326. "
         "Reproject the file or declare its CRS in a 'crs' member."),
        (_fc(_feat({"id": 1}), crs={"type": "name", "properties": {"name": "EPSG:999999"}}),
         CRSError,
         "boundary file '{p}' declares an unknown CRS 'EPSG:999999'. Reproject it to EPSG:4326 "
         "(the GeoJSON standard) or declare a valid EPSG code."),
    ],
)  # fmt: skip
def test_bad_geojson_messages(tmp_path: Path, doc: Any, error: type, message: str) -> None:
    path = _write(tmp_path, doc)
    pop = "pop" if "'pop'" in message else None
    with pytest.raises(error) as exc:
        boundaries.load_area_geojson(path, "id", population_property=pop)
    assert str(exc.value) == message.format(p=path)


def test_missing_file_message(tmp_path: Path) -> None:
    path = tmp_path / "nope.geojson"
    with pytest.raises(DataFileError) as exc:
        boundaries.load_area_geojson(path, "id")
    assert str(exc.value) == (
        f"boundary file '{path}' does not exist. Pass the path of a UTF-8 GeoJSON "
        "FeatureCollection of Polygon/MultiPolygon features."
    )
