"""The gate's decision rule and the rolling-origin backtest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.errors import ConfigError
from crimecast.evaluation.backtest import parse_origins
from crimecast.evaluation.gate import decide_gate


def _evaluation(f1: float, pr_auc: float, baselines: dict[str, float],
                label: str = "zscore") -> dict:
    return {
        "binary_classification_metrics": {"f1": {"value": f1}, "pr_auc": {"value": pr_auc}},
        "hotspot_metrics": {"pai@1%": {"value": pr_auc * 10}},
        "baselines": {n: {"binary_classification_metrics": {"pr_auc": {"value": v}},
                          "hotspot_metrics": {"pai@1%": {"value": v * 10}}}
                      for n, v in baselines.items()},
        "data": {"label": label},
    }


def test_gate_passes_only_when_f1_and_baseline_conditions_hold() -> None:
    passing = decide_gate(_evaluation(0.3, 0.2, {"kde": 0.1, "prior_counts": 0.15}), 0.18)
    assert passing["passed"] is True
    assert passing["reasons"] == ["F1 0.3000 >= threshold 0.18",
                                  "pr_auc 0.2000 > best baseline prior_counts 0.1500"]
    low_f1 = decide_gate(_evaluation(0.1, 0.2, {"kde": 0.1}), 0.18)
    assert low_f1["passed"] is False and low_f1["reasons"][0] == "F1 0.1000 < threshold 0.18"
    beaten = decide_gate(_evaluation(0.3, 0.2, {"kde": 0.25}), 0.18)
    assert beaten["passed"] is False
    assert beaten["reasons"][1] == "pr_auc 0.2000 <= best baseline kde 0.2500"


def test_topk_gate_uses_pai_at_1_percent() -> None:
    decision = decide_gate(_evaluation(0.3, 0.2, {"kde": 0.3}, label="topk"), 0.1)
    assert decision["primary_metric"] == "pai@1%" and decision["passed"] is False


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
    from crimecast.data.generate import generate_incidents
    from crimecast.data.load import write_incidents

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
    assert set(per_model["model"]) == {"logistic", "prior_counts", "historical_average", "kde"}
    assert per_model["bin_start"].to_list() == [61] * 4  # every forecast bin, every model
    assert per_model["len"].to_list() == [61 * 21] * 4  # every study-area unit
    report = json.loads((out / "backtest.json").read_text())
    assert set(report["models"]) == set(per_model["model"])
    assert report["models"]["kde"]["hotspot_metrics"]["pai@1%"]["value"] is not None
