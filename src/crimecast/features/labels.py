"""Hotspot labels (targets) on the dense (units × bins) count matrix.

Labels are targets, so they may use the bin's own final count; features never do.

* ``zscore`` — the original design's label, made honest: the bin's count against
  the mean and sample standard deviation of the same unit's previous ``W`` bins
  (the current bin excluded). Hotspot when ``z >= z_threshold`` and the count is
  at least 1. The standard deviation is floored at ``sd_floor`` so a unit with a
  quiet history does not turn every single event into an infinite z. Bins
  without ``W`` bins of history have no label (NaN).
* ``topk`` — the top ``k%`` of study-area units by count in the bin
  (``ceil(k% × units)`` of them, never a unit with zero events). Ties are broken
  by a fixed integer hash of (unit index, bin index), see :func:`tie_break`: deterministic, and not
  biased towards low unit ids the way an alphabetical tie-break would be.
* ``count`` — the raw count, for regression or Poisson models.

Whole-matrix numpy arithmetic (cumulative sums, one argsort per panel) keeps a
38M-row grid panel within memory and seconds; no Python loop touches a row.
"""

from __future__ import annotations

import math

import numpy as np

from crimecast.features.asof import trailing_stats

HASH_MODULUS = 4_294_967_296
_MASK = HASH_MODULUS - 1


def zscore_label(
    counts: np.ndarray, window: int, threshold: float, sd_floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """(z values, hotspot 1/0 with NaN where history is short) for a count matrix."""
    mean, sd = trailing_stats(counts, window, lag=1)
    z = (counts - mean) / np.maximum(sd, sd_floor)
    hot = ((z >= threshold) & (counts >= 1)).astype(np.float32)
    hot[np.isnan(mean)] = np.nan
    return z.astype(np.float32), hot


def tie_break(n_units: int, first_bin: int, n_bins: int) -> np.ndarray:
    """Deterministic pseudo-random 32-bit order within each bin.

    An integer hash of (unit index, bin index): a multiplicative mix followed by
    xor-shift rounds (the "lowbias32" finaliser), so which unit wins a tie
    changes from bin to bin but never from run to run.
    """
    units = np.arange(n_units, dtype=np.int64)[:, None]
    bins = np.arange(first_bin, first_bin + n_bins, dtype=np.int64)[None, :]
    return mix(units, bins)


def mix(units: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """The 32-bit tie-break hash of (unit index, bin index) arrays (broadcast)."""
    x = (units * 0x9E3779B1 + bins * 0x85EBCA77) & _MASK
    for _ in range(2):
        x ^= x >> 16
        x = (x * 0x45D9F3B) & _MASK
    return x ^ (x >> 16)


def topk_label(counts: np.ndarray, pct: float, first_bin: int) -> np.ndarray:
    """1/0 matrix: the unit is among the top ``pct``% by count in that bin (count > 0)."""
    n_units, n_bins = counts.shape
    k = max(1, math.ceil(n_units * pct / 100))
    key = counts.astype(np.int64) * HASH_MODULUS + tie_break(n_units, first_bin, n_bins)
    order = np.argsort(-key, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n_units)[:, None].repeat(n_bins, axis=1), axis=0)
    return ((rank < k) & (counts >= 1)).astype(np.float32)


def zscore_label_at(counts: np.ndarray, mean: np.ndarray, sd: np.ndarray, threshold: float,
                    sd_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`zscore_label` from the window's mean and sd (the event-indexed engine)."""
    z = (counts - mean) / np.maximum(sd, sd_floor)
    hot = ((z >= threshold) & (counts >= 1)).astype(np.float32)
    hot[np.isnan(mean)] = np.nan
    return z.astype(np.float32), hot


def topk_label_at(event_unit: np.ndarray, event_bin: np.ndarray, unit: np.ndarray,
                  bin_: np.ndarray, n_units: int, pct: float) -> np.ndarray:
    """:func:`topk_label` at requested (unit, bin) rows, from the events alone: only units
    with an event can be in a bin's top k, so each bin ranks just those (by count, then
    the same tie-break hash; equal keys keep the lower unit first, as the stable sort)."""
    k = max(1, math.ceil(n_units * pct / 100))
    cell, count = np.unique(np.asarray(event_bin, np.int64) * n_units + event_unit,
                            return_counts=True)
    c_bin, c_unit = cell // n_units, cell % n_units
    key = count.astype(np.int64) * HASH_MODULUS + mix(c_unit, c_bin)
    order = np.lexsort((c_unit, -key, c_bin))
    sorted_bin = c_bin[order]
    starts = np.searchsorted(sorted_bin, sorted_bin, side="left")
    rank = np.empty(cell.size, dtype=np.int64)
    rank[order] = np.arange(cell.size) - starts
    top = cell[rank < k]
    return np.isin(np.asarray(bin_, np.int64) * n_units + unit, top).astype(np.float32)
