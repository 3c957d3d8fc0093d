"""The panel in time blocks: bounded memory, independent blocks, the same rows.

A block is every unit over a run of consecutive bins ``[lo, hi]``. It is computed
on its own small grid that starts ``warmup`` bins earlier (never before the
panel's first bin), then the warm-up columns are dropped. Every as-of feature is
a count over per-event row intervals (:mod:`crimecast.features.asof`), clipped
to whatever grid it is computed on, so a block's rows equal the dense panel's
rows for the same bins; only statistics over *earlier columns of the grid* need
the warm-up: the z-score label (``z_window`` bins), the was-hotspot threshold
(``z_window`` settled bins ending ``settle`` bins back) and the horizon shift.
The SEPP's decayed sums inject events from before the grid at its first row,
with their exact decay, so they need none. A property test proves blocked and
dense panels equal on random data, delay-aware and not.

Memory is the block's, not the panel's: about :data:`BYTES_PER_CELL` per
(unit, bin) cell of the block and its warm-up, so the block length is chosen
from a memory budget. Blocks share nothing and run through any executor
(:mod:`crimecast.executor`); their rows come back block after block (unit-major
within a block), the same rows as the dense panel in a different order.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from crimecast.errors import ConfigError
from crimecast.features.asof import PanelGrid
from crimecast.features.timebins import TimeBinning

# Measured on the 250 m x 1 d LA panel: ~60 float32 feature matrices alive at once,
# the float64 running sums of trailing statistics and the block's frame.
BYTES_PER_CELL = 400


@dataclass(frozen=True)
class Block:
    """Bins ``lo..hi`` of the panel, computed on a grid starting at ``grid_first``."""

    lo: int
    hi: int
    grid_first: int

    def grid(self, n_units: int) -> PanelGrid:
        """The block's computation grid: warm-up plus its own bins."""
        return PanelGrid(n_units=n_units, first_bin=self.grid_first,
                         n_bins=self.hi - self.grid_first + 1)

    @property
    def skip(self) -> int:
        """Warm-up columns to drop from the block's matrices."""
        return self.lo - self.grid_first


def warmup_bins(z_window: int, settle_days: int, horizon: int, binning: TimeBinning) -> int:
    """Columns of earlier history a block needs for statistics computed on its grid."""
    settle = binning.bins_for(dt.timedelta(days=settle_days))
    # was_hotspot_last_bin: z_window settled bins ending 1 + settle bins back; the
    # z-score label: z_window bins; then every feature is shifted by horizon - 1.
    return z_window + settle + 1 + (horizon - 1) + 1


def plan_blocks(panel: PanelGrid, warmup: int, memory_mb: float,
                workers: int = 1) -> list[Block]:
    """Split ``panel`` into blocks whose cells (with warm-up) fit ``memory_mb`` per worker.

    One block when the whole panel fits. Raises :class:`ConfigError` only when not
    even a one-bin block fits: the one request that cannot be built in blocks.
    """
    budget_cells = memory_mb * 1024 * 1024 / BYTES_PER_CELL / max(workers, 1)
    whole = panel.n_units * panel.n_bins
    if whole <= budget_cells:
        return [Block(panel.first_bin, panel.last_bin, panel.first_bin)]
    per_block = math.floor(budget_cells / max(panel.n_units, 1)) - warmup
    if per_block < 1:
        need = panel.n_units * (warmup + 1) * BYTES_PER_CELL * max(workers, 1) / 1024 / 1024
        raise ConfigError(
            f"one time bin of {panel.n_units:,} units needs about {need:,.0f} MB with its "
            f"{warmup}-bin warm-up, more than the block memory budget of {memory_mb:,.0f} MB. "
            "Pass a larger --cell-size, or raise features.block_memory_mb in "
            "config/feature_config.yaml.")
    return fixed_blocks(panel, warmup, per_block)


def fixed_blocks(panel: PanelGrid, warmup: int, block_bins: int) -> list[Block]:
    """Consecutive blocks of ``block_bins`` bins (the last may be shorter)."""
    if block_bins < 1:
        raise ConfigError(f"block_bins must be >= 1; got {block_bins}. Pass 1 or more.")
    return [Block(lo, min(lo + block_bins - 1, panel.last_bin),
                  max(panel.first_bin, lo - warmup))
            for lo in range(panel.first_bin, panel.last_bin + 1, block_bins)]
