"""Tests for crimecast.features.units: study area, ids, assignment, adjacency, distances."""

from __future__ import annotations

import sys
import time

import numpy as np
import polars as pl
import pytest
import shapely
from scipy.spatial.distance import cdist

from crimecast.data import boundaries, geo
from crimecast.errors import ConfigError, DataError, DependencyError
from crimecast.features import grid as grid_module
from crimecast.features.units import UnitSet, build_units
from crimecast.synthetic.tables import load_tables

UTM = "EPSG:32611"
C0, R0 = 1500, 15000  # a 250 m cell in Los Angeles: x 375 000 m, y 3 750 000 m


def lonlat(
    x: np.ndarray | list[float], y: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) arrays of UTM 11N points."""
    lon, lat = geo.to_lonlat(np.asarray(x, dtype=float), np.asarray(y, dtype=float), UTM)
    return lat, lon


def cell_centres(
    cols: list[int], rows: list[int], size: float = 250.0
) -> tuple[np.ndarray, np.ndarray]:
    return lonlat((np.asarray(cols) + 0.5) * size, (np.asarray(rows) + 0.5) * size)


def square_areas(ids: list[str], boxes: list[tuple[float, float, float, float]]) -> geo.AreaSet:
    """An AreaSet of lon/lat squares given in UTM 11N metres."""
    geoms = geo.transform_geometry(np.array([shapely.box(*b) for b in boxes]), UTM, geo.WGS84)
    return geo.AreaSet(np.array(ids), tuple(f"Area {i}" for i in ids), geoms)


@pytest.fixture(scope="module")
def divisions() -> geo.AreaSet:
    return boundaries.load_lapd_divisions()


@pytest.fixture(scope="module")
def inside_points(divisions: geo.AreaSet) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) of one point inside each LAPD division, in AREA order."""
    xy = shapely.get_coordinates(shapely.point_on_surface(divisions.geometries))
    return xy[:, 1], xy[:, 0]


@pytest.fixture(scope="module")
def lapd_areas(inside_points: tuple[np.ndarray, np.ndarray]) -> UnitSet:
    lat, lon = inside_points
    return build_units("area", lat, lon, area_id=np.arange(1, 22))


@pytest.fixture(scope="module")
def lapd_grid(inside_points: tuple[np.ndarray, np.ndarray]) -> UnitSet:
    lat, lon = inside_points
    return build_units("grid", lat, lon, area_id=[str(i) for i in range(1, 22)], cell_size=250)


@pytest.fixture(scope="module")
def lapd_districts() -> UnitSet:
    """One event per real LAPD reporting district, at its centroid."""
    t = load_tables()
    ids = [str(rd) for rd in t.district_rd.tolist()]  # unpadded: "101"
    return build_units("district", t.district_lat, t.district_lon, area_id=t.district_area,
                       district_id=ids)


def lapd_tract_population() -> float:
    """Population of the packaged tracts that lies inside LAPD (each tract's lapd_share)."""
    feats = boundaries.load_geojson_resource("la_tracts_lapd.geojson")["features"]
    return sum(f["properties"]["population"] * f["properties"]["lapd_share"] for f in feats)


def assert_symmetric_01(adjacency: object, n: int) -> np.ndarray:
    a = adjacency.toarray()  # type: ignore[attr-defined]
    assert a.shape == (n, n)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert (a == a.T).all() and (np.diag(a) == 0).all()
    return a


# --- area units ---------------------------------------------------------------------------


def test_area_units_are_restricted_to_areas_present(inside_points: tuple) -> None:
    lat, lon = inside_points
    west_la = build_units("area", lat[[7, 7]], lon[[7, 7]], area_id=np.array(["08", "08"]))
    assert west_la.ids == ("8",) and west_la.names == ("West LA",)
    assert west_la.region == ("West LA",) and west_la.population.tolist() == [242_400.0]
    # with no area ids the location decides; history_mask excludes the later events
    units = build_units("area", lat[[0, 7, 12]], lon[[0, 7, 12]],
                        boundary=boundaries.load_lapd_divisions(),
                        history_mask=np.array([True, True, False]))
    assert units.ids == ("1", "8") and units.crs.to_epsg() == 32611


