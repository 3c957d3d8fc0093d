"""Named hotspot classifiers with scikit-learn semantics.

:class:`HotspotModel` keeps its parameters in ``__init__`` and ``fit`` returns
``self``. Preprocessing (median imputation, and scaling for ``logistic``) is fitted
on the training rows inside ``fit`` — never on the whole panel — and SMOTE, when
enabled, resamples only the training rows passed to ``fit``, never evaluation data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crimecast.errors import ModelError

logger = logging.getLogger(__name__)

N_JOBS = 2


def _random_forest(params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(**{"n_estimators": 200, "min_samples_leaf": 20,
                                     "max_features": "sqrt", "n_jobs": N_JOBS,
                                     "random_state": seed, **params})


def _extra_trees(params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(**{"n_estimators": 200, "min_samples_leaf": 20,
                                   "max_features": "sqrt", "n_jobs": N_JOBS,
                                   "random_state": seed, **params})


def _balanced_random_forest(params: dict[str, Any], seed: int) -> Any:
    from imblearn.ensemble import BalancedRandomForestClassifier

    return BalancedRandomForestClassifier(**{
        "n_estimators": 200, "min_samples_leaf": 5, "sampling_strategy": "all",
        "replacement": True, "bootstrap": False, "n_jobs": N_JOBS, "random_state": seed,
        **params})


def _xgboost(params: dict[str, Any], seed: int) -> Any:
    from xgboost import XGBClassifier

    return XGBClassifier(**{"n_estimators": 300, "max_depth": 6, "learning_rate": 0.05,
                            "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist",
                            "n_jobs": N_JOBS, "random_state": seed, "eval_metric": "logloss",
                            **params})


def _lightgbm(params: dict[str, Any], seed: int) -> Any:
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**{"n_estimators": 200, "learning_rate": 0.07, "num_leaves": 31,
                             "max_bin": 63,
                             "min_child_samples": 50, "subsample": 0.8, "subsample_freq": 1,
                             "colsample_bytree": 0.8, "n_jobs": N_JOBS, "random_state": seed,
                             "verbose": -1, "importance_type": "gain", **params})


def _catboost(params: dict[str, Any], seed: int) -> Any:
    from catboost import CatBoostClassifier

    return CatBoostClassifier(**{"iterations": 300, "depth": 6, "learning_rate": 0.08,
                                 "thread_count": N_JOBS, "random_seed": seed, "verbose": False,
                                 "allow_writing_files": False, **params})


def _logistic(params: dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(**{"max_iter": 2000, "C": 1.0, "random_state": seed, **params})


ESTIMATORS: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "random_forest": _random_forest,
    "extra_trees": _extra_trees,
    "balanced_random_forest": _balanced_random_forest,
    "xgboost": _xgboost,
    "catboost": _catboost,
    "lightgbm": _lightgbm,
    "logistic": _logistic,
}
NATIVE_NAN = {"xgboost", "lightgbm", "catboost"}


def check_model_type(model_type: str) -> None:
    """Raise a helpful error for an unknown model type."""
    if model_type not in ESTIMATORS:
        raise ModelError(
            f"model_type must be one of {', '.join(ESTIMATORS)}; got '{model_type}'. "
            "Pass --model-type lightgbm."
        )


def as_matrix(X: pl.DataFrame | np.ndarray, feature_names: list[str]) -> np.ndarray:
    """Select ``feature_names`` (in order) from a frame as a float32 matrix; NaN for null."""
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ModelError(
                f"X must have {len(feature_names)} feature columns; got shape {X.shape}."
            )
        return X.astype(np.float32, copy=False)
    missing = [c for c in feature_names if c not in X.columns]
    if missing:
        raise ModelError(f"X lacks feature column(s) {missing}; pass every model feature.")
    return X.select(pl.col(feature_names).cast(pl.Float32)).to_numpy().astype(np.float32)


class HotspotModel:
    """A named classifier for hotspot labels (scikit-learn style).

    ``model_type`` is one of :data:`ESTIMATORS`; ``params`` override its defaults.
    ``imbalance`` is ``none``, ``class_weight`` (balanced weights or
    ``scale_pos_weight``) or ``smote`` (training rows only).
    """

    def __init__(
        self,
        model_type: str = "lightgbm",
        feature_names: list[str] | None = None,
        params: dict[str, Any] | None = None,
        imbalance: str = "none",
        random_state: int = 42,
    ) -> None:
        self.model_type = model_type
        self.feature_names = list(feature_names or [])
        self.params = dict(params or {})
        self.imbalance = imbalance
        self.random_state = random_state
        self.preprocessor_: Pipeline | None = None
        self.estimator_: Any = None

    def _preprocessor(self) -> Pipeline | None:
        steps: list[tuple[str, Any]] = []
        if self.model_type not in NATIVE_NAN or self.imbalance == "smote":
            steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
        if self.model_type == "logistic":
            steps.append(("scale", StandardScaler()))
        return Pipeline(steps) if steps else None

    def _weighted_params(self, y: np.ndarray) -> dict[str, Any]:
        params = dict(self.params)
        if self.imbalance != "class_weight":
            return params
        positives = max(int(y.sum()), 1)
        if self.model_type in ("xgboost", "lightgbm"):
            params.setdefault("scale_pos_weight", (len(y) - positives) / positives)
        elif self.model_type == "catboost":
            params.setdefault("auto_class_weights", "Balanced")
        elif self.model_type != "balanced_random_forest":
            params.setdefault("class_weight", "balanced")
        return params

    def fit(self, X: pl.DataFrame | np.ndarray, y: np.ndarray) -> HotspotModel:
        """Fit preprocessing and the classifier on training rows; returns self."""
        check_model_type(self.model_type)
        if self.imbalance not in ("none", "class_weight", "smote"):
            raise ModelError(
                f"imbalance must be none, class_weight or smote; got '{self.imbalance}'. "
                "Pass --use-smote or --class-weight."
            )
        labels = np.asarray(y).astype(np.int8)
        if np.unique(labels).size < 2:
            raise ModelError(
                f"training labels have a single class ({int(labels[0]) if labels.size else 'none'})"
                "; a classifier needs both. Use more data or a lower --z-threshold."
            )
        matrix = as_matrix(X, self.feature_names)
        self.preprocessor_ = self._preprocessor()
        if self.preprocessor_ is not None:
            matrix = self.preprocessor_.fit_transform(matrix).astype(np.float32)
        if self.imbalance == "smote":
            from imblearn.over_sampling import SMOTE

            k = int(min(5, max(labels.sum() - 1, 1)))
            matrix, labels = SMOTE(random_state=self.random_state, k_neighbors=k).fit_resample(
                matrix, labels)
            logger.info("SMOTE resampled the training rows to %d", len(labels))
        self.estimator_ = ESTIMATORS[self.model_type](self._weighted_params(labels),
                                                      self.random_state)
        self.estimator_.fit(matrix, labels)
        return self

    def transform(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """The classifier's input matrix for ``X`` (after fitted preprocessing)."""
        matrix = as_matrix(X, self.feature_names)
        if self.preprocessor_ is not None:
            matrix = self.preprocessor_.transform(matrix).astype(np.float32)
        return matrix

    def predict_proba(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """Positive-class probability per row (1-D)."""
        if self.estimator_ is None:
            raise ModelError("the model is not fitted; call fit() first.")
        matrix = self.transform(X)
        if hasattr(self.estimator_, "predict_proba"):
            return np.asarray(self.estimator_.predict_proba(matrix))[:, 1].astype(np.float64)
        # A LightGBM Booster loaded from its native text file predicts probabilities.
        return np.asarray(self.estimator_.predict(matrix), dtype=np.float64)

    def feature_importance(self) -> dict[str, float]:
        """Normalised importances (trees: impurity/gain; logistic: |coefficient|)."""
        est = self.estimator_
        if est is None:
            return {}
        if hasattr(est, "feature_importances_"):
            values = np.asarray(est.feature_importances_, dtype=np.float64)
        elif hasattr(est, "coef_"):
            values = np.abs(np.asarray(est.coef_, dtype=np.float64)).ravel()
        elif hasattr(est, "feature_importance"):
            values = np.asarray(est.feature_importance(importance_type="gain"), dtype=np.float64)
        else:
            return {}
        total = values.sum() or 1.0
        return {n: float(v / total) for n, v in zip(self.feature_names, values, strict=True)}
