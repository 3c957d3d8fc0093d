"""Block bootstrap over time bins: uncertainty of a test-period metric.

Rows of the same time bin are not independent (one city-wide event, the weather
and the weekday hit every unit at once), so rows are never resampled one by one:
each resample draws ``n_bins`` whole bins with replacement and keeps all their
rows. The spread of a statistic over ``n_resamples`` resamples gives its
``standard_deviation`` (``ddof=1``) and a 95% percentile interval
``[ci_low, ci_high]``. Resamples whose statistic is undefined (``None`` or NaN,
e.g. an AUC of a resample without positives) are left out; with fewer than two
defined values every field is ``None``.

:func:`bootstrap_by_bin` takes any statistic of a resampled frame.
:func:`bootstrap_classification_metrics` gives the same numbers for every metric of
:func:`~crimecast.evaluation.metrics.classification_metrics` without building a
single resampled frame: a resample is a vector of bin multiplicities, so
confusion-matrix metrics, Brier score and log loss become one matrix product of
per-bin sums, and both AUCs one weighted cumulative sum over rows sorted once.
Both functions draw the same bins for the same seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import polars as pl
import scipy.sparse as sp

from crimecast.errors import DataError
from crimecast.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    PROB_CLIP,
    json_float,
    validate_binary_inputs,
)

logger = logging.getLogger(__name__)

CI_LEVEL = 0.95
SUMMARY_KEYS: tuple[str, ...] = ("standard_deviation", "ci_low", "ci_high")
# Resamples are processed in blocks of about this many (positive group × resample)
# values: arrays of 8 MB stay in cache and bound the memory of the AUC bootstrap.
_BLOCK_ELEMENTS = 1_000_000
_FLOAT32_EXACT = 2**24  # float32 holds every whole number below this exactly


def draw_bin_resamples(n_bins: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n_bins)`` bin indices drawn with replacement, reproducible by seed."""
    if n_resamples < 1:
        raise DataError(f"n_resamples must be >= 1; got {n_resamples}. Pass e.g. 200.")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_bins, size=(n_resamples, n_bins), dtype=np.int64)


@lru_cache(maxsize=4)
def resample_counts(n_bins: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n_bins)``: how often each resample of
    :func:`draw_bin_resamples` draws each bin (read-only; every forecaster scored on
    the same bins shares them)."""
    draws = draw_bin_resamples(n_bins, n_resamples, seed)
    flat = (np.arange(n_resamples, dtype=np.int64)[:, None] * n_bins + draws).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_bins).reshape(n_resamples, n_bins)
    counts.setflags(write=False)
    return counts


def summarise_resamples(values: np.ndarray | list[float | None]) -> dict[str, float | None]:
    """``standard_deviation`` (ddof=1) and the 95% percentile interval of the defined values."""
    array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size < 2:
        return dict.fromkeys(SUMMARY_KEYS)
    tail = (1.0 - CI_LEVEL) / 2 * 100
    low, high = np.percentile(array, [tail, 100 - tail])
    return {
        "standard_deviation": json_float(array.std(ddof=1)),
        "ci_low": json_float(low),
        "ci_high": json_float(high),
    }


def _bin_codes(frame: pl.DataFrame, bin_column: str) -> np.ndarray:
    """Dense 0-based code of each row's bin, in ascending bin order."""
    if bin_column not in frame.columns:
        raise DataError(
            f"the frame lacks the bin column {bin_column!r}; pass bin_column= the column "
            "that holds each row's time bin."
        )
    if frame[bin_column].null_count():
        raise DataError(f"column {bin_column!r} has missing values; every row needs a bin.")
    return (frame[bin_column].rank("dense") - 1).cast(pl.Int64).to_numpy()


def bootstrap_by_bin(
    frame: pl.DataFrame,
    statistic: Callable[[pl.DataFrame], float | None],
    n_resamples: int = 200,
    seed: int = 0,
    bin_column: str = "bin_start",
) -> dict[str, float | None]:
    """Block-bootstrap ``statistic`` over the time bins of ``frame``.

    Each resample holds the rows of ``n_bins`` bins drawn with replacement (a bin
    drawn twice appears twice), grouped by bin in draw order. Returns
    ``{"standard_deviation", "ci_low", "ci_high"}`` over the resamples where the
    statistic is defined; ``None`` values when fewer than two are, or the frame
    is empty.
    """
    if frame.height == 0:
        return dict.fromkeys(SUMMARY_KEYS)
    codes = _bin_codes(frame, bin_column)
    order = np.argsort(codes, kind="stable")
    ordered = frame[order]
    lengths = np.bincount(codes)
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    draws = draw_bin_resamples(lengths.size, n_resamples, seed)
    values: list[float | None] = []
    for drawn in draws:
        sizes = lengths[drawn]
        ends = np.cumsum(sizes)
        # Row indices of the drawn bins: each run starts at its bin's offset.
        rows = np.arange(ends[-1]) + np.repeat(offsets[drawn] - (ends - sizes), sizes)
        values.append(statistic(ordered[rows]))
    summary = summarise_resamples(values)
    logger.debug("bootstrap over %d bins, %d resamples: %s", lengths.size, n_resamples, summary)
    return summary


