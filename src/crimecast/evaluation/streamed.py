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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from crimecast.evaluation.bootstrap import (
    bin_sums,
    confusion_values,
    draw_bin_resamples,
    summarise_resamples,
)
from crimecast.evaluation.curves import (
    CALIBRATION_BINS,
    calibration_curve_from_counts,
    pr_curve_from_counts,
)
from crimecast.evaluation.hotspot import (
    CURVE_SHARES,
    DEFAULT_SHARES,
    curve_of_per_bin,
    hotspot_per_bin,
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
# per-bin measures kept: the report's shares and the card's curve from 0.5% to 20%
_MEASURED_SHARES = tuple(sorted({*DEFAULT_SHARES, *CURVE_SHARES}))


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

    def add(self, code: np.ndarray, n_bins: int, y: np.ndarray, prob: np.ndarray,
            threshold: float) -> None:
        self.sums.append(bin_sums(code, n_bins, y, prob, threshold))
        level = self.level_of(prob)
        width = self.levels
        cell = code * width + level
        self.positive.append(np.bincount(cell[y], minlength=n_bins * width)
                             .reshape(n_bins, width).astype(np.int32))
        self.negative.append(np.bincount(cell[~y], minlength=n_bins * width)
                             .reshape(n_bins, width).astype(np.int32))
        which = np.searchsorted(np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)[1:-1], prob,
                                side="right")
        self.calibration += np.stack([
            np.bincount(which, minlength=CALIBRATION_BINS),
            np.bincount(which, weights=prob, minlength=CALIBRATION_BINS),
            np.bincount(which, weights=y, minlength=CALIBRATION_BINS)])


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
        bins = predictions["bin_start"].unique().sort()
        for (name,), rows in predictions.partition_by("model", as_dict=True).items():
            stats = self.models[str(name)]
            if stats.last is not None and bins[0] <= stats.last:
                raise ValueError("blocks must arrive in time order, each with whole bins")
            stats.last = bins[-1]
            if str(name) == self.primaries[0]:
                self.bins.extend(bins.to_list())
            stats.hotspots.append(hotspot_per_bin(rows, self.unit_areas, _MEASURED_SHARES))
            labelled = rows.filter(pl.col("y_true").is_not_null())
            code = np.searchsorted(bins.to_numpy(), labelled["bin_start"].to_numpy())
            y = labelled["y_true"].to_numpy().astype(bool)
            prob = labelled["prob"].to_numpy().astype(np.float64)
            stats.add(code, bins.len(), y, prob, self.thresholds[str(name)])
            if str(name) == self.primaries[0]:
                self.rows += rows.height
                self.units.update(rows["unit_id"].unique().to_list())
            if str(name) in self.primaries:
                self._add_regions(str(name), rows, labelled, y, prob)

    def _add_regions(self, model: str, rows: pl.DataFrame, labelled: pl.DataFrame,
                     y: np.ndarray, prob: np.ndarray) -> None:
        region = labelled["region"].cast(pl.String)
        names = region.unique().sort().to_list()
        code = (region.rank("dense") - 1).cast(pl.Int64).to_numpy()
        width = self.levels
        cell = code * width + self.models[model].level_of(prob)
        shape = (len(names), width)
        sums = bin_sums(code, len(names), y, prob, self.thresholds[model])
        positive = np.bincount(cell[y], minlength=shape[0] * width).reshape(shape)
        negative = np.bincount(cell[~y], minlength=shape[0] * width).reshape(shape)
        for i, name in enumerate(names):
            held = self.regions[model].setdefault(
                str(name), [np.zeros(6), np.zeros(width), np.zeros(width)])
            held[0] += sums[i]
            held[1] += positive[i]
            held[2] += negative[i]
        counts = rows.group_by("region").agg(pl.col("unit_id").n_unique().alias("units"))
        eligible = counts.filter(pl.col("units") >= MIN_UNITS_FOR_REGION_HOTSPOTS)
        if eligible.height:
            self.region_hotspots[model].append(hotspot_per_bin(
                rows.join(eligible.select("region"), on="region", how="semi"),
                self.unit_areas, by="region"))

    def _model_block(self, name: str, n_resamples: int, seed: int) -> dict[str, Any]:
        stats = self.models[name]
        sums, positive, negative = (np.concatenate(stats.sums), np.concatenate(stats.positive),
                                    np.concatenate(stats.negative))
        ones = np.ones((1, sums.shape[0]))
        values = {k: json_float(v[0]) for k, v in _metrics(ones, sums, positive,
                                                          negative).items()}
        draws = draw_bin_resamples(sums.shape[0], n_resamples, seed)
        counts = np.stack([np.bincount(d, minlength=sums.shape[0]) for d in draws])
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
