"""Hand-computed checks of time bins, as-of counting and labels on tiny inputs."""

from __future__ import annotations

import datetime as dt
import math
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.errors import ConfigError
from crimecast.features import asof
from crimecast.features.asof import (
    PanelGrid,
    Rows,
    event_arrays,
    interval_counts,
    lag_counts,
    occurrence_counts,
    row_interval_counts,
    trailing_stats,
    window_counts,
)
from crimecast.features.calendar import calendar_features, holiday_dates
from crimecast.features.labels import topk_label, zscore_label
from crimecast.features.timebins import TimeBinning


def test_bin_index_and_start_for_shifts() -> None:
    shifts = TimeBinning("8h", shift_start_hour=6)
    frame = pl.DataFrame({"t": [dt.datetime(2024, 3, 4, 5, 59), dt.datetime(2024, 3, 4, 6, 0),
                                dt.datetime(2024, 3, 4, 21, 59), dt.datetime(2024, 3, 4, 22, 0)]})
    starts = frame.select(shifts.start(shifts.index("t"))).to_series().to_list()
    assert starts == [dt.datetime(2024, 3, 3, 22), dt.datetime(2024, 3, 4, 6),
                      dt.datetime(2024, 3, 4, 14), dt.datetime(2024, 3, 4, 22)]
    weeks = TimeBinning("7d")
    assert weeks.start_of(weeks.index_of(dt.datetime(2024, 3, 7, 12))) == dt.datetime(2024, 3, 4)


def test_bad_time_bin_message() -> None:
    with pytest.raises(ConfigError) as err:
        TimeBinning("2h")
    assert str(err.value) == (
        "time_bin must be one of 1h, 8h, 12h, 1d, 7d; got '2h'. Pass --time-bin 1h."
    )


def test_interval_counts_difference_array() -> None:
    grid = PanelGrid(n_units=2, first_bin=10, n_bins=6)
    counts = interval_counts(np.array([0, 0, 1, 1]), np.array([8, 12, 15, 14]),
                             np.array([11, 12, 20, 13]), grid)
    assert counts.tolist() == [[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1]]


