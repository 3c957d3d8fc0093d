"""The raster point-in-polygon test answers exactly as shapely's per-point test."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.data.geo import study_area
from crimecast.data.prepare import boundary_areas
from crimecast.data.study_mask import PolygonRaster, raster_of


def _points_on(geometry: shapely.Geometry, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random points in and around the bounds, plus every vertex and edge midpoint."""
    minx, miny, maxx, maxy = geometry.bounds
    w, h = maxx - minx or 1.0, maxy - miny or 1.0
    scattered = np.column_stack([rng.uniform(minx - 0.2 * w, maxx + 0.2 * w, n),
                                 rng.uniform(miny - 0.2 * h, maxy + 0.2 * h, n)])
    ring = shapely.get_coordinates(geometry.boundary)
    midpoints = (ring[:-1] + ring[1:]) / 2
    corners = np.array([[minx, miny], [maxx, maxy], [minx, maxy], [maxx, miny]])
    return np.vstack([scattered, ring, midpoints, corners])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), vertices=st.integers(3, 40),
       cells=st.sampled_from([1, 2, 7, 32, 128]), hole=st.booleans())
def test_raster_agrees_with_intersects_xy(seed: int, vertices: int, cells: int,
                                          hole: bool) -> None:
    rng = np.random.default_rng(seed)
    centre = rng.uniform([-118.7, 33.7], [-118.1, 34.3])
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(0.01, 0.2, vertices)
    shell = centre + np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    polygon = shapely.make_valid(shapely.Polygon(shell))
    if hole:
        polygon = polygon.difference(shapely.Point(centre).buffer(0.005))
    points = _points_on(polygon, rng, 2000)
    expected = shapely.intersects_xy(polygon, points[:, 0], points[:, 1])
    got = PolygonRaster(polygon, cells).contains_xy(points[:, 0], points[:, 1])
    assert np.array_equal(got, expected)


def test_raster_agrees_on_the_lapd_study_area() -> None:
    area = study_area(boundary_areas(None), buffer_m=100)
    points = _points_on(area, np.random.default_rng(7), 200_000)
    expected = shapely.intersects_xy(area, points[:, 0], points[:, 1])
    assert np.array_equal(raster_of(area).contains_xy(points[:, 0], points[:, 1]), expected)
    assert 0 < expected.mean() < 1
