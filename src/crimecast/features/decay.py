"""Decayed sums of the self-exciting process at requested rows, indexed by events.

:func:`decayed_at` is what the SEPP intensity feature reads for the dense panel
and for the event-indexed rows alike (one function, so they agree bit for bit).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crimecast.errors import ModelError


def decayed_at(
    unit_idx: np.ndarray, t_days: np.ndarray, avail_row: np.ndarray, weight: np.ndarray,
    bin_days: float, omega_per_day: float, query_unit: np.ndarray, query_row: np.ndarray,
) -> np.ndarray:
    """As-of decayed sums ``D(u, a) = Σ w_k e^{−ω(aΔ − t_k)}`` over contributions ``k`` of
    unit ``u`` with ``avail_row[k] <= a``, at each query ``(u, a)`` (float64).

    Event-indexed (cost grows with contributions and queries, not units × bins):
    contributions sorted by unit and availability carry running sums, read with
    ``searchsorted``. Each contribution is first decayed to the start of its
    availability row ``τ = avail·Δ``; the running sums are kept relative to fixed
    reference times (every ``L/ω`` days, ``e^L`` at most 1e260) so nothing
    overflows however long the history; the sums restart at each reference and carry
    the earlier part forward, decayed. The dense panel and the requested rows call this
    same function, so they agree bit for bit.
    """
    units = np.asarray(unit_idx, dtype=np.int64).ravel()
    avail = np.asarray(avail_row, dtype=np.int64).ravel()
    tau = avail * float(bin_days)
    times = np.asarray(t_days, dtype=np.float64).ravel()
    if (times > tau + 1e-9 * (np.abs(tau) + 1.0)).any():
        k = int(np.flatnonzero(times > tau + 1e-9 * (np.abs(tau) + 1.0))[0])
        raise ModelError(
            "avail_row must be a row that starts at or after the contribution's time; "
            f"first: t_days={times[k]}, avail_row={avail[k]}. Set avail_row to the first row "
            "whose start is after the event is known.")
    out = np.zeros(np.asarray(query_row).size, dtype=np.float64)
    if units.size == 0 or out.size == 0:
        return out
    omega = float(omega_per_day)
    x = np.asarray(weight, dtype=np.float64).ravel() * np.exp(-omega * (tau - times))
    spread = omega * float(tau.max() - tau.min())
    length = min(600.0, max(30.0, spread / 256.0))
    chunk = np.floor(omega * tau / length).astype(np.int64) if omega > 0 else \
        np.zeros(tau.size, np.int64)
    ref = chunk * (length / omega) if omega > 0 else np.zeros(tau.size)
    order = np.lexsort((avail, units))
    units, avail, chunk, ref = units[order], avail[order], chunk[order], ref[order]
    value = x[order] * np.exp(omega * (tau[order] - ref))
    frame = pl.DataFrame({"u": units, "c": chunk, "v": value})
    running = frame.select(pl.col("v").cum_sum().over("u", "c"))["v"].to_numpy()
    # One group per (unit, chunk): its sum, and the decayed sum of the unit's earlier groups.
    last = np.flatnonzero(np.r_[(units[1:] != units[:-1]) | (chunk[1:] != chunk[:-1]), True])
    first = np.r_[0, last[:-1] + 1]
    g_unit, g_chunk, g_sum = units[last], chunk[last], running[last]
    new_unit = np.r_[True, g_unit[1:] != g_unit[:-1]]
    rank = np.arange(g_unit.size) - np.maximum.accumulate(np.where(new_unit,
                                                                   np.arange(g_unit.size), 0))
    carry = np.zeros(g_unit.size)
    for r in range(1, int(rank.max()) + 1 if rank.size else 1):
        at = np.flatnonzero(rank == r)
        gap = (g_chunk[at] - g_chunk[at - 1]) * length
        carry[at] = (carry[at - 1] + g_sum[at - 1]) * np.exp(-gap)
    group = np.repeat(np.arange(g_unit.size), last - first + 1)
    base = min(int(avail.min()), int(np.min(query_row))) - 1
    span = max(int(avail.max()), int(np.max(query_row))) - base + 2
    keys = units * span + (avail - base)
    q_unit = np.asarray(query_unit, dtype=np.int64).ravel()
    q_row = np.asarray(query_row, dtype=np.int64).ravel()
    pos = np.searchsorted(keys, q_unit * span + (q_row - base), side="right") - 1
    hit = pos >= 0
    hit[hit] = units[pos[hit]] == q_unit[hit]
    p = pos[hit]
    elapsed = q_row[hit] * float(bin_days) - ref[p]
    out[hit] = np.exp(-omega * elapsed) * (running[p] + carry[group[p]])
    return out
