"""``evaluation.json`` from predictions that arrive block by block and are never all held.

A patrol-resolution test period is tens of millions of (unit, bin) rows per
forecaster; :func:`~crimecast.evaluation.report.build_evaluation_report` needs them
all in one frame. :class:`StreamedEvaluation` takes the same predictions one block
of whole bins at a time and keeps only per-bin sufficient statistics, from which it
writes a report of the same shape:

* **hotspot measures** (PAI, PEI*, hit rate): computed per bin by
  :func:`~crimecast.evaluation.hotspot.hotspot_per_bin` as the blocks arrive, so
  they are **exact** (a bin is never split across blocks);
* **threshold metrics** (accuracy, precision, recall, F1, Brier score, log loss):
  per-bin sums of rows, positives, true and false positives, squared errors and
  losses: **exact**, and their block bootstrap over bins uses the same resamples
  as the in-memory report (same seed, same bins drawn);
* **PR-AUC and ROC-AUC**: per-bin counts of positives and negatives at each of
  ``levels`` probability levels, i.e. scikit-learn's formulas with probabilities
  inside one level treated as tied. Half the level edges are the quantiles of the
  model's first block (fine where its probabilities crowd), half split [0, 1]
  evenly (so a small or unrepresentative first block cannot leave later
  probabilities coarsely tied). With 4,096 levels the areas differ from the exact
  ones by well under 0.001 (a test compares them, first blocks of one bin
  included); the bootstrap resamples the same bins.

Memory is two ``bins × levels`` count arrays per forecaster, not the rows.
:meth:`StreamedEvaluation.block` takes a block's forecasters one at a time (on one
or more threads) and computes what they share (bin and region codes, labels, the
hotspot measures' checks and oracle) once; the figures are those of :meth:`add`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from crimecast.evaluation.bootstrap import (
    bin_counts,
    bin_sums,
    confusion_values,
    resample_counts,
    summarise_resamples,
)
from crimecast.evaluation.curves import (
    CALIBRATION_BINS,
    calibration_curve_from_counts,
    pr_curve_from_counts,
)
from crimecast.evaluation.hotspot import (
    REPORT_SHARES,
    SharedRows,
    curve_of_per_bin,
    measured_with,
    shared_rows,
    summarise_per_bin,
)
from crimecast.evaluation.metrics import CLASSIFICATION_METRICS, json_float
from crimecast.evaluation.report import (
    MIN_UNITS_FOR_REGION_HOTSPOTS,
    disparity,
    json_safe,
)

logger = logging.getLogger(__name__)

LEVELS = 4096
_CALIBRATION_EDGES = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1]


class _ModelStats:
    """One forecaster's sufficient statistics, per bin."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self.edges: np.ndarray | None = None
        self.last: Any = None  # the latest bin taken
        self.sums: list[np.ndarray] = []       # per bin: n, pos, tp, fp, squared, loss
        self.positive: list[np.ndarray] = []   # per bin: positives at each level
        self.negative: list[np.ndarray] = []
        self.hotspots: list[pl.DataFrame] = []
        self.calibration = np.zeros((3, CALIBRATION_BINS))  # count, sum prob, positives

    def level_of(self, prob: np.ndarray) -> np.ndarray:
        if self.edges is None:
            half = self.levels // 2
            quantiles = np.quantile(prob, np.linspace(0.0, 1.0, half + 1)[1:-1])
            even = np.linspace(0.0, 1.0, half + 1)[1:-1]
            self.edges = np.unique(np.concatenate([quantiles, even]))
        return np.searchsorted(self.edges, prob, side="right")

    def add(self, rows: _Rows, prob: np.ndarray, threshold: float) -> np.ndarray:
        """Take one block's labelled ``rows`` with this forecaster's ``prob``; returns each
        row's probability level."""
        n_bins = rows.n_bins
        self.sums.append(bin_sums(rows.code, n_bins, rows.y, prob, threshold, rows.counts))
        level = self.level_of(prob)
        width = self.levels
        cell = rows.code * width + level
        self.positive.append(np.bincount(cell[rows.y], minlength=n_bins * width)
                             .reshape(n_bins, width).astype(np.int32))
        self.negative.append(np.bincount(cell[~rows.y], minlength=n_bins * width)
                             .reshape(n_bins, width).astype(np.int32))
        which = np.searchsorted(_CALIBRATION_EDGES, prob, side="right")
        self.calibration += np.stack([
            np.bincount(which, minlength=CALIBRATION_BINS),
            np.bincount(which, weights=prob, minlength=CALIBRATION_BINS),
            np.bincount(which, weights=rows.y, minlength=CALIBRATION_BINS)])
        return level


