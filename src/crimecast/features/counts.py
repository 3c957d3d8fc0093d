"""Many as-of window and lag counts of one event set on one dense grid, from shared sums.

:func:`crimecast.features.asof.window_counts` scatters every event twice per window.
A panel reads some twenty windows and lags of the same events, so
:class:`GridCounts` scatters them once and derives each count from two cumulative
histograms per unit, ``A(a) = #{avail <= a}`` and ``O(p) = #{occ <= p}``:

* a trailing window of ``W`` bins counts the events with ``avail <= a <= occ + W``::

      count(a) = A(a) - O(a - W - 1) + #{occ + W + 1 <= a <= avail - 1}

  the last term corrects for events reported more than ``W + 1`` bins after they
  occurred (their interval is empty, yet ``O`` removed them): only those few are
  scattered, the events being sorted by delay once;
* a lag of ``k`` bins counts the events with ``occ = a - k`` and ``avail <= a``::

      count(a) = O(a - k) - O(a - k - 1) - #{occ + k = a, avail > a}.

Integer arithmetic throughout: the values are exactly those of
:func:`~crimecast.features.asof.window_counts` and
:func:`~crimecast.features.asof.lag_counts` (a test compares them), as float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crimecast.features.asof import PanelGrid, interval_counts, lag_counts, window_counts


def _cumulative(units: np.ndarray, column: np.ndarray, n_units: int, width: int) -> np.ndarray:
    """(n_units, width) int32: events of each unit at column <= j (``column`` in 0..width,
    ``width`` meaning "after the last column", never counted)."""
    hist = np.bincount(units * (width + 1) + column, minlength=n_units * (width + 1))
    out = np.cumsum(hist.reshape(n_units, width + 1), axis=1, dtype=np.int32)
    return out[:, :width]


@dataclass(frozen=True)
class GridCounts:
    """The shared sums of one event set on ``grid`` (see the module doc)."""

    grid: PanelGrid
    known: np.ndarray  # (units, n_bins) int32: A(first_bin + j)
    occurred: np.ndarray  # (units, span) int32: O(origin + j)
    origin: int  # O(p) for p < origin is 0 when complete, else unknown
    complete: bool  # no event occurred before origin
    units: np.ndarray  # every event
    occ: np.ndarray
    avail: np.ndarray
    late: tuple[np.ndarray, np.ndarray, np.ndarray]  # units, occ, avail of the events
    # with a delay (avail - occ) of more than one bin, longest delay first
    late_delay: np.ndarray  # their -delay, ascending

    @classmethod
    def build(cls, units: np.ndarray, occ: np.ndarray, avail: np.ndarray,
              grid: PanelGrid) -> GridCounts:
        """Index events ``(units, occ, avail)`` (int64) for counts on ``grid``."""
        units, occ, avail = (np.asarray(a, dtype=np.int64) for a in (units, occ, avail))
        n, first = grid.n_bins, grid.first_bin
        known = _cumulative(units, np.clip(avail - first, 0, n), grid.n_units, n)
        # O reaches back at most one grid length before the grid (memory stays ~2 grids):
        # enough for every window of a whole panel, whose history starts at its first bin.
        low = int(occ.min()) if occ.size else first
        origin = min(max(low, first - n), first)
        span = grid.last_bin - origin + 1
        occurred = _cumulative(units, np.clip(occ - origin, 0, span), grid.n_units, span)
        delay = avail - occ
        late = np.flatnonzero(delay > 1)  # no window or lag of a bin or more reads the rest
        delay = delay[late]
        if delay.size and int(delay.max()) <= 0xFFFF:  # 16-bit keys: a radix sort
            order = np.argsort((0xFFFF - delay).astype(np.uint16), kind="stable")
        else:  # any order of equal delays gives the same counts
            order = np.argsort(-delay)
        late = late[order]
        return cls(grid=grid, known=known, occurred=occurred, origin=origin,
                   complete=low >= origin, units=units, occ=occ, avail=avail,
                   late=(units[late], occ[late], avail[late]), late_delay=-delay[order])

    def _occurred_before(self, back: int) -> np.ndarray | None:
        """``O(a - back)`` at every grid column ``a`` (int32; ``back >= 1``), or None where the
        sums do not reach that far back."""
        grid = self.grid
        start = grid.first_bin - back - self.origin  # column of O for the first grid bin
        out = np.zeros((grid.n_units, grid.n_bins), dtype=np.int32)
        skip = max(0, -start)
        if skip and not self.complete:
            return None
        if skip < grid.n_bins:
            out[:, skip:] = self.occurred[:, start + skip:start + grid.n_bins]
        return out

    def _delayed(self, more_than: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Units, occurrence and availability bins of the events whose delay exceeds
        ``more_than`` (at least 1) bins."""
        stop = int(np.searchsorted(self.late_delay, -more_than, side="left"))
        units, occ, avail = self.late
        return units[:stop], occ[:stop], avail[:stop]

    # float32 throughout is exact: the counts are far below 2**24.
    def window(self, bins: int) -> np.ndarray:
        """Events known at row ``a`` that occurred in bins ``a - bins .. a - 1`` (float32)."""
        before = self._occurred_before(bins + 1) if bins >= 0 else None
        if before is None:
            return window_counts(self.units, self.occ, self.avail, self.grid, bins)
        units, occ, avail = self._delayed(bins + 1)
        counts = np.subtract(self.known, before, out=before).astype(np.float32)
        if units.size:
            counts += interval_counts(units, occ + bins + 1, avail - 1, self.grid)
        return counts

    def lag(self, bins: int) -> np.ndarray:
        """Events known at row ``a`` that occurred in bin ``a - bins`` exactly (float32)."""
        at = before = None
        if bins >= 1:
            at, before = self._occurred_before(bins), self._occurred_before(bins + 1)
        if at is None or before is None:
            return lag_counts(self.units, self.occ, self.avail, self.grid, bins)
        units, occ, _ = self._delayed(bins)
        counts = np.subtract(at, before, out=at).astype(np.float32)
        if units.size:
            counts -= interval_counts(units, occ + bins, occ + bins, self.grid)
        return counts
