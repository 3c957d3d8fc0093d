"""Rolling-origin backtest: retrain every K bins, forecast the next K, score every unit.

For each origin ``o`` (``START``, ``START + K`` bins, … before ``END``) the model
is trained on labelled rows whose bins end ``gap`` bins before ``o`` (the same
look-back gap as the pipeline's split) and forecasts every study-area unit for
bins ``[o, o + K)``. The baselines (prior counts, historical average, KDE) score
the same rows. Predictions of all origins are pooled for the metrics.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.errors import ConfigError
from crimecast.evaluation.hotspot import hotspot_metrics
from crimecast.evaluation.metrics import classification_metrics
from crimecast.evaluation.split import affordable_features, best_f1_threshold
from crimecast.features.meta import feature_columns
from crimecast.models.baselines import BASELINES, BaselineModel
from crimecast.models.estimators import HotspotModel
from crimecast.models.train import LABEL, MAX_GAP_SHARE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestResult:
    """Pooled predictions of every origin and the metrics per model."""

    predictions: pl.DataFrame
    report: dict[str, Any]


_ORIGINS = re.compile(r"^(\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?):(\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?)$")


def parse_origins(text: str) -> tuple[dt.datetime, dt.datetime]:
    """Parse ``START:END`` (ISO dates or datetimes)."""
    match = _ORIGINS.match(text.strip())
    try:
        if match is None:
            raise ValueError(text)
        start, end = (dt.datetime.fromisoformat(g) for g in match.groups())
    except ValueError:
        raise ConfigError(
            f"origins must be START:END with ISO dates; got '{text}'. "
            "Pass --origins 2016-10-01:2016-11-30."
        ) from None
    if end < start:
        raise ConfigError(
            f"origins must end after they start; got '{text}'. Pass --origins START:END."
        )
    return start, end


def run_backtest(
    frame: pl.DataFrame, unit_areas: pl.DataFrame, origins: tuple[dt.datetime, dt.datetime],
    retrain_every: int, pipeline: PipelineConfig, features_config: FeatureConfig,
    models: ModelsConfig,
) -> BacktestResult:
    """Backtest ``pipeline.model_type`` and the baselines over the origin range."""
    if retrain_every < 1:
        raise ConfigError(
            f"retrain_every must be >= 1 bin; got {retrain_every}. Pass --retrain-every 7."
        )
    frame = frame.sort("bin_start", "unit_id")
    bins = frame["bin_start"].unique(maintain_order=True).to_list()
    first, last = origins
    forecast_bins = [b for b in bins if first <= b <= last]
    if not forecast_bins:
        raise ConfigError(
            f"no panel bins between {first} and {last}; the data covers {bins[0]} to "
            f"{bins[-1]}. Pass --origins inside that range."
        )
    features, dropped, gap = affordable_features(feature_columns(frame), features_config,
                                                 len(bins), MAX_GAP_SHARE)
    position = {b: i for i, b in enumerate(bins)}
    frame = frame.with_columns(_pos=pl.col("bin_start").replace_strict(position,
                                                                      return_dtype=pl.Int64))
    parts: list[pl.DataFrame] = []
    thresholds: dict[str, list[float]] = {}
    starts = forecast_bins[::retrain_every]
    for origin in starts:
        o = position[origin]
        train = frame.filter((pl.col("_pos") < o - gap) & pl.col(LABEL).is_not_null())
        test = frame.filter((pl.col("_pos") >= o) & (pl.col("_pos") < o + retrain_every)
                            & (pl.col("bin_start") <= last))
        if train.height == 0 or train[LABEL].sum() == 0 or test.height == 0:
            logger.warning("origin %s: no positive training rows; skipped", origin)
            continue
        labels = train[LABEL].to_numpy()
        fitted: dict[str, HotspotModel | BaselineModel] = {
            pipeline.model_type: HotspotModel(
                pipeline.model_type, features, _params(models, pipeline.model_type),
                "smote" if pipeline.use_smote else "none", models.random_state,
            ).fit(train, labels)}
        for name in BASELINES:
            fitted[name] = BaselineModel(name).fit(train, labels)
        for name, model in fitted.items():
            prob = model.predict_proba(test)
            score = model.score(test) if isinstance(model, BaselineModel) else prob
            thresholds.setdefault(name, []).append(best_f1_threshold(labels,
                                                                     model.predict_proba(train)))
            parts.append(test.select(
                pl.lit(origin).alias("origin"), "unit_id", "region", "bin_start",
                pl.lit(name).alias("model"), pl.Series("score", score, dtype=pl.Float64),
                pl.Series("prob", prob, dtype=pl.Float64),
                pl.col("target_count").cast(pl.Int64).alias("actual_count"),
                pl.col(LABEL).cast(pl.Int8).alias("y_true"),
            ))
    if not parts:
        raise ConfigError("no origin had training data with hotspots; move --origins later.")
    predictions = pl.concat(parts)
    report = {
        "models": {name: _metrics(predictions.filter(pl.col("model") == name), unit_areas,
                                  float(np.median(thresholds[name])))
                   for name in predictions["model"].unique(maintain_order=True)},
        "origins": [str(o) for o in starts],
        "retrain_every_bins": retrain_every,
        "gap_bins": gap,
        "features": features,
        "dropped_features": dropped,
        "forecast_bins": predictions["bin_start"].n_unique(),
        "units": predictions["unit_id"].n_unique(),
        "rows_per_model": predictions.height // max(predictions["model"].n_unique(), 1),
    }
    return BacktestResult(predictions=predictions.select(
        "origin", "unit_id", "bin_start", "model", "score", "actual_count", "prob", "y_true",
        "region"), report=report)


def _params(models: ModelsConfig, model_type: str) -> dict[str, Any]:
    spec = models.models.get(model_type)
    return dict(spec.params) if spec else {}


def _metrics(rows: pl.DataFrame, unit_areas: pl.DataFrame, threshold: float) -> dict[str, Any]:
    labelled = rows.filter(pl.col("y_true").is_not_null())
    classification = classification_metrics(labelled["y_true"].to_numpy(),
                                             labelled["prob"].to_numpy(), threshold) \
        if labelled.height else {}
    return {"hotspot_metrics": hotspot_metrics(rows, unit_areas),
            "binary_classification_metrics": classification,
            "decision_threshold_median": threshold}