class _Rows:
    """What every forecaster's statistics share on one block's labelled rows (or one
    block's regions): the group ``code`` of each row, its label and their counts."""

    def __init__(self, code: np.ndarray, n_groups: int, y: np.ndarray) -> None:
        self.code = code
        self.n_bins = n_groups
        self.y = y
        self.counts = bin_counts(code, n_groups, y)


def ranking_values(weights: np.ndarray, positive: np.ndarray, negative: np.ndarray
                   ) -> dict[str, np.ndarray]:
    """PR-AUC and ROC-AUC of each row of bin ``weights`` (resamples × bins) from per-bin
    counts at probability levels (bins × levels), levels tied as scikit-learn ties equal
    probabilities: ``AP = Σ dTP/P · TP/(TP+FP)`` and ``AUC = Σ dTP (N − FP + dFP/2) / PN``
    with the levels taken from the highest down."""
    d_tp = (weights @ positive)[:, ::-1]
    d_fp = (weights @ negative)[:, ::-1]
    tp, fp = np.cumsum(d_tp, axis=1), np.cumsum(d_fp, axis=1)
    total_pos, total_neg = tp[:, -1], fp[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
        ap = (d_tp * precision).sum(axis=1) / total_pos
        roc = (d_tp * (total_neg[:, None] - fp + d_fp / 2)).sum(axis=1) / (total_pos * total_neg)
    defined = (total_pos > 0) & (total_neg > 0)
    return {"pr_auc": np.where(defined, ap, np.nan), "roc_auc": np.where(defined, roc, np.nan)}


def _metrics(weights: np.ndarray, sums: np.ndarray, positive: np.ndarray,
             negative: np.ndarray) -> dict[str, np.ndarray]:
    values = confusion_values(weights @ sums)
    values.update(ranking_values(weights, positive, negative))
    return values


class StreamedEvaluation:
    """Accumulate test-period predictions block by block; :meth:`report` as
    :func:`~crimecast.evaluation.report.build_evaluation_report` (module doc).

    ``add`` takes frames with the prediction columns (``model, unit_id, region,
    bin_start, y_true, prob, score, actual_count``) holding whole bins, later bins in
    later calls; rows without a label count for hotspot measures only.
    """

    def __init__(self, unit_areas: pl.DataFrame, thresholds: Mapping[str, float],
                 primary_models: Sequence[str], levels: int = LEVELS) -> None:
        self.unit_areas = unit_areas
        self.thresholds = {name: float(value) for name, value in thresholds.items()}
        self.primaries = list(dict.fromkeys(primary_models))
        self.levels = levels
        self.models = {name: _ModelStats(levels) for name in self.thresholds}
        self.bins: list[Any] = []
        self.rows = 0
        self.units: set[str] = set()
        # per primary model and region: summed bin_sums, positives and negatives per level
        self.regions: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in self.primaries}
        self.region_hotspots: dict[str, list[pl.DataFrame]] = {m: [] for m in self.primaries}

    def add(self, predictions: pl.DataFrame) -> None:
        """Take the predictions of one or more whole bins (every model)."""
        if predictions.height == 0:
            return
        for (name,), rows in predictions.partition_by("model", as_dict=True).items():
            self.block().add(str(name), rows)

    def block(self) -> StreamedBlock:
        """A block of whole bins whose forecasters arrive one at a time, each
        :meth:`StreamedBlock.add` holding the same rows in the same order: what they
        share (bins, labels, the hotspot measures' checks and oracle) is computed once."""
        return StreamedBlock(self)

    def _add_model(self, block: StreamedBlock, name: str, rows: pl.DataFrame) -> None:
        stats = self.models[name]
        bins = block.bins
        if stats.last is not None and bins[0] <= stats.last:
            raise ValueError("blocks must arrive in time order, each with whole bins")
        stats.last = bins[-1]
        first = name == self.primaries[0]
        if first:
            self.bins.extend(bins.to_list())
        stats.hotspots.append(block.hotspots(rows))
        labelled = block.labelled(rows)
        prob = labelled["prob"].to_numpy().astype(np.float64)
        level = stats.add(block.rows(labelled), prob, self.thresholds[name])
        if first:
            self.rows += rows.height
            self.units.update(rows["unit_id"].unique().to_list())
        if name in self.primaries:
            self._add_regions(name, block, rows, prob, level)

    def _add_regions(self, model: str, block: StreamedBlock, rows: pl.DataFrame,
                     prob: np.ndarray, level: np.ndarray) -> None:
        names, regions = block.regions(rows)
        width = self.levels
        cell = regions.code * width + level
        shape = (len(names), width)
        sums = bin_sums(regions.code, len(names), regions.y, prob, self.thresholds[model],
                        regions.counts)
        positive = np.bincount(cell[regions.y], minlength=shape[0] * width).reshape(shape)
        negative = np.bincount(cell[~regions.y], minlength=shape[0] * width).reshape(shape)
        for i, name in enumerate(names):
            held = self.regions[model].setdefault(
                str(name), [np.zeros(6), np.zeros(width), np.zeros(width)])
            held[0] += sums[i]
            held[1] += positive[i]
            held[2] += negative[i]
        hotspots = block.region_hotspots(rows)
        if hotspots is not None:
            self.region_hotspots[model].append(hotspots)

    def _model_block(self, name: str, n_resamples: int, seed: int) -> dict[str, Any]:
        stats = self.models[name]
        sums, positive, negative = (np.concatenate(stats.sums), np.concatenate(stats.positive),
                                    np.concatenate(stats.negative))
        ones = np.ones((1, sums.shape[0]))
        values = {k: json_float(v[0]) for k, v in _metrics(ones, sums, positive,
                                                          negative).items()}
        counts = resample_counts(sums.shape[0], n_resamples, seed)
        spread = _metrics(counts.astype(np.float64), sums, positive, negative)
        return {
            "binary_classification_metrics": {
                metric: {"value": values[metric], **summarise_resamples(spread[metric])}
                for metric in CLASSIFICATION_METRICS},
            "hotspot_metrics": summarise_per_bin(pl.concat(stats.hotspots)),
            "decision_threshold": self.thresholds[name],
        }

    def _region_blocks(self, model: str) -> dict[str, Any]:
        parts = self.region_hotspots[model]
        summary = summarise_per_bin(pl.concat(parts), by="region") if parts else {}
        regions: dict[str, Any] = {}
        for name in sorted(self.regions[model]):
            sums, positive, negative = (a[None, :] for a in self.regions[model][name])
            values = _metrics(np.ones((1, 1)), sums, positive, negative)
            regions[name] = {
                "rows": int(sums[0, 0]),
                "positives": int(sums[0, 1]),
                "binary_classification_metrics": {m: {"value": json_float(values[m][0])}
                                                  for m in CLASSIFICATION_METRICS},
                "hotspot_metrics": summary.get(name),
            }
        return regions

    def report(self, data: Mapping[str, Any], n_resamples: int = 200, seed: int = 0,
               primary: str | None = None) -> dict[str, Any]:
        """The ``evaluation.json`` payload (the shape of ``build_evaluation_report``) with
        ``primary`` (one of ``primary_models``; default the first) as the main model."""
        primary_name = primary or self.primaries[0]
        blocks = {name: self._model_block(name, n_resamples, seed) for name in self.models}
        primary_block = blocks.pop(primary_name)
        regions = json_safe(self._region_blocks(primary_name), "per_area.regions")
        sums = np.concatenate(self.models[primary_name].sums)
        block = dict(data)
        block.update(rows_test=self.rows, bins_test=len(self.bins), units=len(self.units),
                     positive_rate_test=float(sums[:, 1].sum() / sums[:, 0].sum())
                     if sums[:, 0].sum() else None,
                     evaluation="streamed: every unit of every test bin, in blocks")
        return dict(json_safe({
            "binary_classification_metrics": primary_block["binary_classification_metrics"],
            "hotspot_metrics": primary_block["hotspot_metrics"],
            "baselines": blocks,
            "per_area": {"regions": regions, "disparity": disparity(regions)},
            "decision_threshold": primary_block["decision_threshold"],
            "data": block,
        }))

    def curves(self, name: str) -> dict[str, Any]:
        """Precision–recall and calibration curves of one forecaster (for the card)."""
        stats = self.models[name]
        positive = np.concatenate(stats.positive).sum(axis=0)
        negative = np.concatenate(stats.negative).sum(axis=0)
        return {"pr_curve": pr_curve_from_counts(positive, negative),
                "calibration": calibration_curve_from_counts(*stats.calibration)}

    def hotspot_curves(self) -> dict[str, Any]:
        """Every forecaster's hit rate, PAI and PEI* against the share of area flagged
        (:func:`~crimecast.evaluation.hotspot.hotspot_curve`), over every test bin."""
        return {name: curve_of_per_bin(pl.concat(stats.hotspots)).to_dict(as_series=False)
                for name, stats in self.models.items() if stats.hotspots}