def test_area_assign_prefers_the_id_then_the_location(
    lapd_areas: UnitSet, inside_points: tuple
) -> None:
    lat, lon = inside_points
    area_id = pl.Series(["8", None, "99", "1", None], dtype=pl.String)
    elat, elon = np.r_[lat[[0, 0, 0, 7]], np.nan], np.r_[lon[[0, 0, 0, 7]], 0.0]
    got = lapd_areas.assign(elat, elon, area_id=area_id)
    # id 8 wins over a Central location; null and unknown ids use the location; NaN -> -1
    assert got.tolist() == [7, 0, 0, 0, -1]
    assert lapd_areas.assign(lat, lon).tolist() == list(range(21))


def test_lapd_area_adjacency(lapd_areas: UnitSet) -> None:
    a = assert_symmetric_01(lapd_areas.adjacency, 21)
    idx = lapd_areas.index_of()
    central = a[idx["1"]]
    assert central[idx["2"]] == 1 and central[idx["13"]] == 1  # Rampart, Newton
    assert central[idx["10"]] == 0  # West Valley
    assert lapd_areas.population.sum() == 3_898_700


def test_polygon_within_matches_brute_force(
    lapd_areas: UnitSet, lapd_districts: UnitSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grid_module, "_POINT_CHUNK", 700)  # several chunks
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(33.95, 34.15, 3000), rng.uniform(-118.5, -118.2, 3000)
    lat[::97] = np.nan
    finite = np.flatnonzero(np.isfinite(lat))
    points = shapely.points(*geo.to_projected(lat[finite], lon[finite], UTM))
    for units in (lapd_areas, lapd_districts):
        for radius in (0.0, 55.0, 400.0, 2500.0):
            ev, un = units.within(lat, lon, radius)
            i, j = shapely.STRtree(units.projected).query(
                points, predicate="dwithin", distance=radius)
            got = sorted(zip(ev.tolist(), un.tolist(), strict=True))
            assert got == sorted(zip(finite[i].tolist(), j.tolist(), strict=True))


def test_area_units_from_a_custom_boundary_and_within() -> None:
    areas = square_areas(["A", "B"], [(0, 0, 1000, 1000), (1000, 0, 2000, 1000)])
    lat, lon = lonlat([500, 1500], [500, 500])
    units = build_units("area", lat, lon, boundary=areas, crs=UTM)
    assert units.ids == ("A", "B") and np.isnan(units.population).all()
    assert assert_symmetric_01(units.adjacency, 2)[0, 1] == 1
    plat, plon = lonlat([2300.0], [500.0])  # 300 m east of B
    assert units.within(plat, plon, 400)[1].tolist() == [1]
    assert units.within(plat, plon, 200)[0].size == 0


# --- grid units ---------------------------------------------------------------------------


def test_grid_ids_and_lower_left_assignment() -> None:
    lat, lon = cell_centres([C0, C0 + 1, C0], [R0, R0, R0 + 1])
    units = build_units("grid", lat, lon, crs=UTM)
    assert units.ids == (f"g250_{C0}_{R0}", f"g250_{C0 + 1}_{R0}", f"g250_{C0}_{R0 + 1}")
    assert units.cells is not None
    assert units.cells.tolist() == [[C0, R0], [C0 + 1, R0], [C0, R0 + 1]]
    np.testing.assert_allclose(units.centroids[0], [(C0 + 0.5) * 250, (R0 + 0.5) * 250])
    x0, y0 = C0 * 250.0, R0 * 250.0
    # a shared vertical edge -> right cell; a shared horizontal edge -> upper cell
    x = np.array([x0 + 250, x0 + 10, x0, x0 + 499.9, x0 + 500, x0 - 0.01, np.nan])
    y = np.array([y0 + 10, y0 + 250, y0, y0, y0, y0, y0])
    assert units.assign_xy(x, y).tolist() == [1, 2, 0, 1, -1, -1, -1]
    assert units.assign(lat, lon).tolist() == [0, 1, 2]
    assert units.region == ("all",) * 3 and np.isnan(units.population).all()


