"""Leak-freedom of the forecasters themselves, and backtest = run.

* Changing the future never changes a forecast: train every forecaster (learned,
  ensemble, SEPP refitted by EM, every naive one) at a random origin, then add,
  drop or move events that occur at or after the origin; every forecaster's score
  for the origin's bin is bit-identical.
* One backtest origin trains the same forecasters as ``crimecast run`` whose test
  period starts there: the same predictions, the same champion.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig, Settings
from crimecast.evaluation.predict import predictions_frame
from crimecast.features.build import build_features
from crimecast.features.unit_table import unit_table
from crimecast.pipeline.training import fit_sepp_feature, train_forecasters
from tests.features.test_leakage import CATEGORIES, START, UNITS, make_events

DAYS = 120
CONFIG = FeatureConfig(time_bin="1d", label="topk", weather="none", settle_days=3)
PIPELINE = PipelineConfig(model_type="logistic")
AREAS = unit_table(UNITS).select("unit_id", "area_km2")


def _forecast(rows: list[tuple[float, float, float, int, str]], origin: dt.datetime
              ) -> pl.DataFrame:
    events = make_events(rows)
    built = build_features(events, UNITS, CONFIG, start=START,
                           end=START + dt.timedelta(days=DAYS))
    built, config = fit_sepp_feature(built, events, UNITS, PIPELINE, CONFIG,
                                     forecast_start=origin)
    result = train_forecasters(built.frame, AREAS, PIPELINE, config, ModelsConfig(),
                               forecast_start=origin)
    rows_at_origin = built.frame.filter(pl.col("bin_start") == origin)
    return predictions_frame(rows_at_origin, result.forecasters).select(
        "model", "unit_id", "score", "prob").sort("model", "unit_id")


def _history(rng: np.random.Generator, n: int) -> list[tuple[float, float, float, int, str]]:
    # A few persistent hotspots plus noise, so every forecaster has something to learn.
    centres = rng.uniform(-1.5, 1.5, size=(4, 2))
    out = []
    for _ in range(n):
        x, y = centres[rng.integers(4)] + rng.normal(0, 0.3, 2) if rng.random() < 0.7 else \
            rng.uniform(-1.9, 1.9, 2)
        out.append((float(rng.uniform(0, 24 * DAYS)), float(np.clip(x, -1.9, 1.9)),
                    float(np.clip(y, -1.9, 1.9)), int(rng.choice([0, 0, 1, 2])),
                    str(rng.choice(CATEGORIES))))
    return out


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), origin_day=st.integers(80, DAYS - 5), data=st.data())
def test_future_events_never_change_any_forecast(seed: int, origin_day: int,
                                                 data: st.DataObject) -> None:
    rows = _history(np.random.default_rng(seed), 900)
    origin = START + dt.timedelta(days=origin_day)
    cut = origin_day * 24.0
    perturbed = [r for r in rows if r[0] < cut or data.draw(st.booleans())]
    perturbed += [(data.draw(st.floats(cut, 24.0 * DAYS)), data.draw(st.floats(-1.9, 1.9)),
                   data.draw(st.floats(-1.9, 1.9)), 0, "property") for _ in range(30)]
    before, after = _forecast(rows, origin), _forecast(perturbed, origin)
    assert before.height == after.height > 0
    assert before.equals(after)


def test_a_leaky_forecaster_fails_the_same_check() -> None:
    """Control: a forecaster allowed to see the origin's own bin is caught."""
    rows = _history(np.random.default_rng(3), 900)
    origin = START + dt.timedelta(days=100)
    perturbed = [*rows, *[(100 * 24.0 + 5, 0.1, 0.1, 0, "property")] * 5]

    def leaky(events: list) -> np.ndarray:
        built = build_features(make_events(events), UNITS, CONFIG, start=START,
                               end=START + dt.timedelta(days=DAYS))
        return built.frame.filter(pl.col("bin_start") == origin)["target_count"].to_numpy()

    assert not np.array_equal(leaky(rows), leaky(perturbed))


def test_one_backtest_origin_trains_what_the_run_trains(tmp_path: Path) -> None:
    from crimecast.data.output import write_incidents
    from crimecast.data.prepare import prepare_incidents
    from crimecast.features.job import build_units_for
    from crimecast.pipeline.backtest import run_backtest
    from crimecast.pipeline.run import run_pipeline
    from crimecast.synthetic.generate import generate_incidents

    data = tmp_path / "lapd.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 5, 31), seed=8), data)
    settings = Settings().with_overrides(
        "features", spatial_unit="area", time_bin="1d", label="topk", weather="none",
    ).with_overrides("pipeline", model_type="logistic", runs_dir=str(tmp_path / "runs"),
                     class_weight=False)
    summary = run_pipeline(settings, [str(data)], schema="lapd", bootstrap_resamples=5)
    info = json.loads((summary.run_dir / "train" / "train_info.json").read_text())
    origin = dt.datetime.fromisoformat(info["split"]["test_start"])
    cleaned = prepare_incidents([str(data)], "lapd", settings.cleaning)
    units = build_units_for(cleaned.clean, cleaned, settings.features)
    frame = build_features(cleaned.clean, units, settings.features).frame
    week = origin + dt.timedelta(days=6)
    result = run_backtest(frame, cleaned.clean, units, unit_table(units), (origin, week), 7,
                          settings.pipeline, settings.features, settings.models,
                          n_resamples=10)
    assert len(result.report["origins"]) == 1
    run_predictions = pl.read_parquet(summary.run_dir / "evaluate" / "predictions.parquet")
    for model in ("logistic", "sepp", "ensemble", "prior_counts_52w", "kde_13w_2x"):
        mine = result.predictions.filter(pl.col("model") == model).sort("bin_start", "unit_id")
        theirs = run_predictions.filter(pl.col("model") == model,
                                        pl.col("bin_start") <= week).sort("bin_start", "unit_id")
        assert mine.height == theirs.height == 7 * 21
        assert np.allclose(mine["score"].to_numpy(), theirs["score"].to_numpy(), rtol=1e-6,
                           atol=1e-9), model
    assert result.report["origins"][0]["champion"] == info["validation"]["champion"]
    assert result.report["origins"][0]["sepp"] == json.loads(
        (summary.run_dir / "process" / "features_meta.json").read_text())["feature_config"]["sepp"]
