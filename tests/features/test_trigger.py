"""The trigger kernel's mass in units: exact grid masses, the centroid approximation, the
lattice path against the tree path, and messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import dblquad

from crimecast.errors import ModelError
from crimecast.features import trigger
from crimecast.features.trigger import trigger_weights


def _grid(cell: float, half_cells: int, origin: tuple[float, float]) -> np.ndarray:
    offsets = (np.arange(-half_cells, half_cells + 1) * cell)
    gx, gy = np.meshgrid(origin[0] + offsets, origin[1] + offsets, indexing="ij")
    return np.column_stack([gx.ravel(), gy.ravel()])


def _density(dx: float, dy: float, sigma: float) -> float:
    return math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) / (2 * math.pi * sigma * sigma)


def test_trigger_weights_grid_mass_is_exact() -> None:
    cell, sigma = 50.0, 100.0
    centroids = _grid(cell, 20, (1000.0, 2000.0))
    areas = np.full(len(centroids), cell * cell)
    ex, ey = 1013.0, 1993.0
    event, unit, weight = trigger_weights(np.array([ex]), np.array([ey]), centroids, areas,
                                          sigma, cell, cutoff=4.0)
    assert event.dtype == np.int64 and unit.dtype == np.int64 and weight.dtype == np.float64
    assert np.all(event == 0) and np.all(np.diff(unit) > 0)
    assert abs(weight.sum() - 1.0) < 1e-3
    # Exactly the units within 4σ + half a diagonal, and the right mass in one cell.
    distance = np.hypot(centroids[:, 0] - ex, centroids[:, 1] - ey)
    assert np.array_equal(unit, np.flatnonzero(distance <= 4 * sigma + cell * math.sqrt(2) / 2))
    target = int(np.flatnonzero((centroids[:, 0] == 1100.0) & (centroids[:, 1] == 1950.0))[0])
    cx, cy = centroids[target]
    mass, _ = dblquad(lambda yy, xx: _density(xx - ex, yy - ey, sigma),
                      cx - cell / 2, cx + cell / 2, cy - cell / 2, cy + cell / 2)
    assert weight[unit == target][0] == pytest.approx(mass, rel=1e-7)


def test_trigger_weights_polygon_units_use_the_centroid_density() -> None:
    sigma = 80.0
    centroids = np.array([[0.0, 0.0], [30.0, 40.0], [200.0, 0.0], [500.0, 500.0]])
    areas = np.array([100.0, 400.0, 900.0, 1.0e4])
    event, unit, weight = trigger_weights(np.array([0.0, 300.0]), np.array([0.0, 0.0]),
                                          centroids, areas, sigma, None, cutoff=3.0)
    # Within 3σ = 240 m: event 0 reaches units 0, 1 and 2 (d = 0, 50, 200); event 1 at
    # x = 300 reaches unit 2 only (d = 100; unit 1 is 273 m away).
    assert event.tolist() == [0, 0, 0, 1] and unit.tolist() == [0, 1, 2, 2]
    want = [_density(0, 0, sigma) * 100, _density(30, 40, sigma) * 400,
            _density(200, 0, sigma) * 900, _density(100, 0, sigma) * 900]
    np.testing.assert_allclose(weight, want, rtol=1e-12)
    # For a unit small next to σ the approximation is close to the exact square-cell mass
    # (the midpoint rule's error is about cell² / (24 σ²) times O(1): 0.4% here).
    _, _, exact = trigger_weights(np.array([0.0]), np.array([0.0]), centroids[1:2],
                                  areas[1:2], sigma, 20.0)
    assert weight[1] == pytest.approx(exact[0], rel=1e-2)


def test_trigger_weights_empty_inputs() -> None:
    event, unit, weight = trigger_weights(np.zeros(0), np.zeros(0), np.zeros((2, 2)),
                                          np.ones(2), 50.0, 10.0)
    assert (event.size, unit.size, weight.size) == (0, 0, 0) and event.dtype == np.int64



@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cell=st.sampled_from([50.0, 150.0, 250.0, 333.0]),
       sigma=st.floats(20.0, 400.0), cutoff=st.sampled_from([1.0, 3.0, 4.5]),
       row_major=st.booleans())
def test_lattice_path_equals_the_tree_path(seed: int, cell: float, sigma: float, cutoff: float,
                                           row_major: bool) -> None:
    rng = np.random.default_rng(seed)
    # A ragged set of cells (a city's grid has holes and an irregular edge), numbered
    # row-major as the grid builds them, or shuffled.
    box = np.array([(c, r) for r in range(-3, 12) for c in range(5, 25)])
    cells = box[rng.random(len(box)) < 0.6]
    if not row_major:
        cells = cells[rng.permutation(len(cells))]
    centroids = (cells + 0.5) * cell
    n = int(rng.integers(1, 400))
    x = rng.uniform(2 * cell, 28 * cell, n)
    y = rng.uniform(-7 * cell, 16 * cell, n)
    x[: n // 5] = np.round(x[: n // 5] / cell) * cell  # events on cell edges
    y[n // 7: n // 3] = np.round(y[n // 7: n // 3] / (cell / 2)) * (cell / 2)
    areas = np.full(len(cells), cell * cell)
    lattice = trigger_weights(x, y, centroids, areas, sigma, cell, cutoff)
    with mock.patch.object(trigger, "_lattice", lambda *args: None):
        tree = trigger_weights(x, y, centroids, areas, sigma, cell, cutoff)
    for got, want in zip(lattice, tree, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_centroids_off_the_lattice_use_the_tree() -> None:
    cells = np.array([(c, r) for r in range(10) for c in range(10)])
    assert trigger._lattice((cells + 0.5) * 100.0, 100.0) is not None
    assert trigger._lattice((cells + 0.5) * 100.0 + 1.0, 100.0) is None  # shifted
    assert trigger._lattice(np.vstack([(cells + 0.5) * 100.0, [[50.0, 50.0]]]), 100.0) is None


# --- messages ------------------------------------------------------------------------------

ONE = np.ones(3)


def _weights(**overrides: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"x": ONE, "y": ONE, "centroids": np.zeros((2, 2)),
                            "unit_area_m2": np.ones(2), "sigma_m": 50.0, "cell_size": 10.0}
    args.update(overrides)
    return lambda: trigger_weights(**args)



MESSAGES: list[tuple[Callable[[], object], str]] = [
    (_weights(y=np.ones(2)),
     "x and y must have equal lengths; got 3 and 2. Pass one coordinate pair per event."),
    (_weights(unit_area_m2=np.ones(3)),
     "centroids must have shape (n_units, 2) and unit_area_m2 shape (n_units,); got (2, 2) and "
     "(3,). Pass one (x, y) centroid and one area per unit."),
    (_weights(sigma_m=0.0),
     "sigma_m must be a finite number > 0; got 0.0. Pass the fitted kernel width in metres."),
    (_weights(cutoff=-3.0),
     "cutoff must be a finite number > 0; got -3.0. Pass a number of standard deviations such "
     "as 3."),
    (_weights(cell_size=0.0),
     "cell_size must be a finite number > 0; got 0.0. Pass the grid cell side in metres, or "
     "None."),
]


@pytest.mark.parametrize(("call", "message"), MESSAGES)
def test_error_messages(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ModelError) as err:
        call()
    assert str(err.value) == message