def test_grid_study_area_comes_from_the_history_only() -> None:
    lat, lon = cell_centres([C0, C0 + 1, C0 + 5], [R0, R0, R0])
    history = np.array([True, True, False])
    units = build_units("grid", lat, lon, crs=UTM, history_mask=history)
    assert units.ids == (f"g250_{C0}_{R0}", f"g250_{C0 + 1}_{R0}")
    assert units.assign(lat, lon).tolist() == [0, 1, -1]  # the future-only cell is outside


def test_grid_adjacency_is_the_8_neighbourhood() -> None:
    cols, rows = np.meshgrid(np.arange(3) + C0, np.arange(3) + R0)
    lat, lon = cell_centres([*cols.ravel().tolist(), C0 + 5], [*rows.ravel().tolist(), R0])
    units = build_units("grid", lat, lon, crs=UTM)
    a = assert_symmetric_01(units.adjacency, 10)
    idx = units.index_of()
    assert a[idx[f"g250_{C0 + 1}_{R0 + 1}"]].sum() == 8  # the centre
    assert a[idx[f"g250_{C0}_{R0}"]].sum() == 3  # a corner
    assert a[idx[f"g250_{C0 + 5}_{R0}"]].sum() == 0  # isolated


def test_grid_within_radius_and_brute_force() -> None:
    lat, lon = cell_centres([C0], [R0])
    units = build_units("grid", lat, lon, crs=UTM)
    plat, plon = lonlat([(C0 + 1) * 250.0 + 300], [R0 * 250.0 + 125])  # 300 m east of the cell
    assert units.within(plat, plon, 400)[1].tolist() == [0]
    assert units.within(plat, plon, 200)[1].size == 0

    rng = np.random.default_rng(3)
    cols, rows = rng.integers(C0, C0 + 12, 60), rng.integers(R0, R0 + 12, 60)
    grid = build_units("grid", *cell_centres(cols.tolist(), rows.tolist()), crs=UTM)
    x, y = rng.uniform(C0 * 250 - 600, (C0 + 12) * 250 + 600, (2, 3000))
    for radius in (0.0, 130.0, 400.0, 777.0):
        ev, un = grid.within(*lonlat(x, y), radius)
        px, py = geo.to_projected(*lonlat(x, y), UTM)
        want = shapely.STRtree(grid.projected).query(
            shapely.points(px, py), predicate="dwithin", distance=radius)
        got = set(zip(ev.tolist(), un.tolist(), strict=True))
        assert got == set(zip(*want.tolist(), strict=True))


def test_lapd_grid(lapd_grid: UnitSet, divisions: geo.AreaSet) -> None:
    n = len(lapd_grid)
    assert 20_000 < n < 22_000  # 20,912 cells of 250 m cover LAPD's ~1,240 km²
    assert lapd_grid.crs.to_epsg() == 32611 and lapd_grid.cell_size == 250
    assert len(set(lapd_grid.region)) == 21
    boxes = lapd_grid.projected
    lapd = shapely.union_all(geo.transform_geometry(divisions.geometries, geo.WGS84, UTM))
    assert shapely.intersects(lapd, boxes).all()
    covered = shapely.intersection(lapd, shapely.union_all(boxes))
    assert covered.area == pytest.approx(lapd.area)
    # tract population inside LAPD is conserved (edge cells add a thin ring outside)
    assert lapd_grid.population.sum() == pytest.approx(lapd_tract_population(), rel=0.03)
    frame = lapd_grid.to_frame()
    assert frame.columns == ["unit_id", "name", "region", "population", "x", "y", "lon", "lat"]
    assert frame.height == n and frame["lat"].is_between(33.6, 34.4).all()


def test_grid_over_west_la_only(inside_points: tuple) -> None:
    lat, lon = inside_points
    units = build_units("grid", lat[[7]], lon[[7]], area_id=["8"], cell_size=250)
    assert 2_500 < len(units) < 3_200 and set(units.region) == {"West LA"}


