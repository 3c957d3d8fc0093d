"""Kernel-smoothed counts from snapshots: a few images per week, not one per (unit, bin).

A KDE feature smooths a trailing window's counts over nearby units. Smoothing
every bin of a fine grid is the panel's largest cost (a 2 km kernel on 150 m
cells touches about 1,800 cells per cell), and the smoothed long-window counts
barely move from one bin to the next. So the KDE features are read from
*snapshots*: the window's counts known at the start of the issue day (7-day and
4-week windows) or week (Monday; 13 weeks and longer), smoothed once per
snapshot and gathered by every row that follows it. A snapshot at row
``s <= a`` uses only events known before ``s``, so the features stay as-of;
the dense panel and the event-indexed rows read the same snapshot values, so
they agree bit for bit.

Grids smooth with a separable Gaussian (two 1-D passes over the grid's
bounding box, truncated at ``cutoff`` bandwidths along each axis), normalised by
the same smoothing of the study-area mask, so each cell's weights over the
cells of the study area sum to 1. Other units (areas, districts, H3) use the
row-normalised sparse kernel between centroids.
"""

from __future__ import annotations

import math

import numpy as np

from crimecast.features.units import UnitSet

CUTOFF = 3.0
CHUNK_BYTES = 32 * 1024 * 1024  # snapshot images smoothed at a time


def snapshot_of(rows: np.ndarray, every: int) -> np.ndarray:
    """The snapshot row (a multiple of ``every`` bins, at or before) of each issue row."""
    return (np.asarray(rows, dtype=np.int64) // every) * every


def _positions(snapshots: np.ndarray, lo: np.ndarray, hi: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``searchsorted(snapshots, lo, "left")`` and ``searchsorted(snapshots, hi, "right")``;
    by integer arithmetic when the snapshots are evenly spaced (a dense panel's are)."""
    size = snapshots.size
    step = int(snapshots[1] - snapshots[0]) if size > 1 else 0
    if step <= 0 or not (np.diff(snapshots) == step).all():
        return (np.searchsorted(snapshots, lo, side="left"),
                np.searchsorted(snapshots, hi, side="right"))
    origin = int(snapshots[0])
    first = np.subtract(origin, lo)  # snapshots before lo: ceil((lo - origin) / step)
    first //= step
    np.negative(first, out=first)
    last = np.subtract(hi, origin)  # snapshots at or before hi: floor(...) + 1
    last //= step
    last += 1
    return np.clip(first, 0, size, out=first), np.clip(last, 0, size, out=last)


def snapshot_counts(units: np.ndarray, lo: np.ndarray, hi: np.ndarray, snapshots: np.ndarray,
                    n_units: int) -> np.ndarray:
    """(n_units, S) integer counts (uint16 or int32) of the intervals ``[lo, hi]`` covering
    each snapshot row (sorted, unique): a difference array over snapshot indices,
    O(events + units × S)."""
    first, last = _positions(snapshots, lo, hi)
    keep = first < last
    width = snapshots.size + 1
    idx = np.asarray(units, dtype=np.int64)[keep] * width
    # int32: exact (counts of events), half the memory of the float64 counts before.
    diff = np.bincount(idx + first[keep], minlength=n_units * width).astype(np.int32)
    diff -= np.bincount(idx + last[keep], minlength=n_units * width).astype(np.int32)
    counts = diff.reshape(n_units, width)
    np.cumsum(counts, axis=1, dtype=np.int32, out=counts)
    counts = counts[:, : snapshots.size]
    # Held while every bandwidth is smoothed: uint16 when the counts fit (they nearly always
    # do), half the memory again; every value is the same.
    if counts.size and int(counts.min()) >= 0 and int(counts.max()) <= np.iinfo(np.uint16).max:
        return counts.astype(np.uint16)
    return counts


def _taps(cell_size: float, bandwidth: float) -> np.ndarray:
    reach = math.floor(CUTOFF * bandwidth / cell_size)
    offsets = np.arange(-reach, reach + 1, dtype=np.float64) * cell_size
    return np.exp(-(offsets**2) / (2.0 * bandwidth**2))


def _smooth_grid(counts: np.ndarray, units: UnitSet, bandwidth: float) -> np.ndarray:
    assert units.cells is not None and units.cell_size is not None
    col = units.cells[:, 0] - units.cells[:, 0].min()
    row = units.cells[:, 1] - units.cells[:, 1].min()
    shape = (int(row.max()) + 1, int(col.max()) + 1)
    taps = _taps(units.cell_size, bandwidth)
    from scipy.ndimage import correlate1d  # grids only: areas never pay for the import

    def smooth(images: np.ndarray) -> np.ndarray:
        out = correlate1d(images, taps, axis=-1, mode="constant", cval=0.0)
        return correlate1d(out, taps, axis=-2, mode="constant", cval=0.0)

    mask = np.zeros((1, *shape))
    mask[0, row, col] = 1.0
    norm = smooth(mask)[0, row, col]
    out = np.empty(counts.shape, dtype=np.float32)
    # Snapshot images in float32: half the memory traffic of float64 (1.7x faster passes).
    # The features are float32 anyway; the pass between the two 1-D smoothings is rounded
    # to float32 too (about 1e-7 relative), the same in both engines.
    step = max(1, CHUNK_BYTES // (4 * shape[0] * shape[1]))
    for lo in range(0, counts.shape[1], step):
        part = counts[:, lo:lo + step]
        images = np.zeros((part.shape[1], *shape), dtype=np.float32)
        images[:, row, col] = part.T
        out[:, lo:lo + step] = (smooth(images)[:, row, col] / norm).T
    return out


def smooth_snapshots(counts: np.ndarray, units: UnitSet, bandwidth: float) -> np.ndarray:
    """Kernel-smoothed (n_units, S) snapshot counts (float32): each unit's weighted mean of
    nearby units (see the module doc). Each snapshot is smoothed on its own, so which
    other snapshots are computed alongside never changes a value."""
    if counts.shape[1] == 0:
        return counts.astype(np.float32)
    if units.kind == "grid" and units.cells is not None and units.cell_size is not None:
        return _smooth_grid(counts, units, bandwidth)
    kernel = units.kernel_weights(bandwidth, CUTOFF)
    return np.asarray(kernel @ counts.astype(np.float64), dtype=np.float32)
