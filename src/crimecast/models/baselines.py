"""Naive baselines, scored in every evaluation as first-class models.

A baseline ranks units by one as-of panel column (so it is exactly as honest as
the features): ``prior_counts`` by events over the trailing 28 days,
``historical_average`` by the mean count in the same hour-of-week (or weekday)
slot over the last 4 weeks, ``kde`` by a Gaussian-kernel smoothed trailing
28-day count. ``fit`` only calibrates the score into a probability (Platt
scaling on ``log1p(score)`` over the training rows) so Brier score, log loss and
an F1 threshold are defined for baselines too; ranking metrics use the raw score.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression

from crimecast.errors import ModelError

BASELINES: dict[str, str] = {
    "prior_counts": "count_last_28d",
    "historical_average": "hist_avg_same_slot",
    "kde": "kde_intensity_28d",
}


class BaselineModel:
    """Rank by one as-of column; calibrate it with Platt scaling in ``fit``."""

    def __init__(self, model_type: str = "prior_counts") -> None:
        if model_type not in BASELINES:
            raise ModelError(
                f"baseline must be one of {', '.join(BASELINES)}; got '{model_type}'."
            )
        self.model_type = model_type
        self.column = BASELINES[model_type]
        self.feature_names = [self.column]
        self.coef_: float = 0.0
        self.intercept_: float = 0.0

    def score(self, X: pl.DataFrame) -> np.ndarray:
        """The raw ranking score (the column, nulls as 0)."""
        return X[self.column].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()

    def fit(self, X: pl.DataFrame, y: np.ndarray) -> BaselineModel:
        """Fit the score-to-probability calibration on training rows; returns self."""
        labels = np.asarray(y).astype(np.int8)
        if np.unique(labels).size < 2:
            self.coef_, self.intercept_ = 0.0, float(np.log((labels.mean() + 1e-6) /
                                                            (1 - labels.mean() + 1e-6)))
            return self
        model = LogisticRegression(C=1e6, max_iter=1000)
        model.fit(np.log1p(np.maximum(self.score(X), 0.0))[:, None], labels)
        self.coef_ = float(model.coef_[0, 0])
        self.intercept_ = float(model.intercept_[0])
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        """Calibrated probability per row."""
        z = self.coef_ * np.log1p(np.maximum(self.score(X), 0.0)) + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))