def test_population_interpolation_conserves_tract_totals() -> None:
    cols, rows = np.meshgrid(np.arange(10) + C0, np.arange(10) + R0)
    lat, lon = cell_centres(cols.ravel().tolist(), rows.ravel().tolist())
    x0, y0 = C0 * 250.0, R0 * 250.0
    tracts = square_areas(["t1", "t2"], [(x0 + 130, y0 + 70, x0 + 1130, y0 + 900),
                                         (x0 + 1130, y0 + 70, x0 + 2400, y0 + 2480)])
    tracts = geo.AreaSet(tracts.ids, tracts.names, tracts.geometries, np.array([1000.0, 2500.0]))
    units = build_units("grid", lat, lon, crs=UTM, tracts=tracts)
    assert units.population.sum() == pytest.approx(3500.0, rel=1e-9)
    assert units.population.min() == 0.0 and units.population.max() > 0


def test_kernel_weights(lapd_areas: UnitSet) -> None:
    w = lapd_areas.kernel_weights(3000.0, cutoff=3.0)
    np.testing.assert_allclose(np.asarray(w.sum(axis=1)).ravel(), 1.0)
    assert (w.diagonal() > 0).all()
    dense, d = w.toarray(), cdist(lapd_areas.centroids, lapd_areas.centroids)
    assert (dense[d > 9000.0] == 0).all() and (dense[d <= 9000.0] > 0).all()


# --- district units -----------------------------------------------------------------------


def test_district_voronoi_units_tile_lapd(lapd_districts: UnitSet, divisions: geo.AreaSet) -> None:
    assert len(lapd_districts) == 1131 and lapd_districts.ids[0] == "0101"
    assert list(lapd_districts.ids) == sorted(lapd_districts.ids)
    lapd = geo.transform_geometry(divisions.geometries, geo.WGS84, UTM)
    cells = lapd_districts.projected
    assert shapely.area(cells).sum() == pytest.approx(shapely.union_all(lapd).area, rel=1e-6)
    west = np.array([r == "West LA" for r in lapd_districts.region])
    west_union = shapely.union_all(cells[west])
    assert shapely.symmetric_difference(west_union, lapd[7]).area < 1.0  # m²
    assert lapd_districts.population.sum() == pytest.approx(lapd_tract_population(), rel=0.01)
    a = assert_symmetric_01(lapd_districts.adjacency, 1131)
    assert 4 <= np.median(a.sum(axis=1)) <= 8


def test_district_assign_uses_the_id_then_the_location(lapd_districts: UnitSet) -> None:
    idx = lapd_districts.index_of()
    t = load_tables()
    k = int(np.flatnonzero(t.district_rd == 163)[0])
    lat, lon = np.repeat(t.district_lat[k], 3), np.repeat(t.district_lon[k], 3)
    ids = np.array(["0101", None, "9999"], dtype=object)
    got = lapd_districts.assign(lat, lon, district_id=ids)
    assert got.tolist() == [idx["0101"], idx["0163"], idx["0163"]]


def test_district_units_west_la_and_without_boundary(inside_points: tuple) -> None:
    t = load_tables()
    west = t.district_area == 8
    units = build_units("district", t.district_lat[west], t.district_lon[west],
                        area_id=np.full(west.sum(), 8), district_id=t.district_rd[west])
    assert set(units.region) == {"West LA"} and len(units) == west.sum()
    bare = build_units("district", t.district_lat[west], t.district_lon[west],
                       district_id=t.district_rd[west])
    assert len(bare) == west.sum() and set(bare.region) == {"all"}
    hull = shapely.convex_hull(shapely.multipoints(bare.centroids))
    assert shapely.union_all(bare.projected).area > hull.area


# --- h3 -----------------------------------------------------------------------------------


def test_h3_units(inside_points: tuple) -> None:
    pytest.importorskip("h3")
    lat, lon = inside_points
    units = build_units("h3", lat[[7]], lon[[7]], area_id=["8"], cell_size=250)
    assert 1_000 < len(units) < 2_500 and set(units.region) <= {"West LA", "all"}
    a = assert_symmetric_01(units.adjacency, len(units))
    assert a.sum(axis=1).max() == 6
    assert units.assign(lat[[7]], lon[[7]])[0] >= 0


