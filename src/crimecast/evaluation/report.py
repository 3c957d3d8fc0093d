"""Assemble ``evaluation.json`` (SageMaker model-quality style) from test-period predictions.

Shape (every float rounded to 6 decimals, ``None`` where undefined, never NaN)::

    binary_classification_metrics  {metric: {value, standard_deviation, ci_low, ci_high}}
    hotspot_metrics                {"pai@1%": {value, standard_deviation}, …,
                                    bins_evaluated, bins_without_events}
    baselines                      {model: {binary_classification_metrics,
                                            hotspot_metrics, decision_threshold}}
    per_area                       {regions: {region: {rows, positives,
                                                       binary_classification_metrics,
                                                       hotspot_metrics | None}},
                                    disparity: {metric: {max, min, gap,
                                                         best_region, worst_region}}}
    decision_threshold             the primary model's threshold
    data                           the caller's ``data`` plus rows_test, bins_test,
                                   units, positive_rate_test

A SageMaker ConditionStep reads ``binary_classification_metrics.f1.value``.
Classification values use every labelled test row of a model; their
``standard_deviation`` and 95% interval come from a block bootstrap over time
bins (:mod:`crimecast.evaluation.bootstrap`), the same resamples for every model.
Hotspot ``standard_deviation`` is the spread over bins. Rows without a label
(``y_true`` null) count for hotspot measures only.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np
import polars as pl

from crimecast.errors import DataError
from crimecast.evaluation.bootstrap import bootstrap_classification_metrics
from crimecast.evaluation.hotspot import (
    DEFAULT_SHARES,
    hotspot_metrics_by,
    hotspot_per_bin_of,
    summarise_per_bin,
)
from crimecast.evaluation.metrics import CLASSIFICATION_METRICS, classification_metrics
from crimecast.evaluation.threads import thread_map

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS: tuple[str, ...] = (
    "model", "unit_id", "region", "bin_start", "y_true", "prob", "score", "actual_count",
)
DISPARITY_METRICS: tuple[str, ...] = ("f1", "recall", "precision", "pr_auc", "pai@5%")
LOWER_IS_BETTER: frozenset[str] = frozenset({"brier", "log_loss"})
MIN_UNITS_FOR_REGION_HOTSPOTS = 2
DIGITS = 6


def json_safe(value: Any, path: str = "report") -> Any:
    """``value`` with floats rounded to 6 decimals, NaN/inf as ``None`` and numpy scalars,
    dates and paths turned into JSON types; raises :class:`DataError` on anything else."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return round(number, DIGITS) if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    raise DataError(
        f"{path} holds a value of type {type(value).__name__}, which evaluation.json "
        "cannot store; pass numbers, strings, booleans, dates, lists or dicts."
    )


def _check_predictions(
    predictions: pl.DataFrame, thresholds: Mapping[str, float], primary_model: str
) -> list[str]:
    """The models of the frame, primary first; raises on missing columns or thresholds."""
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise DataError(
            f"the predictions frame lacks column(s) {missing}; it needs {list(PREDICTION_COLUMNS)}."
        )
    models = sorted(predictions["model"].drop_nulls().unique().to_list())
    if primary_model not in models:
        raise DataError(
            f"primary_model {primary_model!r} has no rows in the predictions frame; "
            f"models present: {models}."
        )
    for model in models:
        threshold = thresholds.get(model)
        if threshold is None or not math.isfinite(float(threshold)):
            raise DataError(
                f"thresholds has no finite decision threshold for model {model!r} "
                f"(got {threshold!r}); choose one on the validation fold for every model."
            )
    for column in ("model", "region", "prob", "score", "actual_count", "bin_start", "unit_id"):
        if predictions[column].null_count():
            raise DataError(f"column {column!r} of the predictions has missing values.")
    return [primary_model, *(m for m in models if m != primary_model)]


def _labelled(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col("y_true").is_not_null())


def _classification_block(
    rows: pl.DataFrame, threshold: float, n_resamples: int, seed: int
) -> dict[str, dict[str, float | None]]:
    labelled = _labelled(rows)
    values = classification_metrics(
        labelled["y_true"].to_numpy(), labelled["prob"].to_numpy(), threshold
    )
    spread = bootstrap_classification_metrics(labelled, threshold, n_resamples, seed)
    return {
        metric: {"value": values[metric], **spread[metric]} for metric in CLASSIFICATION_METRICS
    }


def _model_block(
    rows: pl.DataFrame, per_bin: pl.DataFrame, threshold: float, n_resamples: int, seed: int
) -> dict[str, Any]:
    return {
        "binary_classification_metrics": _classification_block(rows, threshold, n_resamples, seed),
        "hotspot_metrics": summarise_per_bin(per_bin, DEFAULT_SHARES),
    }


def _region_blocks(
    rows: pl.DataFrame, unit_areas: pl.DataFrame, threshold: float
) -> dict[str, dict[str, Any]]:
    units = rows.group_by("region").agg(pl.col("unit_id").n_unique().alias("units"))
    eligible = units.filter(pl.col("units") >= MIN_UNITS_FOR_REGION_HOTSPOTS).select("region")
    hotspots = (
        hotspot_metrics_by(rows.join(eligible, on="region", how="semi"), unit_areas, "region")
        if eligible.height
        else {}
    )
    parts = rows.partition_by("region", as_dict=True)
    regions: dict[str, dict[str, Any]] = {}
    for key in sorted(parts, key=lambda k: str(k[0])):
        region, part = key[0], parts[key]
        labelled = _labelled(part)
        values = classification_metrics(
            labelled["y_true"].to_numpy(), labelled["prob"].to_numpy(), threshold
        )
        regions[str(region)] = {
            "rows": part.height,
            "positives": int(labelled["y_true"].sum()),
            "binary_classification_metrics": {m: {"value": v} for m, v in values.items()},
            "hotspot_metrics": hotspots.get(str(region)),
        }
    return regions


