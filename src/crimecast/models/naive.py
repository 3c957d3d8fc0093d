"""Single-column forecasters (the naive ones and SEPP) and the learned + naive ensemble.

A :class:`ColumnForecaster` ranks units by one as-of panel column, so it is
exactly as honest as the features:

* ``prior_counts_{1w,4w,13w,26w,52w,104w,all}``: events over a trailing window
  (the law of crime concentration makes the long windows the bar to clear);
* ``kde_{window}_{k}x``: those counts smoothed by a Gaussian kernel at ``k`` × the
  base bandwidth (window and bandwidth are chosen on validation like any forecaster);
* ``historical_average``: the mean count in the same hour-of-week (or weekday)
  slot over the last 4 weeks;
* ``sepp``: the self-exciting point process's expected count (``sepp_intensity``).

The names and columns derive from the feature catalogue. ``fit`` only calibrates
the score into a probability (Platt scaling on ``log1p(score)`` over the
training rows) so Brier score, log loss and F1 are defined for them too; ranking
metrics use the raw score. :class:`EnsembleForecaster` blends a learned model
with a naive one on the log scale with a weight chosen on validation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from crimecast.errors import ModelError
from crimecast.features.catalog import SPECS
from crimecast.features.design import WEIGHT
from crimecast.models.calibration import calibrate, platt
from crimecast.models.estimators import HotspotModel

NAIVE: dict[str, str] = {
    **{name: name for name, spec in SPECS.items()
       if name.startswith(("prior_counts_", "kde_")) and spec.group == "long_memory"},
    "historical_average": "hist_avg_same_slot",
}
SEPP = "sepp"
COLUMN_FORECASTERS: dict[str, str] = {**NAIVE, SEPP: "sepp_intensity"}


def as_frame(X: pl.DataFrame | np.ndarray, names: list[str]) -> pl.DataFrame:
    """``X`` as a frame: a matrix's columns are ``names`` in order (as /invocations sends)."""
    if isinstance(X, pl.DataFrame):
        return X
    matrix = np.asarray(X, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ModelError(f"X must have {len(names)} feature columns; got shape {matrix.shape}.")
    return pl.DataFrame(matrix, schema=names, orient="row")


def row_weights(X: pl.DataFrame) -> np.ndarray | None:
    """The rows' Horvitz-Thompson weights (a training design's ``_weight``), else None."""
    if WEIGHT in X.columns:
        return np.asarray(X[WEIGHT].to_numpy(), dtype=np.float64)
    return None


def is_naive(name: str) -> bool:
    """Whether ``name`` is a naive forecaster (prior counts, KDE, historical average)."""
    return name in NAIVE


class ColumnForecaster:
    """Rank by one as-of column; calibrate it with Platt scaling in ``fit``."""

    def __init__(self, model_type: str = "prior_counts_52w") -> None:
        if model_type not in COLUMN_FORECASTERS:
            raise ModelError(
                f"forecaster must be one of {', '.join(COLUMN_FORECASTERS)}; got "
                f"'{model_type}'. Pass --register-best to deploy a naive forecaster."
            )
        self.model_type = model_type
        self.column = COLUMN_FORECASTERS[model_type]
        self.feature_names = [self.column]
        self.coef_: float = 0.0
        self.intercept_: float = 0.0

    @property
    def kind(self) -> str:
        """``naive`` or ``sepp``."""
        return "naive" if is_naive(self.model_type) else "sepp"

    def score(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """The raw ranking score (the column, nulls as 0)."""
        column = as_frame(X, self.feature_names)[self.column]
        return column.cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()

    def fit(self, X: pl.DataFrame, y: np.ndarray) -> ColumnForecaster:
        """Fit the score-to-probability calibration on training rows (weighted by their
        ``_weight`` when they are a training design); returns self."""
        self.coef_, self.intercept_ = platt(self.score(X), y, weights=row_weights(X))
        return self

    def predict_proba(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability per row."""
        return calibrate(self.score(X), (self.coef_, self.intercept_))


ENSEMBLE = "ensemble"
EPSILON = 0.01


class EnsembleForecaster:
    """``w · log(ε + learned/mean) + (1 − w) · log(ε + naive/mean)``: a learned model and a
    naive forecaster on one scale (each divided by its mean on the training rows)."""

    model_type = ENSEMBLE

    def __init__(self, learned: HotspotModel, naive: ColumnForecaster, weight: float = 0.5,
                 scales: tuple[float, float] = (1.0, 1.0)) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ModelError(f"weight must be in [0, 1]; got {weight}. Pass a weight such as "
                             "0.5.")
        self.learned = learned
        self.naive = naive
        self.weight = weight
        self.scales = scales
        self.feature_names = list(dict.fromkeys([*learned.feature_names, naive.column]))
        self.coef_: float = 0.0
        self.intercept_: float = 0.0

    def blend(self, learned: np.ndarray, naive: np.ndarray,
              weight: float | None = None) -> np.ndarray:
        """The blended score from the two parts' raw scores (with ``weight``, default
        :attr:`weight`, on the learned one)."""
        w = self.weight if weight is None else weight
        a = np.log(EPSILON + np.maximum(learned, 0.0) / self.scales[0])
        b = np.log(EPSILON + np.maximum(naive, 0.0) / self.scales[1])
        out: np.ndarray = w * a + (1.0 - w) * b
        return out

    def score(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """The blended ranking score."""
        frame = as_frame(X, self.feature_names)
        return self.blend(self.learned.score(frame), self.naive.score(frame))

    def fit(self, X: pl.DataFrame, y: np.ndarray) -> EnsembleForecaster:
        """Set the scales from the (already fitted) parts and calibrate; returns self."""
        means = (float(np.mean(self.learned.score(X))), float(np.mean(self.naive.score(X))))
        self.scales = (means[0] if means[0] > 0 else 1.0, means[1] if means[1] > 0 else 1.0)
        self.coef_, self.intercept_ = platt(self.score(X), y, log=False,
                                            weights=row_weights(X))
        return self

    def predict_proba(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability per row."""
        return calibrate(self.score(X), (self.coef_, self.intercept_), log=False)


Forecaster = HotspotModel | ColumnForecaster | EnsembleForecaster