def test_h3_without_the_package(monkeypatch: pytest.MonkeyPatch, inside_points: tuple) -> None:
    monkeypatch.setitem(sys.modules, "h3", None)
    lat, lon = inside_points
    with pytest.raises(DependencyError) as exc:
        build_units("h3", lat, lon)
    assert str(exc.value) == ("spatial_unit 'h3' needs the h3 package, which is not installed. "
                              "Run pip install h3, or pass --spatial-unit grid.")


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "hex"}, "spatial_unit must be one of area, district, grid, h3; got 'hex'. "
                          "Pass --spatial-unit area."),
        ({"cell_size": -5}, "cell_size must be > 0 metres; got -5. Pass --cell-size 250."),
        ({"kind": "district"}, "spatial_unit 'district' needs a district_id column; the data "
                               "has none. Pass --spatial-unit area or grid."),
        ({"kind": "district", "district_id": [None, None, None, None]},
         "spatial_unit 'district' needs a district_id column; the data has none. "
         "Pass --spatial-unit area or grid."),
        ({"max_cells": 3}, "spatial_unit 'grid' with cell_size 250 m gives 4 cells, more than "
                           "the maximum of 3. Pass --cell-size 300 or larger."),
        ({"crs": "EPSG:4326"}, "crs must be a projected CRS in metres; got 'EPSG:4326' "
                               "(geographic). Use EPSG:32611 (UTM 11N) or leave it out "
                               "to use the UTM zone of the data."),
        ({"kind": "area"}, "spatial_unit 'area' needs an area_id column or a boundary; the data "
                           "has neither. Pass a boundary GeoJSON or --spatial-unit grid."),
        ({"kind": "area", "area_id": ["B", "A", None, "A"]},
         "spatial_unit 'area' needs area polygons; the area ids ['A', 'B'] are not LAPD codes "
         "1..21 and no boundary was given. Pass a boundary GeoJSON or --spatial-unit grid."),
    ],
)
def test_error_messages(kwargs: dict, message: str) -> None:
    lat, lon = cell_centres([C0, C0 + 1, C0 + 2, C0 + 3], [R0] * 4)
    args = {"kind": "grid", **kwargs}
    with pytest.raises(ConfigError) as exc:
        build_units(args.pop("kind"), lat, lon, **args)
    assert str(exc.value) == message


def test_method_argument_errors(lapd_areas: UnitSet, inside_points: tuple) -> None:
    lat, lon = inside_points
    with pytest.raises(ConfigError, match=r"^radius_m must be >= 0 metres; got -1\. "):
        lapd_areas.within(lat, lon, -1)
    with pytest.raises(ConfigError, match=r"^bandwidth_m must be > 0 metres; got 0\. Pass 500\.$"):
        lapd_areas.kernel_weights(0)
    with pytest.raises(DataError, match="history_mask selects none of the 21 events"):
        build_units("area", lat, lon, area_id=np.arange(1, 22), history_mask=np.zeros(21, bool))
    other = square_areas(["A"], [(0, 0, 10, 10)])
    with pytest.raises(DataError, match="no history event lies in"):
        build_units("area", lat, lon, boundary=other)


# --- real data ----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_west_la_slice(shared_data: object) -> None:
    path = shared_data / "lapd" / "lapd_west_la_2020_2021.csv.gz"  # type: ignore[operator]
    df = pl.read_csv(path, columns=["LAT", "LON", "AREA", "Rpt Dist No"],
                     schema_overrides={"AREA": pl.String, "Rpt Dist No": pl.String})
    df = df.filter(pl.col("LAT") != 0)
    lat, lon, area = df["LAT"].to_numpy(), df["LON"].to_numpy(), df["AREA"].to_numpy()
    districts = df["Rpt Dist No"].to_numpy()
    assert build_units("area", lat, lon, area_id=area).ids == ("8",)
    start = time.perf_counter()
    grid = build_units("grid", lat, lon, area_id=area)
    assert time.perf_counter() - start < 5.0  # ~0.4 s measured
    assert (grid.assign(lat, lon) >= 0).mean() > 0.99
    dist = build_units("district", lat, lon, area_id=area, district_id=districts)
    assert 60 <= len(dist) <= 80 and (dist.assign(lat, lon, district_id=districts) >= 0).all()
