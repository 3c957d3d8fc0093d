"""Build the dense (unit × bin) panel with every as-of feature and the labels.

Row ``(u, t)`` describes bin ``[t, t+Δ)``. Its as-of features use only events
known before the forecast is issued: with horizon ``h`` that is before
``t - (h-1)Δ`` (``h = 1``: before ``t``). They are computed at the issue row
``a = t - (h-1)`` and shifted onto ``t``. Calendar and same-bin weather describe
``t`` itself. Targets use the bin's final count.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import Executor as ThreadPool
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig
from crimecast.errors import ConfigError, DataError
from crimecast.executor import SERIAL, Executor, shares_cores
from crimecast.features.asof import (
    PanelGrid,
    Rows,
    occurrence_counts,
    row_interval_counts,
    row_trailing_stats,
    shift_rows,
)
from crimecast.features.blocks import (
    Block,
    fixed_blocks,
    plan_blocks,
    warmup_bins,
)
from crimecast.features.catalog import CATALOG, Compute
from crimecast.features.context import FeatureContext, incident_events
from crimecast.features.frame import BIN, UNIT, assemble, per_bin_context
from crimecast.features.history import NEAR_KEY, prefetch_near_repeat, settled_daily_history
from crimecast.features.labels import topk_label, topk_label_at, zscore_label, zscore_label_at
from crimecast.features.meta import build_meta
from crimecast.features.timebins import TimeBinning
from crimecast.features.units import UnitSet
from crimecast.heap import trim_heap

logger = logging.getLogger(__name__)

SHARED_DAILY_BYTES = 256 * 1024 * 1024
PANEL_KEYS = (NEAR_KEY, "sepp_index_")  # per event and unit: the same in every block
PANEL_FEATURES = ("near_repeat_", "sepp_")  # the features that compute the PANEL_KEYS
AUTO_Z_WINDOW = {"1h": 168, "8h": 42, "12h": 28, "1d": 28, "7d": 8}


@dataclass(frozen=True)
class FeatureSet:
    """The panel frame and its metadata (``features_meta.json``)."""

    frame: pl.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _range(
    events: pl.DataFrame, binning: TimeBinning, start: dt.datetime | None,
    end: dt.datetime | None,
) -> tuple[int, int]:
    if events.height == 0 and (start is None or end is None):
        raise DataError("no events fall inside the study area; nothing to build a panel from.")
    first = binning.index_of(start) if start is not None else int(events["occ"].min())  # type: ignore[arg-type]
    last = binning.index_of(end) if end is not None else int(events["occ"].max())  # type: ignore[arg-type]
    if last < first:
        raise ConfigError(
            f"the panel end must not be before its start; got start={start}, end={end}. "
            "Pass --end after --start."
        )
    return first, last


# Features computed in a second thread (see declared_matrices): kernel smoothing, the SEPP and
# the near-repeat geometry, about half the work, independent of the counts the rest read.
BACKGROUND = ("kde_", "sepp_", "near_repeat_")


def _asof_computes(prefixes: tuple[str, ...] = ("",)) -> dict[str, Compute]:
    """The catalogue's as-of declarations (name → compute) whose names start with one of
    ``prefixes`` (all of them by default), in catalogue order."""
    return {spec.name: spec.compute for spec in CATALOG if spec.source == "asof"
            and spec.compute is not None and spec.name.startswith(prefixes)}


def declared_matrices(context: FeatureContext, pool: ThreadPool | None = None
                      ) -> dict[str, np.ndarray]:
    """Run every as-of declaration of the catalogue; (units × bins) float32 at issue rows.

    With ``pool`` (one thread) the :data:`BACKGROUND` features are computed there while this
    thread computes the others, then helps with the background ones not yet started: numpy,
    geometry and the KDE's filters release the GIL, so two cores share the work. The values
    do not depend on the thread (the context computes each shared intermediate once,
    whoever asks first); the columns come in catalogue order."""
    specs = _asof_computes()
    ahead = {name: pool.submit(compute, context) for name, compute in specs.items()
             if pool is not None and name.startswith(BACKGROUND)}
    computed = {name: compute(context) for name, compute in specs.items() if name not in ahead}
    # Then this thread takes the background features the pool has not started, last first
    # (the pool takes them first to last), rather than wait for the pool to do them all.
    for name in reversed(ahead):
        if ahead[name].cancel():
            computed[name] = specs[name](context)
    computed.update((name, future.result()) for name, future in ahead.items()
                    if name not in computed)
    out: dict[str, np.ndarray] = {}
    for name in specs:
        matrix = computed.pop(name)
        if matrix is not None:
            out[name] = np.asarray(matrix, dtype=np.float32)
    return out


@dataclass(frozen=True)
class PanelInputs:
    """What every block of one panel is computed from (shared, read-only)."""

    clean: pl.DataFrame
    units: UnitSet
    config: FeatureConfig
    weather: pl.DataFrame | None
    binning: TimeBinning
    unit_index: np.ndarray
    events: pl.DataFrame
    panel: PanelGrid
    z_window: int
    shared: dict[str, Any] = field(default_factory=dict)


def panel_inputs(
    clean: pl.DataFrame, units: UnitSet, config: FeatureConfig,
    weather: pl.DataFrame | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> PanelInputs:
    """The events, binning and panel extent of ``clean`` over ``units`` (see build_features)."""
    binning, unit_index, events = incident_events(clean, units, config)
    first, last = _range(events, binning, start, end)
    inputs = PanelInputs(clean=clean, units=units, config=config, weather=weather,
                         binning=binning, unit_index=unit_index, events=events,
                         panel=PanelGrid(n_units=len(units), first_bin=first,
                                         n_bins=last - first + 1),
                         z_window=config.z_window or AUTO_Z_WINDOW[config.time_bin])
    # The settled daily history reaches a year back from every block: computed once for
    # the whole panel when small, so blocks do not each repeat it.
    whole = FeatureContext(events=events, grid=inputs.panel, binning=binning, units=units,
                           config=config, clean=clean, unit_index=unit_index,
                           z_window=inputs.z_window)
    days = inputs.panel.n_bins * binning.hours / 24 + 420
    if len(units) * days * 16 <= SHARED_DAILY_BYTES:
        settled_daily_history(whole)
    inputs.shared.update(whole.cache)  # plus what the features computed once per panel
    return inputs


def share_panel_work(inputs: PanelInputs, context: FeatureContext) -> None:
    """Keep what ``context`` computed once per panel (pairs, weights) for later blocks."""
    for key, value in context.cache.items():
        if isinstance(key, str) and key.startswith(PANEL_KEYS):
            inputs.shared.setdefault(key, value.result() if isinstance(value, Future) else value)


def warm(inputs: PanelInputs) -> PanelInputs:
    """Compute the per-panel work every block or row set reads (the SEPP's decay index,
    near-repeat pairs) once, here, so pool workers receive it instead of each repeating it:
    only the :data:`PANEL_FEATURES`, for one row, each on its own thread."""
    panel = inputs.panel
    if panel.n_units and panel.n_bins and inputs.events.height:
        context = _rows_context(inputs, np.zeros(1, np.int64),
                                np.full(1, panel.last_bin - (inputs.config.horizon - 1)))
        computes = _asof_computes(PANEL_FEATURES).values()
        with ThreadPoolExecutor(max_workers=max(1, len(computes)),
                                thread_name_prefix="crimecast-warm") as pool:
            for future in [pool.submit(compute, context) for compute in computes]:
                future.result()
        share_panel_work(inputs, context)
    return inputs


def build_block(inputs: PanelInputs, block: Block, nan_as_null: bool = True) -> pl.DataFrame:
    """The panel's rows for bins ``block.lo..block.hi`` (unit-major), from the block's grid.

    ``nan_as_null=False`` leaves undefined features as NaN rather than null (the same to
    every forecaster; it saves a copy of the block when the rows are only scored)."""
    config, grid = inputs.config, block.grid(inputs.panel.n_units)
    shift = config.horizon - 1
    # Issue columns before block.lo - shift only warm up statistics over earlier columns.
    context = FeatureContext(events=inputs.events, grid=grid, binning=inputs.binning,
                             units=inputs.units, config=config, clean=inputs.clean,
                             unit_index=inputs.unit_index, z_window=inputs.z_window,
                             skip=max(0, block.skip - shift))
    context.cache.update(inputs.shared)  # panel-wide results every block reads
    rows = PanelGrid(n_units=grid.n_units, first_bin=block.lo, n_bins=block.hi - block.lo + 1)
    if shares_cores():  # other workers use the other cores: no thread of this block's own
        per_bin = per_bin_context(rows, inputs.binning, config, inputs.weather, shift)
        matrices = declared_matrices(context)
    else:  # a second thread shares the work, starting with the costliest geometry
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crimecast-features") as pool:
            prefetch_near_repeat(context, pool)
            per_bin = per_bin_context(rows, inputs.binning, config, inputs.weather, shift)
            matrices = declared_matrices(context, pool)
    share_panel_work(inputs, context)
    context.cache.clear()
    columns: dict[str, np.ndarray] = {}
    for name in list(matrices):
        columns[name] = shift_rows(matrices.pop(name), shift)
    counts = occurrence_counts(inputs.events, grid)
    columns.update(_targets(counts, config, inputs.z_window, grid.first_bin))
    for name in list(columns):  # drop the warm-up columns, flatten unit-major
        columns[name] = np.ascontiguousarray(columns[name][:, block.skip:]).ravel()
    n_bins = block.hi - block.lo + 1
    unit = np.repeat(np.arange(grid.n_units, dtype=np.int64), n_bins)
    bin_ = np.tile(np.arange(block.lo, block.hi + 1, dtype=np.int64), grid.n_units)
    return assemble(columns, unit, bin_, inputs, shift, nan_as_null, per_bin)


def build_rows(inputs: PanelInputs, unit: np.ndarray, bin_: np.ndarray) -> pl.DataFrame:
    """The panel's rows ``(unit[i], bin_[i])`` only, from per-unit event indexes: the
    event-indexed engine. Cost grows with the events and the rows asked for, never with
    units × bins; the values equal the dense panel's (a property test proves it)."""
    config, panel = inputs.config, inputs.panel
    unit, bin_ = np.asarray(unit, dtype=np.int64), np.asarray(bin_, dtype=np.int64)
    # Computed unit-major (sorted queries make every searchsorted cache-friendly), then
    # returned in the order asked.
    order = np.lexsort((bin_, unit))
    if (order != np.arange(order.size)).any():
        restore = np.empty_like(order)
        restore[order] = np.arange(order.size)
        return _gathered(build_rows(inputs, unit[order], bin_[order]), restore)
    shift = config.horizon - 1
    issue = bin_ - shift
    context = _rows_context(inputs, unit, issue)
    if shares_cores():  # other workers use the other cores
        columns = declared_matrices(context)
    else:  # a second thread shares the work, as in build_block
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crimecast-features") as pool:
            columns = declared_matrices(context, pool)
    share_panel_work(inputs, context)
    context.cache.clear()
    trim_heap()  # the intermediates' freed pages, before the rows' frame is assembled
    early = issue < panel.first_bin  # the dense panel's shift leaves these NaN
    for values in columns.values():
        values[early] = np.nan
    columns.update(row_targets(inputs, unit, bin_))
    return assemble(columns, unit, bin_, inputs, shift)


