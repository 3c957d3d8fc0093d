"""Rolling-origin backtest: at each origin, train exactly as ``crimecast run`` does, forecast
the next K bins, score every unit.

For each origin ``o`` (``START``, ``START + K`` bins, … up to ``END``):

1. SEPP is refitted by EM on the events known before the origin's validation fold
   and its intensity column rebuilt (:func:`~crimecast.pipeline.training.fit_sepp_feature`);
2. :func:`~crimecast.pipeline.training.train_forecasters`, the code behind the
   run's train step, trains on labelled rows whose bins end ``gap`` bins before
   ``o`` (the label-settling gap), with the run's objective, class weights or
   SMOTE, tuning, validation-fold thresholds, ensemble weight and champion choice;
3. every forecaster scores every study-area unit for bins ``[o, o + K)``, and rows
   with ``model = "champion"`` repeat the forecaster chosen on validation at that
   origin.

Predictions of all origins are pooled for the metrics; ``backtest.json`` names
the champion of each origin and gives bootstrap intervals (over forecast bins)
for the learned model's and the champion's PAI against the best naive
forecaster's (chosen on validation at each origin).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import shapely

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.errors import ConfigError
from crimecast.evaluation.hotspot import hotspot_metrics, hotspot_per_bin
from crimecast.evaluation.metrics import classification_metrics
from crimecast.evaluation.predict import predictions_frame
from crimecast.executor import SERIAL, Executor
from crimecast.features.build import FeatureSet
from crimecast.features.units import UnitSet
from crimecast.pipeline.training import fit_sepp_feature, train_forecasters

logger = logging.getLogger(__name__)

CHAMPION = "champion"
BEST_NAIVE = "naive_best"  # named so that yardsticks count it among the naive forecasters


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


@dataclass(frozen=True)
class _Shared:
    """What every origin of one backtest reads (sent to each worker once)."""

    frame: pl.DataFrame
    clean: pl.DataFrame
    units: UnitSet
    unit_areas: pl.DataFrame
    pipeline: PipelineConfig
    features_config: FeatureConfig
    models: ModelsConfig
    tune_trials: int
    last: dt.datetime


@dataclass(frozen=True)
class _OriginResult:
    predictions: pl.DataFrame
    thresholds: dict[str, float]
    summary: dict[str, Any]
    metric: str
    gap: int
    objective: str
    features: list[str]


def _run_origin(shared: _Shared, window: tuple[dt.datetime, dt.datetime]) -> _OriginResult:
    """Refit SEPP, train every forecaster as `run` does, and score bins origin..stop."""
    origin, stop = window
    built, config = fit_sepp_feature(FeatureSet(frame=shared.frame), shared.clean, shared.units,
                                     shared.pipeline, shared.features_config,
                                     forecast_start=origin)
    result = train_forecasters(built.frame, shared.unit_areas, shared.pipeline, config,
                               shared.models, shared.tune_trials, forecast_start=origin)
    test = built.frame.filter(pl.col("bin_start").is_between(origin, min(stop, shared.last)))
    champion, naive = result.champion, result.validation["best_naive"]
    predictions = predictions_frame(test, result.forecasters)
    chosen = {CHAMPION: champion, BEST_NAIVE: naive}
    predictions = pl.concat([predictions, *(
        predictions.filter(pl.col("model") == source).with_columns(model=pl.lit(alias))
        for alias, source in chosen.items() if source is not None)])
    thresholds = {name: result.thresholds[chosen.get(name, name)]
                  for name in predictions["model"].unique()}
    logger.info("origin %s: champion %s (best naive %s)", origin, champion, naive)
    return _OriginResult(
        predictions=predictions.with_columns(origin=pl.lit(origin)), thresholds=thresholds,
        summary={"origin": str(origin), "champion": champion,
                 "champion_kind": result.kinds[champion], "best_naive": naive,
                 "validation": result.validation["values"],
                 "ensemble_weight": result.validation["ensemble"]["weight"],
                 "sepp": config.sepp},
        metric=result.validation["metric"], gap=result.split.gap, objective=result.objective,
        features=result.features)


def run_backtest(
    frame: pl.DataFrame, clean: pl.DataFrame, units: UnitSet, unit_areas: pl.DataFrame,
    origins: tuple[dt.datetime, dt.datetime], retrain_every: int, pipeline: PipelineConfig,
    features_config: FeatureConfig, models: ModelsConfig, tune_trials: int = 0,
    n_resamples: int = 1000, executor: Executor | None = None,
) -> BacktestResult:
    """Backtest every forecaster over the origin range (see the module docstring).

    ``frame`` is the panel as built (with ``_u``/``_b``); ``clean`` and ``units`` are
    what it was built from (SEPP is refitted at each origin). Origins are independent
    blocks run through ``executor`` (default: in this process); results do not
    depend on it.
    """
    if retrain_every < 1:
        raise ConfigError(
            f"retrain_every must be >= 1 bin; got {retrain_every}. Pass --retrain-every 7."
        )
    bins = frame["bin_start"].unique().sort().to_list()
    first, last = origins
    forecast_bins = [b for b in bins if first <= b <= last]
    if not forecast_bins:
        raise ConfigError(
            f"no panel bins between {first} and {last}; the data covers {bins[0]} to "
            f"{bins[-1]}. Pass --origins inside that range."
        )
    position = {b: i for i, b in enumerate(bins)}
    windows = [(origin, bins[min(position[origin] + retrain_every, len(bins)) - 1])
               for origin in forecast_bins[::retrain_every]]
    shared = _Shared(frame, clean, units, unit_areas, pipeline, features_config, models,
                     tune_trials, last)
    done = (executor or SERIAL).map(_run_origin, windows, shared=shared)
    thresholds: dict[str, list[float]] = {}
    for part in done:
        for name, value in part.thresholds.items():
            thresholds.setdefault(name, []).append(value)
    predictions = pl.concat([part.predictions for part in done])
    result = done[-1]
    report = {
        "models": {name: _metrics(predictions.filter(pl.col("model") == name), unit_areas,
                                  float(np.median(thresholds[name])))
                   for name in predictions["model"].unique(maintain_order=True)},
        "metric": result.metric,
        "learned": pipeline.model_type,
        "origins": [part.summary for part in done],
        "retrain_every_bins": retrain_every,
        "gap_bins": result.gap,
        "objective": result.objective,
        "features": result.features,
        "forecast_bins": predictions["bin_start"].n_unique(),
        "units": predictions["unit_id"].n_unique(),
        "rows_per_model": predictions.filter(pl.col("model") == CHAMPION).height,
        "intervals": _intervals(predictions, unit_areas, pipeline.model_type, n_resamples),
    }
    return BacktestResult(predictions=predictions.select(
        "origin", "unit_id", "bin_start", "model", "score", "actual_count", "prob", "y_true",
        "region"), report=report)


def _intervals(predictions: pl.DataFrame, unit_areas: pl.DataFrame, learned: str,
               n_resamples: int, seed: int = 0) -> dict[str, Any]:
    """Bootstrap (over forecast bins, paired) 95% intervals of PAI and of the ratios of the
    learned model, the ensemble and the champion to the best naive forecaster."""
    out: dict[str, Any] = {}
    per_bin = {}
    for name in sorted(predictions["model"].unique().to_list()):
        part = predictions.filter(pl.col("model") == name).select(
            "unit_id", "bin_start", "score", "actual_count")
        per_bin[name] = hotspot_per_bin(part, unit_areas).select("bin_start", "pai@1%", "pai@5%")
    rng = np.random.default_rng(seed)
    reference = per_bin[BEST_NAIVE]
    for key in ("pai@1%", "pai@5%"):
        base = reference[key].to_numpy().astype(np.float64)
        valid = ~np.isnan(base)
        draws = rng.integers(0, valid.sum(), size=(n_resamples, valid.sum()))
        block: dict[str, Any] = {}
        for name, table in per_bin.items():
            values = table[key].to_numpy().astype(np.float64)[valid]
            means = np.nanmean(values[draws], axis=1)
            ratio = means / np.nanmean(base[valid][draws], axis=1)
            block[name] = {"value": float(np.nanmean(values)),
                           "ci95": [float(np.nanpercentile(means, 2.5)),
                                    float(np.nanpercentile(means, 97.5))],
                           "ratio_to_best_naive": float(np.nanmean(values) /
                                                        np.nanmean(base[valid])),
                           "ratio_ci95": [float(np.nanpercentile(ratio, 2.5)),
                                          float(np.nanpercentile(ratio, 97.5))]}
        out[key] = block
    out["note"] = (f"{n_resamples} paired bootstrap resamples of the forecast bins with events; "
                   "best_naive is the naive forecaster chosen on validation at each origin.")
    return out


def _metrics(rows: pl.DataFrame, unit_areas: pl.DataFrame, threshold: float) -> dict[str, Any]:
    labelled = rows.filter(pl.col("y_true").is_not_null())
    classification = classification_metrics(labelled["y_true"].to_numpy(),
                                             labelled["prob"].to_numpy(), threshold) \
        if labelled.height else {}
    return {"hotspot_metrics": hotspot_metrics(rows, unit_areas),
            "binary_classification_metrics": classification,
            "decision_threshold_median": threshold}


def write_backtest_views(result: BacktestResult, units: pl.DataFrame, learned: str,
                         out: Path) -> None:
    """``backtest.html`` (the plots) and ``units.geojson`` (the places' shapes, joined to
    ``predictions.parquet`` on ``unit_id``) beside the backtest's files."""
    from crimecast.cards.backtest_page import backtest_html
    from crimecast.data.output import write_bytes
    from crimecast.features.unit_table import table_geometries

    highlight = [CHAMPION, learned, BEST_NAIVE, "ensemble", "sepp"]
    page = backtest_html(result.predictions, result.report, units, highlight, CHAMPION)
    write_bytes(out / "backtest.html", page.encode())
    geometries = table_geometries(units)
    features = ",".join(
        '{"type":"Feature","properties":' + json.dumps(
            {"unit_id": u, "name": n, "region": r, "area_km2": a}) + ',"geometry":'
        + shapely.to_geojson(g) + "}"
        for u, n, r, a, g in zip(units["unit_id"].cast(pl.Utf8), units["name"],
                                 units["region"], units["area_km2"], geometries, strict=True))
    write_bytes(out / "units.geojson",
                ('{"type":"FeatureCollection","features":[' + features + "]}").encode())
