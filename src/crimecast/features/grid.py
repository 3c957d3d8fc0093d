"""Geometry behind :mod:`crimecast.features.units`: square and H3 grids, Voronoi cells,
exact distance queries, adjacency, kernels and population interpolation.

Square cells live in a projected metric CRS: cell ``(col, row)`` is the half-open square
``[col*s, (col+1)*s) x [row*s, (row+1)*s)`` for cell size ``s``, so a point on a shared
edge belongs to the cell to its right / above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyproj
import scipy.sparse as sp
import shapely

from crimecast.data.geo import WGS84, AreaSet, resolve_crs, transform_geometry, utm_crs_for
from crimecast.errors import ConfigError, DataError, DependencyError

_DENSE_LOOKUP_MAX = 4_000_000  # bounding-box cells for a dense (col, row) -> index table
_QUAD_SEGS = 8
_BIN_PAIRS_MAX = 2_000_000
# Bins across a polygon's median extent: finer bins settle more points without a test
# (24 measured fastest on the LAPD areas: 30% under 8; 64 costs more in bin tests).
_BINS_PER_SPAN = 24
_POINT_CHUNK = 250_000


def check_cell_count(n: int, cell_size: float, max_cells: int, kind: str = "grid") -> None:
    """Raise ConfigError when a grid of ``n`` cells exceeds ``max_cells``."""
    if n > max_cells:
        suggest = math.ceil(cell_size * math.sqrt(n / max_cells) / 50.0) * 50.0
        raise ConfigError(
            f"spatial_unit '{kind}' with cell_size {cell_size:g} m gives {n:,} cells, more than "
            f"the maximum of {max_cells:,}. Pass --cell-size {suggest:g} or larger."
        )


def cell_of(x: np.ndarray, y: np.ndarray, cell_size: float) -> tuple[np.ndarray, ...]:
    """``(col, row, ok)``: integer cell of each projected point; ``ok`` False for NaN."""
    ok = np.isfinite(x) & np.isfinite(y)
    col = np.zeros(x.size, dtype=np.int64)
    row = np.zeros(x.size, dtype=np.int64)
    col[ok] = np.floor(x[ok] / cell_size).astype(np.int64)
    row[ok] = np.floor(y[ok] / cell_size).astype(np.int64)
    return col, row, ok


def cell_ids(cells: np.ndarray, cell_size: float) -> tuple[str, ...]:
    """Stable ids ``g<size>_<col>_<row>`` for an ``(n, 2)`` array of ``(col, row)``."""
    prefix = f"g{cell_size:g}_"
    return tuple(f"{prefix}{c}_{r}" for c, r in cells.tolist())


def cell_boxes(cells: np.ndarray, cell_size: float) -> np.ndarray:
    """Square polygons (projected) of ``(col, row)`` cells."""
    x0, y0 = cells[:, 0] * cell_size, cells[:, 1] * cell_size
    return np.asarray(shapely.box(x0, y0, x0 + cell_size, y0 + cell_size), dtype=object)


@dataclass(frozen=True, eq=False)
class CellLookup:
    """Maps ``(col, row)`` to the index of a cell in a sorted cell list, or -1."""

    col0: int
    row0: int
    ncol: int
    nrow: int
    table: np.ndarray | None  # dense bounding-box table, when small enough
    keys: np.ndarray  # sorted bounding-box keys of the cells
    order: np.ndarray  # cell index of each sorted key

    @classmethod
    def build(cls, cells: np.ndarray) -> CellLookup:
        """Index an ``(n, 2)`` array of distinct ``(col, row)`` cells."""
        col0, row0 = int(cells[:, 0].min()), int(cells[:, 1].min())
        ncol = int(cells[:, 0].max()) - col0 + 1
        nrow = int(cells[:, 1].max()) - row0 + 1
        key = (cells[:, 1] - row0) * ncol + (cells[:, 0] - col0)
        order = np.argsort(key, kind="stable")
        table = None
        if ncol * nrow <= _DENSE_LOOKUP_MAX:
            table = np.full(ncol * nrow, -1, dtype=np.int64)
            table[key] = np.arange(len(cells))
        return cls(col0, row0, ncol, nrow, table, key[order], order)

    def find(self, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Cell index of each ``(col, row)``; -1 where it is not a cell."""
        c, r = col - self.col0, row - self.row0
        inside = (c >= 0) & (c < self.ncol) & (r >= 0) & (r < self.nrow)
        out = np.full(col.size, -1, dtype=np.int64)
        key = r[inside] * self.ncol + c[inside]
        if self.table is not None:
            out[inside] = self.table[key]
            return out
        pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        out[inside] = np.where(self.keys[pos] == key, self.order[pos], -1)
        return out