def _gathered(frame: pl.DataFrame, index: np.ndarray) -> pl.DataFrame:
    """``frame[index]``, one column at a time, each taken out of ``frame`` as it is
    gathered: memory for the frame and one column, not for two frames."""
    taken = pl.Series(index)
    columns = [frame.drop_in_place(name).gather(taken) for name in list(frame.columns)]
    return pl.DataFrame(columns)


def _rows_context(inputs: PanelInputs, unit: np.ndarray, issue: np.ndarray) -> FeatureContext:
    """The context of the rows ``(unit[i], issue[i])`` (issue rows, sorted unit-major), with
    the panel-wide work already shared."""
    panel = inputs.panel
    span = PanelGrid(n_units=panel.n_units, first_bin=int(issue.min()) if issue.size else 0,
                     n_bins=int(issue.max() - issue.min()) + 1 if issue.size else 0)
    context = FeatureContext(events=inputs.events, grid=span, binning=inputs.binning,
                             units=inputs.units, config=inputs.config, clean=inputs.clean,
                             unit_index=inputs.unit_index, z_window=inputs.z_window,
                             rows=Rows(unit=unit, row=issue, first_bin=panel.first_bin,
                                       n_units=panel.n_units))
    context.cache.update(inputs.shared)
    return context


def row_targets(inputs: PanelInputs, unit: np.ndarray, bin_: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Count, z-score and hotspot label of rows ``(unit[i], bin_[i])`` from the events."""
    config, events = inputs.config, inputs.events
    rows = Rows(unit=unit, row=bin_, first_bin=inputs.panel.first_bin,
                n_units=inputs.panel.n_units)
    e_unit, e_occ = events["_u"].to_numpy(), events["occ"].to_numpy()
    counts = row_interval_counts(e_unit, e_occ, e_occ, rows)
    mean, sd = row_trailing_stats(e_unit, e_occ, rows, inputs.z_window, lag=1)
    z, zscore_hot = zscore_label_at(counts, mean, sd, config.z_threshold, config.z_sd_floor)
    out = {"target_count": counts, "target_zscore": z}
    if config.label == "zscore":
        out["target_hotspot"] = zscore_hot
    elif config.label == "topk":
        out["target_hotspot"] = topk_label_at(e_unit, e_occ, unit, bin_,
                                              inputs.panel.n_units, config.topk_pct)
    return out


def build_features(
    clean: pl.DataFrame,
    units: UnitSet,
    config: FeatureConfig,
    weather: pl.DataFrame | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    *,
    memory_mb: float | None = None,
    executor: Executor | None = None,
    block_bins: int | None = None,
) -> FeatureSet:
    """Build the feature panel for ``clean`` incidents over ``units``.

    ``start``/``end`` fix the panel's first and last bins (default: the bins of
    the first and last event). ``weather`` is a daily frame (``date, tavg_c,
    tmax_c, wind_ms, prcp_mm``) or None to leave weather out. The panel is built
    in time blocks (:mod:`crimecast.features.blocks`) that fit ``memory_mb`` each
    (default ``config.block_memory_mb``), through ``executor`` (default: in this
    process); the rows are the same.
    ``block_bins`` fixes the block length instead (tests, benchmarks).
    """
    began = time.perf_counter()
    inputs = panel_inputs(clean, units, config, weather, start, end)
    blocks = feature_blocks(inputs, memory_mb or config.block_memory_mb, executor, block_bins)
    runner = executor or SERIAL
    frames = runner.map(build_block, blocks, shared=warm(inputs) if runner.workers > 1 and
                        len(blocks) > 1 else inputs)
    # Block after block (unit-major within a block): concatenating without a sort or a
    # rechunk keeps one copy of the panel in memory (a sort would hold two more).
    frame = frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False)
    meta = build_meta(frame, config, units, inputs.panel, inputs.binning, inputs.events.height,
                      clean.height, z_window=inputs.z_window, weather_used=weather is not None,
                      seconds=time.perf_counter() - began)
    meta["panel"]["blocks"] = len(blocks)
    logger.info("built %d panel rows x %d features in %d block(s) in %.1f s", frame.height,
                len(meta["features"]), len(blocks), time.perf_counter() - began)
    return FeatureSet(frame=frame, meta=meta)


def feature_blocks(inputs: PanelInputs, memory_mb: float, executor: Executor | None = None,
                   block_bins: int | None = None) -> list[Block]:
    """The time blocks of ``inputs``' panel for a memory budget per worker (or of
    ``block_bins`` bins each)."""
    warmup = warmup_bins(inputs.z_window, inputs.config.settle_days, inputs.config.horizon,
                         inputs.binning)
    if block_bins is not None:
        return fixed_blocks(inputs.panel, warmup, block_bins)
    return plan_blocks(inputs.panel, warmup, memory_mb, (executor or SERIAL).workers)


def _targets(
    counts: np.ndarray, config: FeatureConfig, z_window: int, first_bin: int
) -> dict[str, np.ndarray]:
    z, zscore_hot = zscore_label(counts, z_window, config.z_threshold, config.z_sd_floor)
    out = {"target_count": counts, "target_zscore": z}
    if config.label == "zscore":
        out["target_hotspot"] = zscore_hot
    elif config.label == "topk":
        out["target_hotspot"] = topk_label(counts, config.topk_pct, first_bin)
    return out


def rebuild_column(
    frame: pl.DataFrame, clean: pl.DataFrame, units: UnitSet, config: FeatureConfig,
    name: str,
) -> pl.DataFrame:
    """``frame`` with the declared feature ``name`` recomputed under ``config`` (for SEPP
    parameters fitted after the panel was built). ``frame`` must keep its ``_u``/``_b``."""
    from crimecast.features.catalog import SPECS

    spec = SPECS[name]
    if spec.compute is None:
        raise ConfigError(f"feature {name!r} is not computed from events; it cannot be rebuilt.")
    binning, unit_index, events = incident_events(clean, units, config)
    first, last = int(frame[BIN].min()), int(frame[BIN].max())  # type: ignore[arg-type]
    grid = PanelGrid(n_units=len(units), first_bin=first, n_bins=last - first + 1)
    context = FeatureContext(events=events, grid=grid, binning=binning, units=units,
                             config=config, clean=clean, unit_index=unit_index,
                             z_window=config.z_window or AUTO_Z_WINDOW[config.time_bin])
    matrix = spec.compute(context)
    if matrix is None:
        return frame
    values = shift_rows(np.asarray(matrix, dtype=np.float32), config.horizon - 1)
    index = frame[UNIT].to_numpy() * grid.n_bins + (frame[BIN].to_numpy() - first)
    column = pl.Series(name, values.ravel()[index]).fill_nan(None)
    return frame.with_columns(column)
