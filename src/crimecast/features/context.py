"""What a feature declaration computes from: the events, the panel grid, the units, the config.

:class:`FeatureContext` hands every declared computation (see
:mod:`crimecast.features.catalog`) the per-event table and caches what several
features share (a trailing window's counts, a kernel matrix), so each count is
computed once however many features read it. Every matrix it returns is indexed
by *issue row*: column ``a`` holds what was known before bin ``a`` started.

:class:`Horizon` is what a look-back depends on (bin length, settle days, ...).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig
from crimecast.data.geo import to_projected
from crimecast.features.asof import (
    PanelGrid,
    Rows,
    Target,
    event_table,
    interval_counts,
    lag_counts,
    window_counts,
)
from crimecast.features.counts import GridCounts
from crimecast.features.kde import smooth_snapshots, snapshot_counts, snapshot_of
from crimecast.features.timebins import STEPS_HOURS, TimeBinning
from crimecast.features.units import UnitSet

# Event-unit pairs (SEPP trigger weights, near-repeat neighbours) up to which they are
# built once per panel and shared by its blocks (~50 bytes each while built); above it,
# each block or row set builds the pairs of the events it can read (identical values).
PANEL_PAIRS = 60_000_000
EVENT_XY = "event_xy"
_MISSING = object()
ALL_HISTORY = math.inf  # the look-back of "all history" features, in days
WEEK_WINDOWS: dict[str, int | None] = {"1w": 1, "4w": 4, "13w": 13, "26w": 26, "52w": 52,
                                       "104w": 104, "all": None}


def pairs_panel_wide(n_events: int, units: UnitSet, radius_m: float) -> bool:
    """Whether the pairs of ``n_events`` events and the units within ``radius_m`` of them
    fit :data:`PANEL_PAIRS` (built once per panel) or are built per block."""
    return n_events * units.expected_within(radius_m) <= PANEL_PAIRS


@dataclass(frozen=True)
class Horizon:
    """What a feature's look-back (days before its bin starts) depends on."""

    bin_days: float
    z_window_bins: int
    settle_days: int
    daily_window: int
    weather: str
    near_repeat_hours: int
    horizon: int

    @classmethod
    def of(cls, config: FeatureConfig, z_window: int, daily_window: int = 28) -> Horizon:
        """The look-back context of ``config``."""
        return cls(bin_days=STEPS_HOURS[config.time_bin] / 24, z_window_bins=z_window,
                   settle_days=config.settle_days, daily_window=daily_window,
                   weather=config.weather, near_repeat_hours=config.near_repeat_hours,
                   horizon=config.horizon)


def incident_events(clean: pl.DataFrame, units: UnitSet, config: FeatureConfig
                    ) -> tuple[TimeBinning, np.ndarray, pl.DataFrame]:
    """The binning, each incident's unit index and the per-event counting table
    (:func:`crimecast.features.asof.event_table`) of ``clean`` under ``config``."""
    binning = TimeBinning(config.time_bin, config.shift_start_hour)
    area_id = clean["area_id"] if "area_id" in clean.columns else None  # ids: no numpy copy
    district = clean["district_id"] if "district_id" in clean.columns else None
    unit_index = units.assign(clean["lat"].to_numpy(), clean["lon"].to_numpy(),
                              area_id=area_id, district_id=district)
    return binning, unit_index, event_table(clean, unit_index, binning, config.delay_aware)


