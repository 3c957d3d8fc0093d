"""Decayed sums of the self-exciting process at requested rows, indexed by events.

``D(u, a) = Σ w_k e^{−ω(aΔ − t_k)}`` over the contributions ``k`` of unit ``u`` with
``avail_row[k] <= a`` whose availability falls in the query's *epoch* or the one
before: what the SEPP intensity feature reads, for the dense panel and for the
event-indexed rows alike (one definition, so they agree bit for bit).

Epochs are fixed stretches of ``EPOCH / ω`` days from time 0 (``EPOCH = 40``), the same
for every panel, block and row set. A contribution two epochs back has decayed by more
than ``e^-40`` (4e-18) and is left out *by definition*; so an index built from only the
events of a block's epochs and the epoch before (:func:`first_epoch_row`) gives the same
values, bit for bit, as one built from the whole history: the block-local index that
lets 10M-event panels fit in memory.

Event-indexed (cost grows with contributions and queries, not units × bins):
contributions sorted by unit and availability carry running sums within their
(unit, epoch) group, read with ``searchsorted``. Each contribution is first decayed to
the start of its availability row ``τ = avail·Δ`` and kept relative to its epoch's
start (at most ``e^40`` larger: nothing overflows); a group also carries the previous
epoch's total. :func:`crimecast.features.sepp.decayed_counts` (a recursive filter over
every row of a dense panel, with no epochs) is the reference it is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.errors import ModelError

EPOCH = 40.0  # in units of 1/ω: contributions two epochs back have decayed past e^-40


@dataclass(frozen=True)
class DecayIndex:
    """Contributions sorted by unit and availability, with their running decayed sums
    (see the module doc); built once per panel, or per block from the events it reads."""

    keys: np.ndarray  # unit * span + (avail - base), sorted (int32 where they fit)
    running: np.ndarray  # running sum within the (unit, epoch) group, relative to its start
    starts: np.ndarray  # position of each (unit, epoch) group's first contribution
    carried: np.ndarray  # per group: the unit's previous epoch's total, relative to its start
    base: int
    span: int
    omega: float
    bin_days: float

    def at(self, query_unit: np.ndarray, query_row: np.ndarray) -> np.ndarray:
        """``D(u, a)`` at each query (float64)."""
        q_unit = np.asarray(query_unit, dtype=np.int64).ravel()
        q_row = np.asarray(query_row, dtype=np.int64).ravel()
        out = np.zeros(q_row.size, dtype=np.float64)
        if self.keys.size == 0 or q_row.size == 0:
            return out
        # Rows after the last availability read the last contribution (clipped key).
        clipped = np.clip(q_row - self.base, 0, self.span - 1)
        query = q_unit * self.span + clipped
        if self.keys.dtype == np.int32:  # keys beyond int32 are beyond every key: the same rank
            query = np.minimum(query, np.iinfo(np.int32).max).astype(np.int32)
        pos = np.searchsorted(self.keys, query, side="right") - 1
        hit = pos >= 0
        hit[hit] = self.keys[pos[hit]] // self.span == q_unit[hit]
        p = pos[hit]
        q_time = q_row[hit] * self.bin_days
        q_epoch = epoch_of(q_time, self.omega)
        # The group's epoch, from its availability row (computed here, for the rows read,
        # rather than stored for every contribution: the same integers, the same values).
        epoch = epoch_of(self.keys[p] - q_unit[hit] * self.span + self.base, self.omega,
                         self.bin_days)
        # Same epoch: the group and the epoch before; the epoch before: its group alone;
        # older: decayed past e^-40, left out (module doc).
        carried = self.carried[np.searchsorted(self.starts, p, side="right") - 1]
        level = np.where(epoch == q_epoch, self.running[p] + carried,
                         np.where(epoch == q_epoch - 1, self.running[p], 0.0))
        out[hit] = np.exp(epoch * EPOCH - self.omega * q_time) * level
        return out


def epoch_of(t: np.ndarray, omega_per_day: float, bin_days: float | None = None
             ) -> np.ndarray:
    """The epoch (module doc) of times in days, or of rows ``t`` of ``bin_days`` days."""
    times = np.multiply(t, float(bin_days), dtype=np.float64) if bin_days is not None \
        else np.array(t, dtype=np.float64)
    times *= omega_per_day / EPOCH
    return np.floor(times, out=times).astype(np.int64)


def first_epoch_row(first_row: int, bin_days: float, omega_per_day: float) -> int:
    """The first availability row an index must hold for queries at rows ``>= first_row``:
    the start of the epoch before ``first_row``'s (contributions available earlier are
    never read)."""
    everything = -(2**62)
    if omega_per_day <= 0:  # no decay: every contribution counts
        return everything
    epoch = int(epoch_of(np.array([first_row * bin_days]), omega_per_day)[0]) - 1
    start = epoch * (EPOCH / omega_per_day) / bin_days
    if not math.isfinite(start) or start <= everything:  # epochs longer than any history
        return everything
    # One row early: a row more is harmless (never read), a row less after rounding is not.
    return math.floor(start) - 1


def decay_index(
    unit_idx: np.ndarray, t_days: np.ndarray, avail_row: np.ndarray, weight: np.ndarray,
    bin_days: float, omega_per_day: float, rows: tuple[int, int] | None = None,
) -> DecayIndex:
    """The :class:`DecayIndex` of contributions: unit, time (days), availability row (its
    start ``avail_row × bin_days`` must not be before the time), weight.

    ``rows``: the first and last availability row the keys are laid out for (default: the
    contributions' own)."""
    units = np.asarray(unit_idx, dtype=np.int64).ravel()
    avail = np.asarray(avail_row, dtype=np.int64).ravel()
    tau = avail * float(bin_days)
    times = np.asarray(t_days, dtype=np.float64).ravel()
    late = times > tau + 1e-9 * (np.abs(tau) + 1.0)
    if late.any():
        k = int(np.flatnonzero(late)[0])
        raise ModelError(
            "avail_row must be a row that starts at or after the contribution's time; "
            f"first: t_days={times[k]}, avail_row={avail[k]}. Set avail_row to the first row "
            "whose start is after the event is known.")
    del late
    omega = float(omega_per_day)
    first_row, last_row = rows if rows is not None else (
        (int(avail.min()), int(avail.max())) if units.size else (1, -1))
    base, span = first_row - 1, max(last_row - first_row + 3, 1)
    if units.size == 0:
        empty = np.zeros(0)
        return DecayIndex(np.zeros(0, np.int64), empty, np.zeros(0, np.int64), empty, base,
                          span, omega, float(bin_days))
    if int(avail.min()) < first_row or int(avail.max()) > last_row:
        raise ModelError(
            f"rows must cover every avail_row; got rows={rows} and avail_row from "
            f"{int(avail.min())} to {int(avail.max())}. Pass the rows of all contributions.")
    # Each contribution decayed to the start of its availability row, relative to its
    # epoch's start (elementwise, so before the sort: the same values, and only the keys
    # and these values need moving). Then one stable sort by the final key (unit, then
    # availability; equal keys keep their order); this index is the largest object a
    # panel builds: one entry per event and nearby unit.
    x = np.asarray(weight, dtype=np.float64).ravel() * np.exp(-omega * (tau - times))
    x *= np.exp(omega * tau - epoch_of(tau, omega) * EPOCH)
    del tau, times
    key = units * span
    key += avail
    key -= base
    del units, avail
    ordered = pl.DataFrame({"k": key, "v": x}).sort("k", maintain_order=True)
    del key, x
    keys = ordered["k"].to_numpy()
    units = keys // span
    epoch = epoch_of(keys - units * span + base, omega, bin_days)
    frame = pl.DataFrame({"u": units, "c": epoch, "v": ordered["v"]})
    del ordered
    running = frame.select(pl.col("v").cum_sum().over("u", "c"))["v"].to_numpy()
    del frame
    # One group per (unit, epoch): its total, carried into the unit's next epoch.
    last = np.flatnonzero(np.r_[(units[1:] != units[:-1]) | (epoch[1:] != epoch[:-1]), True])
    g_unit, g_epoch, g_sum = units[last], epoch[last], running[last]
    del units, epoch
    follows = np.r_[False, (g_unit[1:] == g_unit[:-1]) & (g_epoch[1:] == g_epoch[:-1] + 1)]
    carry = np.where(follows, np.r_[0.0, g_sum[:-1]] * math.exp(-EPOCH), 0.0)
    if int(keys[-1]) <= np.iinfo(np.int32).max:  # sorted: the last key is the largest
        keys = keys.astype(np.int32)  # the index is held all build long: half the keys' memory
    return DecayIndex(keys=keys, running=running, starts=np.r_[0, last[:-1] + 1],
                      carried=carry, base=base, span=span, omega=omega,
                      bin_days=float(bin_days))


@dataclass(frozen=True)
class UnitBands:
    """Decay indexes of consecutive unit ranges ``[cuts[i], cuts[i+1])``, read as one: a
    unit's contributions all lie in its range's index, so each query reads the same
    contribution and gives the same value as in one index of them all (without the
    copy that joining them would take)."""

    cuts: np.ndarray  # int64, ascending, from 0 to the number of units
    parts: tuple[DecayIndex, ...]

    def at(self, query_unit: np.ndarray, query_row: np.ndarray) -> np.ndarray:
        """``D(u, a)`` at each query (float64), from the index of ``u``'s range."""
        q_unit = np.asarray(query_unit, dtype=np.int64).ravel()
        q_row = np.asarray(query_row, dtype=np.int64).ravel()
        if len(self.parts) == 1:
            return self.parts[0].at(q_unit, q_row)
        out = np.zeros(q_row.size, dtype=np.float64)
        band = np.searchsorted(self.cuts, q_unit, side="right") - 1
        for i, part in enumerate(self.parts):
            chosen = np.flatnonzero(band == i)
            if chosen.size:
                out[chosen] = part.at(q_unit[chosen], q_row[chosen])
        return out
