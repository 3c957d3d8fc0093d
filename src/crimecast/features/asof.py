"""As-of counting: what was known about each unit at the start of each bin.

The rule (README, "As-of semantics"): a row for unit ``u`` and bin ``[t, t+Δ)`` may
use only events with ``occurred_at < t`` and, when delay-aware, ``reported_at < t``.
Each event therefore gets an *availability bin* ``avail``: the first bin whose
start is strictly after ``known_at = max(occurred_at, reported_at)``. An event
may influence row ``a`` only if ``avail <= a``.

Every as-of feature is a count of events over an interval of rows: an event
counts in a trailing window of ``W`` bins at every row ``a`` with
``avail <= a <= occ + W``; in a single-bin lag ``k`` only at ``a = occ + k`` and
only if ``avail <= occ + k``. :func:`interval_counts` turns such per-event
intervals into a dense ``(units, bins)`` matrix with a difference array and a
cumulative sum: exact, vectorised and linear in the number of events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.features.timebins import TimeBinning

logger = logging.getLogger(__name__)

# Intervals counted at a time at requested rows: their keys' sorts then hold a few hundred
# MB, not several GB (near-repeat pairs at fine grids number tens of millions). Counts are
# integers (exact in float32 below 2**24), so the parts' sums are the same values.
INTERVAL_CHUNK = 4_000_000


@dataclass(frozen=True)
class PanelGrid:
    """The dense panel's shape: ``n_units`` units × bins ``first_bin .. first_bin+n_bins-1``."""

    n_units: int
    first_bin: int
    n_bins: int

    @property
    def last_bin(self) -> int:
        """Index of the panel's last bin."""
        return self.first_bin + self.n_bins - 1


@dataclass(frozen=True)
class Rows:
    """Requested rows ``(unit[i], row[i])`` of a panel whose first bin is ``first_bin``.

    The event-indexed engine computes features only for these rows; statistics
    over earlier bins (z-scores, thresholds) are NaN where their window reaches
    before ``first_bin``, as in the dense panel.
    """

    unit: np.ndarray  # int64
    row: np.ndarray  # int64 issue rows (bin indices)
    first_bin: int
    n_units: int

    def __len__(self) -> int:
        return int(self.row.size)


Target = PanelGrid | Rows


def event_table(
    clean: pl.DataFrame, unit_index: np.ndarray, binning: TimeBinning, delay_aware: bool
) -> pl.DataFrame:
    """Per-event integers for counting: unit, occurrence bin, availability bin, category.

    Events outside the study area (``unit_index == -1``) are dropped here; the
    caller reports how many.
    """
    known = pl.col("occurred_at")
    if delay_aware:
        # A report date (LAPD: a date, i.e. midnight) later than the occurrence delays
        # when the event is known; an earlier one cannot make it known before it happened.
        known = pl.max_horizontal(pl.col("occurred_at"), pl.col("reported_at").fill_null(
            pl.col("occurred_at")))
    table = clean.select(
        _u=pl.Series(unit_index, dtype=pl.Int64),
        occ=binning.index("occurred_at"),
        avail=binning.index(known) + 1,
        occ_day=pl.col("occurred_at").dt.date(),
        t_days=(pl.col("occurred_at") - pl.lit(binning.origin)).dt.total_microseconds()
        / 86_400_000_000,
        category=pl.col("crime_category"),
        lat=pl.col("lat"),
        lon=pl.col("lon"),
    )
    table = table.filter(pl.col("_u") >= 0)
    # One chunk for the counting columns: the features read them as numpy arrays (read-only
    # views, no copy each time).
    return table.with_columns(table[c].rechunk() for c in ("_u", "occ", "avail"))


