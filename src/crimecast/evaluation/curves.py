"""Downsampled, JSON-safe curves for the model card: precision–recall, calibration, and
every forecaster's hit rate and PAI against the share of the area flagged."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve

from crimecast.errors import DataError
from crimecast.evaluation.hotspot import CURVE_SHARES, curve_of_per_bin
from crimecast.evaluation.metrics import validate_binary_inputs

logger = logging.getLogger(__name__)

_DIGITS = 6


CALIBRATION_BINS = 10  # equal-width probability bins of the calibration curve


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), _DIGITS) for v in values]


def pr_curve(y: np.ndarray, prob: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """Precision–recall curve in order of increasing recall, at most ``max_points`` points.

    The points are scikit-learn's :func:`~sklearn.metrics.precision_recall_curve`
    taken at evenly spaced recall levels (the first point at or above each
    level, i.e. the highest precision there), so the shape survives on curves
    with millions of thresholds. It starts at recall 0 with precision 1. Both
    lists are empty when ``y`` lacks either class, where the curve is undefined.
    """
    if max_points < 2:
        raise DataError(f"max_points must be >= 2; got {max_points}. Pass e.g. 200.")
    labels, probabilities = validate_binary_inputs(y, prob)
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        return {"precision": [], "recall": []}
    precision, recall, _ = precision_recall_curve(labels, probabilities)
    return _downsampled(precision[::-1], recall[::-1], max_points)


def _downsampled(precision: np.ndarray, recall: np.ndarray,
                 max_points: int) -> dict[str, list[float]]:
    """The points at evenly spaced recall levels (the first at or above each level)."""
    if recall.size > max_points:
        targets = np.linspace(0.0, 1.0, max_points)
        keep = np.unique(np.searchsorted(recall, targets, side="left").clip(0, recall.size - 1))
        precision, recall = precision[keep], recall[keep]
    return {"precision": _rounded(precision), "recall": _rounded(recall)}


def calibration_curve(
    y: np.ndarray, prob: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> dict[str, list[float] | list[int]]:
    """Reliability diagram on ``n_bins`` equal-width probability bins over ``[0, 1]``.

    For each non-empty bin (in increasing order): the mean predicted probability,
    the observed fraction of positives and the number of rows. Bins are those of
    :func:`sklearn.calibration.calibration_curve` with ``strategy="uniform"``
    (a probability of exactly 1 falls in the last bin).
    """
    if n_bins < 1:
        raise DataError(f"n_bins must be >= 1; got {n_bins}. Pass e.g. 10.")
    labels, probabilities = validate_binary_inputs(y, prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], probabilities, side="right")
    return calibration_curve_from_counts(
        np.bincount(which, minlength=n_bins),
        np.bincount(which, weights=probabilities, minlength=n_bins),
        np.bincount(which, weights=labels, minlength=n_bins))


def pr_curve_from_counts(positive: np.ndarray, negative: np.ndarray,
                         max_points: int = 200) -> dict[str, list[float]]:
    """:func:`pr_curve` from counts of positives and negatives at increasing probability
    levels (a streamed evaluation's histogram): the levels are the thresholds."""
    tp = np.cumsum(positive[::-1].astype(np.float64))
    fp = np.cumsum(negative[::-1].astype(np.float64))
    if tp.size == 0 or tp[-1] == 0 or fp[-1] == 0:
        return {"precision": [], "recall": []}
    moved = (positive[::-1] + negative[::-1]) > 0
    tp, fp = tp[moved], fp[moved]
    precision = np.concatenate(([1.0], tp / (tp + fp)))
    recall = np.concatenate(([0.0], tp / tp[-1]))
    return _downsampled(precision, recall, max_points)


def calibration_curve_from_counts(count: np.ndarray, predicted: np.ndarray,
                                  positive: np.ndarray) -> dict[str, list[float] | list[int]]:
    """:func:`calibration_curve` from per-bin row counts, sums of probabilities and
    positives (accumulated over blocks)."""
    filled = count > 0
    return {
        "mean_predicted": _rounded(predicted[filled] / count[filled]),
        "fraction_positive": _rounded(positive[filled] / count[filled]),
        "count": [int(c) for c in count[filled]],
    }


def prediction_curves(parts: Mapping[str, pl.DataFrame], per_bin: Mapping[str, pl.DataFrame],
                      learned: str, shown: list[str]) -> dict[str, Any]:
    """The card's precision-recall and calibration curves from the test predictions by
    forecaster (``parts``), and every forecaster's hit rate and PAI against the share of
    the area flagged, from its per-bin measures (``per_bin``:
    :func:`~crimecast.evaluation.hotspot.hotspot_per_bin` at ``CURVE_SHARES`` or more)."""
    primary = parts[learned]
    return {
        "pr_curve": pr_curve(primary["y_true"].to_numpy(), primary["prob"].to_numpy()),
        "calibration": calibration_curve(primary["y_true"].to_numpy(),
                                         primary["prob"].to_numpy()),
        "baseline_pr_curves": {
            name: pr_curve(parts[name]["y_true"].to_numpy(), parts[name]["prob"].to_numpy())
            for name in shown
        },
        "hotspot_curves": {
            name: curve_of_per_bin(per_bin[name], CURVE_SHARES).to_dict(as_series=False)
            for name in sorted(parts)},
    }
