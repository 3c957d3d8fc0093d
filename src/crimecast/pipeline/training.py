"""Train every forecaster and choose the champion on validation: the one code path of
``crimecast run`` and of each ``crimecast backtest`` origin.

1. Split the labelled rows by time (:mod:`crimecast.models.split`): training bins
   end ``gap`` bins before the forecast period, so every training label was known
   when the forecast is issued.
2. Carve a validation fold from the end of the training period the same way. On
   it, fit the learned model (its objective, class weights or SMOTE, tuned
   parameters) on the earlier rows and score every forecaster: the learned model,
   SEPP, every naive forecaster, and the ensemble of the learned model with the
   best naive one (its weight chosen on the same fold). Each gets its F1
   decision threshold there, and the primary metric ranks them; the best is the
   champion. Nothing is chosen on the test period.
3. Refit the learned model on the whole training period (the naive forecasters
   and SEPP only recalibrate their probability) and keep the validated weight,
   thresholds and ranking.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.evaluation.selection import champion_line, primary_metric, rank, ranking_table
from crimecast.features.build import FeatureSet, rebuild_column
from crimecast.features.excitation import SeppFit, fit_panel_sepp
from crimecast.features.meta import feature_columns
from crimecast.features.units import UnitSet
from crimecast.models.estimators import HotspotModel, check_model_type
from crimecast.models.naive import COLUMN_FORECASTERS, Forecaster
from crimecast.models.split import TimeSplit, label_gap, time_split
from crimecast.models.train import (
    bin_position,
    fit_learned,
    imbalance_of,
    labelled_rows,
    model_params,
    resolve_objective,
)
from crimecast.models.tuning import tune_params
from crimecast.pipeline.validation import (
    final_forecasters,
    refit_columns,
    validate,
)

logger = logging.getLogger(__name__)

VALIDATION_SHARE = 0.8


@dataclass
class TrainResult:
    """Every fitted forecaster, the validated choices and the split."""

    learned: HotspotModel
    forecasters: dict[str, Forecaster]
    kinds: dict[str, str]
    thresholds: dict[str, float]
    validation: dict[str, Any]
    features: list[str]
    objective: str
    split: TimeSplit
    bins: list[Any]
    seconds: dict[str, float] = field(default_factory=dict)
    tuned: dict[str, Any] = field(default_factory=dict)

    @property
    def champion(self) -> str:
        """The forecaster with the best validation value of the primary metric."""
        name: str = self.validation["champion"]
        return name

    def info(self) -> dict[str, Any]:
        """JSON-ready description of the split, features, thresholds and validation."""
        split = self.split
        test_end = self.bins[-1] if split.test_start < len(self.bins) else None
        return {
            "model_type": self.learned.model_type,
            "objective": self.objective,
            "params": self.learned.params,
            "effective_params": self.learned.effective_params(),
            "imbalance": self.learned.imbalance,
            "features": self.features,
            "decision_threshold": self.thresholds[self.learned.model_type],
            "thresholds": self.thresholds,
            "forecasters": self.kinds,
            "validation": self.validation,
            "split": {
                **split.describe(),
                "train_start": str(self.bins[0]),
                "train_end": str(self.bins[split.train_end - 1]),
                "test_start": str(self.bins[split.test_start]) if test_end else None,
                "test_end": str(test_end) if test_end else None,
            },
            "seconds": self.seconds,
            "tuning": self.tuned,
        }


@dataclass(frozen=True)
class SplitPlan:
    """The bins of the labelled rows, the train/test split and the validation fold."""

    bins: list[Any]
    split: TimeSplit
    inner: TimeSplit

    @property
    def validation_cutoff(self) -> Any:
        """Start of the first validation-fold bin: what SEPP may be fitted on ends here."""
        return self.bins[self.inner.test_start - self.inner.gap]


def plan_split(rows: pl.DataFrame, pipeline: PipelineConfig, features_config: FeatureConfig,
               forecast_start: Any = None) -> SplitPlan:
    """Split labelled ``rows`` (sorted by bin) as :func:`train_forecasters` does."""
    return plan_bins(rows["bin_start"].unique(maintain_order=True).to_list(), pipeline,
                     features_config, forecast_start)


def plan_bins(bins: list[Any], pipeline: PipelineConfig, features_config: FeatureConfig,
              forecast_start: Any = None) -> SplitPlan:
    """Split the ordered labelled ``bins`` (their starts) as :func:`train_forecasters` does."""
    gap = label_gap(features_config)
    if forecast_start is None:
        split = time_split(len(bins), pipeline.train_test_split_ratio, gap)
    else:
        start = sum(1 for b in bins if b < forecast_start)
        split = TimeSplit(train_end=start - gap, test_start=start, n_bins=len(bins), gap=gap)
    return SplitPlan(bins=bins, split=split,
                     inner=time_split(split.train_end, VALIDATION_SHARE, gap))


def train_forecasters(
    frame: pl.DataFrame, unit_areas: pl.DataFrame, pipeline: PipelineConfig,
    features_config: FeatureConfig, models: ModelsConfig, tune_trials: int = 0,
    forecast_start: Any = None, bins: list[Any] | None = None,
) -> TrainResult:
    """Fit every forecaster on ``frame``'s training period and choose the champion.

    ``forecast_start`` (a bin start) fixes the first forecast bin, as a backtest
    origin does; by default it follows ``pipeline.train_test_split_ratio``. ``bins``
    (every labelled bin start) splits a frame that holds only some bins: a streamed
    panel's training design and validation sample (:mod:`crimecast.pipeline.streamed`).
    """
    objective = resolve_objective(pipeline, features_config)
    check_model_type(pipeline.model_type, objective)
    rows = labelled_rows(frame)
    del frame  # the caller passes a frame it does not keep: one copy in memory, not two
    plan = (plan_split(rows, pipeline, features_config, forecast_start) if bins is None
            else plan_bins(bins, pipeline, features_config, forecast_start))
    bins, split, inner, gap = plan.bins, plan.split, plan.inner, plan.split.gap
    position = bin_position(rows, bins)
    # Rows are sorted by bin, so every period is a contiguous slice (no copies).
    end, fit_end, valid_start = np.searchsorted(
        position, [split.train_end, inner.train_end, inner.test_start])
    train = rows.slice(0, int(end))
    inner_pos = position[:end]
    fit_rows = train.slice(0, int(fit_end))
    valid_rows = train.slice(int(valid_start))
    features = feature_columns(rows)
    params = model_params(models, pipeline.model_type)
    seconds: dict[str, float] = {}
    tuned: dict[str, Any] = {}
    if tune_trials > 0:
        began = time.perf_counter()
        tuned = tune_params(pipeline.model_type, train, features, inner_pos, gap, tune_trials,
                            imbalance_of(pipeline), models.random_state, params, objective)
        params.update(tuned["best_params"])
        seconds["tune"] = time.perf_counter() - began
    learned_name = pipeline.model_type
    metric = primary_metric(features_config.label, pipeline.gate_metric)
    columns = [name for name, column in COLUMN_FORECASTERS.items() if column in rows.columns]

    began = time.perf_counter()
    probe_learned = fit_learned(fit_rows, features, pipeline, objective, params,
                                models.random_state)
    seconds["validation_fit"] = time.perf_counter() - began
    validated = validate(probe_learned, columns, fit_rows, valid_rows, unit_areas, metric)
    # One LightGBM fit at a time, with nothing beside it: its threads wait for each other
    # many times per tree, so overlapping the two fits (or a fit and the validation work
    # above) on two cores made both slower, not the step faster.
    began = time.perf_counter()
    learned = fit_learned(train, features, pipeline, objective, params, models.random_state)
    seconds["final_fit"] = time.perf_counter() - began
    # The validation fold is the end of the training period: its scores are known already.
    learned.remember_as(train, valid_rows, int(valid_start))
    refitted = refit_columns(validated, train)
    values, kinds, naive_name = validated.values, validated.kinds, validated.best_naive
    champion = rank(values, kinds)[0]
    final, thresholds = final_forecasters(validated, learned, refitted, train, valid_rows)
    validation = {
        "metric": metric,
        "values": values,
        "ranking": ranking_table(values, kinds, metric),
        "champion": champion,
        "champion_kind": kinds[champion],
        "champion_line": champion_line(champion, kinds, learned_name, values, metric),
        "best_naive": naive_name,
        "ensemble": {"naive": naive_name, "weight": validated.weight},
        "bins": {"fit": inner.train_end, "gap": gap,
                 "validation": split.train_end - inner.test_start,
                 "start": str(bins[inner.test_start]),
                 "end": str(bins[split.train_end - 1])},
    }
    logger.info("trained %s (%s) on %d rows, %d features, gap %d bins; champion on "
                "validation: %s", learned_name, objective, train.height, len(features), gap,
                champion)
    return TrainResult(learned=learned, forecasters=final, kinds=kinds, thresholds=thresholds,
                       validation=validation, features=features, objective=objective,
                       split=split, bins=bins, seconds=seconds, tuned=tuned)


def fit_sepp_feature(
    built: FeatureSet, clean: pl.DataFrame, units: UnitSet, pipeline: PipelineConfig,
    features_config: FeatureConfig, forecast_start: Any = None,
) -> tuple[FeatureSet, FeatureConfig]:
    """Fit the SEPP by EM on events known before the validation fold and rebuild the
    ``sepp_intensity`` column with those parameters.

    The fit ends where the learned model's validation fit ends, so SEPP's
    parameters have seen neither the validation fold nor the test period. The
    returned config (and ``meta["feature_config"]``) carries the parameters, so
    serving rebuilds the same column.
    """
    config = features_config
    frame = built.frame
    fit_info: dict[str, Any] | None = None
    if "sepp_intensity" in frame.columns:
        plan = plan_split(labelled_rows(frame), pipeline, features_config, forecast_start)
        fit = fit_panel_sepp(clean, units, features_config, plan.validation_cutoff)
        if fit is not None:
            config = features_config.model_copy(update={"sepp": fit.params.as_dict()})
            frame = rebuild_column(frame, clean, units, config, "sepp_intensity")
            fit_info = sepp_fit_info(fit, plan.validation_cutoff)
    meta = {**built.meta, "feature_config": config.model_dump(mode="json"), "sepp_fit": fit_info}
    return FeatureSet(frame=frame, meta=meta), config


def sepp_fit_info(fit: SeppFit, cutoff: Any) -> dict[str, Any]:
    """``features_meta.json``'s ``sepp_fit``: the EM fit's parameters and diagnostics."""
    return {"params": fit.params.as_dict(), "events": fit.n_events, "pairs": fit.n_pairs,
            "iterations": fit.iterations, "converged": fit.converged,
            "log_likelihood": fit.log_likelihood, "seconds": round(fit.seconds, 3),
            "fitted_before": str(cutoff)}
