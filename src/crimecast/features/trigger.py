"""The SEPP trigger kernel's mass in each spatial unit near an event.

:func:`trigger_weights` gives, for every event, the units whose centroid lies within
``cutoff·σ`` (plus half a cell diagonal for grid cells) and the Gaussian(σ) kernel's mass
in each. On a regular square grid the pairs come straight from the lattice: each event's
cell and the cells a few columns and rows around it, with the mass a product of 1-D
normal masses computed once per column and row offset. Other units (polygons, hexagons,
or centroids that are not a lattice) use a KD-tree over the events. Both give the same
pairs and, on a lattice, the same weights bit for bit (the same differences enter the
same formula).
"""

from __future__ import annotations

import math

import numpy as np

from crimecast.errors import ModelError
from crimecast.features.grid import CellLookup
from crimecast.features.sepp import require_positive

TRIGGER_CUTOFF = 3.0  # trigger weights reach this many σ (plus half a cell diagonal)
FEW_UNITS = 64
# Events per pass of the lattice path: its candidate arrays are events × (2k+1)² entries
# (81 per event at 150 m cells and σ = 150 m: about 50 MB per array at this size).
_LATTICE_CHUNK = 80_000

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _interval_mass(offset: np.ndarray, half: float, sigma: float) -> np.ndarray:
    """Mass of N(0, σ²) on ``[offset − half, offset + half]``, accurate in the tails."""
    from scipy.special import erfc

    scale = sigma * math.sqrt(2.0)
    a = np.abs(offset)  # the Gaussian is symmetric; erfc keeps precision in the far tail
    return 0.5 * (erfc((a - half) / scale) - erfc((a + half) / scale))


def trigger_reach(sigma_m: float, cell_size: float | None,
                  cutoff: float = TRIGGER_CUTOFF) -> float:
    """How far (metres) from an event a unit's centroid may lie and still be paired with
    it: ``cutoff·σ``, plus half a cell diagonal for grid cells."""
    half = 0.0 if cell_size is None else cell_size / 2.0
    return cutoff * sigma_m + half * math.sqrt(2.0)


def trigger_weights(
    x: np.ndarray, y: np.ndarray, centroids: np.ndarray, unit_area_m2: np.ndarray,
    sigma_m: float, cell_size: float | None, cutoff: float = TRIGGER_CUTOFF,
) -> Pairs:
    """The Gaussian trigger kernel's mass of each event in each nearby unit.

    Returns ``(event_idx, unit_idx, weight)`` (int64, int64, float64), sorted by
    event then unit, for every unit whose centroid lies within
    ``cutoff·σ`` (plus half a cell diagonal for grid cells) of the event. With
    ``cell_size`` the units are axis-aligned square cells of that side centred on
    ``centroids`` and the mass is exact (a product of 1-D normal masses). With
    ``cell_size=None`` (polygons, hexagons) it is *approximated* by the density
    at the centroid times ``unit_area_m2``, which is good for units small
    relative to σ.
    """
    xs, ys = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    cents = np.asarray(centroids, dtype=np.float64)
    areas = np.asarray(unit_area_m2, dtype=np.float64).ravel()
    if xs.size != ys.size:
        raise ModelError(
            f"x and y must have equal lengths; got {xs.size} and {ys.size}. Pass one "
            "coordinate pair per event."
        )
    if cents.ndim != 2 or cents.shape[1] != 2 or areas.size != cents.shape[0]:
        raise ModelError(
            "centroids must have shape (n_units, 2) and unit_area_m2 shape (n_units,); got "
            f"{cents.shape} and {areas.shape}. Pass one (x, y) centroid and one area per unit."
        )
    require_positive("sigma_m", sigma_m, "Pass the fitted kernel width in metres.")
    require_positive("cutoff", cutoff, "Pass a number of standard deviations such as 3.")
    if cell_size is not None:
        require_positive("cell_size", cell_size, "Pass the grid cell side in metres, or None.")
    if xs.size == 0 or cents.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    half = 0.0 if cell_size is None else cell_size / 2.0
    radius = trigger_reach(sigma_m, cell_size, cutoff)
    if cell_size is not None and cents.shape[0] > FEW_UNITS:
        lattice = _lattice(cents, cell_size)
        if lattice is not None:
            return _lattice_weights(xs, ys, *lattice, cell_size, sigma_m, radius)
    if cents.shape[0] <= FEW_UNITS:  # a few large units: one vectorised pass per unit
        hits = [np.flatnonzero((xs - cx) ** 2 + (ys - cy) ** 2 <= radius * radius)
                for cx, cy in cents]
        event_idx = np.concatenate(hits).astype(np.int64)
        unit_idx = np.repeat(np.arange(cents.shape[0], dtype=np.int64), [h.size for h in hits])
    else:  # a tree over the events (building it dominates; it pays off for many units)
        from scipy.spatial import cKDTree

        near = cKDTree(np.column_stack([xs, ys])).sparse_distance_matrix(
            cKDTree(cents), radius, output_type="ndarray")
        event_idx, unit_idx = near["i"].astype(np.int64), near["j"].astype(np.int64)
    order = np.lexsort((unit_idx, event_idx))
    event_idx, unit_idx = event_idx[order], unit_idx[order]
    dx, dy = cents[unit_idx, 0] - xs[event_idx], cents[unit_idx, 1] - ys[event_idx]
    if cell_size is None:
        var = sigma_m**2
        weight = np.exp(-(dx**2 + dy**2) / (2 * var)) / (2 * np.pi * var) * areas[unit_idx]
    else:
        weight = _interval_mass(dx, half, sigma_m) * _interval_mass(dy, half, sigma_m)
    return event_idx, unit_idx, weight


