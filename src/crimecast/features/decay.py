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

    keys: np.ndarray  # unit * span + (avail - base), sorted
    running: np.ndarray  # running sum within the (unit, epoch) group, relative to its start
    carried: np.ndarray  # the unit's previous epoch's total, relative to the same start
    epoch: np.ndarray  # the group's epoch
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
        pos = np.searchsorted(self.keys, q_unit * self.span + clipped, side="right") - 1
        hit = pos >= 0
        hit[hit] = self.keys[pos[hit]] // self.span == q_unit[hit]
        p = pos[hit]
        q_time = q_row[hit] * self.bin_days
        q_epoch = epoch_of(q_time, self.omega)
        epoch = self.epoch[p]
        # Same epoch: the group and the epoch before; the epoch before: its group alone;
        # older: decayed past e^-40, left out (module doc).
        level = np.where(epoch == q_epoch, self.running[p] + self.carried[p],
                         np.where(epoch == q_epoch - 1, self.running[p], 0.0))
        out[hit] = np.exp(epoch * EPOCH - self.omega * q_time) * level
        return out


def epoch_of(t_days: np.ndarray, omega_per_day: float) -> np.ndarray:
    """The epoch (module doc) of times in days."""
    return np.floor(np.asarray(t_days, dtype=np.float64) * (omega_per_day / EPOCH)
                    ).astype(np.int64)


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
    bin_days: float, omega_per_day: float,
) -> DecayIndex:
    """The :class:`DecayIndex` of contributions: unit, time (days), availability row (its
    start ``avail_row × bin_days`` must not be before the time), weight."""
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
    omega = float(omega_per_day)
    if units.size == 0:
        empty = np.zeros(0)
        return DecayIndex(np.zeros(0, np.int64), empty, empty, np.zeros(0, np.int64), 0, 1,
                          omega, float(bin_days))
    base = int(avail.min()) - 1
    span = int(avail.max()) - base + 2
    # Each contribution decayed to the start of its availability row, relative to its
    # epoch's start (elementwise, so before the sort: the same values, and only the keys
    # and these values need moving). Then one stable sort by the final key (unit, then
    # availability; equal keys keep their order); this index is the largest object a
    # panel builds: one entry per event and nearby unit.
    x = np.asarray(weight, dtype=np.float64).ravel() * np.exp(-omega * (tau - times))
    x *= np.exp(omega * tau - epoch_of(tau, omega) * EPOCH)
    del tau, times
    ordered = pl.DataFrame({"k": units * span + (avail - base), "v": x}).sort(
        "k", maintain_order=True)
    del units, avail, x
    keys = ordered["k"].to_numpy()
    units = keys // span
    epoch = epoch_of((keys - units * span + base) * float(bin_days), omega)
    frame = pl.DataFrame({"u": units, "c": epoch, "v": ordered["v"]})
    del ordered
    running = frame.select(pl.col("v").cum_sum().over("u", "c"))["v"].to_numpy()
    del frame
    # One group per (unit, epoch): its total, carried into the unit's next epoch.
    last = np.flatnonzero(np.r_[(units[1:] != units[:-1]) | (epoch[1:] != epoch[:-1]), True])
    first = np.r_[0, last[:-1] + 1]
    g_unit, g_epoch, g_sum = units[last], epoch[last], running[last]
    del units
    follows = np.r_[False, (g_unit[1:] == g_unit[:-1]) & (g_epoch[1:] == g_epoch[:-1] + 1)]
    carry = np.where(follows, np.r_[0.0, g_sum[:-1]] * math.exp(-EPOCH), 0.0)
    return DecayIndex(keys=keys, running=running, carried=np.repeat(carry, last - first + 1),
                      epoch=epoch, base=base, span=span, omega=omega,
                      bin_days=float(bin_days))
