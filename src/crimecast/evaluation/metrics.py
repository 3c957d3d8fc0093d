"""Binary classification metrics of hotspot probabilities.

Every metric is computed on one vector of 0/1 labels and one vector of
probabilities; a row is predicted positive when ``prob >= threshold``.

* ``accuracy``, ``precision``, ``recall``, ``f1`` — scikit-learn's values, with
  ``zero_division=0``: precision is 0.0 when nothing is predicted positive,
  recall is 0.0 when nothing is positive (:func:`confusion_counts` computes them
  from the confusion counts as scikit-learn does).
* ``pr_auc`` — average precision (:func:`sklearn.metrics.average_precision_score`),
  the step-wise area under the precision–recall curve, not a trapezoid.
* ``roc_auc`` — :func:`sklearn.metrics.roc_auc_score`.
* ``brier`` — mean squared difference between probability and label.
* ``log_loss`` — mean negative log-likelihood with probabilities clipped to
  ``[1e-15, 1 - 1e-15]`` so a confident mistake costs about 34.5, not infinity.

Both AUCs are undefined when only one class is present; they are then ``None``
(``pr_auc`` too: scikit-learn would return 0.0 with no positives and 1.0 with no
negatives, neither of which says anything about ranking). Every value is a plain
Python ``float`` or ``None``, never NaN, so the result is JSON-safe.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from crimecast.errors import DataError

logger = logging.getLogger(__name__)

CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "pr_auc",
    "roc_auc",
    "brier",
    "log_loss",
)
"""The keys of :func:`classification_metrics`, in report order."""

PROB_CLIP = 1e-15
"""Probabilities are clipped to ``[PROB_CLIP, 1 - PROB_CLIP]`` for the log loss."""


def validate_binary_inputs(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_true as int8, prob as float64)`` after checking shape, labels and range.

    Raises :class:`~crimecast.errors.DataError` when the lengths differ, a label is
    not 0 or 1, or a probability is missing or outside ``[0, 1]``.
    """
    y = np.asarray(y_true)
    p = np.asarray(prob, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or y.shape != p.shape:
        raise DataError(
            f"y_true and prob must be 1-D arrays of equal length; got shapes {y.shape} "
            f"and {p.shape}. Pass one label and one probability per row."
        )
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5].tolist()
        raise DataError(
            f"y_true must hold only 0 and 1; got {bad}. Pass binary hotspot labels."
        )
    if p.size and not (np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0):
        raise DataError(
            "prob must be finite probabilities in [0, 1]; got values outside that range "
            f"(min {np.nanmin(p) if np.isfinite(p).any() else 'NaN'}). "
            "Pass calibrated probabilities, not raw scores."
        )
    return y.astype(np.int8, copy=False), p


def json_float(value: float | np.floating | None) -> float | None:
    """``value`` as a plain float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def log_loss_clipped(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Mean binary log loss with probabilities clipped to ``[1e-15, 1 - 1e-15]``."""
    p = np.clip(prob, PROB_CLIP, 1.0 - PROB_CLIP)
    y = y_true.astype(bool)
    # Only one of the two logs is needed per row; avoids log(1 - p) of positives.
    losses = np.where(y, -np.log(p), -np.log1p(-p))
    return float(losses.mean())


def confusion_counts(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of 0/1 labels ``y`` and boolean predictions.

    Each is one division of two counts, the division scikit-learn makes
    (``zero_division=0``; F1 as ``2·TP / (P + predicted positives)``), so the values
    are scikit-learn's to the last bit, without its input checks (a hundredfold
    faster on a million rows).
    """
    positive = y.astype(bool)
    tp = int(np.count_nonzero(predicted & positive))
    predicted_positive = int(np.count_nonzero(predicted))
    true_positive = int(np.count_nonzero(positive))
    correct = y.size - (predicted_positive - tp) - (true_positive - tp)
    return {
        "accuracy": correct / y.size,
        "precision": tp / predicted_positive if predicted_positive else 0.0,
        "recall": tp / true_positive if true_positive else 0.0,
        "f1": 2 * tp / (true_positive + predicted_positive)
        if true_positive + predicted_positive else 0.0,
    }


def _metric_values(
    y_true: np.ndarray, prob: np.ndarray, threshold: float
) -> dict[str, Callable[[], float | None]] | None:
    """Each metric of :data:`CLASSIFICATION_METRICS` as a function computing it alone (the
    confusion counts once for all four), or None for empty input."""
    if not math.isfinite(threshold):
        raise DataError(f"threshold must be a finite number; got {threshold}.")
    y, p = validate_binary_inputs(y_true, prob)
    if y.size == 0:
        return None
    counts = functools.cache(lambda: confusion_counts(y, p >= threshold))
    both_classes = 0 < int(y.sum()) < y.size

    def confusion(name: str) -> Callable[[], float | None]:
        return lambda: json_float(counts()[name])

    def ranking(score: Callable[..., float]) -> Callable[[], float | None]:
        return lambda: json_float(score(y, p)) if both_classes else None

    return {
        **{name: confusion(name) for name in ("accuracy", "precision", "recall", "f1")},
        "pr_auc": ranking(average_precision_score),
        "roc_auc": ranking(roc_auc_score),
        "brier": lambda: json_float(brier_score_loss(y, p, pos_label=1)),
        "log_loss": lambda: json_float(log_loss_clipped(y, p)),
    }


def classification_metrics(
    y_true: np.ndarray, prob: np.ndarray, threshold: float
) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1, PR-AUC, ROC-AUC, Brier score and log loss.

    ``threshold`` is the decision threshold on ``prob`` chosen upstream (on a
    validation fold); a row is predicted positive when ``prob >= threshold``.
    Returns a dict with the keys of :data:`CLASSIFICATION_METRICS`; both AUCs are
    ``None`` when ``y_true`` holds one class only, and every value is ``None``
    for empty input.
    """
    values = _metric_values(y_true, prob, threshold)
    if values is None:
        return dict.fromkeys(CLASSIFICATION_METRICS)
    return {name: value() for name, value in values.items()}


def classification_metric(
    y_true: np.ndarray, prob: np.ndarray, threshold: float, metric: str
) -> float | None:
    """The value :func:`classification_metrics` gives for ``metric`` (``None`` for a name
    it does not give), computing that metric alone."""
    if metric not in CLASSIFICATION_METRICS:
        return None
    values = _metric_values(y_true, prob, threshold)
    return None if values is None else values[metric]()
