"""One declaration per feature: every built column is declared, every declaration builds."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from crimecast.config import FeatureConfig
from crimecast.features.build import build_features
from crimecast.features.catalog import CATALOG, SPECS, history_days, lookback_days
from crimecast.features.context import Horizon
from crimecast.features.meta import feature_columns
from crimecast.models.naive import COLUMN_FORECASTERS, NAIVE
from tests.features.test_leakage import START, UNITS, make_events

CONFIGS = [FeatureConfig(time_bin=b, weather="none") for b in ("1h", "1d", "7d")]


def _events() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows = [(float(h), float(x), float(y), int(d), str(c)) for h, x, y, d, c in zip(
        rng.uniform(0, 24 * 70, 300), rng.uniform(-1.9, 1.9, 300), rng.uniform(-1.9, 1.9, 300),
        rng.choice([0, 0, 1, 3], 300), rng.choice(["violent", "property", "other"], 300),
        strict=True)]
    return make_events(rows)


def test_every_built_column_is_declared_and_every_declaration_builds() -> None:
    events = _events()
    built: set[str] = set()
    for config in CONFIGS:
        frame = build_features(events, UNITS, config).frame
        columns = [c for c in frame.columns
                   if c not in ("_u", "_b", "unit_id", "bin_start", "region")
                   and not c.startswith("target_")]
        undeclared = [c for c in columns if c not in SPECS]
        assert undeclared == []
        built |= set(feature_columns(frame))
    weather = {spec.name for spec in CATALOG if spec.source == "weather"}
    # Weather columns need the weather join (tested in test_build); all others build here.
    assert set(SPECS) - built == weather


def test_naive_forecasters_are_derived_from_the_declarations() -> None:
    windows = {f"prior_counts_{w}" for w in ("1w", "4w", "13w", "26w", "52w", "104w", "all")}
    assert windows <= set(NAIVE) and "historical_average" in NAIVE
    assert {n for n in NAIVE if n.startswith("kde_")} == {
        s.name for s in CATALOG if s.name.startswith("kde_") and s.group == "long_memory"}
    assert set(COLUMN_FORECASTERS.values()) <= set(SPECS)


def test_lookbacks_come_from_the_declarations() -> None:
    horizon = Horizon.of(FeatureConfig(time_bin="1d", horizon=3), z_window=28)
    assert lookback_days("prior_counts_52w", horizon) == 364 + 2
    assert lookback_days("count_last_bin", horizon) == 1 + 2
    assert lookback_days("hour_sin", horizon) == 0.0
    assert math.isinf(lookback_days("prior_counts_all", horizon))
    assert history_days(["count_last_bin", "prior_counts_52w"], horizon) == 366
    assert math.isinf(history_days([s.name for s in CATALOG], horizon))


@pytest.mark.parametrize("window,weeks", [("4w", 4), ("52w", 52)])
def test_prior_counts_by_hand(window: str, weeks: int) -> None:
    # Three events in one cell, 1, 20 and 300 days before the issue day.
    day = 24.0
    rows = [(400 * day - d * day + 1, 0.1, 0.1, 0, "property") for d in (1, 20, 300)]
    issue = START + dt.timedelta(days=400)
    frame = build_features(make_events(rows), UNITS, FeatureConfig(time_bin="1d", weather="none"),
                           end=issue).frame
    row = frame.filter(pl.col("bin_start") == issue, pl.col(f"prior_counts_{window}") > 0)
    expected = sum(1 for d in (1, 20, 300) if d <= 7 * weeks)
    assert row[f"prior_counts_{window}"].to_list() == [expected]