def disparity(regions: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Spread of each :data:`DISPARITY_METRICS` value across regions (``None`` values skipped)."""
    result: dict[str, dict[str, Any]] = {}
    for metric in DISPARITY_METRICS:
        family = "hotspot_metrics" if "@" in metric else "binary_classification_metrics"
        scored: list[tuple[str, float]] = []
        for region, info in regions.items():
            value = ((info.get(family) or {}).get(metric) or {}).get("value")
            if value is not None and math.isfinite(value):
                scored.append((region, float(value)))
        if not scored:
            result[metric] = dict.fromkeys(("max", "min", "gap", "best_region", "worst_region"))
            continue
        # Sorted by region first so ties go to the alphabetically first region.
        scored.sort(key=lambda item: item[0])
        high = max(scored, key=lambda item: item[1])
        low = min(scored, key=lambda item: item[1])
        best, worst = (low, high) if metric in LOWER_IS_BETTER else (high, low)
        result[metric] = {
            "max": high[1],
            "min": low[1],
            "gap": high[1] - low[1],
            "best_region": best[0],
            "worst_region": worst[0],
        }
    return result


def _data_block(rows: pl.DataFrame, data: Mapping[str, Any]) -> dict[str, Any]:
    labelled = _labelled(rows)
    computed = {
        "rows_test": rows.height,
        "bins_test": rows["bin_start"].n_unique(),
        "units": rows["unit_id"].n_unique(),
        "positive_rate_test": labelled.select(pl.col("y_true").cast(pl.Float64).mean()).item(),
    }
    block = dict(data)
    for key, value in computed.items():
        if key in block and block[key] != value:
            logger.warning("data[%r]=%r replaced by the value computed on the test frame, %r",
                           key, block[key], value)
        block[key] = value
    return block


def build_evaluation_report(
    predictions: pl.DataFrame,
    unit_areas: pl.DataFrame,
    thresholds: Mapping[str, float],
    primary_model: str,
    data: Mapping[str, Any],
    n_resamples: int = 200,
    seed: int = 0,
    per_bin: Mapping[str, pl.DataFrame] | None = None,
    parts: Mapping[str, pl.DataFrame] | None = None,
) -> dict[str, Any]:
    """Build the ``evaluation.json`` payload for ``primary_model`` and every other model.

    ``predictions`` has one row per (model, unit, bin) of the test period with
    the columns of :data:`PREDICTION_COLUMNS`; ``unit_areas`` (``unit_id``,
    ``area_km2``) covers the study area; ``thresholds`` maps every model to
    its decision threshold on ``prob``; every model other than the primary is
    reported under ``baselines``. ``data`` is passed through into ``data`` with
    the test-frame counts added. ``per_bin`` (each model's
    :func:`~crimecast.evaluation.hotspot.hotspot_per_bin` at shares including
    :data:`~crimecast.evaluation.hotspot.DEFAULT_SHARES`) and ``parts`` (the rows of
    each model, as :func:`~crimecast.evaluation.predict.prediction_parts` gives them)
    save computing them again. See the module docstring for the shape.
    """
    models = _check_predictions(predictions, thresholds, primary_model)
    by_model = dict(parts) if parts is not None else {
        key[0]: part for key, part in predictions.partition_by("model", as_dict=True).items()}
    tables = per_bin if per_bin is not None else hotspot_per_bin_of(
        {m: by_model[m] for m in models}, unit_areas)

    def block_of(model: str) -> dict[str, Any]:
        rows, threshold = by_model[model], float(thresholds[model])
        block = _model_block(rows, tables[model], threshold, n_resamples, seed)
        block["decision_threshold"] = threshold
        logger.info("evaluated %s on %d rows", model, rows.height)
        return block

    blocks = dict(zip(models, thread_map(block_of, models), strict=True))

    primary_rows = by_model[primary_model]
    primary = blocks.pop(primary_model)
    # Disparities come from the rounded regional values so that gap == max - min
    # holds for whoever reads the JSON.
    regions = json_safe(
        _region_blocks(primary_rows, unit_areas, float(thresholds[primary_model])),
        "per_area.regions",
    )
    report = {
        "binary_classification_metrics": primary["binary_classification_metrics"],
        "hotspot_metrics": primary["hotspot_metrics"],
        "baselines": blocks,
        "per_area": {"regions": regions, "disparity": disparity(regions)},
        "decision_threshold": primary["decision_threshold"],
        "data": _data_block(primary_rows, data),
    }
    return dict(json_safe(report))


def forecaster_ranking(report: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """Every forecaster ranked on validation (where the champion is chosen) and on test
    (reported only), with the champion and the plain-language line saying why."""
    from crimecast.evaluation.selection import metric_family, ranking_table

    validation = info["validation"]
    metric = validation["metric"]
    family = metric_family(metric)
    kinds = info["forecasters"]
    learned = info["model_type"]
    blocks = {learned: report, **report.get("baselines", {})}
    test = {name: ((block.get(family) or {}).get(metric) or {}).get("value")
            for name, block in blocks.items()}
    return dict(json_safe({
        "metric": metric,
        "learned": learned,
        "best_naive": validation["best_naive"],
        "champion": validation["champion"],
        "champion_kind": validation["champion_kind"],
        "champion_line": validation["champion_line"],
        "ensemble": validation["ensemble"],
        "validation": validation["values"],
        "validation_ranking": validation["ranking"],
        "test": test,
        "test_ranking": ranking_table(test, kinds, metric),
        "validation_bins": validation["bins"],
    }))
