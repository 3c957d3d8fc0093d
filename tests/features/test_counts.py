"""The fast dense counts equal the difference-array reference, value for value (issue #15)."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.features.asof import PanelGrid, Rows, interval_counts, occurrence_counts
from crimecast.features.counts import GridCounts
from crimecast.features.kde import snapshot_counts

event = st.tuples(st.integers(0, 2), st.integers(-40, 60), st.integers(-5, 80))


def _arrays(rows: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    units, occ, delay = (np.array(c, dtype=np.int64).reshape(-1) for c in zip(*rows, strict=True)) \
        if rows else (np.zeros(0, np.int64),) * 3
    return units, occ, occ + delay


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(event, max_size=40), first=st.integers(-20, 40),
       n_bins=st.integers(1, 50), bins=st.integers(-2, 120))
def test_grid_counts_equal_the_interval_counts(rows: list, first: int, n_bins: int,
                                               bins: int) -> None:
    units, occ, avail = _arrays(rows)
    grid = PanelGrid(n_units=3, first_bin=first, n_bins=n_bins)
    counts = GridCounts.build(units, occ, avail, grid)
    window = counts.window(bins)
    assert window.dtype == np.float32
    np.testing.assert_array_equal(window, interval_counts(units, avail, occ + bins, grid))
    lag = counts.lag(bins)
    target = occ + bins
    assert lag.dtype == np.float32
    np.testing.assert_array_equal(lag, interval_counts(units, np.maximum(avail, target),
                                                       target, grid))


def test_grid_counts_far_back_fall_back_to_the_reference() -> None:
    # History far before a short grid: the sums reach one grid length back, no further.
    units, occ = np.array([0, 0, 1]), np.array([-500, 5, 8])
    avail = occ + np.array([1, 300, 2])
    grid = PanelGrid(n_units=2, first_bin=10, n_bins=5)
    counts = GridCounts.build(units, occ, avail, grid)
    assert not counts.complete
    for bins in (1, 4, 20, 600):
        np.testing.assert_array_equal(counts.window(bins),
                                      interval_counts(units, avail, occ + bins, grid))


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(event, max_size=40), first=st.integers(-20, 40),
       n_bins=st.integers(1, 50), max_delay=st.one_of(st.none(), st.integers(0, 30)))
def test_occurrence_histogram_equals_the_intervals(rows: list, first: int, n_bins: int,
                                                   max_delay: int | None) -> None:
    units, occ, avail = _arrays(rows)
    events = pl.DataFrame({"_u": units, "occ": occ, "avail": avail})
    grid = PanelGrid(n_units=3, first_bin=first, n_bins=n_bins)
    keep = np.ones(occ.size, bool) if max_delay is None else avail - occ <= max_delay
    expected = interval_counts(units[keep], occ[keep], occ[keep], grid)
    np.testing.assert_array_equal(occurrence_counts(events, grid, max_delay), expected)
    rows_ = Rows(unit=np.repeat(np.arange(3), n_bins), row=np.tile(np.arange(n_bins) + first, 3),
                 first_bin=first, n_units=3)
    np.testing.assert_array_equal(occurrence_counts(events, rows_, max_delay), expected.ravel())


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(event, max_size=40), start=st.integers(-30, 30),
       size=st.integers(1, 12), step=st.integers(1, 9))
def test_even_snapshots_count_as_the_searched_ones(rows: list, start: int, size: int,
                                                   step: int) -> None:
    units, occ, avail = _arrays(rows)
    even = start + step * np.arange(size, dtype=np.int64)
    uneven = np.r_[even, even[-1] + step + 1]  # not evenly spaced: searched
    for points in (even, uneven):
        first = np.searchsorted(points, avail, side="left")
        last = np.searchsorted(points, occ + 7, side="right")
        expected = np.zeros((3, points.size))
        for u, a, b in zip(units, first, last, strict=True):
            expected[u, a:b] += 1
        np.testing.assert_array_equal(snapshot_counts(units, avail, occ + 7, points, 3),
                                      expected)
