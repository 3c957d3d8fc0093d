"""What a feature declaration computes from: the events, the panel grid, the units, the config.

:class:`FeatureContext` hands every declared computation (see
:mod:`crimecast.features.catalog`) the per-event table and caches what several
features share (a trailing window's counts, a kernel matrix), so each count is
computed once however many features read it. Every matrix it returns is indexed
by *issue row*: column ``a`` holds what was known before bin ``a`` started.

:class:`Horizon` is what a look-back depends on (bin length, settle days, ...).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from crimecast.config import FeatureConfig
from crimecast.features.asof import PanelGrid, event_table, window_counts
from crimecast.features.timebins import STEPS_HOURS, TimeBinning
from crimecast.features.units import UnitSet

ALL_HISTORY = math.inf  # the look-back of "all history" features, in days
WEEK_WINDOWS: dict[str, int | None] = {"1w": 1, "4w": 4, "13w": 13, "26w": 26, "52w": 52,
                                       "104w": 104, "all": None}


@dataclass(frozen=True)
class Horizon:
    """What a feature's look-back (days before its bin starts) depends on."""

    bin_days: float
    z_window_bins: int
    settle_days: int
    daily_window: int
    weather: str
    near_repeat_hours: int
    horizon: int

    @classmethod
    def of(cls, config: FeatureConfig, z_window: int, daily_window: int = 28) -> Horizon:
        """The look-back context of ``config``."""
        return cls(bin_days=STEPS_HOURS[config.time_bin] / 24, z_window_bins=z_window,
                   settle_days=config.settle_days, daily_window=daily_window,
                   weather=config.weather, near_repeat_hours=config.near_repeat_hours,
                   horizon=config.horizon)


def incident_events(clean: pl.DataFrame, units: UnitSet, config: FeatureConfig
                    ) -> tuple[TimeBinning, np.ndarray, pl.DataFrame]:
    """The binning, each incident's unit index and the per-event counting table
    (:func:`crimecast.features.asof.event_table`) of ``clean`` under ``config``."""
    binning = TimeBinning(config.time_bin, config.shift_start_hour)
    area_id = clean["area_id"].to_numpy() if "area_id" in clean.columns else None
    district = clean["district_id"].to_numpy() if "district_id" in clean.columns else None
    unit_index = units.assign(clean["lat"].to_numpy(), clean["lon"].to_numpy(),
                              area_id=area_id, district_id=district)
    return binning, unit_index, event_table(clean, unit_index, binning, config.delay_aware)


@dataclass
class FeatureContext:
    """Inputs and shared intermediate results of the declared feature computations."""

    events: pl.DataFrame  # crimecast.features.asof.event_table
    grid: PanelGrid
    binning: TimeBinning
    units: UnitSet
    config: FeatureConfig
    clean: pl.DataFrame
    unit_index: np.ndarray
    z_window: int
    cache: dict[Any, Any] = field(default_factory=dict)

    def bins(self, days: float) -> int:
        """Number of bins in ``days`` days (at least one)."""
        return max(1, self.binning.bins_for(dt.timedelta(days=days)))

    def trailing(self, bins: int, category: str | None = None) -> np.ndarray:
        """Events known at each issue row that occurred in the ``bins`` bins before it."""
        key = ("trailing", bins, category)
        if key not in self.cache:
            events = self.events if category is None else self.events.filter(
                pl.col("category") == category)
            self.cache[key] = window_counts(events, self.grid, bins)
        matrix: np.ndarray = self.cache[key]
        return matrix

    def history_bins(self) -> int:
        """A window that covers every event before the panel's last row (all history)."""
        first = int(self.events["occ"].min()) if self.events.height else self.grid.first_bin  # type: ignore[arg-type]
        return max(1, self.grid.last_bin - min(first, self.grid.first_bin) + 1)

    def weeks(self, window: str, category: str | None = None) -> np.ndarray:
        """Prior counts over a named window of :data:`WEEK_WINDOWS` (``all``: all history)."""
        n = WEEK_WINDOWS[window]
        return self.trailing(self.history_bins() if n is None else self.bins(7 * n), category)

    def base_bandwidth(self) -> float:
        """The KDE bandwidth in metres: configured, else 2 cells or the median neighbour gap."""
        if self.config.kde_bandwidth_m is not None:
            return self.config.kde_bandwidth_m
        if self.units.kind == "grid":
            return 2 * self.config.cell_size
        if len(self.units) < 2:
            return 1000.0
        xy = self.units.centroids
        dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
        np.fill_diagonal(dist, np.inf)
        return float(np.median(dist.min(axis=1)))

    def kernel(self, multiple: float = 1.0) -> sp.csr_matrix:
        """Row-normalised Gaussian kernel between units at ``multiple`` × the base bandwidth."""
        key = ("kernel", multiple)
        if key not in self.cache:
            self.cache[key] = self.units.kernel_weights(self.base_bandwidth() * multiple)
        kernel: sp.csr_matrix = self.cache[key]
        return kernel

    def smooth(self, matrix: np.ndarray, multiple: float = 1.0) -> np.ndarray:
        """Kernel-smoothed ``matrix`` (each unit: weighted mean of nearby units)."""
        return np.asarray(self.kernel(multiple) @ matrix)

    def shared(self, key: str, make: Any) -> Any:
        """Compute ``make()`` once per build under ``key`` (for features built together)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]