def metric_crs(
    crs: str | None, lat: np.ndarray, lon: np.ndarray, boundary: AreaSet | None
) -> pyproj.CRS:
    """``crs`` checked to be projected in metres, else the UTM zone of the median point
    (else of the boundary's centre)."""
    if crs is not None:
        c = resolve_crs(crs)
        unit = c.axis_info[0].unit_name if c.axis_info else "unknown"
        if not c.is_projected or unit not in ("metre", "meter"):
            why = "geographic" if not c.is_projected else f"units: {unit}"
            raise ConfigError(
                f"crs must be a projected CRS in metres; got {crs!r} ({why}). Use "
                "EPSG:32611 (UTM 11N) or leave it out to use the UTM zone of the data."
            )
        return c
    ok = np.isfinite(lat) & np.isfinite(lon)
    if ok.any():
        return utm_crs_for(float(np.median(lon[ok])), float(np.median(lat[ok])))
    if boundary is not None:
        centre = shapely.union_all(boundary.geometries).centroid
        return utm_crs_for(centre.x, centre.y)
    raise DataError("no history event has coordinates, so no projection can be chosen. "
                    "Pass crs, or check that history_mask selects events with lat/lon.")


def cells_over_polygons(polys: np.ndarray, cell_size: float, max_cells: int) -> np.ndarray:
    """``(n, 2)`` cells intersecting any of the projected ``polys``, sorted by (row, col)."""
    check_cell_count(math.ceil(shapely.area(polys).sum() / cell_size**2), cell_size, max_cells)
    x0, y0, x1, y1 = shapely.total_bounds(polys)
    c0, r0 = math.floor(x0 / cell_size), math.floor(y0 / cell_size)
    c1, r1 = math.floor(x1 / cell_size), math.floor(y1 / cell_size)
    rows, cols = np.divmod(np.arange((c1 - c0 + 1) * (r1 - r0 + 1)), c1 - c0 + 1)
    cand = np.column_stack([cols + c0, rows + r0]).astype(np.int64)
    hit = shapely.STRtree(polys).query(cell_boxes(cand, cell_size), predicate="intersects")[0]
    used = np.unique(hit)  # candidates are in (row, col) order
    check_cell_count(used.size, cell_size, max_cells)
    return cand[used]