@dataclass
class FeatureContext:
    """Inputs and shared intermediate results of the declared feature computations.

    ``grid`` is the dense block the values are computed on (``(units, bins)``
    matrices); with ``rows`` set, the event-indexed engine computes the same values
    only at those rows (vectors, one value per row) and ``grid`` merely spans them.
    """

    events: pl.DataFrame  # crimecast.features.asof.event_table
    grid: PanelGrid
    binning: TimeBinning
    units: UnitSet
    config: FeatureConfig
    clean: pl.DataFrame
    unit_index: np.ndarray
    z_window: int
    cache: dict[Any, Any] = field(default_factory=dict)
    rows: Rows | None = None
    # Leading grid columns whose values are dropped (a time block's warm-up): a costly
    # feature that never reads other columns may leave them NaN (see :meth:`kept_rows`).
    skip: int = 0
    # Features may be computed in two threads (crimecast.features.build): the cache's lock.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def target(self) -> Target:
        """Where values are computed: the requested rows, else the dense grid."""
        return self.rows if self.rows is not None else self.grid

    def bins(self, days: float) -> int:
        """Number of bins in ``days`` days (at least one)."""
        return max(1, self.binning.bins_for(dt.timedelta(days=days)))

    def count(self, units: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per-event row intervals counted at the target (:func:`interval_counts`)."""
        return interval_counts(units, lo, hi, self.target)

    def _subset(self, category: str | None) -> pl.DataFrame:
        return self.events if category is None else self.events.filter(
            pl.col("category") == category)

    def arrays(self, category: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The events' (of ``category``) unit, occurrence and availability bins (int64),
        taken out of the frame once."""
        def make() -> tuple[np.ndarray, ...]:
            events = self._subset(category)
            return tuple(np.ascontiguousarray(events[c].to_numpy())
                         for c in ("_u", "occ", "avail"))
        arrays: tuple[np.ndarray, np.ndarray, np.ndarray] = self.shared(("arrays", category),
                                                                        make)
        return arrays

    def counting_arrays(self, category: str | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`arrays` reordered by unit, then occurrence: for counts, which do not depend
        on the events' order, and whose sorted keys are then nearly sorted already (a stable
        sort of them is nearly free). Never for lookups by event index."""
        def make() -> tuple[np.ndarray, ...]:
            units, occ, avail = self.arrays(category)
            order = np.lexsort((occ, units))
            return tuple(np.ascontiguousarray(a[order]) for a in (units, occ, avail))
        arrays: tuple[np.ndarray, np.ndarray, np.ndarray] = self.shared(
            ("counting_arrays", category), make)
        return arrays

    def _counts(self) -> GridCounts | None:
        """The shared sums of every event on the dense grid (None for requested rows)."""
        if self.rows is not None:
            return None
        counts: GridCounts = self.shared("grid_counts",
                                         lambda: GridCounts.build(*self.arrays(), self.grid))
        return counts

    def trailing(self, bins: int, category: str | None = None) -> np.ndarray:
        """Events known at each issue row that occurred in the ``bins`` bins before it."""
        def make() -> np.ndarray:
            counts = self._counts() if category is None else None
            if counts is not None:
                return counts.window(bins)
            events = (self.arrays(category) if self.rows is None  # a category on a grid
                      else self.counting_arrays(category))
            return window_counts(*events, self.target, bins)
        matrix: np.ndarray = self.shared(("trailing", bins, category), make)
        return matrix

    def lag(self, bins: int) -> np.ndarray:
        """Events known at each issue row that occurred exactly ``bins`` bins before it."""
        def make() -> np.ndarray:
            counts = self._counts()
            if counts is not None:
                return counts.lag(bins)
            return lag_counts(*self.counting_arrays(), self.target, bins)
        matrix: np.ndarray = self.shared(("lag", bins), make)
        return matrix

    def neighbours(self, bins: int) -> np.ndarray:
        """Events known at each issue row in the adjacent units over the trailing ``bins``."""
        if self.rows is None:
            return np.asarray(self.units.adjacency @ self.trailing(bins))
        # Each event counts once for every unit it neighbours (0/1 adjacency).
        events = self.events_reaching(self.rows.row, bins)
        by_unit = self.units.adjacency.T.tocsr()
        units = events["_u"].to_numpy()
        repeat = np.diff(by_unit.indptr)[units]
        starts = by_unit.indptr[units]
        offsets = np.arange(repeat.sum()) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        near = by_unit.indices[np.repeat(starts, repeat) + offsets]
        occ = np.repeat(events["occ"].to_numpy(), repeat)
        avail = np.repeat(events["avail"].to_numpy(), repeat)
        return self.count(near.astype(np.int64), avail, occ + bins)

    def events_reaching(self, rows: np.ndarray, bins: int) -> pl.DataFrame:
        """The events a trailing ``bins``-bin window count can see at ``rows``: known by the
        last row (never later: as-of), occurred within the window of the first."""
        if not rows.size:
            return self.events.clear()
        return self.events.filter((pl.col("avail") <= int(rows.max()))
                                  & (pl.col("occ") + bins >= int(rows.min())))

    def issue_rows(self) -> np.ndarray:
        """The issue row (bin index) of each column (dense) or requested row."""
        if self.rows is not None:
            return self.rows.row
        return np.arange(self.grid.first_bin, self.grid.last_bin + 1, dtype=np.int64)

    def kept_rows(self) -> np.ndarray:
        """The issue rows whose values are kept: :meth:`issue_rows` after the ``skip``."""
        rows = self.issue_rows()
        return rows if self.rows is not None else rows[self.skip:]

    def padded(self, values: np.ndarray) -> np.ndarray:
        """Values over :meth:`kept_rows` (last axis) placed on every grid column, NaN in the
        skipped ones."""
        if self.rows is not None or self.skip == 0:
            return values
        out = np.full((*values.shape[:-1], self.grid.n_bins), np.nan, dtype=values.dtype)
        out[..., self.skip:] = values
        return out

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """Values computed on :meth:`issue_rows`, shaped like every feature."""
        if self.rows is not None:
            return values
        return np.broadcast_to(values, (self.grid.n_units, values.size))

    def per_unit(self, values: np.ndarray) -> np.ndarray:
        """A value per unit, shaped to multiply a feature."""
        if self.rows is not None:
            return values[self.rows.unit]
        return values[:, None]

    def history_bins(self) -> int:
        """A window that covers every event before the target's last row (all history)."""
        rows = self.issue_rows()
        last = int(rows.max()) if rows.size else self.grid.last_bin
        first = int(self.events["occ"].min()) if self.events.height else last  # type: ignore[arg-type]
        low = int(rows.min()) if rows.size else last
        return max(1, last - min(first, low) + 1)

    def window_bins(self, window: str) -> int:
        """Bins of a named :data:`WEEK_WINDOWS` window (``all``: all history)."""
        n = WEEK_WINDOWS[window]
        return self.history_bins() if n is None else self.bins(7 * n)

    def weeks(self, window: str, category: str | None = None) -> np.ndarray:
        """Prior counts over a named window of :data:`WEEK_WINDOWS` (``all``: all history)."""
        return self.trailing(self.window_bins(window), category)

    def citywide(self, bins: int) -> np.ndarray:
        """Events known at each issue row over the trailing ``bins`` in the whole study area
        (one value per :meth:`issue_rows`)."""
        def make() -> np.ndarray:
            if self.rows is None:  # every event lies in some unit: their sum (exact integers)
                return self.trailing(bins).sum(axis=0, dtype=np.float32)
            rows = self.issue_rows()
            occ, avail = self.events["occ"].to_numpy(), self.events["avail"].to_numpy()
            everywhere = Rows(unit=np.zeros(rows.size, np.int64), row=rows,
                              first_bin=int(rows.min()) if rows.size else 0, n_units=1)
            return interval_counts(np.zeros(occ.size, np.int64), avail, occ + bins, everywhere)
        matrix: np.ndarray = self.shared(("citywide", bins), make)
        return matrix

    def base_bandwidth(self) -> float:
        """The KDE bandwidth in metres: configured, else 2 cells or the median neighbour gap."""
        if self.config.kde_bandwidth_m is not None:
            return self.config.kde_bandwidth_m
        if self.units.kind == "grid":
            return 2 * self.config.cell_size
        if len(self.units) < 2:
            return 1000.0
        xy = self.units.centroids
        dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        return float(np.median(dist.min(axis=1)))

    def snapshot_every(self, days: int) -> int:
        """Bins between snapshots taken every ``days`` days (1 or 7; at least one bin)."""
        return max(1, days * 24 // self.binning.hours)

    def kde(self, bins: int, multiple: float = 1.0, every_days: int = 7) -> np.ndarray:
        """Kernel-smoothed trailing-``bins`` counts from the snapshot at the start of each
        issue row's week (or day), see :mod:`crimecast.features.kde`."""
        out: np.ndarray = self._snapshots(bins, multiple, every_days)[0]
        return out

    def kde_total(self, bins: int, multiple: float = 1.0, every_days: int = 7) -> np.ndarray:
        """The sum over every unit of :meth:`kde` at each row's snapshot."""
        sums = self._snapshots(bins, multiple, every_days)[1]
        total: np.ndarray = sums[self._snapshot_points(self.snapshot_every(every_days))[1]]
        if self.rows is not None:
            return total
        return self.per_row(self.padded(total))

    def _snapshots(self, bins: int, multiple: float, every_days: int
                   ) -> tuple[np.ndarray, np.ndarray]:
        pair: tuple[np.ndarray, np.ndarray] = self.shared(
            ("kde", bins, multiple, every_days), lambda: self._smoothed(bins, multiple, every_days))
        return pair

    def _snapshot_points(self, every: int) -> tuple[np.ndarray, np.ndarray]:
        """The snapshot rows the kept rows read (every ``every`` bins) and each row's index
        into them; once per step, for every window and bandwidth."""
        def make() -> tuple[np.ndarray, np.ndarray]:
            snap = snapshot_of(self.kept_rows(), every)
            if self.rows is None and snap.size:  # consecutive rows: every snapshot between
                return (np.arange(snap[0], snap[-1] + 1, every, dtype=np.int64),
                        (snap - snap[0]) // every)
            points, index = np.unique(snap, return_inverse=True)
            return points, index
        pair: tuple[np.ndarray, np.ndarray] = self.shared(("kde_points", every), make)
        return pair

    def _smoothed(self, bins: int, multiple: float, every_days: int
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The KDE at each kept row, and the sum over units of each snapshot's KDE."""
        every = self.snapshot_every(every_days)
        points, index = self._snapshot_points(every)
        def make() -> np.ndarray:
            units, occ, avail = self.arrays()
            return snapshot_counts(units, avail, occ + bins, points, len(self.units))
        counts = self.shared(("kde_counts", bins, every), make)  # the same for every bandwidth
        smooth = smooth_snapshots(counts, self.units, self.base_bandwidth() * multiple)
        sums = smooth.sum(axis=0, dtype=np.float64)
        if self.rows is not None:
            return smooth[self.rows.unit, index], sums
        return self.padded(smooth[:, index]), sums

    def event_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """The events' coordinates in the units' projected CRS (metres), projected once."""
        xy: tuple[np.ndarray, np.ndarray] = self.shared(EVENT_XY,
                                                        lambda: self.project(self.events))
        return xy

    def project(self, events: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates of ``events`` (rows of :attr:`events`) in the units' projected CRS."""
        return to_projected(events["lat"].to_numpy(), events["lon"].to_numpy(), self.units.crs)

    def panel_wide(self, radius_m: float) -> bool:
        """:func:`pairs_panel_wide` for this context's events and units."""
        return pairs_panel_wide(self.events.height, self.units, radius_m)

    def shared(self, key: Any, make: Any) -> Any:
        """Compute ``make()`` once per build under ``key`` (for features built together); a
        thread asking while another computes it (or :meth:`ahead` started it) waits."""
        with self.lock:
            entry = self.cache.get(key, _MISSING)
            mine = entry is _MISSING
            if mine:
                entry = self.cache[key] = Future()
        if isinstance(entry, Future):
            if mine:
                try:
                    entry.set_result(make())
                except BaseException as exc:
                    entry.set_exception(exc)
                    del self.cache[key]  # a later call tries again
                    raise
            value = entry.result()
            self.cache[key] = value
            return value
        return entry

    def ahead(self, key: Any, make: Any, pool: Executor) -> None:
        """Start ``make()`` for :meth:`shared` ``key`` in ``pool`` (a thread: geometry and
        numpy release the GIL), so it runs alongside the features computed before it."""
        with self.lock:
            if key not in self.cache:
                self.cache[key] = pool.submit(make)