def interval_counts(
    units: np.ndarray, lo: np.ndarray, hi: np.ndarray, grid: Target
) -> np.ndarray:
    """Count, for every (unit, row), the events whose row interval ``[lo, hi]`` covers it.

    On a :class:`PanelGrid` returns a float32 matrix of shape ``(n_units, n_bins)``;
    on :class:`Rows` a float32 vector, one value per requested row. Intervals with
    ``lo > hi`` are empty; parts outside the panel are clipped.
    """
    if isinstance(grid, Rows):
        return row_interval_counts(units, lo, hi, grid)
    # Intervals that are empty or miss the grid add nothing. When the grid is a short time
    # block of a long history, most miss it: dropping them first saves the scattered
    # writes (on a whole panel the filter costs more than it saves).
    if lo.size and 4 * grid.n_bins < int(lo.max()) - int(lo.min()):
        touches = (hi >= np.maximum(lo, grid.first_bin)) & (lo <= grid.last_bin)
        units, lo, hi = units[touches], lo[touches], hi[touches]
    # Clipped into [0, n_bins] (n_bins: a spare column) with stop >= start, intervals
    # outside the grid or empty add and remove at the same cell and cancel: no filtering.
    start = np.clip(lo - grid.first_bin, 0, grid.n_bins)
    stop = np.clip(np.maximum(hi + 1, lo) - grid.first_bin, 0, grid.n_bins)
    width = grid.n_bins + 1
    offset = units * width
    # +1 where an interval starts, -1 after it ends, summed along each unit's row. Counts
    # are small integers, exact in float32 (below 2**24); float32 halves the memory.
    counts = np.zeros((grid.n_units, width), dtype=np.float32)
    flat = counts.reshape(-1)
    np.add.at(flat, offset + start, np.float32(1))  # a float32 value: numpy's fast path
    np.add.at(flat, offset + stop, np.float32(-1))
    np.cumsum(counts, axis=1, out=counts)
    return counts[:, : grid.n_bins]


def row_interval_counts(
    units: np.ndarray, lo: np.ndarray, hi: np.ndarray, rows: Rows,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`interval_counts` at requested rows: events indexed per unit, read with
    ``searchsorted``; cost grows with events and rows, not units × bins.

    An interval covers row ``a`` iff ``lo <= a`` and not ``max(lo, hi + 1) <= a``,
    so the count is a difference of two sorted-key ranks (empty intervals cancel).
    Keys are ``unit * span + clipped time``, clipped to the rows' range so units
    never overlap. Integer arithmetic: exact, the same values as the dense matrix.
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float64 if weights is not None else np.float32)
    if units.size > INTERVAL_CHUNK:  # counts add up over any split of the intervals
        total = None
        for a in range(0, units.size, INTERVAL_CHUNK):
            part = slice(a, a + INTERVAL_CHUNK)
            counts = row_interval_counts(units[part], lo[part], hi[part], rows,
                                         None if weights is None else weights[part])
            total = counts if total is None else np.add(total, counts, out=total)
        assert total is not None
        return total
    base = int(rows.row.min()) - 1
    top = int(rows.row.max()) + 1
    span = top - base + 1
    units = np.asarray(units, dtype=np.int64)
    start = np.clip(lo, base, top) - base + units * span
    stop = np.clip(np.maximum(lo, hi + 1), base, top) - base + units * span
    query = rows.row - base + rows.unit * span
    if weights is None:  # stable: timsort, nearly free on nearly sorted keys
        start.sort(kind="stable")
        stop.sort(kind="stable")
        count = (np.searchsorted(start, query, side="right")
                 - np.searchsorted(stop, query, side="right"))
        return count.astype(np.float32)
    w = np.asarray(weights, dtype=np.int64)
    total = np.zeros(1, dtype=np.int64)
    out = np.zeros(len(rows), dtype=np.int64)
    for keys, sign in ((start, 1), (stop, -1)):
        order = np.argsort(keys, kind="stable")
        cum = np.concatenate([total, np.cumsum(w[order])])
        out += sign * cum[np.searchsorted(keys[order], query, side="right")]
    return out.astype(np.float64)


