"""Hyper-parameter tuning with Optuna over expanding-window time-series folds.

Folds never shuffle: each validates on a later block of bins than it trains on,
with a gap as long as the longest feature look-back between the two. The
objective is the mean average precision (PR-AUC) over the folds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import optuna
import polars as pl
from sklearn.metrics import average_precision_score

from crimecast.models.estimators import HotspotModel
from crimecast.models.split import expanding_folds
from crimecast.models.train import group_sizes

logger = logging.getLogger(__name__)

N_FOLDS = 3


def suggest(trial: optuna.Trial, model_type: str) -> dict[str, Any]:
    """The search space of each model type."""
    if model_type == "lightgbm":
        return {"num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
                "n_estimators": trial.suggest_int("n_estimators", 100, 500)}
    if model_type == "xgboost":
        return {"max_depth": trial.suggest_int("max_depth", 3, 10),
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                "subsample": trial.suggest_float("subsample", 0.5, 1.0),
                "n_estimators": trial.suggest_int("n_estimators", 100, 500)}
    if model_type == "catboost":
        return {"depth": trial.suggest_int("depth", 4, 8),
                "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
                "iterations": trial.suggest_int("iterations", 100, 500)}
    if model_type == "logistic":
        return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}
    return {"n_estimators": trial.suggest_int("n_estimators", 100, 400),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
            "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2"])}


def tune_params(
    model_type: str, rows: pl.DataFrame, features: list[str], position: np.ndarray,
    gap: int, trials: int, imbalance: str, seed: int, base_params: dict[str, Any],
    objective: str = "binary",
) -> dict[str, Any]:
    """Run ``trials`` Optuna trials; return the best parameters and the study's summary."""
    n_bins = int(position.max()) + 1
    folds = expanding_folds(n_bins, N_FOLDS, gap)
    labels = rows["target_hotspot"].to_numpy()

    def mean_pr_auc(trial: optuna.Trial) -> float:
        params = {**base_params, **suggest(trial, model_type)}
        scores = []
        for train_end, valid_start, valid_end in folds:
            fit_mask = position < train_end
            valid_mask = (position >= valid_start) & (position < valid_end)
            if labels[fit_mask].sum() == 0 or labels[valid_mask].sum() == 0:
                continue
            model = HotspotModel(model_type, features, params, imbalance, seed, objective)
            fit_rows = rows.filter(pl.Series(fit_mask))
            model.fit(fit_rows, labels[fit_mask], counts=fit_rows["target_count"].to_numpy(),
                      groups=group_sizes(fit_rows) if objective == "lambdarank" else None)
            prob = model.predict_proba(rows.filter(pl.Series(valid_mask)))
            scores.append(average_precision_score(labels[valid_mask], prob))
        return float(np.mean(scores)) if scores else 0.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=seed))
    study.optimize(mean_pr_auc, n_trials=trials)
    logger.info("tuning: best mean PR-AUC %.4f with %s", study.best_value, study.best_params)
    return {"best_params": study.best_params, "best_value": study.best_value,
            "trials": trials, "folds": [list(f) for f in folds], "gap_bins": gap,
            "metric": "mean PR-AUC over expanding time-series folds"}
