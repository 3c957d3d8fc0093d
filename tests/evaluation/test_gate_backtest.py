"""The gate's decision rule and the rolling-origin backtest."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.errors import ConfigError
from crimecast.evaluation.gate import decide_gate
from crimecast.models.naive import NAIVE
from crimecast.pipeline.backtest import parse_origins
from tests.browser import DESKTOP, screenshot


def _evaluation(f1: float, validation: dict[str, float], metric: str = "pr_auc") -> dict:
    return {
        "binary_classification_metrics": {"f1": {"value": f1}, "pr_auc": {"value": 0.2}},
        "hotspot_metrics": {"pai@1%": {"value": 2.0}},
        "baselines": {n: {"binary_classification_metrics": {"pr_auc": {"value": v / 2}},
                          "hotspot_metrics": {"pai@1%": {"value": v * 5}}}
                      for n, v in validation.items() if n != "lightgbm"},
        "forecasters": {"metric": metric, "learned": "lightgbm", "validation": validation,
                        "best_naive": max((n for n in validation if n != "lightgbm"),
                                          key=validation.__getitem__),
                        "champion": max(validation, key=validation.__getitem__),
                        "champion_line": "…"},
    }


def test_gate_needs_the_learned_model_to_beat_the_best_naive_on_validation() -> None:
    passing = decide_gate(_evaluation(0.1, {"lightgbm": 0.3, "kde_52w_1x": 0.1,
                                             "prior_counts_52w": 0.25}), 0.18)
    assert passing["passed"] is True
    # F1 counts only when the gate metric is F1.
    assert passing["reasons"] == ["validation pr_auc: lightgbm 0.3000 > best naive "
                                  "prior_counts_52w 0.2500"]
    assert passing["best_baseline"] == "prior_counts_52w" and passing["champion"] == "lightgbm"
    assert passing["test"] == {"model_value": 0.2, "baseline_value": 0.125}
    beaten = decide_gate(_evaluation(0.3, {"lightgbm": 0.2, "historical_average": 0.25}), 0.18)
    assert beaten["passed"] is False
    assert beaten["reasons"] == ["validation pr_auc: lightgbm 0.2000 <= best naive "
                                 "historical_average 0.2500"]


def test_f1_gate_metric_also_needs_the_f1_threshold() -> None:
    low_f1 = decide_gate(_evaluation(0.1, {"lightgbm": 0.3, "kde_4w_1x": 0.1}, "f1"), 0.18)
    assert low_f1["passed"] is False
    assert low_f1["reasons"][1] == "F1 0.1000 < threshold 0.18"
    ok = decide_gate(_evaluation(0.2, {"lightgbm": 0.3, "kde_4w_1x": 0.1}, "f1"), 0.18)
    assert ok["passed"] is True and ok["reasons"][1] == "F1 0.2000 >= threshold 0.18"


def test_pai_gate_metric_reads_the_hotspot_block() -> None:
    decision = decide_gate(_evaluation(0.3, {"lightgbm": 1.0, "kde_4w_1x": 1.2}, "pai@1%"), 0.1)
    assert decision["primary_metric"] == "pai@1%" and decision["passed"] is False
    assert decision["test"] == {"model_value": 2.0, "baseline_value": 6.0}


def test_origins_parsing() -> None:
    assert parse_origins("2016-10-01:2016-11-30") == (dt.datetime(2016, 10, 1),
                                                      dt.datetime(2016, 11, 30))
    with pytest.raises(ConfigError) as err:
        parse_origins("october")
    assert str(err.value) == (
        "origins must be START:END with ISO dates; got 'october'. "
        "Pass --origins 2016-10-01:2016-11-30."
    )


def test_backtest_cli_on_generated_data(tmp_path: Path) -> None:
    from crimecast.data.output import write_incidents
    from crimecast.synthetic.generate import generate_incidents

    data = tmp_path / "lapd.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 6, 30), seed=5), data)
    out = tmp_path / "bt"
    result = CliRunner().invoke(app, [
        "backtest", "--data", str(data), "--schema", "lapd", "--spatial-unit", "area",
        "--time-bin", "1d", "--label", "topk", "--origins", "2023-05-01:2023-06-30",
        "--retrain-every", "14", "--model-type", "logistic", "--out", str(out)])
    assert result.exit_code == 0, result.output
    predictions = pl.read_parquet(out / "predictions.parquet")
    assert {"origin", "unit_id", "bin_start", "model", "score", "actual_count"} <= set(
        predictions.columns)
    per_model = predictions.group_by("model").agg(pl.len(), pl.col("bin_start").n_unique())
    expected = {"logistic", "ensemble", "sepp", "champion", "naive_best", *NAIVE}
    assert set(per_model["model"]) == expected
    n = len(expected)
    assert per_model["bin_start"].to_list() == [61] * n  # every forecast bin, every model
    assert per_model["len"].to_list() == [61 * 21] * n  # every study-area unit
    report = json.loads((out / "backtest.json").read_text())
    assert set(report["models"]) == set(per_model["model"])
    assert report["models"]["kde_52w_2x"]["hotspot_metrics"]["pai@1%"]["value"] is not None
    # The champion's rows are, per origin, those of the forecaster chosen on validation.
    for entry in report["origins"]:
        origin = dt.datetime.fromisoformat(entry["origin"])
        mine = predictions.filter(pl.col("origin") == origin)
        champion = mine.filter(pl.col("model") == "champion").sort("bin_start", "unit_id")
        source = mine.filter(pl.col("model") == entry["champion"]).sort("bin_start", "unit_id")
        assert champion["score"].equals(source["score"])
        assert entry["best_naive"] in NAIVE
    interval = report["intervals"]["pai@1%"]["logistic"]
    assert interval["ci95"][0] <= interval["value"] <= interval["ci95"][1]
    # backtest.html: the plots, self-contained; units.geojson: the places to join on.
    page = (out / "backtest.html").read_text()
    assert re.findall(r'(?:src|href)="([^":]*):', page) == ["data"] * 3  # no area chart
    for title in ("Hit rate and PAI against the share of area flagged", "PAI per origin",
                  "Forecast and what happened", "By area"):
        assert f"<h2>{title}</h2>" in page
    # Each division is one unit here: the per-area section says why it has no values.
    assert "Every area is a single unit or too coarse for 5% of it to be flagged" in page
    assert "n/a: its places are too large (the first flagged is 100% of it)" in page
    shapes = json.loads((out / "units.geojson").read_text())
    assert {f["properties"]["unit_id"] for f in shapes["features"]} == set(
        predictions["unit_id"].cast(pl.Utf8).to_list())
    pixels = screenshot((out / "backtest.html").as_uri(), tmp_path, "bt",
                        window=DESKTOP).reshape(-1, 3)
    r, g, b = pixels.T
    assert int(((r < 40) & (g > 90) & (g < 135) & (b > 160)).sum()) > 500  # blue curves
    assert int(((r > 190) & (g < 120) & (b < 40)).sum()) > 300  # vermillion curves