def window_stats(total: np.ndarray, squares: np.ndarray, window: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (float32) of ``window`` values from their sum and
    sum of squares (float64, exact integers): one formula for the dense and row engines."""
    mean = (total / window).astype(np.float32)
    spread = squares - total * total / window
    np.maximum(spread, 0.0, out=spread)
    sd = np.sqrt(spread / max(window - 1, 1)).astype(np.float32)
    return mean, sd


def row_trailing_stats(units: np.ndarray, occ: np.ndarray, rows: Rows, window: int,
                       lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`trailing_stats` of the per-bin counts of events (``units``, ``occ`` bin) at
    requested rows: sums of ``c`` and ``c²`` over the window, NaN before ``first_bin``."""
    if lag < 1 or window < 1:
        raise ValueError(f"trailing_stats needs lag >= 1 and window >= 1; got {lag}, {window}")
    key, count = np.unique(np.asarray(units, np.int64) << 32 | (np.asarray(occ, np.int64)
                                                               - rows.first_bin + (1 << 31)),
                           return_counts=True)
    cell_unit = key >> 32
    cell_bin = (key & 0xFFFFFFFF) - (1 << 31) + rows.first_bin
    lo, hi = cell_bin + lag, cell_bin + lag + window - 1
    total = row_interval_counts(cell_unit, lo, hi, rows, count)
    squares = row_interval_counts(cell_unit, lo, hi, rows, count * count)
    mean, sd = window_stats(total, squares, window)
    short = rows.row - lag - window + 1 < rows.first_bin
    mean[short] = np.nan
    sd[short] = np.nan
    return mean, sd


def event_arrays(events: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An :func:`event_table`'s unit, occurrence and availability bins as arrays."""
    return (
        events["_u"].to_numpy(),
        events["occ"].to_numpy(),
        events["avail"].to_numpy(),
    )


def window_counts(units: np.ndarray, occ: np.ndarray, avail: np.ndarray, grid: Target,
                  window: int) -> np.ndarray:
    """Events known at row ``a`` that occurred in bins ``a-window .. a-1``."""
    return interval_counts(units, avail, occ + window, grid)


def lag_counts(units: np.ndarray, occ: np.ndarray, avail: np.ndarray, grid: Target,
               lag: int) -> np.ndarray:
    """Events known at row ``a`` that occurred in bin ``a-lag`` exactly."""
    target = occ + lag
    return interval_counts(units, np.maximum(avail, target), target, grid)


def occurrence_counts(
    events: pl.DataFrame, grid: Target, max_delay: int | None = None
) -> np.ndarray:
    """Counts by occurrence bin (not as-of): all events, or those known within ``max_delay``.

    With ``max_delay`` this is the *settled* series: bin ``b`` holds the events
    known by row ``b + max_delay``, so it may be used from that row on.
    """
    units, occ, avail = event_arrays(events)
    if max_delay is not None:
        keep = avail - occ <= max_delay
        units, occ = units[keep], occ[keep]
    if isinstance(grid, Rows):
        return interval_counts(units, occ, occ, grid)
    # One-bin intervals: a histogram of the events inside the grid (the same counts).
    inside = (occ >= grid.first_bin) & (occ <= grid.last_bin)
    cell = units[inside] * grid.n_bins + (occ[inside] - grid.first_bin)
    counts = np.bincount(cell, minlength=grid.n_units * grid.n_bins)
    return counts.astype(np.float32).reshape(grid.n_units, grid.n_bins)


def day_window_counts(
    events: pl.DataFrame, grid: Target, binning: TimeBinning
) -> np.ndarray:
    """Events known at row ``a`` that occurred on the calendar day before ``a``'s day."""
    day_after = pl.col("occ_day").cast(pl.Datetime("us")) + pl.duration(days=1)
    bounds = events.select(
        lo=binning.first_index_at_or_after(day_after),
        hi=binning.first_index_at_or_after(day_after + pl.duration(days=1)) - 1,
    )
    units, _, avail = event_arrays(events)
    lo = np.maximum(avail, bounds["lo"].to_numpy())
    return interval_counts(units, lo, bounds["hi"].to_numpy(), grid)


def shift_rows(matrix: np.ndarray, by: int) -> np.ndarray:
    """Shift each unit's series ``by`` bins later, filling the start with NaN."""
    if by == 0:
        return matrix
    out = np.full(matrix.shape, np.nan, dtype=np.float32)
    if by < matrix.shape[1]:
        out[:, by:] = matrix[:, :-by]
    return out


def trailing_stats(matrix: np.ndarray, window: int, lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation of the ``window`` values ending ``lag`` bins back.

    Column ``j`` summarises columns ``j-lag-window+1 .. j-lag`` of the same unit
    (``lag=1``: the previous ``window`` bins, the current one excluded). Columns
    without a full window are NaN. Computed with cumulative sums in float64.
    """
    if lag < 1 or window < 1:
        raise ValueError(f"trailing_stats needs lag >= 1 and window >= 1; got {lag}, {window}")
    n_units, n_bins = matrix.shape
    first = np.zeros((n_units, n_bins + 1))
    np.cumsum(matrix, axis=1, dtype=np.float64, out=first[:, 1:])
    second = np.zeros((n_units, n_bins + 1))
    np.cumsum(np.square(matrix, dtype=np.float64), axis=1, out=second[:, 1:])
    mean = np.full((n_units, n_bins), np.nan, dtype=np.float32)
    sd = np.full((n_units, n_bins), np.nan, dtype=np.float32)
    j0 = window + lag - 1  # first column with a full window
    if j0 < n_bins:
        stop = n_bins - lag + 1
        total = first[:, window:stop] - first[:, : stop - window]
        squares = second[:, window:stop] - second[:, : stop - window]
        del first, second
        mean[:, j0:], sd[:, j0:] = window_stats(total, squares, window)
    return mean, sd
