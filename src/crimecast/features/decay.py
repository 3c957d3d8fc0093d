"""Decayed sums of the self-exciting process at requested rows, indexed by events.

``D(u, a) = Σ w_k e^{−ω(aΔ − t_k)}`` over the contributions ``k`` of unit ``u`` with
``avail_row[k] <= a``: what the SEPP intensity feature reads, for the dense panel and
for the event-indexed rows alike (one index, so they agree bit for bit).

Event-indexed (cost grows with contributions and queries, not units × bins):
contributions sorted by unit and availability carry running sums, read with
``searchsorted``. Each contribution is first decayed to the start of its
availability row ``τ = avail·Δ``; the running sums are kept relative to fixed
reference times (every ``L/ω`` days, ``e^L`` at most 1e260) so nothing overflows
however long the history; the sums restart at each reference and carry the earlier
part forward, decayed. :func:`crimecast.features.sepp.decayed_counts` (a recursive
filter over every row of a dense panel) is the reference it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.errors import ModelError


@dataclass(frozen=True)
class DecayIndex:
    """Contributions sorted by unit and availability, with their running decayed sums
    (see the module doc); built once per panel, read by every block and row set."""

    keys: np.ndarray  # unit * span + (avail - base), sorted
    level: np.ndarray  # running sum within the (unit, chunk) group plus the earlier groups'
    ref: np.ndarray  # the group's reference time (days)
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
        elapsed = q_row[hit] * self.bin_days - self.ref[p]
        out[hit] = np.exp(-self.omega * elapsed) * self.level[p]
        return out


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
        return DecayIndex(np.zeros(0, np.int64), empty, empty, 0, 1, omega, float(bin_days))
    base = int(avail.min()) - 1
    span = int(avail.max()) - base + 2
    # One sort by the final key (unit, then availability); every array follows it, and
    # the unsorted copies are dropped as soon as they are used (this index is the largest
    # object a panel builds: one entry per event and nearby unit).
    keys = units * span + (avail - base)
    del units
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    tau = tau[order]
    x = np.asarray(weight, dtype=np.float64).ravel()[order]
    x *= np.exp(-omega * (tau - times[order]))
    del order, times, avail
    spread = omega * float(tau.max() - tau.min())
    length = min(600.0, max(30.0, spread / 256.0))
    if omega * float(np.abs(tau).max()) <= length:  # one reference (time 0) is enough
        chunk, ref = np.zeros(tau.size, np.int64), np.zeros(tau.size)
    else:
        chunk = np.floor(omega * tau / length).astype(np.int64)
        ref = chunk * (length / omega)
    x *= np.exp(omega * (tau - ref))
    del tau
    units = keys // span
    frame = pl.DataFrame({"u": units, "c": chunk, "v": x})
    del x
    running = frame.select(pl.col("v").cum_sum().over("u", "c"))["v"].to_numpy()
    del frame
    # One group per (unit, chunk): its sum, and the decayed sum of the unit's earlier groups.
    last = np.flatnonzero(np.r_[(units[1:] != units[:-1]) | (chunk[1:] != chunk[:-1]), True])
    first = np.r_[0, last[:-1] + 1]
    g_unit, g_chunk, g_sum = units[last], chunk[last], running[last]
    del units, chunk
    new_unit = np.r_[True, g_unit[1:] != g_unit[:-1]]
    position = np.arange(g_unit.size)
    rank = position - np.maximum.accumulate(np.where(new_unit, position, 0))
    carry = np.zeros(g_unit.size)
    for r in range(1, int(rank.max()) + 1):
        at = np.flatnonzero(rank == r)
        gap = (g_chunk[at] - g_chunk[at - 1]) * length
        carry[at] = (carry[at - 1] + g_sum[at - 1]) * np.exp(-gap)
    level = running + np.repeat(carry, last - first + 1)
    return DecayIndex(keys=keys, level=level, ref=ref, base=base, span=span, omega=omega,
                      bin_days=float(bin_days))
