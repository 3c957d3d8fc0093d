"""The self-exciting point process (SEPP) on the panel: its intensity feature and its fit.

The feature of unit ``u`` at issue time ``a`` is the expected count of the bin
``[a, a+Δ)`` (Mohler et al. 2011; :mod:`crimecast.features.sepp` for the process
itself); with a horizon ``h > 1`` it describes the bin ``h - 1`` bins later, as
every as-of feature does::

    E[count] = m · share_u · Δ + θ · (1 − e^{-ωΔ}) · Σ_i w_iu e^{-ω (a − t_i)}

* the background ``m · share_u``: ``share_u`` is unit ``u``'s share of the
  Gaussian-smoothed trailing 52-week counts known at issue time ``a`` (a long-window,
  spatially smoothed count, as the issue of record asks), ``m`` the background
  events per day (fitted, or ``(1 − θ)`` × the citywide 52-week daily rate);
* the triggering sum over every event ``i`` *known* at issue time (delay-aware like
  every feature), ``w_iu`` its Gaussian(σ) mass in unit ``u``.

Parameters come from ``FeatureConfig.sepp`` (fitted by :func:`fit_panel_sepp`
on events known before the training cutoff, never later) or the defaults, so the
feature is as-of for any fixed parameters. Cost: O(events × units within 3σ)
for the weights plus O(units × bins) for the recursive decay; no dense
events × bins matrix.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging

import numpy as np
import polars as pl
import shapely

from crimecast.config import FeatureConfig
from crimecast.data.geo import to_projected
from crimecast.features.context import FeatureContext, incident_events
from crimecast.features.decay import DecayIndex, UnitBands, decay_index, first_epoch_row
from crimecast.features.sepp import (
    DEFAULT_PARAMS,
    SeppFit,
    SeppParams,
    expected_counts,
    fit_sepp,
)
from crimecast.features.trigger import FEW_UNITS, TRIGGER_CUTOFF, trigger_reach, trigger_weights
from crimecast.features.units import UnitSet

logger = logging.getLogger(__name__)

BACKGROUND_WEEKS = 52
# Trigger pairs per band of units while the SEPP's index is built (sepp_index): at 32 bytes
# a pair in flight, a few hundred MB of temporaries instead of several GB at fine grids.
BAND_PAIRS = 2_000_000
MAX_FIT_EVENTS = 20_000


def params_of(config: FeatureConfig) -> SeppParams:
    """The SEPP parameters of ``config`` (fitted ones when present, else the defaults)."""
    return SeppParams.from_dict(config.sepp) if config.sepp else DEFAULT_PARAMS


def unit_areas_m2(units: UnitSet) -> np.ndarray:
    """Area of each unit in square metres (projected CRS)."""
    if units.cell_size is not None:
        return np.full(len(units), units.cell_size**2)
    return np.asarray(shapely.area(units.projected), dtype=np.float64)


def _event_xy(events: pl.DataFrame, units: UnitSet) -> tuple[np.ndarray, np.ndarray]:
    return to_projected(events["lat"].to_numpy(), events["lon"].to_numpy(), units.crs)


def sepp_index(events: pl.DataFrame, xy: tuple[np.ndarray, np.ndarray], units: UnitSet,
               areas: np.ndarray, params: SeppParams, bin_days: float,
               band_pairs: int = BAND_PAIRS) -> UnitBands:
    """The decay index of the trigger contributions of ``events`` (at ``xy``) to ``units``,
    built band by band: ranges of consecutive units with about ``band_pairs`` trigger
    pairs each, from the events within reach of each range.

    The same values as one index of every pair: a unit's pairs, their weights and their
    order are the same (each band keeps the events in order), and a unit's running sums
    never cross a band. Only one band's temporaries (pairs, sort, running sums) are held
    at a time: at 250 m, a million events make about 19 million pairs."""
    x, y = xy
    t_days, avail = events["t_days"].to_numpy(), events["avail"].to_numpy()
    rows = (int(avail.min()), int(avail.max())) if avail.size else None
    cents, n_units = units.centroids, len(units)

    def band(lo: int, hi: int, chosen: np.ndarray | None) -> DecayIndex:
        bx, by = (x, y) if chosen is None else (x[chosen], y[chosen])
        e_idx, u_idx, weight = trigger_weights(bx, by, cents[lo:hi], areas[lo:hi],
                                               params.sigma_m, units.cell_size)
        if chosen is not None:
            e_idx = chosen[e_idx]
        u_idx += lo
        return decay_index(u_idx, t_days[e_idx], avail[e_idx], weight, bin_days,
                           params.omega_per_day, rows=rows)

    cuts = _bands(events, xy, units, areas, params, band_pairs)
    if len(cuts) <= 2:
        return UnitBands(np.array(cuts, dtype=np.int64), (band(0, n_units, None),))
    reach = trigger_reach(params.sigma_m, units.cell_size) * (1 + 1e-9) + 1.0  # a superset
    parts = []
    for lo, hi in itertools.pairwise(cuts):
        (x0, y0), (x1, y1) = cents[lo:hi].min(axis=0) - reach, cents[lo:hi].max(axis=0) + reach
        near = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        parts.append(band(lo, hi, near))
    return UnitBands(np.array(cuts, dtype=np.int64), tuple(parts))


def _bands(events: pl.DataFrame, xy: tuple[np.ndarray, np.ndarray], units: UnitSet,
           areas: np.ndarray, params: SeppParams, band_pairs: int) -> list[int]:
    """Unit cuts ``[0, ..., n_units]`` of :func:`sepp_index`'s bands: the pairs estimated
    from every k-th event, split by the events' own units; each band holds more than
    ``FEW_UNITS`` units, so it pairs units with events as the whole set does."""
    n_units, n_events = len(units), events.height
    step = max(1, n_events // 4096)
    sample = trigger_weights(xy[0][::step], xy[1][::step], units.centroids, areas,
                             params.sigma_m, units.cell_size)[0].size * step
    n_bands = min(-(-sample // max(band_pairs, 1)), n_units // (FEW_UNITS + 1))
    if n_bands <= 1:
        return [0, n_units]
    own = np.cumsum(np.bincount(events["_u"].to_numpy(), minlength=n_units))
    cuts = np.searchsorted(own, own[-1] * np.arange(1, n_bands) / n_bands, side="right")
    edges = [0]
    for cut in cuts.tolist():
        if cut - edges[-1] > FEW_UNITS and n_units - cut > FEW_UNITS:
            edges.append(cut)
    return [*edges, n_units]


def sepp_intensity(c: FeatureContext) -> np.ndarray:
    """Expected events per (unit, bin) under the SEPP, at issue rows (see module doc)."""
    params = params_of(c.config)
    bin_days = c.binning.hours / 24
    rows = c.issue_rows()
    areas = unit_areas_m2(c.units)
    kept = c.kept_rows()

    def index(events: pl.DataFrame, xy: tuple[np.ndarray, np.ndarray]) -> UnitBands:
        return sepp_index(events, xy, c.units, areas, params, bin_days)

    def block_index() -> UnitBands:  # the events the block reads (decay module doc)
        first = first_epoch_row(int(kept.min()), bin_days, params.omega_per_day) \
            if kept.size else 0
        events = c.events.filter(pl.col("avail").is_between(first, int(kept.max()))) \
            if kept.size else c.events.clear()
        return index(events, c.project(events))

    name = f"{params.sigma_m!r}_{params.omega_per_day!r}"
    if c.panel_wide(TRIGGER_CUTOFF * params.sigma_m):  # once per panel, shared by its blocks
        decay: UnitBands = c.shared(f"sepp_index_{name}",
                                     lambda: index(c.events, c.event_xy()))
    else:
        decay = c.shared(f"sepp_block_{name}", block_index)
    if c.rows is not None:
        decayed = decay.at(c.rows.unit, kept)
    else:
        units = np.repeat(np.arange(c.grid.n_units, dtype=np.int64), kept.size)
        decayed = c.padded(decay.at(units, np.tile(kept, c.grid.n_units))
                           .reshape(c.grid.n_units, kept.size))
    window = c.bins(7 * BACKGROUND_WEEKS)
    long, total = c.kde(window), c.kde_total(window)
    uniform = c.per_unit(areas / areas.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, long / total, uniform)
    if params.background_per_day > 0:
        rate = np.full(rows.size, params.background_per_day)
    else:
        first_known = int(c.events["avail"].min()) if c.events.height else int(rows.max()) + 1  # type: ignore[arg-type]
        known_days = np.clip((rows - first_known) * bin_days, 0, 7 * BACKGROUND_WEEKS)
        counted = c.citywide(window)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(known_days > 0, (1 - params.theta) * counted / known_days, 0.0)
    # As every as-of feature, the value at the issue time: the expected count of the bin that
    # starts then. Bins further ahead (horizon > 1, or later bins of a served window) reuse
    # it, so a window's bins share their as-of features.
    return expected_counts(share * c.per_row(rate), decayed, params, bin_days)


def fit_panel_sepp(
    clean: pl.DataFrame, units: UnitSet, config: FeatureConfig, cutoff: dt.datetime,
) -> SeppFit | None:
    """Fit the SEPP by EM on the events known before ``cutoff`` (occurred and, when
    delay-aware, reported), with the background shape of their smoothed counts.

    Returns None when fewer than 10 events are known by then.
    """
    binning, _, events = incident_events(clean, units, config)
    events = events.filter(pl.col("avail") <= binning.index_of(cutoff))
    if events.height < 10:
        return None
    # The parameters describe recent behaviour; the most recent events bound the cost.
    events = events.sort("t_days").tail(MAX_FIT_EVENTS)
    counts = np.bincount(events["_u"].to_numpy(), minlength=len(units)).astype(np.float64)
    bandwidth = (config.kde_bandwidth_m or (2 * config.cell_size if units.kind == "grid"
                                            else 1000.0))
    smoothed = np.asarray(units.kernel_weights(bandwidth) @ counts) + 1e-9
    density = smoothed / smoothed.sum() / unit_areas_m2(units)
    x, y = _event_xy(events, units)
    t = events["t_days"].to_numpy()
    duration = float(binning.index_of(cutoff) * binning.hours / 24 - t.min())
    # A 30-day, 1-km window holds nearly all triggering mass for urban crime (Mohler et
    # al. report decays of days and spreads of ~100 m) at a quarter of the 60-day/2-km cost.
    fit = fit_sepp(x, y, t, density[events["_u"].to_numpy()], max(duration, 1.0),
                   max_lag_days=30.0, max_distance_m=1000.0, max_iter=60, tol=1e-4)
    logger.info("SEPP fit on %d events: %s (%d EM iterations, %.1f s)", events.height,
                fit.params.as_dict(), fit.iterations, fit.seconds)
    return fit