def _lattice(cents: np.ndarray, cell_size: float) -> tuple[CellLookup, bool] | None:
    """The cells of ``cents`` when they are the centres of distinct square cells of
    ``cell_size`` (``(col + ½)·s`` exactly, as the grid builds them), with whether the
    units are numbered row-major (row, then column); else None."""
    col = np.rint(cents[:, 0] / cell_size - 0.5).astype(np.int64)
    row = np.rint(cents[:, 1] / cell_size - 0.5).astype(np.int64)
    if not (np.array_equal((col + 0.5) * cell_size, cents[:, 0])
            and np.array_equal((row + 0.5) * cell_size, cents[:, 1])):
        return None
    cells = np.column_stack([col, row])
    lookup = CellLookup.build(cells)
    if np.unique(lookup.keys).size != cells.shape[0]:
        return None
    return lookup, bool(np.all(np.diff(lookup.order) > 0))


def _lattice_weights(
    xs: np.ndarray, ys: np.ndarray, lookup: CellLookup, row_major: bool, cell_size: float,
    sigma_m: float, radius: float,
) -> Pairs:
    """:func:`trigger_weights` on a lattice: candidates are the cells up to ``k`` columns
    and rows from each event's own; the tree path's differences ``centroid − event`` and
    its ``d² <= radius²`` test, so the same pairs and weights."""
    half = cell_size / 2.0
    k = int(radius // cell_size) + 1  # |centroid − event| <= radius needs |offset| <= k
    offsets = np.arange(-k, k + 1, dtype=np.int64)
    parts: list[Pairs] = []
    for start in range(0, xs.size, _LATTICE_CHUNK):
        x, y = xs[start:start + _LATTICE_CHUNK], ys[start:start + _LATTICE_CHUNK]
        finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        x, y = x[finite], y[finite]
        col = np.floor(x / cell_size).astype(np.int64)[:, None] + offsets
        row = np.floor(y / cell_size).astype(np.int64)[:, None] + offsets
        dx, dy = (col + 0.5) * cell_size - x[:, None], (row + 0.5) * cell_size - y[:, None]
        # (event, row offset, column offset): C order keeps events, then rows, then columns.
        event, a, b = np.nonzero(dy[:, :, None] ** 2 + dx[:, None, :] ** 2 <= radius * radius)
        unit = lookup.find(col[event, b], row[event, a])
        hit = unit >= 0
        event, a, b, unit = event[hit], a[hit], b[hit], unit[hit]
        weight = (_interval_mass(dx, half, sigma_m)[event, b]
                  * _interval_mass(dy, half, sigma_m)[event, a])
        parts.append((finite[event] + start, unit, weight))
    event_idx, unit_idx, weight = (np.concatenate(p) for p in zip(*parts, strict=True))
    if not row_major:
        order = np.lexsort((unit_idx, event_idx))
        event_idx, unit_idx, weight = event_idx[order], unit_idx[order], weight[order]
    return event_idx.astype(np.int64), unit_idx, weight