def cells_of_points(
    x: np.ndarray, y: np.ndarray, cell_size: float, max_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cells holding at least one finite point, sorted by (row, col), and each point's cell
    index (-1 for NaN points)."""
    col, row, ok = cell_of(x, y, cell_size)
    both = np.column_stack([row[ok], col[ok]])
    uniq, inverse = np.unique(both, axis=0, return_inverse=True)
    check_cell_count(len(uniq), cell_size, max_cells)
    point_cell = np.full(x.size, -1, dtype=np.int64)
    point_cell[ok] = inverse.ravel()
    return uniq[:, ::-1].copy(), point_cell


def grid_adjacency(cells: np.ndarray, lookup: CellLookup) -> sp.csr_matrix:
    """0/1 8-neighbourhood (queen) adjacency among ``cells``."""
    n = len(cells)
    rows, cols = [], []
    for dc, dr in ((1, -1), (1, 0), (1, 1), (0, 1)):  # half the offsets; symmetrised below
        j = lookup.find(cells[:, 0] + dc, cells[:, 1] + dr)
        hit = np.flatnonzero(j >= 0)
        rows.append(hit)
        cols.append(j[hit])
    i, j = np.concatenate(rows), np.concatenate(cols)
    data = np.ones(2 * i.size, dtype=np.float64)
    return sp.csr_matrix((data, (np.r_[i, j], np.r_[j, i])), shape=(n, n))


def _gap(frac: np.ndarray, offset: int, cell_size: float) -> np.ndarray:
    """Distance along one axis from a point (``frac`` into its cell) to the cell ``offset``
    cells away."""
    if offset == 0:
        return np.zeros_like(frac)
    if offset > 0:
        return offset * cell_size - frac
    return frac - (offset + 1) * cell_size


def grid_within(
    x: np.ndarray, y: np.ndarray, lookup: CellLookup, cell_size: float, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """(point, cell) pairs with the point within ``radius`` of the cell square (exact)."""
    col, row, ok = cell_of(x, y, cell_size)
    idx = np.flatnonzero(ok)
    col, row = col[idx], row[idx]
    fx, fy = x[idx] - col * cell_size, y[idx] - row * cell_size
    k = math.ceil(radius / cell_size)
    events, units = [], []
    for dc in range(-k, k + 1):
        gx = _gap(fx, dc, cell_size)
        near = np.flatnonzero(gx <= radius)
        for dr in range(-k, k + 1):
            gy = _gap(fy[near], dr, cell_size)
            sel = near[gx[near] ** 2 + gy**2 <= radius**2]
            unit = lookup.find(col[sel] + dc, row[sel] + dr)
            hit = unit >= 0
            events.append(idx[sel[hit]])
            units.append(unit[hit])
    return np.concatenate(events), np.concatenate(units)


def polygons_within(
    x: np.ndarray, y: np.ndarray, geoms: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """(point, polygon) pairs with the point within ``radius`` of the projected polygon.

    Exact: buffers by ``radius`` -/+ a margin decide most points (GEOS simplifies buffer input
    by about 1 % of the distance and approximates arcs by chords, so neither buffer is exact);
    points between them get an exact ``dwithin``. Candidates come from a square bin grid;
    bins wholly inside the inner buffer accept their points without a test.
    """
    margin = 0.03 * radius + 1.0
    outer = shapely.buffer(
        geoms, (radius + margin) / math.cos(math.pi / (4 * _QUAD_SEGS)), quad_segs=_QUAD_SEGS
    )
    inner = shapely.buffer(geoms, radius - margin, quad_segs=_QUAD_SEGS)
    shapely.prepare(outer)
    shapely.prepare(inner)
    ob = shapely.bounds(outer)
    x0, y0 = ob[:, 0].min(), ob[:, 1].min()
    span = ob[:, 2:] - ob[:, :2]
    size = max(float(np.median(span)) / _BINS_PER_SPAN,
               math.sqrt(np.prod(ob[:, 2:].max(0) - (x0, y0)) / 2e6))
    size = max(size, 1.0)
    total = float(np.prod(np.floor(span / size) + 2, axis=1).sum())
    size *= max(1.0, math.sqrt(total / _BIN_PAIRS_MAX))
    lo = np.floor((ob[:, :2] - (x0, y0)) / size).astype(np.int64)
    hi = np.floor((ob[:, 2:] - (x0, y0)) / size).astype(np.int64)
    nbx, nby = int(hi[:, 0].max()) + 1, int(hi[:, 1].max()) + 1
    w, h = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    unit = np.repeat(np.arange(len(geoms)), w * h)
    local = np.arange(unit.size) - np.repeat(np.cumsum(w * h) - w * h, w * h)
    pair_bin = (lo[unit, 1] + local // w[unit]) * nbx + lo[unit, 0] + local % w[unit]
    used, inverse = np.unique(pair_bin, return_inverse=True)
    bj, bi = np.divmod(used, nbx)
    bx, by = x0 + bi * size, y0 + bj * size
    boxes = np.asarray(shapely.box(bx, by, bx + size, by + size))[inverse]
    touch = shapely.intersects(outer[unit], boxes)
    unit, pair_bin = unit[touch], pair_bin[touch]
    full = shapely.covers(inner[unit], boxes[touch])

    events, units = [], []
    for start in range(0, x.size, _POINT_CHUNK):  # chunks bound the candidate-pair memory
        cx, cy = x[start : start + _POINT_CHUNK], y[start : start + _POINT_CHUNK]
        pi, pj = np.floor((cx - x0) / size), np.floor((cy - y0) / size)
        ok = np.flatnonzero((pi >= 0) & (pi < nbx) & (pj >= 0) & (pj < nby))  # False for NaN
        key = pj[ok].astype(np.int64) * nbx + pi[ok].astype(np.int64)
        # The same stable order; 16-bit keys sort by radix, ~10x faster than 64-bit ones.
        small = key.astype(np.uint16) if nbx * nby <= 1 << 16 else key
        order = ok[np.argsort(small, kind="stable")]
        counts = np.bincount(key, minlength=nbx * nby)
        per_pair = counts[pair_bin]
        rep = np.repeat(np.arange(per_pair.size), per_pair)
        offset = np.arange(rep.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
        pts, unit_of = order[(np.cumsum(counts) - counts)[pair_bin][rep] + offset], unit[rep]
        keep = full[rep]
        test = np.flatnonzero(~keep)
        test = test[shapely.intersects_xy(outer[unit_of[test]], cx[pts[test]], cy[pts[test]])]
        sure = shapely.intersects_xy(inner[unit_of[test]], cx[pts[test]], cy[pts[test]])
        keep[test[sure]] = True
        band = test[~sure]
        exact = shapely.points(cx[pts[band]], cy[pts[band]])
        keep[band[shapely.dwithin(geoms[unit_of[band]], exact, radius)]] = True
        events.append(pts[keep] + start)
        units.append(unit_of[keep])
    if not events:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(events), np.concatenate(units)


def _h3() -> Any:
    try:
        import h3
    except ImportError as exc:
        raise DependencyError(
            "spatial_unit 'h3' needs the h3 package, which is not installed. Run "
            "pip install h3, or pass --spatial-unit grid."
        ) from exc
    return h3


def h3_mean_area(res: int) -> float:
    """Average H3 hexagon area at ``res`` in square metres."""
    return float(_h3().average_hexagon_area(res, "m^2"))


def h3_resolution(cell_size: float) -> int:
    """The H3 resolution whose average hexagon area is nearest (in log) to ``cell_size**2``."""
    areas = np.array([h3_mean_area(r) for r in range(16)])
    return int(np.argmin(np.abs(np.log(areas / cell_size**2))))


def h3_cells_over(polygon_lonlat: Any, res: int) -> list[str]:
    """Sorted H3 cells overlapping a lon/lat (Multi)Polygon."""
    h3 = _h3()
    shape = h3.geo_to_h3shape(polygon_lonlat)
    return sorted(h3.h3shape_to_cells_experimental(shape, res, contain="overlap"))


def h3_cells_of_points(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """H3 cell (str) of each point; ``""`` for NaN. Loops over distinct coordinates only."""
    h3 = _h3()
    ok = np.isfinite(lat) & np.isfinite(lon)
    uniq, inverse = np.unique(np.column_stack([lat[ok], lon[ok]]), axis=0, return_inverse=True)
    cells = np.array([h3.latlng_to_cell(a, o, res) for a, o in uniq.tolist()] or [""])
    out = np.full(lat.size, "", dtype=cells.dtype)
    out[ok] = cells[inverse.ravel()] if uniq.size else ""
    return out


def h3_polygons(cells: list[str]) -> np.ndarray:
    """Lon/lat hexagon (pentagon) polygons of H3 cells."""
    h3 = _h3()
    rings = [[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] for c in cells]
    return np.asarray([shapely.Polygon(r) for r in rings], dtype=object)


def interpolate_population(targets: np.ndarray, tracts: AreaSet, crs: Any) -> np.ndarray:
    """Area-weighted population of projected ``targets``: sum over tracts of tract population
    times the share of the tract's area inside the target."""
    if tracts.populations is None:
        return np.full(len(targets), np.nan)
    tp = transform_geometry(tracts.geometries, WGS84, crs)
    ti, tj = shapely.STRtree(tp).query(targets, predicate="intersects")
    share = shapely.area(shapely.intersection(targets[ti], tp[tj])) / shapely.area(tp[tj])
    pop = np.nan_to_num(tracts.populations)[tj] * share
    return np.bincount(ti, weights=pop, minlength=len(targets)).astype(np.float64)


def polygon_adjacency(projected: np.ndarray, tolerance: float) -> sp.csr_matrix:
    """0/1 symmetric adjacency of projected polygons less than ``tolerance`` apart."""
    i, j = shapely.STRtree(projected).query(projected, predicate="dwithin", distance=tolerance)
    off = i != j
    n = len(projected)
    m = sp.csr_matrix((np.ones(int(off.sum())), (i[off], j[off])), shape=(n, n))
    return ((m + m.T) > 0).astype(np.float64).tocsr()


def largest_overlap(
    targets: np.ndarray, cell: np.ndarray, poly: np.ndarray, polys: np.ndarray
) -> np.ndarray:
    """Index of the polygon each target overlaps most, from intersecting ``(cell, poly)``
    pairs (as ``STRtree.query`` returns them); -1 for targets in no pair."""
    out = np.full(len(targets), -1, dtype=np.int64)
    multi = np.bincount(cell, minlength=len(targets))[cell] > 1
    out[cell[~multi]] = poly[~multi]
    cell, poly = cell[multi], poly[multi]
    area = shapely.area(shapely.intersection(targets[cell], polys[poly]))
    order = np.lexsort((-area, cell))
    first = np.r_[True, np.diff(cell[order]) != 0] if order.size else order.astype(bool)
    out[cell[order][first]] = poly[order][first]
    return out


def voronoi_cells(points: np.ndarray, clip: Any) -> np.ndarray:
    """Voronoi cell of each ``(k, 2)`` projected point clipped to ``clip``, in input order."""
    if len(points) == 1:
        return np.asarray([clip], dtype=object)
    # Identical points would share one cell and break the order; millimetre offsets keep
    # them distinct.
    pts = points + np.arange(len(points))[:, None] * 1e-3
    diagram = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=clip, ordered=True)
    return np.asarray(shapely.intersection(shapely.get_parts(diagram), clip), dtype=object)