def _events(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    units, occ, avail = zip(*rows, strict=True)
    return pl.DataFrame({"_u": list(units), "occ": list(occ), "avail": list(avail)},
                        schema={"_u": pl.Int64, "occ": pl.Int64, "avail": pl.Int64})


def test_window_and_lag_counts_respect_availability() -> None:
    grid = PanelGrid(n_units=1, first_bin=0, n_bins=6)
    # occurred in bin 1, known from row 2; occurred in bin 1, known only from row 4 (late
    # report); occurred in bin 3, known from row 4.
    events = _events([(0, 1, 2), (0, 1, 4), (0, 3, 4)])
    assert window_counts(*event_arrays(events), grid, 1).tolist() == [[0, 0, 1, 0, 1, 0]]
    assert window_counts(*event_arrays(events), grid, 3).tolist() == [[0, 0, 1, 1, 3, 1]]
    assert lag_counts(*event_arrays(events), grid, 1).tolist() == [[0, 0, 1, 0, 1, 0]]
    assert lag_counts(*event_arrays(events), grid, 3).tolist() == [[0, 0, 0, 0, 2, 0]]
    assert occurrence_counts(events, grid).tolist() == [[0, 2, 0, 1, 0, 0]]
    assert occurrence_counts(events, grid, max_delay=1).tolist() == [[0, 1, 0, 1, 0, 0]]


def test_zscore_label_by_hand() -> None:
    counts = np.array([[0, 2, 0, 2, 5, 1]], dtype=np.float32)
    z, hot = zscore_label(counts, window=4, threshold=1.5, sd_floor=0.5)
    # Bin 4: previous 4 = [0, 2, 0, 2], mean 1, sample sd = sqrt(4/3) = 1.1547.
    assert z[0, 4] == pytest.approx((5 - 1) / math.sqrt(4 / 3), rel=1e-6)
    # Bin 5: previous 4 = [2, 0, 2, 5], mean 2.25, sd = sqrt(12.75/3) = 2.0616.
    assert z[0, 5] == pytest.approx((1 - 2.25) / math.sqrt(12.75 / 3), rel=1e-6)
    assert np.isnan(hot[0, :4]).all() and hot[0, 4:].tolist() == [1.0, 0.0]


def test_zscore_sd_floor_applies_to_a_quiet_history() -> None:
    counts = np.array([[0, 0, 0, 1]], dtype=np.float32)
    z, hot = zscore_label(counts, window=3, threshold=1.5, sd_floor=0.5)
    assert z[0, 3] == pytest.approx(2.0) and hot[0, 3] == 1.0


def test_trailing_stats_with_lag() -> None:
    values = np.array([[1, 2, 3, 4, 5, 6]], dtype=np.float32)
    mean, sd = trailing_stats(values, window=2, lag=2)
    assert np.isnan(mean[0, :3]).all()
    assert mean[0, 3:].tolist() == [1.5, 2.5, 3.5]
    assert sd[0, 3] == pytest.approx(math.sqrt(0.5))


def test_topk_label_ties_are_deterministic_and_zero_never_hot() -> None:
    counts = np.array([[3, 0], [1, 0], [1, 0], [0, 0]], dtype=np.float32)
    hot = topk_label(counts, pct=50, first_bin=0)
    assert hot[:, 0].sum() == 2 and hot[0, 0] == 1 and hot[3, 0] == 0
    assert hot[:, 1].tolist() == [0, 0, 0, 0]
    assert (topk_label(counts, pct=50, first_bin=0) == hot).all()
    # The tie between units 1 and 2 is decided by the hash, not by the unit order.
    winners = {int(np.argmax(topk_label(counts, 50, b)[1:3, 0])) for b in range(20)}
    assert winners == {0, 1}


def test_calendar_flags_use_the_holidays_library() -> None:
    days = holiday_dates(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert dt.date(2024, 7, 4) in days and dt.date(2024, 11, 28) in days
    frame = pl.DataFrame({"s": [dt.datetime(2024, 7, 4, 13), dt.datetime(2024, 7, 6, 1),
                                dt.datetime(2024, 7, 8, 23)]})
    out = frame.select(calendar_features(pl.col("s"), 1, days))
    assert out["is_holiday"].to_list() == [1, 0, 0]
    assert out["is_weekend"].to_list() == [0, 1, 0]
    assert out["is_weekend_or_holiday"].to_list() == [1, 1, 0]
    assert out["hour_sin"][0] == pytest.approx(math.sin(2 * math.pi * 13 / 24))
    week = pl.DataFrame({"s": [dt.datetime(2024, 7, 1)]}).select(
        calendar_features(pl.col("s"), 168, days))
    assert week["is_holiday"].to_list() == [1]  # the week of 4 July


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), chunk=st.integers(1, 40),
       weighted=st.booleans())
def test_row_interval_counts_in_parts_equal_one_pass(seed: int, n: int, chunk: int,
                                                    weighted: bool) -> None:
    """Intervals counted a chunk at a time (many near-repeat pairs) sum to the same values."""
    rng = np.random.default_rng(seed)
    units, lo = rng.integers(0, 5, n), rng.integers(-5, 40, n)
    hi = lo + rng.integers(-3, 15, n)  # empty intervals too
    rows = Rows(unit=np.repeat(np.arange(5), 30), row=np.tile(np.arange(-2, 28), 5),
                first_bin=0, n_units=5)
    weights = rng.integers(1, 9, n) if weighted else None
    whole = row_interval_counts(units, lo, hi, rows, weights)
    with mock.patch.object(asof, "INTERVAL_CHUNK", chunk):
        parts = row_interval_counts(units, lo, hi, rows, weights)
    assert parts.dtype == whole.dtype and np.array_equal(parts, whole)
