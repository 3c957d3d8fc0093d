"""The feature panel: density, hand-checked values, horizon, metadata and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.config import FeatureConfig
from crimecast.features.build import build_features
from crimecast.features.catalog import SPECS
from crimecast.features.meta import feature_columns
from tests.features.test_leakage import START, UNITS, make_events

ORIGINAL_FEATURES = {
    "hour (cyclical)", "day_of_week (cyclical)", "month (cyclical)", "year", "is_holiday",
    "is_weekend", "is_weekend_or_holiday", "hourly_crime_rate", "daily_crime_rate",
    "monthly_crime_rate", "yearly_crime_rate", "crime_rate_last_1h", "crime_rate_last_3h_avg",
    "crime_rate_last_6h_sum", "crime_rate_yesterday_same_hour", "was_hourly_hotspot_last_hour",
    "was_daily_hotspot_yesterday", "was_hotspot_last_year_same_day", "temperature",
    "wind_speed",
}


def _build(rows: list, **config: object) -> pl.DataFrame:
    settings = FeatureConfig(weather="none", **config)  # type: ignore[arg-type]
    built = build_features(make_events(rows), UNITS, settings, start=START,
                           end=START + dt.timedelta(hours=47))
    return built.frame


def test_panel_is_dense_including_empty_bins() -> None:
    frame = _build([(1.5, 0.1, 0.1, 0, "property")])
    assert frame.height == len(UNITS) * 48
    assert frame["target_count"].sum() == 1
    assert frame.select(pl.struct("unit_id", "bin_start").is_unique().all()).item()


def test_lags_by_hand_with_a_late_report() -> None:
    # Two events in the same cell at 01:30; the second is reported two days later.
    rows = [(1.5, 0.1, 0.1, 0, "violent"), (1.6, 0.1, 0.1, 2, "property")]
    frame = _build(rows).filter(pl.col("target_count").sum().over("unit_id") > 0)
    by_hour = {r["bin_start"].hour: r for r in frame.sort("bin_start").iter_rows(named=True)
               if r["bin_start"].day == START.day}
    assert by_hour[1]["target_count"] == 2
    assert by_hour[1]["count_last_bin"] == 0  # the bin itself is never a feature
    assert by_hour[2]["count_last_bin"] == 1  # only the same-day report is known
    assert by_hour[4]["count_last_3_mean"] == pytest.approx(1 / 3)
    assert by_hour[8]["count_last_6_sum"] == 0
    assert by_hour[2]["violent_count_30d"] == 1 and by_hour[2]["property_count_30d"] == 0
    assert by_hour[2]["near_repeat_48h_400m"] == 1


def test_horizon_shifts_the_issue_time() -> None:
    rows = [(1.5, 0.1, 0.1, 0, "violent")]
    one = _build(rows, horizon=1).sort("unit_id", "bin_start")
    three = _build(rows, horizon=3).sort("unit_id", "bin_start")
    hit = one.filter(pl.col("count_last_bin") > 0)["bin_start"].to_list()
    late = three.filter(pl.col("count_last_bin") > 0)["bin_start"].to_list()
    assert hit == [START + dt.timedelta(hours=2)]
    assert late == [START + dt.timedelta(hours=4)]


def test_every_original_feature_has_a_documented_name() -> None:
    documented = {spec.original for spec in SPECS.values() if spec.original}
    assert documented >= ORIGINAL_FEATURES


def test_meta_lists_features_targets_and_label_rate() -> None:
    config = FeatureConfig(weather="none", label="topk", topk_pct=5)
    built = build_features(make_events([(1.5, 0.1, 0.1, 0, "violent")]), UNITS, config,
                           start=START, end=START + dt.timedelta(hours=47))
    meta = built.meta
    names = [f["name"] for f in meta["features"]]
    assert names == feature_columns(built.frame)
    assert {t["name"] for t in meta["targets"]} == {"target_count", "target_zscore",
                                                    "target_hotspot"}
    assert meta["label"]["rule"] == "topk" and meta["label"]["positive_rate"] > 0
    assert all(f["is_target"] is False for f in meta["features"])


def test_features_cli_on_real_lapd_months(shared_data: Path, tmp_path: Path) -> None:
    files = [str(shared_data / "lapd" / f"lapd_2024_0{m}_citywide.csv.gz") for m in (2, 3)]
    result = CliRunner().invoke(app, ["features", "--data", *files, "--spatial-unit", "area",
                                      "--time-bin", "1h", "--label", "zscore", "--out",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(tmp_path / "features.parquet")
    meta = json.loads((tmp_path / "features_meta.json").read_text())
    assert frame.height == 21 * 24 * 60 == meta["panel"]["rows"]
    assert {"unit_id", "bin_start", "target_count", "target_hotspot"} <= set(frame.columns)
    assert 0.05 < meta["label"]["positive_rate"] < 0.15
    assert frame["temp_c"].null_count() < frame.height  # LA weather joined
