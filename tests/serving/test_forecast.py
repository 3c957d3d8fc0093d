"""Forecast windows use the training code path and only what was known at issue time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from crimecast.errors import ConfigError
from crimecast.features.build import build_features
from crimecast.features.timebins import TimeBinning
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecaster, compute_forecast, parse_at, parse_horizon
from crimecast.serving.state import Loaded
from crimecast.serving.store import EventStore

AT = dt.datetime(2023, 8, 1, 6)


def test_each_window_bin_equals_the_training_build_with_a_longer_horizon(
        loaded: Loaded, bundle: ModelBundle) -> None:
    """Bin j of the window is exactly build_features' row for horizon h + j."""
    store = loaded.store
    assert store is not None and bundle.units is not None
    cfg = bundle.feature_config
    binning = TimeBinning(cfg.time_bin, cfg.shift_start_hour)
    forecast = compute_forecast(bundle, store, loaded.weather, AT, "1d")
    probs = []
    for j in range(3):
        config = cfg.model_copy(update={"horizon": cfg.horizon + j})
        target = AT + j * binning.step
        full = build_features(store.events, bundle.units, config, weather=loaded.weather,
                              start=target - dt.timedelta(days=60), end=target)
        row = full.frame.filter(pl.col("bin_start") == target).sort("_u")
        probs.append(bundle.model.predict_proba(row))
    expected = np.mean(probs, axis=0)
    ranked = forecast.ranked.sort("unit_id")
    order = np.argsort(np.asarray(bundle.units.ids))
    assert ranked["score"].to_numpy() == pytest.approx(expected[order], abs=1e-9)
    assert ranked["peak_score"].to_numpy() == pytest.approx(np.max(probs, axis=0)[order],
                                                            abs=1e-9)


def test_the_first_bin_matches_the_training_panel_row(loaded: Loaded, bundle: ModelBundle,
                                                      served_run: object) -> None:
    """Served features for a bin equal the features the model was trained/evaluated on."""
    store = loaded.store
    assert store is not None and bundle.units is not None
    panel = pl.read_parquet(served_run.summary.run_dir / "process" / "features.parquet")  # type: ignore[attr-defined]
    row = panel.filter(pl.col("bin_start") == AT).sort("unit_id")
    forecast = compute_forecast(bundle, store, loaded.weather, AT, "8h")
    expected = bundle.model.predict_proba(row)
    assert forecast.ranked.sort("unit_id")["score"].to_numpy() == pytest.approx(expected,
                                                                                abs=1e-9)


def test_events_after_the_issue_time_change_nothing(loaded: Loaded,
                                                    bundle: ModelBundle) -> None:
    store = loaded.store
    assert store is not None
    before = compute_forecast(bundle, store, loaded.weather, AT, "1d").ranked
    # Drop everything that happened after issue time, and shift late reports later.
    known = store.events.filter(pl.col("occurred_at") < AT)
    late = store.events.filter(pl.col("occurred_at") >= AT).with_columns(
        pl.col("occurred_at") + dt.timedelta(hours=3))
    for events in (known, pl.concat([known, late, late])):
        other = EventStore(events=events.sort("occurred_at"), sources=("x",), rows_in=0,
                           rows_quarantined=0)
        after = compute_forecast(bundle, other, loaded.weather, AT, "1d").ranked
        assert after.equals(before)


def test_expected_count_is_the_same_window_in_the_previous_four_weeks(
        loaded: Loaded, bundle: ModelBundle) -> None:
    store = loaded.store
    assert store is not None and bundle.units is not None
    forecast = compute_forecast(bundle, store, loaded.weather, AT, "1d")
    events = store.events.filter(pl.col("reported_at") < AT)
    counts = []
    for weeks in range(1, 5):
        lo = AT - dt.timedelta(weeks=weeks)
        part = events.filter(pl.col("occurred_at") >= lo,
                             pl.col("occurred_at") < lo + dt.timedelta(days=1))
        counts.append(part.group_by("area_id").len())
    table = pl.concat(counts).group_by("area_id").agg(pl.col("len").sum() / 4)
    by_unit = {str(int(a)): v for a, v in table.iter_rows()}
    for unit, value in forecast.ranked.select("unit_id", "expected_count").iter_rows():
        assert value == pytest.approx(by_unit.get(unit, 0.0))


def test_forecaster_caches_by_window(loaded: Loaded, bundle: ModelBundle) -> None:
    forecaster = Forecaster(bundle, loaded.store, loaded.weather, cache_size=2)
    first = forecaster.forecast(AT, "8h")
    assert forecaster.forecast(AT + dt.timedelta(hours=5), "8H") is first
    forecaster.forecast(AT + dt.timedelta(days=1), "8h")
    forecaster.forecast(AT + dt.timedelta(days=2), "8h")
    assert forecaster.cached(AT, "8h") is None  # evicted (least recently used)


@pytest.mark.parametrize(("text", "bins"), [("8h", 1), ("16h", 2), ("1d", 3), ("1w", 21)])
def test_parse_horizon(text: str, bins: int) -> None:
    assert parse_horizon(text, TimeBinning("8h", 6), 7) == bins


def test_parse_at_rejects_far_dates() -> None:
    with pytest.raises(ConfigError) as err:
        parse_at("9999-01-01T00:00")
    assert str(err.value) == ("at must be between 1970-01-01 and 2100-01-01; got "
                              "'9999-01-01T00:00'. Pass a date-time near the data.")