def _confusion_values(
    counts: np.ndarray, codes: np.ndarray, y: np.ndarray, prob: np.ndarray, threshold: float
) -> dict[str, np.ndarray]:
    """Accuracy … log loss of every resample from per-bin sums; ``counts`` is (R, bins)."""
    per_bin = bin_sums(codes, counts.shape[1], y.astype(bool), prob, threshold)
    return confusion_values(counts.astype(np.float64) @ per_bin)


def bin_sums(code: np.ndarray, n_bins: int, y: np.ndarray, prob: np.ndarray,
             threshold: float, counts: tuple[np.ndarray, np.ndarray] | None = None
             ) -> np.ndarray:
    """Per bin (``code``): rows, positives, true and false positives at ``threshold``,
    squared error and log loss, the sums every threshold metric is a ratio of; ``y``
    is boolean. ``counts`` may pass :func:`bin_counts` of the same ``code`` and ``y``
    (shared by every forecaster scored on the same rows)."""
    rows, positives = counts if counts is not None else bin_counts(code, n_bins, y)
    predicted = prob >= threshold
    clipped = np.clip(prob, PROB_CLIP, 1.0 - PROB_CLIP)
    # Each row's loss from the one formula its label needs (the values np.where would
    # pick); the float sums keep np.bincount's row order, so they are bit for bit the same.
    loss = np.empty_like(clipped)
    loss[y] = -np.log(clipped[y])
    loss[~y] = -np.log1p(-clipped[~y])
    return np.column_stack([
        rows,
        positives,
        np.bincount(code[predicted & y], minlength=n_bins),
        np.bincount(code[predicted & ~y], minlength=n_bins),
        np.bincount(code, weights=(prob - y) ** 2, minlength=n_bins),
        np.bincount(code, weights=loss, minlength=n_bins),
    ]).astype(np.float64)


