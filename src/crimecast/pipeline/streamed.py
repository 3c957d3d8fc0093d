"""``crimecast run`` on a panel too large to hold: process and evaluate without the panel.

Above ``features.whole_panel_rows`` units × bins (or with ``features.rows: sampled``)
the pipeline never builds the whole panel:

* **process** plans the split from the labelled bins, fits the SEPP on the events
  before the validation fold, and writes ``features.parquet/part-*.parquet``: the
  training design over the bins before the validation fold (every row with an event
  plus a weighted sample of empty rows, :mod:`crimecast.features.design`) and, for
  the validation fold, **every unit** of a seeded sample of its bins (each sampled bin
  stands for ``validation bins / sampled bins`` bins in ``_weight``), so that the
  hotspot measures the champion is chosen by are computed on whole bins.
  ``features_meta.json`` holds every labelled bin start and the test range.
* **train** is unchanged (weighted rows, the split from those bin starts).
* **evaluate** rebuilds the test period in time blocks with the dense block engine,
  through the executor, scores **every unit of every test bin** with every
  forecaster and keeps per-bin statistics (:mod:`crimecast.evaluation.streamed`);
  ``predictions.parquet`` keeps, per forecaster and bin, the units it ranks in its
  top 1% and every unit with an event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig, PipelineConfig
from crimecast.data.clean import CleanResult
from crimecast.data.output import write_parquet
from crimecast.evaluation.predict import named_part, prediction_keys, scored_keys
from crimecast.evaluation.streamed import StreamedEvaluation
from crimecast.executor import Executor, shares_cores, streamed_executor
from crimecast.features.asof import PanelGrid
from crimecast.features.blocks import Block, plan_blocks, warmup_bins
from crimecast.features.build import (
    PanelInputs,
    build_block,
    build_rows,
    panel_inputs,
    row_targets,
    warm,
)
from crimecast.features.design import WEIGHT, design_chunks, design_rows, uses_design
from crimecast.features.excitation import fit_panel_sepp
from crimecast.features.job import weather_for, write_parts
from crimecast.features.meta import build_meta
from crimecast.features.timebins import STEPS_HOURS
from crimecast.features.unit_table import units_from_table
from crimecast.features.units import UnitSet
from crimecast.heap import map_large_blocks
from crimecast.models.estimators import HotspotModel
from crimecast.models.naive import Forecaster
from crimecast.pipeline.training import SplitPlan, plan_bins, sepp_fit_info

logger = logging.getLogger(__name__)

KEEP_SHARE = 0.01  # predictions.parquet: each forecaster's top 1% of units per bin
VALIDATION_CHUNK_ROWS = 1_000_000
SCORING_THREADS = 2  # forecasters measured at once


def is_streamed(config: FeatureConfig, n_units: int, clean: pl.DataFrame) -> bool:
    """Whether the panel of ``n_units`` units over ``clean``'s time range is too large to
    build whole (``features.rows`` ``sampled``, or ``auto`` above ``whole_panel_rows``)."""
    first, last = clean["occurred_at"].min(), clean["occurred_at"].max()
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        return uses_design(config, 0)
    n_bins = (last - first) / dt.timedelta(hours=STEPS_HOURS[config.time_bin]) + 1
    return uses_design(config, n_units * n_bins)


def labelled_bins(inputs: PanelInputs) -> np.ndarray:
    """Bin indices whose hotspot label is defined (a label's definition depends on the bin,
    not the unit, so one unit's labels tell)."""
    panel = inputs.panel
    bins = np.arange(panel.first_bin, panel.last_bin + 1, dtype=np.int64)
    targets = row_targets(inputs, np.zeros(bins.size, dtype=np.int64), bins)
    label = targets.get("target_hotspot")
    if label is None:
        return bins
    return bins[~np.isnan(np.asarray(label, dtype=np.float64))]


@dataclasses.dataclass(frozen=True)
class StreamedPlan:
    """The split of a streamed panel in bin indices and bin starts."""

    bins: np.ndarray
    starts: list[dt.datetime]
    plan: SplitPlan

    def validation_bins(self, rows: int, n_units: int, seed: int) -> tuple[np.ndarray, float]:
        """A seeded sample of the validation fold's bins with about ``rows`` rows, and the
        number of fold bins each stands for."""
        inner, split = self.plan.inner, self.plan.split
        fold = self.bins[inner.test_start:split.train_end]
        k = int(np.clip(rows // max(n_units, 1), 1, fold.size))
        chosen = np.sort(np.random.default_rng(seed).choice(fold, size=k, replace=False))
        return chosen, fold.size / k


def plan_streamed(inputs: PanelInputs, pipeline: PipelineConfig) -> StreamedPlan:
    """Split the labelled bins of ``inputs``' panel as the in-memory pipeline would."""
    bins = labelled_bins(inputs)
    starts = [inputs.binning.start_of(int(b)) for b in bins]
    return StreamedPlan(bins=bins, starts=starts,
                        plan=plan_bins(starts, pipeline, inputs.config))


def _validation_chunks(inputs: PanelInputs, chosen: np.ndarray, weight: float,
                       executor: Executor) -> Iterator[list[pl.DataFrame]]:
    n_units = inputs.panel.n_units
    per_chunk = max(1, VALIDATION_CHUNK_ROWS // max(n_units, 1))
    parts = [chosen[i:i + per_chunk] for i in range(0, chosen.size, per_chunk)]
    for start in range(0, len(parts), executor.workers):
        yield executor.map(_validation_chunk, [(p, weight) for p in
                                              parts[start:start + executor.workers]],
                           shared=inputs)


def _validation_chunk(inputs: PanelInputs, part: tuple[np.ndarray, float]) -> pl.DataFrame:
    bins, weight = part
    n_units = inputs.panel.n_units
    unit = np.tile(np.arange(n_units, dtype=np.int64), bins.size)
    bin_ = np.repeat(bins, n_units)
    return build_rows(inputs, unit, bin_).with_columns(pl.lit(weight).alias(WEIGHT))


def process_streamed(cleaned: CleanResult, units: UnitSet, config: FeatureConfig,
                     pipeline: PipelineConfig, out: Path, executor: Executor | None = None,
                     seed: int = 0) -> dict[str, Any]:
    """Write the training design, the validation sample and their metadata (module doc);
    returns ``features_meta.json``'s content."""
    began = time.perf_counter()
    runner = streamed_executor(executor)
    clean = cleaned.clean
    weather = weather_for(clean, config)
    inputs = panel_inputs(clean, units, config, weather)
    streamed = plan_streamed(inputs, pipeline)
    plan = streamed.plan
    sepp_fit: dict[str, Any] | None = None
    fit = fit_panel_sepp(clean, units, config, plan.validation_cutoff)
    if fit is not None:
        config = config.model_copy(update={"sepp": fit.params.as_dict()})
        inputs = dataclasses.replace(inputs, config=config)
        sepp_fit = sepp_fit_info(fit, plan.validation_cutoff)
    bins = streamed.bins
    design = design_rows(inputs, config.design_rows, seed, first=int(bins[0]),
                         last=int(bins[plan.inner.test_start]) - 1)
    chosen, weight = streamed.validation_bins(config.validation_rows, inputs.panel.n_units,
                                              seed)
    target = out / "features.parquet"
    shutil.rmtree(target, ignore_errors=True)
    map_large_blocks()  # the design's chunks: memory handed back as freed (crimecast.heap)
    written = write_parts(
        itertools.chain(design_chunks(inputs, design, runner),
                        _validation_chunks(inputs, chosen, weight, runner)),
        target, lambda frame: build_meta(
            frame, config, units, inputs.panel, inputs.binning, inputs.events.height,
            clean.height, z_window=inputs.z_window, weather_used=inputs.weather is not None,
            seconds=0.0))
    split = plan.split
    meta = written.meta
    meta["panel"].update(rows=inputs.panel.n_units * inputs.panel.n_bins,
                         written_rows=written.rows, blocks=written.parts)
    meta["design"] = design.describe()
    meta["streamed"] = {
        "bins": [s.isoformat() for s in streamed.starts],
        "validation_sample": {"bins": int(chosen.size), "of": int(
            split.train_end - plan.inner.test_start), "weight": weight,
            "rows": int(chosen.size * inputs.panel.n_units)},
        "test": {"first_bin": int(bins[split.test_start]), "last_bin": int(bins[-1]),
                 "start": streamed.starts[split.test_start].isoformat(),
                 "end": streamed.starts[-1].isoformat(),
                 "rows": int((bins.size - split.test_start) * inputs.panel.n_units)},
    }
    meta["feature_config"] = config.model_dump(mode="json")
    meta["sepp_fit"] = sepp_fit
    meta["build_seconds"] = round(time.perf_counter() - began, 3)
    return meta


def read_features(path: Path) -> pl.DataFrame:
    """``features.parquet``: one file, or a folder of parts (a streamed or blocked build)."""
    return pl.read_parquet(path / "*.parquet" if path.is_dir() else path)


def scan_features(path: Path) -> pl.LazyFrame:
    """:func:`read_features` lazily: filters and heads read only what they keep."""
    return pl.scan_parquet(path / "*.parquet" if path.is_dir() else path)


def nullable_features(frame: pl.DataFrame, features: list[str]) -> list[str]:
    """The ``features`` with a missing or NaN value in ``frame`` (``features.parquet``)."""
    missing = frame.lazy().select(
        ((pl.col(name).null_count() > 0) | pl.col(name).cast(pl.Float64).is_nan().any())
        .alias(name) for name in features).collect().row(0, named=True)
    return [name for name in features if missing[name]]


def _test_blocks(inputs: PanelInputs, first: int, last: int, executor: Executor) -> list[Block]:
    config = inputs.config
    warmup = warmup_bins(inputs.z_window, config.settle_days, config.horizon, inputs.binning)
    span = PanelGrid(n_units=inputs.panel.n_units, first_bin=first, n_bins=last - first + 1)
    return [Block(b.lo, b.hi, max(inputs.panel.first_bin, b.lo - warmup))
            for b in plan_blocks(span, warmup, config.block_memory_mb, executor.workers)]


def tested_forecasters(info: dict[str, Any], deployed: str) -> list[str]:
    """The forecasters a streamed evaluation scores on the test period: the learned
    model, the deployed one, the validation champion, the best naive forecaster, SEPP
    and the ensemble (every forecaster is scored on validation, where the champion is
    chosen; scoring two dozen naive variants on tens of millions of test rows would
    not change that choice)."""
    validation = info["validation"]
    wanted = [info["model_type"], deployed, validation["champion"], validation["best_naive"],
              "sepp", "ensemble"]
    return [name for name in dict.fromkeys(wanted) if name in info["forecasters"]]


def scored_block(inputs: PanelInputs, block: Block) -> pl.DataFrame:
    """A test block's rows to score: NaN left as NaN (forecasters read NaN and null
    alike), which saves a copy of the block."""
    return build_block(inputs, block, nan_as_null=False)


@dataclasses.dataclass(frozen=True)
class BinRows:
    """A block's rows by bin: bin ``b``'s rows are ``order[bounds[b]:bounds[b + 1]]``, in
    row order (shared by every forecaster of the block)."""

    order: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, bin_start: pl.Series) -> BinRows | None:
        """The rows of ``bin_start`` by bin; ``None`` when a bin start is missing."""
        if bin_start.null_count():
            return None
        starts = bin_start.unique().sort().to_physical().to_numpy()
        code = np.searchsorted(starts, bin_start.to_physical().to_numpy())
        # A stable sort of small integer codes is a radix sort: linear, not n log n.
        order = np.argsort(code.astype(np.uint16) if starts.size <= 1 << 16 else code,
                           kind="stable")
        return cls(order, np.concatenate(([0], np.cumsum(np.bincount(code)))))


def kept_rows(predictions: pl.DataFrame, top: int, bins: BinRows | None) -> pl.DataFrame:
    """One forecaster's rows of a block (:func:`scored_keys`) that ``predictions.parquet``
    keeps: those it ranks in its first ``top`` of their bin (ordinal rank by descending
    score, ties in row order) and every row with an event.

    With ``bins``, each bin's ``top``-th score comes from a partition, not a sort of the
    block; the rows are those of the rank over the bin (a property test compares them),
    which still serves missing and NaN scores."""
    score, count = predictions["score"], predictions["actual_count"]
    values = score.to_numpy()
    if bins is None or score.null_count() or count.null_count() or np.isnan(values).any():
        rank = pl.col("score").rank("ordinal", descending=True).over("bin_start")
        return compact(predictions.filter((rank <= top) | (pl.col("actual_count") > 0)))
    keep = count.to_numpy() > 0
    grouped = values[bins.order]
    for lo, hi in itertools.pairwise(bins.bounds.tolist()):
        rows = bins.order[lo:hi]
        if hi - lo <= top:
            keep[rows] = True
            continue
        segment = grouped[lo:hi]
        threshold = np.partition(segment, hi - lo - top)[hi - lo - top]
        above = segment > threshold
        keep[rows[above]] = True
        # Ties at the threshold rank in row order: the first ones fill the top.
        ties = np.flatnonzero(segment == threshold)[:top - int(np.count_nonzero(above))]
        keep[rows[ties]] = True
    return compact(predictions.filter(keep))


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with each text column in buffers of its own. A filtered text column still
    points into the buffers of the column it was filtered from (Polars' string views):
    the few rows kept of every test block would otherwise hold each block's unit ids."""
    return frame.with_columns(
        pl.Series(name, pl.from_arrow(frame[name].to_arrow()), dtype=pl.String)
        for name, dtype in frame.schema.items() if dtype == pl.String)


def _score_block(rows: pl.DataFrame, models: dict[str, Forecaster],
                 evaluation: StreamedEvaluation, n_units: int,
                 pool: ThreadPoolExecutor) -> list[Future[pl.DataFrame]]:
    """Every forecaster's predictions of one block into ``evaluation``, measured on
    ``pool``'s threads; returns, in ``models``' order, the futures of the rows each keeps.
    A forecaster's statistics (NumPy and Polars sorts, most of the work) run while the next
    forecaster predicts and, once this returns, while the next block is built; the caller
    waits for them before the next block is scored, so each forecaster's blocks come in
    order. Only the predictions (shared keys, scores) outlive the block's rows."""
    keys, block = prediction_keys(rows), evaluation.block()
    bins = BinRows.of(keys["bin_start"])
    top = max(1, int(np.ceil(KEEP_SHARE * n_units)))

    def measure(name: str, scored: pl.DataFrame) -> pl.DataFrame:
        block.add(name, scored)
        return named_part(kept_rows(scored, top, bins), name)

    pending: list[Future[pl.DataFrame]] = []
    for name, model in models.items():  # one forecaster's predictions at a time
        # Without a model column until kept: 6M copies of its name would be held.
        scored = scored_keys(rows, keys, model)
        pending.append(pool.submit(measure, name, scored))
        del scored
    return pending


def evaluate_streamed(meta: dict[str, Any], clean: pl.DataFrame, unit_table: pl.DataFrame,
                      models: dict[str, Forecaster], evaluation: StreamedEvaluation,
                      out: Path, executor: Executor | None = None) -> int:
    """Score every unit of every test bin in time blocks into ``evaluation``; write the
    kept predictions to ``out``. Returns the rows scored per forecaster."""
    runner = streamed_executor(executor)
    map_large_blocks()  # memory flat block after block (crimecast.heap)
    panel = meta["panel"]
    config = FeatureConfig.model_validate(meta["feature_config"])
    units = units_from_table(unit_table, panel["spatial_unit"], panel["crs"],
                             panel.get("cell_size_m"))
    inputs = panel_inputs(clean, units, config, weather_for(clean, config))
    test = meta["streamed"]["test"]
    blocks = _test_blocks(inputs, test["first_bin"], test["last_bin"], runner)
    # Panel-wide work (SEPP index, near-repeat pairs) first, on its own: its temporaries
    # would otherwise add to the first block's (the run's peak memory).
    shared = warm(inputs) if len(blocks) > 1 else inputs
    kept: list[pl.DataFrame] = []
    measuring: list[Future[pl.DataFrame]] = []
    scored = 0
    threads = 1 if shares_cores() else SCORING_THREADS
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crimecast-score") as pool:
        for start in range(0, len(blocks), runner.workers):
            frames = runner.map(scored_block, blocks[start:start + runner.workers],
                                shared=shared)
            while frames:
                rows = frames.pop(0)  # one block's rows in memory (order does not matter)
                if rows["target_hotspot"].null_count():
                    rows = rows.filter(pl.col("target_hotspot").is_not_null())
                kept.extend(future.result() for future in measuring)  # the block before
                measuring = _score_block(rows, models, evaluation, len(units), pool)
                scored += rows.height
                logger.info("evaluated %d test rows (%d so far)", rows.height, scored)
                # Nothing may keep this block alive while the next one is built.
                del rows
                for model in models.values():
                    for part in (model, getattr(model, "learned", None)):
                        if isinstance(part, HotspotModel):
                            part.forget()
        kept.extend(future.result() for future in measuring)
    write_parquet(pl.concat(kept) if kept else pl.DataFrame(), out)
    return scored
