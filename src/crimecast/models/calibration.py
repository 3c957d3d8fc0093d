"""Logistic (Platt) calibration of a ranking score into a hotspot probability.

Every non-binary learned model, every naive forecaster, SEPP and the ensemble turn
their score into a probability this way. Two parameters are pinned down by a seeded
sample of :data:`PLATT_ROWS` rows; the sample's row indices depend only on the
number of rows, so they are drawn once per size and reused (two dozen forecasters are
calibrated on the same training rows).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PLATT_ROWS = 50_000


@lru_cache(maxsize=8)
def _sample_rows(n_rows: int, size: int) -> np.ndarray:
    """The seeded sample of ``size`` of ``n_rows`` row indices (read-only, cached)."""
    keep = np.random.default_rng(0).choice(n_rows, size, replace=False)
    keep.setflags(write=False)
    return keep


def platt(score: np.ndarray, labels: np.ndarray, log: bool = True,
          weights: np.ndarray | None = None) -> tuple[float, float]:
    """Logistic calibration ``(coef, intercept)`` of a score (``log1p`` of it by default),
    with optional row ``weights`` (rows standing for several, see models.sampling)."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels).astype(np.int8)
    score = np.asarray(score)
    if labels.size > PLATT_ROWS:  # two parameters: a seeded sample pins them down
        keep = _sample_rows(labels.size, PLATT_ROWS)
        score, labels = score[keep], labels[keep]
        weights = None if weights is None else np.asarray(weights)[keep]
    x = np.log1p(np.maximum(score, 0.0)) if log else np.asarray(score, dtype=np.float64)
    if np.unique(labels).size < 2:
        rate = labels.mean() if labels.size else 0.0
        return 0.0, float(np.log((rate + 1e-6) / (1 - rate + 1e-6)))
    model = LogisticRegression(C=1e6, max_iter=1000, solver="newton-cholesky").fit(
        x[:, None], labels, sample_weight=weights)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def calibrate(score: np.ndarray, coef_intercept: tuple[float, float],
              log: bool = True) -> np.ndarray:
    """Probability from a score with :func:`platt`'s calibration."""
    coef, intercept = coef_intercept
    x = np.log1p(np.maximum(score, 0.0)) if log else np.asarray(score, dtype=np.float64)
    out: np.ndarray = 1.0 / (1.0 + np.exp(-(coef * x + intercept)))
    return out
