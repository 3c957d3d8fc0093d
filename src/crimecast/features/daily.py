"""Daily hotspot history from *settled* data, for the daily and last-year lag features.

An event joins the settled daily series when it was known within ``settle_days``
after its day ended, so the series for day ``d`` may be used from day
``d + 1 + settle_days`` on. The threshold that judges "yesterday" at a row on
day ``D`` comes from days up to ``D - 1 - settle_days``; last year's label for
day ``D - 364`` (the same weekday) is long settled.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.features.asof import (
    PanelGrid,
    Rows,
    event_table,
    occurrence_counts,
    row_interval_counts,
    row_trailing_stats,
    trailing_stats,
)
from crimecast.features.timebins import TimeBinning

LAST_YEAR_DAYS = 364  # 52 weeks: the same weekday one year earlier


@dataclass(frozen=True)
class DailySeries:
    """Settled daily thresholds and labels on a day grid starting at ``first_day``."""

    first_day: dt.date
    threshold: np.ndarray  # (units, days): mean + z*sd of the previous window of days
    hotspot: np.ndarray  # (units, days): 1/0 daily z-score label, NaN without history

    def columns(self, days: np.ndarray, back: int) -> tuple[np.ndarray, np.ndarray]:
        """Column of each day ``back`` days before ``days`` (datetime64[D]), and whether
        the grid holds it."""
        offset = days.astype("datetime64[D]") - np.datetime64(self.first_day, "D")
        index = offset.astype(np.int64) - back
        valid = (index >= 0) & (index < self.threshold.shape[1])
        return np.where(valid, index, 0), valid


@dataclass(frozen=True)
class DailyHistory:
    """The settled daily series around the issue days (``recent``) and 52 weeks before them
    (``last_year``): one grid when the two overlap, two short ones for a time block, so a
    block of a few weeks does not compute the year in between."""

    recent: DailySeries
    last_year: DailySeries
    settle_days: int

    def yesterday_threshold(self, issue_days: np.ndarray) -> np.ndarray:
        """Threshold for judging the day before each issue day (datetime64[D]), settled."""
        index, valid = self.recent.columns(issue_days, self.settle_days)
        out = self.recent.threshold[:, index]
        out[:, ~valid] = np.nan
        return out

    def last_year_hotspot(self, issue_days: np.ndarray) -> np.ndarray:
        """Daily hotspot label of the same weekday 52 weeks before each issue day."""
        index, valid = self.last_year.columns(issue_days, LAST_YEAR_DAYS)
        out = self.last_year.hotspot[:, index]
        out[:, ~valid] = np.nan
        return out


def _daily_series(events: pl.DataFrame, start: dt.date, end: dt.date, *, settle_days: int,
                  window_days: int, z_threshold: float, sd_floor: float,
                  n_units: int) -> DailySeries:
    days = TimeBinning("1d")
    first = days.index_of(dt.datetime.combine(start, dt.time()))
    last = days.index_of(dt.datetime.combine(end, dt.time()))
    grid = PanelGrid(n_units=n_units, first_bin=first, n_bins=last - first + 1)
    settled = occurrence_counts(events, grid, max_delay=1 + settle_days)
    # Window sums of exact integer counts: a day's values do not depend on where the grid
    # starts, once the window before it is inside.
    mean, sd = trailing_stats(settled, window_days, lag=1)
    floored = np.maximum(sd, sd_floor)
    hot = (((settled - mean) / floored >= z_threshold) & (settled >= 1)).astype(np.float32)
    hot[np.isnan(mean)] = np.nan
    return DailySeries(first_day=start, threshold=mean + z_threshold * floored, hotspot=hot)


def daily_history(
    clean: pl.DataFrame,
    unit_index: np.ndarray,
    *,
    delay_aware: bool,
    first_day: dt.date,
    last_day: dt.date,
    settle_days: int,
    window_days: int,
    z_threshold: float,
    sd_floor: float,
    n_units: int,
) -> DailyHistory:
    """Compute the settled daily series and its thresholds/labels for ``n_units`` units."""
    events = event_table(clean, unit_index, TimeBinning("1d"), delay_aware)
    lead = dt.timedelta(days=window_days + settle_days + 2)
    year = dt.timedelta(days=LAST_YEAR_DAYS)
    series = functools.partial(_daily_series, events, settle_days=settle_days,
                               window_days=window_days, z_threshold=z_threshold,
                               sd_floor=sd_floor, n_units=n_units)
    if last_day - year >= first_day - lead:  # the two ranges overlap: one grid
        whole = series(first_day - year - lead, last_day)
        return DailyHistory(recent=whole, last_year=whole, settle_days=settle_days)
    return DailyHistory(recent=series(first_day - lead, last_day),
                        last_year=series(first_day - year - lead, last_day - year),
                        settle_days=settle_days)


@dataclass(frozen=True)
class DailyRows:
    """:class:`DailyHistory` read at requested rows (unit, issue day) from the daily event
    table, without a (units × days) matrix: the same thresholds and labels, computed
    from window sums of the settled daily counts (:func:`row_trailing_stats`)."""

    events: pl.DataFrame  # event_table on daily bins
    unit: np.ndarray
    day: np.ndarray  # issue day index (1d bins)
    n_units: int
    settle_days: int
    window_days: int
    z_threshold: float
    sd_floor: float

    def _settled(self) -> tuple[np.ndarray, np.ndarray]:
        known = self.events.filter(pl.col("avail") - pl.col("occ") <= 1 + self.settle_days)
        return known["_u"].to_numpy(), known["occ"].to_numpy()

    def _rows(self, day: np.ndarray) -> Rows:
        # The dense history starts this far before the first issue day: windows are full.
        first = int(self.day.min()) - (LAST_YEAR_DAYS + self.window_days + self.settle_days + 2)
        return Rows(unit=self.unit, row=day, first_bin=first, n_units=self.n_units)

    def _floored(self, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        units, occ = self._settled()
        mean, sd = row_trailing_stats(units, occ, self._rows(day), self.window_days, lag=1)
        return mean, np.maximum(sd, self.sd_floor)

    def yesterday_threshold(self) -> np.ndarray:
        """Threshold for judging the day before each issue day, settled."""
        mean, floored = self._floored(self.day - self.settle_days)
        return mean + self.z_threshold * floored

    def last_year_hotspot(self) -> np.ndarray:
        """Daily hotspot label of the same weekday 52 weeks before each issue day."""
        day = self.day - LAST_YEAR_DAYS
        mean, floored = self._floored(day)
        units, occ = self._settled()
        settled = row_interval_counts(units, occ, occ, self._rows(day))
        hot = (((settled - mean) / floored >= self.z_threshold) & (settled >= 1)).astype(
            np.float32)
        hot[np.isnan(mean)] = np.nan
        return hot