def grouped_voronoi(
    points: np.ndarray, group: np.ndarray, keep: np.ndarray, clips: np.ndarray
) -> np.ndarray:
    """Voronoi cells of the kept points, one diagram per group clipped to ``clips[group]``;
    None for points not kept."""
    out = np.full(len(points), None, dtype=object)
    for k in np.unique(group[keep]).tolist():  # one diagram per area
        members = np.flatnonzero(keep & (group == k))
        out[members] = voronoi_cells(points[members], clips[k])
    return out


def gaussian_weights(centroids: np.ndarray, bandwidth: float, cutoff: float) -> sp.csr_matrix:
    """Row-normalised ``exp(-d²/2h²)`` between points (self included), 0 beyond cutoff*h."""
    from scipy.spatial import cKDTree  # imported when kernels are first built

    pairs = cKDTree(centroids).query_pairs(cutoff * bandwidth, output_type="ndarray")
    n = len(centroids)
    i = np.r_[pairs[:, 0], pairs[:, 1], np.arange(n)]
    j = np.r_[pairs[:, 1], pairs[:, 0], np.arange(n)]
    w = np.exp(-((centroids[i] - centroids[j]) ** 2).sum(axis=1) / (2.0 * bandwidth**2))
    w /= np.bincount(i, weights=w, minlength=n)[i]
    return sp.csr_matrix((w, (i, j)), shape=(n, n))


