"""The validation fold of :func:`~crimecast.pipeline.training.train_forecasters`: every
forecaster fitted before the fold is calibrated, thresholded and measured on it, the
ensemble's weight is chosen there, and the validated thresholds are carried to the
forecasters refitted on the whole training period.

The forecasters are independent of each other, so they are fitted and measured side
by side on threads (:func:`~crimecast.evaluation.threads.thread_map`); each one's
numbers are exactly what they are alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import rankdata

from crimecast.evaluation.selection import best_of, metric_value, score_rows
from crimecast.evaluation.threads import thread_map
from crimecast.models.estimators import HotspotModel
from crimecast.models.naive import (
    ENSEMBLE,
    ColumnForecaster,
    EnsembleForecaster,
    Forecaster,
    is_naive,
)
from crimecast.models.split import best_f1_threshold
from crimecast.models.train import LABEL

ENSEMBLE_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))


def kind_of(name: str, learned: str) -> str:
    """``learned``, ``ensemble``, ``naive`` or ``sepp``."""
    if name == learned:
        return "learned"
    if name == ENSEMBLE:
        return "ensemble"
    return "naive" if is_naive(name) else "sepp"


def _score(model: Forecaster, rows: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return model.score(rows), model.predict_proba(rows)


def carry_threshold(threshold: float, probe: np.ndarray, final: np.ndarray) -> float:
    """The validated F1 threshold, moved to the refitted model's probability scale.

    The threshold is chosen on the validation fold with the model fitted before it;
    the model refitted on the whole training period gives other probabilities. What
    carries over is the *share of rows flagged*: the final threshold flags the same
    share of the validation rows (no labels are used).
    """
    share = float(np.mean(probe >= threshold))
    if not 0.0 < share < 1.0 or final.size == 0:
        return threshold
    return float(np.quantile(final, 1.0 - share, method="higher"))


def best_weight(learned: np.ndarray, naive: np.ndarray, model: EnsembleForecaster,
                rows: pl.DataFrame, unit_areas: pl.DataFrame, metric: str) -> float:
    """The ensemble weight with the best validation metric (ties: the smaller weight)."""
    labels = rows[LABEL].to_numpy()

    def value_at(weight: float) -> float | None:
        score = model.blend(learned, naive, weight)
        # Any order-preserving map into [0, 1] ranks the same for PR-AUC and ROC-AUC.
        order = rankdata(score) / len(score)
        threshold = best_f1_threshold(labels, order)
        return metric_value(score_rows(rows, score, order), unit_areas, metric, threshold)

    best, best_value = 0.0, -np.inf
    for weight, value in zip(ENSEMBLE_WEIGHTS, thread_map(value_at, ENSEMBLE_WEIGHTS),
                             strict=True):
        if value is not None and value > best_value + 1e-12:
            best, best_value = weight, value
    return best


@dataclass
class Validated:
    """Every forecaster fitted before the validation fold and what the fold says of it."""

    probe: dict[str, Forecaster]
    scored: dict[str, tuple[np.ndarray, np.ndarray]]  # (score, probability) on the fold
    thresholds: dict[str, float]
    values: dict[str, float | None]  # the primary metric on the fold
    kinds: dict[str, str]
    columns: list[str]  # the column forecasters (naive and SEPP), in catalogue order
    best_naive: str | None
    weight: float  # the ensemble's weight on the learned model


def validate(learned: HotspotModel, columns: list[str], fit_rows: pl.DataFrame,
             valid_rows: pl.DataFrame, unit_areas: pl.DataFrame, metric: str) -> Validated:
    """Fit the column forecasters on ``fit_rows``, measure them and ``learned`` on
    ``valid_rows`` by ``metric``, and build the ensemble of ``learned`` with the best
    naive forecaster, its weight chosen on the fold."""
    y_fit = fit_rows[LABEL].to_numpy()
    probe: dict[str, Forecaster] = {learned.model_type: learned}
    probe.update(zip(columns, thread_map(
        lambda name: ColumnForecaster(name).fit(fit_rows, y_fit), columns), strict=True))
    y_valid = valid_rows[LABEL].to_numpy()

    def measured(name: str) -> tuple[tuple[np.ndarray, np.ndarray], float, float | None]:
        score, prob = _score(probe[name], valid_rows)
        threshold = best_f1_threshold(y_valid, prob)
        return (score, prob), threshold, metric_value(score_rows(valid_rows, score, prob),
                                                      unit_areas, metric, threshold)

    checked = dict(zip(probe, thread_map(measured, list(probe)), strict=True))
    result = Validated(
        probe=probe, scored={name: c[0] for name, c in checked.items()},
        thresholds={name: c[1] for name, c in checked.items()},
        values={name: c[2] for name, c in checked.items()},
        kinds={name: kind_of(name, learned.model_type) for name in probe},
        columns=columns, best_naive=None, weight=0.0)
    naive_name = result.best_naive = best_of(result.values, result.kinds, "naive")
    if naive_name is None:
        return result
    naive = probe[naive_name]
    assert isinstance(naive, ColumnForecaster)
    blend = EnsembleForecaster(learned, naive)
    blend.fit(fit_rows, y_fit)
    result.weight = blend.weight = best_weight(
        result.scored[learned.model_type][0], result.scored[naive_name][0], blend, valid_rows,
        unit_areas, metric)
    blend.fit(fit_rows, y_fit)
    probe[ENSEMBLE] = blend
    result.scored[ENSEMBLE] = _score(blend, valid_rows)
    result.thresholds[ENSEMBLE] = best_f1_threshold(y_valid, result.scored[ENSEMBLE][1])
    result.values[ENSEMBLE] = metric_value(score_rows(valid_rows, *result.scored[ENSEMBLE]),
                                           unit_areas, metric, result.thresholds[ENSEMBLE])
    result.kinds[ENSEMBLE] = "ensemble"
    return result


def refit_columns(validated: Validated, train: pl.DataFrame) -> dict[str, Forecaster]:
    """The column forecasters recalibrated on the whole training period."""
    y_train = train[LABEL].to_numpy()
    return dict(zip(validated.columns, thread_map(
        lambda name: ColumnForecaster(name).fit(train, y_train), validated.columns),
        strict=True))


def final_forecasters(validated: Validated, learned: HotspotModel,
                      columns: dict[str, Forecaster], train: pl.DataFrame,
                      valid_rows: pl.DataFrame) -> tuple[dict[str, Forecaster],
                                                         dict[str, float]]:
    """Every forecaster refitted on the whole training period (the ensemble with the
    validated weight) and its validated threshold carried to its new scale."""
    final: dict[str, Forecaster] = {learned.model_type: learned, **columns}
    if validated.best_naive is not None:
        naive = final[validated.best_naive]
        assert isinstance(naive, ColumnForecaster)
        final[ENSEMBLE] = EnsembleForecaster(learned, naive, validated.weight).fit(
            train, train[LABEL].to_numpy())
    # The learned model first: the ensemble then reuses its prediction of the same rows.
    probs: dict[str, Any] = {learned.model_type: learned.predict_proba(valid_rows)}
    others = [name for name in final if name != learned.model_type]
    probs.update(zip(others, thread_map(lambda name: final[name].predict_proba(valid_rows),
                                        others), strict=True))
    thresholds = {name: carry_threshold(validated.thresholds[name],
                                        validated.scored[name][1], probs[name])
                  for name in final}
    return final, thresholds