def bin_counts(code: np.ndarray, n_bins: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and positives per bin (``code``), the first two columns of :func:`bin_sums`
    (whole numbers, so counted exactly as integers)."""
    return (np.bincount(code, minlength=n_bins),
            np.bincount(code[y], minlength=n_bins))


def confusion_values(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy … log loss from ``(R, 6)`` sums of rows, positives, true positives, false
    positives, squared errors and log losses (one row per resample)."""
    n, pos, tp, fp, squared, loss = sums.T
    fn = pos - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (n - fp - fn) / n,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(pos > 0, tp / pos, 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
            "brier": squared / n,
            "log_loss": loss / n,
        }


def _ranking_values(
    counts: np.ndarray, codes: np.ndarray, y: np.ndarray, prob: np.ndarray
) -> dict[str, np.ndarray]:
    """PR-AUC (average precision) and ROC-AUC of every resample, as scikit-learn computes them.

    Rows are sorted by probability once and grouped by distinct probability
    (the curves' thresholds). Only thresholds with a positive row move the true
    positive count, so both areas are sums over those *positive groups* ``k``:

    * ``ROC-AUC · P·N = P·N − Σ_k dTP_k · (FP_k − dFP_k / 2)`` (the trapezoid
      rule, i.e. Mann–Whitney with ties counted half);
    * ``AP = Σ_k dTP_k / P · TP_k / (TP_k + FP_k)`` (scikit-learn's step sum),

    with ``TP_k``/``FP_k`` the (weighted) counts at or above threshold ``k`` and
    ``dTP_k``/``dFP_k`` those at it. A resample weights a row by its bin's
    multiplicity, so each of these is a sparse (positive groups × bins) matrix
    times the (bins × resamples) multiplicity matrix: one pass over the rows for
    a whole block of resamples.

    Every count here (and ``Σ_k dTP_k · (FP_k − dFP_k / 2)``) is a whole or half
    number, exact in floating point whatever the order of the sums, so the products
    run in float32 where no count can reach 2**24 (half the memory traffic) and only
    the precision-weighted sum of AP keeps its one summation order.
    """
    order = pl.Series(prob).arg_sort(descending=True).to_numpy()
    p = prob[order]
    cell_bin = codes[order]
    cell_pos = y[order].astype(np.int64)
    cell_neg = 1 - cell_pos
    n_bins = counts.shape[1]
    group = np.concatenate(([0], np.cumsum(p[1:] != p[:-1])))
    group_is_positive = np.bincount(group, weights=cell_pos) > 0
    n_positive_groups = int(group_is_positive.sum())
    # Each group belongs to the segment of the next positive group at or below it.
    segment: np.ndarray = (np.cumsum(group_is_positive) - group_is_positive)[group]
    in_positive_group = group_is_positive[group]

    # The largest count of any resample: its rows, each weighted by its bin's multiplicity.
    largest = int((counts @ np.bincount(codes, minlength=n_bins)).max(initial=0))
    dtype = np.float32 if largest < _FLOAT32_EXACT else np.float64

    def sparse(mask: np.ndarray) -> sp.csr_matrix:
        # Rows are already in segment order, so the CSR arrays can be written
        # directly; a bin repeated within a segment is summed by the product.
        rows = segment[mask]
        pointers = np.searchsorted(rows, np.arange(n_positive_groups + 1))
        return sp.csr_matrix(
            (np.ones(rows.size, dtype=dtype), cell_bin[mask], pointers),
            shape=(n_positive_groups, n_bins),
        )

    negative = cell_neg.astype(bool)
    later_negatives = sparse(negative & (segment < n_positive_groups))
    positives_at = sparse(~negative)
    negatives_at = sparse(negative & in_positive_group)
    bin_positives = np.bincount(cell_bin, weights=cell_pos, minlength=n_bins)
    bin_negatives = np.bincount(cell_bin, weights=cell_neg, minlength=n_bins)

    roc = np.full(counts.shape[0], np.nan)
    average_precision = np.full(counts.shape[0], np.nan)
    block = max(1, _BLOCK_ELEMENTS // max(n_positive_groups, 1))
    # Positive groups with negatives tied to them (dFP_k > 0): few, unless scores tie a lot.
    tied = np.unique(segment[negative & in_positive_group])
    negatives_at = negatives_at[tied]
    for first in range(0, counts.shape[0], block):
        weights = counts[first : first + block].astype(np.float64)
        by_resample = np.ascontiguousarray(weights.T, dtype=dtype)
        total_pos = weights @ bin_positives
        total_neg = weights @ bin_negatives
        d_tp_exact = np.asarray(positives_at @ by_resample)
        fp_exact = np.cumsum(np.asarray(later_negatives @ by_resample), axis=0)
        tp = np.cumsum(d_tp_exact, axis=0).astype(np.float64)
        fp = fp_exact.astype(np.float64)
        d_tp = d_tp_exact.astype(np.float64)
        d_fp = np.asarray(negatives_at @ by_resample).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            pairs = total_pos * total_neg
            # Σ_k dTP_k · (FP_k − dFP_k / 2), exact (see the docstring).
            ordered = pairs - (np.einsum("kr,kr->r", d_tp, fp)
                               - np.einsum("kr,kr->r", d_tp[tied], d_fp) / 2)
            together = tp + fp
            precision = tp / np.where(together > 0, together, 1.0)  # 0 where both are 0
            step = np.einsum("kr,kr->r", d_tp, precision) / total_pos
        defined = (total_pos > 0) & (total_neg > 0)
        chunk = slice(first, first + weights.shape[0])
        roc[chunk] = np.where(defined, ordered / pairs, np.nan)
        average_precision[chunk] = np.where(defined, step, np.nan)
    return {"pr_auc": average_precision, "roc_auc": roc}


def bootstrap_classification_metrics(
    frame: pl.DataFrame,
    threshold: float,
    n_resamples: int = 200,
    seed: int = 0,
    bin_column: str = "bin_start",
) -> dict[str, dict[str, float | None]]:
    """Block-bootstrap every classification metric of ``frame`` (``y_true``, ``prob``) at once.

    Returns ``{metric: {"standard_deviation", "ci_low", "ci_high"}}`` for the keys
    of :data:`~crimecast.evaluation.metrics.CLASSIFICATION_METRICS`, identical (up
    to float rounding) to :func:`bootstrap_by_bin` with the same seed and
    ``classification_metrics`` as the statistic, but without materialising any
    resample: seconds instead of minutes on millions of rows.
    """
    if not math.isfinite(threshold):
        raise DataError(f"threshold must be a finite number; got {threshold}.")
    if frame.height == 0:
        return {metric: dict.fromkeys(SUMMARY_KEYS) for metric in CLASSIFICATION_METRICS}
    missing = [c for c in ("y_true", "prob") if c not in frame.columns]
    if missing:
        raise DataError(
            f"the frame lacks column(s) {missing}; the bootstrap needs y_true and prob."
        )
    y, prob = validate_binary_inputs(frame["y_true"].to_numpy(), frame["prob"].to_numpy())
    codes = _bin_codes(frame, bin_column)
    n_bins = int(codes.max()) + 1
    counts = resample_counts(n_bins, n_resamples, seed)
    values = _confusion_values(counts, codes, y, prob, threshold)
    values.update(_ranking_values(counts, codes, y, prob))
    return {metric: summarise_resamples(values[metric]) for metric in CLASSIFICATION_METRICS}
