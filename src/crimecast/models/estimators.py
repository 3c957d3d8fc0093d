"""Named learned forecasters with scikit-learn semantics: classifiers, Poisson count
regressors and per-bin rankers (:data:`OBJECTIVES`).

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
from crimecast.models.calibration import calibrate, platt
from crimecast.models.train_scores import capture_train_scores, matches_predictions

logger = logging.getLogger(__name__)

N_JOBS = 2
MEMO_FRAMES = 3  # frames whose scores a model remembers (see HotspotModel.score)


def _forest(params: dict[str, Any], seed: int, objective: str, extra: bool) -> Any:
    from sklearn import ensemble

    kind = ("ExtraTrees" if extra else "RandomForest") + (
        "Classifier" if objective == "binary" else "Regressor")
    defaults: dict[str, Any] = {"n_estimators": 200, "min_samples_leaf": 20,
                                "max_features": "sqrt", "n_jobs": N_JOBS, "random_state": seed}
    if objective == "poisson":
        defaults["criterion"] = "poisson"
    return getattr(ensemble, kind)(**{**defaults, **params})


def _random_forest(params: dict[str, Any], seed: int, objective: str) -> Any:
    return _forest(params, seed, objective, extra=False)


def _extra_trees(params: dict[str, Any], seed: int, objective: str) -> Any:
    return _forest(params, seed, objective, extra=True)


def _balanced_random_forest(params: dict[str, Any], seed: int, objective: str) -> Any:
    from imblearn.ensemble import BalancedRandomForestClassifier

    return BalancedRandomForestClassifier(**{
        "n_estimators": 200, "min_samples_leaf": 5, "sampling_strategy": "all",
        "replacement": True, "bootstrap": False, "n_jobs": N_JOBS, "random_state": seed,
        **params})


def _xgboost(params: dict[str, Any], seed: int, objective: str) -> Any:
    import xgboost

    defaults: dict[str, Any] = {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.05,
                                "subsample": 0.8, "colsample_bytree": 0.8,
                                "tree_method": "hist", "n_jobs": N_JOBS, "random_state": seed}
    if objective == "binary":
        return xgboost.XGBClassifier(**{**defaults, "eval_metric": "logloss", **params})
    if objective == "poisson":
        return xgboost.XGBRegressor(**{**defaults, "objective": "count:poisson", **params})
    return xgboost.XGBRanker(**{**defaults, "objective": "rank:ndcg", **params})


def _lightgbm(params: dict[str, Any], seed: int, objective: str) -> Any:
    import lightgbm

    # Small, heavily regularised trees: crime counts are noisy and the long windows carry
    # most of the signal. On the real LAPD Feb+Mar 2024 validation fold (area x 1 h, z-score)
    # these beat 31-leaf trees on PR-AUC (0.177 against 0.157); chosen on validation only.
    defaults: dict[str, Any] = {
        "n_estimators": 300, "learning_rate": 0.03, "num_leaves": 7, "max_bin": 63,
        "min_child_samples": 200, "subsample": 0.8, "subsample_freq": 1,
        "colsample_bytree": 0.5, "n_jobs": N_JOBS, "random_state": seed, "verbose": -1,
        "importance_type": "gain",
        # LightGBM's automatic choice is row-wise histograms here: 25% slower, identical
        # predictions on 1M design rows x 63 features, 2 cores (BENCHMARKS.md).
        "force_col_wise": "force_row_wise" not in params}
    if objective == "binary":
        return lightgbm.LGBMClassifier(**{**defaults, **params})
    if objective == "poisson":
        return lightgbm.LGBMRegressor(**{**defaults, "objective": "poisson", **params})
    return lightgbm.LGBMRanker(**{**defaults, "objective": "lambdarank", **params})


def _catboost(params: dict[str, Any], seed: int, objective: str) -> Any:
    import catboost

    defaults: dict[str, Any] = {"iterations": 300, "depth": 6, "learning_rate": 0.08,
                                "thread_count": N_JOBS, "random_seed": seed, "verbose": False,
                                "allow_writing_files": False}
    if objective == "binary":
        return catboost.CatBoostClassifier(**{**defaults, **params})
    return catboost.CatBoostRegressor(**{**defaults, "loss_function": "Poisson", **params})


def _logistic(params: dict[str, Any], seed: int, objective: str) -> Any:
    from sklearn.linear_model import LogisticRegression, PoissonRegressor

    if objective == "poisson":
        return PoissonRegressor(**{"max_iter": 1000, "alpha": 1e-4, **params})
    return LogisticRegression(**{"max_iter": 2000, "C": 1.0, "random_state": seed, **params})


ESTIMATORS: dict[str, Callable[[dict[str, Any], int, str], Any]] = {
    "random_forest": _random_forest,
    "extra_trees": _extra_trees,
    "balanced_random_forest": _balanced_random_forest,
    "xgboost": _xgboost,
    "catboost": _catboost,
    "lightgbm": _lightgbm,
    "logistic": _logistic,
}
OBJECTIVES: dict[str, tuple[str, ...]] = {
    "binary": tuple(ESTIMATORS),
    "poisson": ("random_forest", "extra_trees", "xgboost", "catboost", "lightgbm", "logistic"),
    "lambdarank": ("xgboost", "lightgbm"),
}
NATIVE_NAN = {"xgboost", "lightgbm", "catboost"}


def check_model_type(model_type: str, objective: str = "binary") -> None:
    """Raise a helpful error for an unknown model type or an unsupported objective."""
    if model_type not in ESTIMATORS:
        raise ModelError(
            f"model_type must be one of {', '.join(ESTIMATORS)}; got '{model_type}'. "
            "Pass --model-type lightgbm."
        )
    if objective not in OBJECTIVES:
        raise ModelError(
            f"objective must be one of {', '.join(OBJECTIVES)}; got '{objective}'. "
            "Pass --objective poisson."
        )
    if model_type not in OBJECTIVES[objective]:
        raise ModelError(
            f"objective '{objective}' needs a model type among "
            f"{', '.join(OBJECTIVES[objective])}; got '{model_type}'. Pass --objective binary "
            "or --model-type lightgbm."
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
    return X.select(pl.col(feature_names).cast(pl.Float32)).to_numpy().astype(np.float32,
                                                                            copy=False)


class HotspotModel:
    """A named learned forecaster (scikit-learn style).

    ``model_type`` is one of :data:`ESTIMATORS`; ``params`` override its defaults.
    ``objective`` is ``binary`` (a hotspot classifier), ``poisson`` (a count
    regression: the ranking PAI measures is by expected count) or ``lambdarank``
    (a ranker per bin). ``imbalance`` is ``none``, ``class_weight`` (balanced
    weights or ``scale_pos_weight``) or ``smote`` (training rows only); both
    apply to the binary objective. :meth:`score` is the ranking score (probability,
    expected count or rank score); :meth:`predict_proba` the hotspot probability,
    for count and rank objectives through a logistic calibration of the score
    fitted on the training rows' hotspot labels.
    """

    def __init__(
        self,
        model_type: str = "lightgbm",
        feature_names: list[str] | None = None,
        params: dict[str, Any] | None = None,
        imbalance: str = "none",
        random_state: int = 42,
        objective: str = "binary",
    ) -> None:
        self.model_type = model_type
        self.feature_names = list(feature_names or [])
        self.params = dict(params or {})
        self.imbalance = imbalance
        self.random_state = random_state
        self.objective = objective
        self.preprocessor_: Pipeline | None = None
        self.estimator_: Any = None
        self.calibration_: tuple[float, float] = (1.0, 0.0)
        self._memo: tuple[tuple[pl.DataFrame, np.ndarray], ...] = ()

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

    def _check(self, labels: np.ndarray) -> None:
        check_model_type(self.model_type, self.objective)
        if self.imbalance not in ("none", "class_weight", "smote"):
            raise ModelError(
                f"imbalance must be none, class_weight or smote; got '{self.imbalance}'. "
                "Pass --use-smote or --class-weight."
            )
        if self.imbalance != "none" and self.objective != "binary":
            raise ModelError(
                f"imbalance '{self.imbalance}' applies to the binary objective; got objective "
                f"'{self.objective}'. Pass --objective binary or drop --use-smote/--class-weight."
            )
        if np.unique(labels).size < 2:
            raise ModelError(
                f"training labels have a single class ({int(labels[0]) if labels.size else 'none'})"
                "; a classifier needs both. Use more data or a lower --z-threshold."
            )

    def fit(
        self, X: pl.DataFrame | np.ndarray, y: np.ndarray, counts: np.ndarray | None = None,
        groups: np.ndarray | None = None, sample_weight: np.ndarray | None = None,
    ) -> HotspotModel:
        """Fit preprocessing and the estimator on training rows; returns self.

        ``y`` holds the hotspot labels; the count and rank objectives also need
        ``counts`` (the bins' event counts) and the rank objective ``groups`` (sizes of
        consecutive row groups, one per bin, rows sorted by bin). ``sample_weight``
        (:mod:`crimecast.models.sampling`) weighs the estimator's loss and the
        calibration; SMOTE and the rank objective take none.
        """
        labels = np.asarray(y).astype(np.int8)
        self._check(labels)
        self._memo = ()
        if self.objective != "binary" and counts is None:
            raise ModelError(f"objective '{self.objective}' needs the counts to fit on; pass "
                             "counts=target_count.")
        matrix = as_matrix(X, self.feature_names)
        self.preprocessor_ = self._preprocessor()
        if self.preprocessor_ is not None:
            matrix = self.preprocessor_.fit_transform(matrix).astype(np.float32)
        target: np.ndarray = labels
        if self.imbalance == "smote":
            from imblearn.over_sampling import SMOTE

            k = int(min(5, max(labels.sum() - 1, 1)))
            matrix, target = SMOTE(random_state=self.random_state,
                                   k_neighbors=k).fit_resample(matrix, labels)
            logger.info("SMOTE resampled the training rows to %d", len(target))
        elif self.objective == "poisson":
            target = np.asarray(counts, dtype=np.float64)
        elif self.objective == "lambdarank":
            # Relevance grades must be small non-negative integers.
            target = np.minimum(np.asarray(counts), 30).astype(np.int32)
        self.estimator_ = ESTIMATORS[self.model_type](self._weighted_params(target),
                                                      self.random_state, self.objective)
        weights = None if self.imbalance == "smote" or self.objective == "lambdarank" \
            else sample_weight
        # LightGBM hands over the training rows' scores (models.train_scores); with SMOTE
        # the matrix holds other rows than X.
        captured: dict[str, np.ndarray] = {}
        extra: dict[str, Any] = {"callbacks": [capture_train_scores(captured)]} \
            if self.model_type == "lightgbm" and self.imbalance != "smote" else {}
        if self.objective == "lambdarank":
            if groups is None:
                raise ModelError("objective 'lambdarank' needs groups (rows per bin); pass "
                                 "groups.")
            self.estimator_.fit(matrix, target, group=groups, **extra)
        elif weights is not None:
            self.estimator_.fit(matrix, target, sample_weight=weights, **extra)
        else:
            self.estimator_.fit(matrix, target, **extra)
        raw = captured.get("scores")
        if raw is not None and not matches_predictions(raw, self._raw, matrix):
            logger.warning("LightGBM's training scores differ from its predictions; "
                           "predicting the training rows instead")
            raw = None
        if raw is not None and isinstance(X, pl.DataFrame):
            self.remember(X, raw)
        if self.objective != "binary":
            self.calibration_ = platt(self._raw(matrix) if raw is None else raw, labels,
                                      weights=weights)
        return self

    def effective_params(self) -> dict[str, Any]:
        """The fitted estimator's hyper-parameters, defaults included (scalars only), for
        the model card; empty before :meth:`fit`."""
        getter = getattr(self.estimator_, "get_params", None)
        if getter is None:
            return {}
        params = getter() if self.model_type != "catboost" else self.estimator_.get_all_params()
        return {k: v for k, v in sorted(params.items())
                if v is not None and isinstance(v, str | int | float | bool)}

    def transform(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """The estimator's input matrix for ``X`` (after fitted preprocessing)."""
        matrix = as_matrix(X, self.feature_names)
        if self.preprocessor_ is not None:
            matrix = self.preprocessor_.transform(matrix).astype(np.float32)
        return matrix

    def _raw(self, matrix: np.ndarray) -> np.ndarray:
        est = self.estimator_
        if self.objective == "binary" and hasattr(est, "predict_proba"):
            return np.asarray(est.predict_proba(matrix))[:, 1].astype(np.float64)
        # A LightGBM Booster loaded from its native file predicts probabilities (binary),
        # expected counts (poisson) or rank scores (lambdarank).
        return np.asarray(est.predict(matrix), dtype=np.float64)

    def forget(self) -> None:
        """Drop the remembered frames (and the memory they hold)."""
        self._memo = ()

    def remember(self, X: pl.DataFrame, raw: np.ndarray) -> None:
        """Remember ``raw`` as the scores of frame ``X`` (by identity; see :meth:`score`)."""
        memo = self._memo  # one read: a server thread may replace it meanwhile
        self._memo = ((X, raw.copy()), *(m for m in memo if m[0] is not X))[:MEMO_FRAMES]

    def remember_as(self, X: pl.DataFrame, same: pl.DataFrame, offset: int = 0) -> None:
        """Remember ``X``'s scores for ``same`` too: a frame with the rows of ``X`` from row
        ``offset`` on, in the same order (``X`` plus a weight column, or a slice of it)."""
        for frame, raw in self._memo:
            if frame is X and offset + same.height <= raw.shape[0]:
                self.remember(same, raw[offset:offset + same.height])
                return

    def score(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """The ranking score per row: probability, expected count or rank score.

        The last few frames scored (and the training frame) are remembered by identity,
        holding a reference, so the score and the probability of the same rows, or an
        ensemble and its learned part on them, cost one prediction.
        """
        if self.estimator_ is None:
            raise ModelError("the model is not fitted; call fit() first.")
        for frame, raw in self._memo:
            if frame is X:
                return raw.copy()
        raw = self._raw(self.transform(X))
        if isinstance(X, pl.DataFrame):
            self.remember(X, raw)
        return raw

    def predict_proba(self, X: pl.DataFrame | np.ndarray) -> np.ndarray:
        """Hotspot probability per row (1-D)."""
        raw = self.score(X)
        if self.objective == "binary":
            return raw
        return calibrate(raw, self.calibration_, log=self.objective == "poisson")

    def feature_importance(self) -> dict[str, float]:
        """Normalised importances (trees: impurity/gain; linear: |coefficient|)."""
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
