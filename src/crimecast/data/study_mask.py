"""Point-in-polygon for a million points at a time: a raster first, exact tests at the edge.

The study-area rule asks, for every incident, whether its point lies inside (or
on the border of) the study area. :class:`PolygonRaster` answers that without a
polygon test per point: a grid over the polygon's bounds marks each cell as
wholly inside, wholly outside or crossing the border (cells slightly enlarged so
a point's cell always contains it despite rounding), and only points in border
cells are tested exactly, with :func:`shapely.intersects_xy`. The answer is
therefore exactly that of the per-point test.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

GRID_CELLS = 128
_OUTSIDE, _INSIDE, _BORDER = 0, 1, 2


class PolygonRaster:
    """Inside-or-on-border tests of many points against one geometry (WGS 84 degrees)."""

    def __init__(self, geometry: BaseGeometry, cells: int = GRID_CELLS) -> None:
        self.geometry = geometry
        shapely.prepare(geometry)
        self.minx, self.miny, self.maxx, self.maxy = geometry.bounds
        self.cells = cells
        self.dx = (self.maxx - self.minx) / cells or 1.0
        self.dy = (self.maxy - self.miny) / cells or 1.0
        eps = 1e-9 * max(abs(self.maxx), abs(self.maxy), 1.0)  # far above rounding error
        ix, iy = np.meshgrid(np.arange(cells), np.arange(cells), indexing="xy")
        boxes = shapely.box(self.minx + ix * self.dx - eps, self.miny + iy * self.dy - eps,
                            self.minx + (ix + 1) * self.dx + eps,
                            self.miny + (iy + 1) * self.dy + eps)
        state = np.full(boxes.shape, _BORDER, dtype=np.uint8)
        state[shapely.contains(geometry, boxes)] = _INSIDE
        state[~shapely.intersects(geometry, boxes)] = _OUTSIDE
        self.state = state

    def contains_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where the point (x, y) is inside or on the border; finite input only."""
        inside = np.zeros(x.shape, dtype=bool)
        within = (x >= self.minx) & (x <= self.maxx) & (y >= self.miny) & (y <= self.maxy)
        at = np.flatnonzero(within)
        ix = np.clip(((x[at] - self.minx) / self.dx).astype(np.int64), 0, self.cells - 1)
        iy = np.clip(((y[at] - self.miny) / self.dy).astype(np.int64), 0, self.cells - 1)
        state = self.state[iy, ix]
        inside[at[state == _INSIDE]] = True
        border = at[state == _BORDER]
        inside[border] = shapely.intersects_xy(self.geometry, x[border], y[border])
        return inside


@lru_cache(maxsize=4)
def _raster_for(wkb: bytes) -> PolygonRaster:
    return PolygonRaster(shapely.from_wkb(wkb))


def raster_of(geometry: BaseGeometry) -> PolygonRaster:
    """The (cached) raster of ``geometry``: every clean run tests the same study area."""
    return _raster_for(shapely.to_wkb(geometry))
