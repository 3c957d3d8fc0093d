"""Training: split by time, fit the model and the baselines, pick the decision threshold.

The threshold is chosen on a validation fold at the end of the training period
(with the same gap as the test split), never on the test set. The final model is
then refit on the whole training period with that threshold.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.errors import ConfigError
from crimecast.evaluation.split import (
    TimeSplit,
    affordable_features,
    best_f1_threshold,
    time_split,
)
from crimecast.features.meta import feature_columns
from crimecast.models.baselines import BASELINES, BaselineModel
from crimecast.models.estimators import HotspotModel, check_model_type
from crimecast.models.tuning import tune_params

logger = logging.getLogger(__name__)

LABEL = "target_hotspot"
MAX_GAP_SHARE = 0.25


@dataclass
class TrainResult:
    """Everything the evaluation and the card need from training."""

    model: HotspotModel
    baselines: dict[str, BaselineModel]
    threshold: float
    baseline_thresholds: dict[str, float]
    features: list[str]
    dropped_features: list[str]
    split: TimeSplit
    bins: list[Any]
    seconds: dict[str, float] = field(default_factory=dict)
    tuned: dict[str, Any] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        """JSON-ready description of the split, features and thresholds."""
        split = self.split
        return {
            "model_type": self.model.model_type,
            "params": self.model.params,
            "imbalance": self.model.imbalance,
            "features": self.features,
            "dropped_features": self.dropped_features,
            "decision_threshold": self.threshold,
            "baseline_thresholds": self.baseline_thresholds,
            "split": {
                **split.describe(),
                "train_start": str(self.bins[0]),
                "train_end": str(self.bins[split.train_end - 1]),
                "test_start": str(self.bins[split.test_start]),
                "test_end": str(self.bins[-1]),
            },
            "seconds": self.seconds,
            "tuning": self.tuned,
        }


def labelled_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a hotspot label, sorted by time then unit."""
    if LABEL not in frame.columns:
        raise ConfigError(
            "the pipeline trains hotspot classifiers but the panel has no hotspot label "
            "(label 'count'). Pass --label zscore or --label topk."
        )
    return frame.filter(pl.col(LABEL).is_not_null()).sort("bin_start", "unit_id")


def bin_position(frame: pl.DataFrame, bins: list[Any]) -> np.ndarray:
    """Position of each row's bin in the ordered list of bins."""
    lookup = pl.DataFrame({"bin_start": bins, "_pos": np.arange(len(bins))},
                          schema_overrides={"bin_start": frame.schema["bin_start"]})
    return frame.join(lookup, on="bin_start", how="left", maintain_order="left")["_pos"].to_numpy()


def _fit(model: HotspotModel, rows: pl.DataFrame) -> HotspotModel:
    return model.fit(rows, rows[LABEL].to_numpy())


def train_models(
    frame: pl.DataFrame, pipeline: PipelineConfig, features_config: FeatureConfig,
    models: ModelsConfig, tune_trials: int = 0,
) -> TrainResult:
    """Split ``frame`` by time and fit the chosen model and every baseline."""
    check_model_type(pipeline.model_type)
    rows = labelled_rows(frame)
    bins = rows["bin_start"].unique(maintain_order=True).to_list()
    kept, dropped, gap = affordable_features(feature_columns(rows), features_config, len(bins),
                                             MAX_GAP_SHARE)
    if dropped:
        logger.warning("left out %d features whose look-back exceeds %.0f%% of the data span: %s",
                       len(dropped), MAX_GAP_SHARE * 100, ", ".join(dropped))
    split = time_split(len(bins), pipeline.train_test_split_ratio, gap)
    position = bin_position(rows, bins)
    train = rows.filter(pl.Series(position < split.train_end))
    inner = time_split(split.train_end, 0.8, gap)
    inner_pos = position[position < split.train_end]
    fit_rows = train.filter(pl.Series(inner_pos < inner.train_end))
    valid_rows = train.filter(pl.Series(inner_pos >= inner.test_start))
    imbalance = "smote" if pipeline.use_smote else (
        "class_weight" if pipeline.class_weight else "none")
    spec = models.models.get(pipeline.model_type)
    params = dict(spec.params) if spec else {}
    seconds: dict[str, float] = {}
    tuned: dict[str, Any] = {}
    if tune_trials > 0:
        began = time.perf_counter()
        tuned = tune_params(pipeline.model_type, train, kept, bin_position(train, bins[
            : split.train_end]), gap, tune_trials, imbalance, models.random_state, params)
        params.update(tuned["best_params"])
        seconds["tune"] = time.perf_counter() - began

    def make() -> HotspotModel:
        return HotspotModel(pipeline.model_type, kept, params, imbalance, models.random_state)

    began = time.perf_counter()
    validation_model = _fit(make(), fit_rows)
    threshold = best_f1_threshold(valid_rows[LABEL].to_numpy(),
                                  validation_model.predict_proba(valid_rows))
    seconds["validation_fit"] = time.perf_counter() - began
    began = time.perf_counter()
    model = _fit(make(), train)
    seconds["final_fit"] = time.perf_counter() - began
    baselines: dict[str, BaselineModel] = {}
    baseline_thresholds: dict[str, float] = {}
    for name in BASELINES:
        probe = BaselineModel(name).fit(fit_rows, fit_rows[LABEL].to_numpy())
        baseline_thresholds[name] = best_f1_threshold(valid_rows[LABEL].to_numpy(),
                                                      probe.predict_proba(valid_rows))
        baselines[name] = BaselineModel(name).fit(train, train[LABEL].to_numpy())
    logger.info("trained %s on %d rows (%d features, gap %d bins); threshold %.3f",
                pipeline.model_type, train.height, len(kept), gap, threshold)
    return TrainResult(model=model, baselines=baselines, threshold=threshold,
                       baseline_thresholds=baseline_thresholds, features=kept,
                       dropped_features=dropped, split=split, bins=bins, seconds=seconds,
                       tuned=tuned)