def majority(groups: pl.Series, values: pl.Series) -> dict[Any, Any]:
    """Most frequent non-null value per non-null group (ties: the smallest value)."""
    frame = pl.DataFrame({"g": groups, "v": values}).drop_nulls()
    top = frame.group_by("g", "v").len().sort(["g", "len", "v"], descending=[False, True, False])
    return dict(top.unique("g", keep="first", maintain_order=True).select("g", "v").iter_rows())


def district_sites(
    dkeys: pl.Series, area: np.ndarray, akeys: pl.Series | None, lat: np.ndarray,
    lon: np.ndarray,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict[Any, Any]]:
    """Per district present (sorted ids): median lat/lon of its finite events, majority
    ``area`` index (-1 if none) and majority area id (``akeys``)."""
    frame = pl.DataFrame({"d": dkeys, "a": area, "k": akeys, "lat": lat, "lon": lon})
    frame = frame.drop_nulls("d")
    finite = pl.col("lat").is_finite() & pl.col("lon").is_finite()
    per = frame.group_by("d").agg(pl.col("lat", "lon").filter(finite).median()).sort("d")
    ids: list[str] = per["d"].to_list()
    top = majority(frame["d"], frame["a"].replace(-1, None))
    owner = np.array([top.get(d, -1) for d in ids], dtype=np.int64)
    lat_c, lon_c = (per[c].fill_null(np.nan).to_numpy().copy() for c in ("lat", "lon"))
    return ids, lat_c, lon_c, owner, majority(frame["d"], frame["k"])