class StreamedBlock:
    """One block of whole bins in a :class:`StreamedEvaluation`, its forecasters added one
    at a time with :meth:`add`. Every frame added holds the same rows in the same order
    (as :func:`~crimecast.evaluation.predict.prediction_parts` lays them out), so the bins,
    labels, region codes and the hotspot measures' checks and oracle are computed once
    and shared: the figures are those of adding each forecaster alone. Only arrays and
    slim frames are kept between forecasters, never a whole frame. Forecasters may be
    added from several threads at once (each once per block): what they share is
    computed under a lock by the first that needs it."""

    def __init__(self, evaluation: StreamedEvaluation) -> None:
        self.evaluation = evaluation
        self.bins = pl.Series("bin_start", [])
        self._height: int | None = None
        self._mask: pl.Series | None = None
        self._rows: _Rows | None = None
        self._hotspot: SharedRows | None = None
        self._regions: tuple[list[Any], _Rows] | None = None
        self._region_rows: pl.Series | None = None
        self._region_hotspot: SharedRows | None = None
        self._lock = threading.RLock()

    def add(self, name: str, predictions: pl.DataFrame) -> None:
        """Take forecaster ``name``'s predictions of the block (one model's rows)."""
        if predictions.height == 0:
            return
        with self._lock:
            if self._height is None:
                self.bins = predictions["bin_start"].unique().sort()
                labelled = predictions["y_true"].is_not_null()
                self._mask = None if labelled.all() else labelled
                self._height = predictions.height
            elif predictions.height != self._height:
                raise ValueError("every forecaster of a block must score the same rows")
        self.evaluation._add_model(self, name, predictions)

    def labelled(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with a label."""
        return rows if self._mask is None else rows.filter(self._mask)

    def rows(self, labelled: pl.DataFrame) -> _Rows:
        """Bin code and label of each ``labelled`` row."""
        with self._lock:
            return self._rows_of(labelled)

    def _rows_of(self, labelled: pl.DataFrame) -> _Rows:
        if self._rows is None:
            code = np.searchsorted(self.bins.to_numpy(), labelled["bin_start"].to_numpy())
            self._rows = _Rows(code, self.bins.len(), labelled["y_true"].to_numpy().astype(bool))
        return self._rows

    def regions(self, rows: pl.DataFrame) -> tuple[list[Any], _Rows]:
        """The block's region names and each labelled row's region code and label."""
        with self._lock:
            return self._regions_of(rows)

    def _regions_of(self, rows: pl.DataFrame) -> tuple[list[Any], _Rows]:
        if self._regions is None:
            labelled = self.labelled(rows)  # filtered once for the regions and the labels
            region = labelled["region"].cast(pl.String)
            names = region.unique().sort().to_list()
            code = (region.rank("dense") - 1).cast(pl.Int64).to_numpy()
            y = self._rows_of(labelled).y
            self._regions = (names, _Rows(code, len(names), y))
        return self._regions

    def hotspots(self, rows: pl.DataFrame) -> pl.DataFrame:
        """:func:`~crimecast.evaluation.hotspot.hotspot_per_bin` of one forecaster's rows."""
        with self._lock:
            if self._hotspot is None:
                self._hotspot = shared_rows(rows, self.evaluation.unit_areas, REPORT_SHARES)
            shared = self._hotspot
        return measured_with(shared, rows["score"], shared.base["_row"])

    def region_hotspots(self, rows: pl.DataFrame) -> pl.DataFrame | None:
        """:func:`~crimecast.evaluation.hotspot.hotspot_per_bin` by region of one
        forecaster's rows in the regions with enough units; ``None`` without any."""
        with self._lock:
            self._share_regions(rows)
        if self._region_hotspot is None or self._region_rows is None:
            return None
        return measured_with(self._region_hotspot, rows["score"],
                             self._region_rows.gather(self._region_hotspot.base["_row"]))

    def _share_regions(self, rows: pl.DataFrame) -> None:
        if self._region_rows is None:
            counts = rows.group_by("region").agg(pl.col("unit_id").n_unique().alias("units"))
            eligible = counts.filter(pl.col("units") >= MIN_UNITS_FOR_REGION_HOTSPOTS)
            kept = rows.with_row_index("_index").join(eligible.select("region"), on="region",
                                                      how="semi")
            self._region_rows = kept["_index"]
            if eligible.height:
                self._region_hotspot = shared_rows(kept.drop("_index"),
                                                   self.evaluation.unit_areas, by="region")
