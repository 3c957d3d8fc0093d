"""Computations of the declared features that judge settled history or nearby events.

The three was-hotspot flags compare a known count with a threshold from the
unit's *settled* history (events known within ``settle_days``), so a late report
can never move a threshold after the fact; near-repeat counts events within a
radius of the unit rather than inside it. Each function takes the
:class:`~crimecast.features.context.FeatureContext` and returns a matrix at
issue rows, as every declaration's ``compute`` does.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Executor, Future

import numpy as np
import polars as pl

from crimecast.features.asof import (
    INTERVAL_CHUNK,
    day_window_counts,
    event_table,
    occurrence_counts,
    row_trailing_stats,
    trailing_stats,
    window_counts,
)
from crimecast.features.context import EVENT_XY, FeatureContext
from crimecast.features.daily import DailyHistory, DailyRows, daily_history
from crimecast.features.timebins import TimeBinning

DAILY_WINDOW = 28


def _flag(count: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """1 where a known count reaches the threshold (and is at least 1); NaN without one."""
    flag = ((count >= threshold) & (count >= 1)).astype(np.float32)
    flag[np.isnan(threshold)] = np.nan
    return flag


def bin_days(c: FeatureContext) -> np.ndarray:
    """Calendar day (datetime64[D]) of each panel bin's start."""
    hours = np.arange(c.grid.first_bin, c.grid.last_bin + 1, dtype=np.int64) * c.binning.hours
    starts = np.datetime64(c.binning.origin, "h") + hours.astype("timedelta64[h]")
    return starts.astype("datetime64[D]")


def was_hotspot_last_bin(c: FeatureContext) -> np.ndarray:
    """The last bin's known count against mean + z·sd of the unit's settled earlier bins."""
    settle = c.binning.bins_for(dt.timedelta(days=c.config.settle_days))
    if c.rows is None:
        settled = occurrence_counts(c.events, c.grid, max_delay=1 + settle)
        mean, sd = trailing_stats(settled, c.z_window, lag=1 + settle)
    else:
        known = c.events.filter(pl.col("avail") - pl.col("occ") <= 1 + settle)
        mean, sd = row_trailing_stats(known["_u"].to_numpy(), known["occ"].to_numpy(), c.rows,
                                      c.z_window, lag=1 + settle)
    threshold = mean + c.config.z_threshold * np.maximum(sd, c.config.z_sd_floor)
    return _flag(c.trailing(1), threshold)


DAILY_KEY = "daily_history"
NEAR_KEY = "near_repeat_pairs"


def settled_daily_history(c: FeatureContext) -> DailyHistory:
    """The settled daily history over ``c``'s grid, computed once per context (a panel's
    may be shared by its time blocks)."""
    def make() -> DailyHistory:
        issue = bin_days(c)
        return daily_history(
            c.clean, c.unit_index, delay_aware=c.config.delay_aware,
            first_day=issue.min().astype(dt.date) - dt.timedelta(days=1),
            last_day=issue.max().astype(dt.date), settle_days=c.config.settle_days,
            window_days=DAILY_WINDOW, z_threshold=c.config.z_threshold,
            sd_floor=c.config.z_sd_floor, n_units=c.grid.n_units)
    history: DailyHistory = c.shared(DAILY_KEY, make)
    return history


def was_daily_hotspot_yesterday(c: FeatureContext) -> np.ndarray:
    """Yesterday's known count against the settled daily threshold."""
    yesterday = day_window_counts(c.events, c.target, c.binning)
    if c.rows is None:
        return _flag(yesterday, settled_daily_history(c).yesterday_threshold(bin_days(c)))
    return _flag(yesterday, daily_rows(c).yesterday_threshold())


def was_hotspot_last_year_same_day(c: FeatureContext) -> np.ndarray:
    """The settled daily label of the same weekday 52 weeks before the issue day."""
    if c.rows is None:
        return settled_daily_history(c).last_year_hotspot(bin_days(c))
    return daily_rows(c).last_year_hotspot()


def daily_rows(c: FeatureContext) -> DailyRows:
    """The settled daily history read at ``c.rows`` (the event-indexed engine)."""
    assert c.rows is not None
    rows = c.rows

    def make() -> DailyRows:
        offset = c.binning.origin.hour  # bin starts are origin + row * hours
        day = (rows.row * c.binning.hours + offset) // 24
        return DailyRows(events=event_table(c.clean, c.unit_index, TimeBinning("1d"),
                                            c.config.delay_aware),
                         unit=rows.unit, day=day, n_units=rows.n_units,
                         settle_days=c.config.settle_days, window_days=DAILY_WINDOW,
                         z_threshold=c.config.z_threshold, sd_floor=c.config.z_sd_floor)
    history: DailyRows = c.shared("daily_rows", make)
    return history


def prefetch_near_repeat(c: FeatureContext, pool: Executor) -> None:
    """Start the panel-wide near-repeat pairs (and the events' projection, which the SEPP
    reads too) in ``pool``, to overlap the other features; :func:`near_repeat` waits."""
    radius = c.config.near_repeat_radius_m
    if c.rows is not None or NEAR_KEY in c.cache or not c.panel_wide(radius):
        return
    c.ahead(EVENT_XY, lambda: c.project(c.events), pool)
    xy = c.cache[EVENT_XY]

    def pairs() -> tuple[np.ndarray, np.ndarray]:
        x, y = xy.result() if isinstance(xy, Future) else xy
        return _narrow(c.units.within_xy(x, y, radius))
    c.ahead(NEAR_KEY, pairs, pool)


def _narrow(pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Panel-wide (event, unit) pairs as int32 (half the memory; held for the whole build)."""
    small = all(a.size == 0 or int(a.max()) < 2**31 for a in pairs)
    return (pairs[0].astype(np.int32), pairs[1].astype(np.int32)) if small else pairs


def near_repeat(c: FeatureContext) -> np.ndarray:
    """Events known at issue time within the radius of each unit over the trailing hours."""
    radius, window = c.config.near_repeat_radius_m, c.bins(c.config.near_repeat_hours / 24)
    if c.panel_wide(radius):  # the pairs once per panel, shared by its blocks
        _, occ, avail = c.arrays()
        event_idx, unit_idx = c.shared(NEAR_KEY, lambda: _narrow(
            c.units.within_xy(*c.event_xy(), radius)))
    else:  # only the events this block's rows can count
        events = c.events_reaching(c.issue_rows(), window)
        occ, avail = events["occ"].to_numpy(), events["avail"].to_numpy()
        event_idx, unit_idx = c.units.within_xy(*c.project(events), radius)
    # the (event, unit) pairs' counts, without a frame of them; at requested rows a part of
    # the pairs at a time (their counts add up), so their times are never all gathered
    step = INTERVAL_CHUNK if c.rows is not None else max(event_idx.size, 1)
    counts: np.ndarray | None = None
    for a in range(0, max(event_idx.size, 1), step):  # once when there are no pairs
        chosen = event_idx[a:a + step]
        part = window_counts(np.asarray(unit_idx[a:a + step], dtype=np.int64), occ[chosen],
                             avail[chosen], c.target, window)
        counts = part if counts is None else np.add(counts, part, out=counts)
    assert counts is not None
    return counts
