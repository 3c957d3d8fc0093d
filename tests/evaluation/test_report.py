"""evaluation.json: exact shape, JSON safety, values, per-area disparity; the card's curves."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.calibration import calibration_curve as sklearn_calibration_curve
from sklearn.metrics import precision_recall_curve

from crimecast.errors import DataError
from crimecast.evaluation.curves import calibration_curve, pr_curve
from crimecast.evaluation.hotspot import metric_keys
from crimecast.evaluation.metrics import CLASSIFICATION_METRICS, classification_metrics
from crimecast.evaluation.report import DISPARITY_METRICS, build_evaluation_report

UNITS = {"n1": ("North", 1.0), "n2": ("North", 1.0), "n3": ("North", 2.0), "s1": ("South", 4.0)}
BINS = [dt.datetime(2024, 6, d) for d in (1, 2, 3, 4)]
# Rows: unit; columns: bins. A hotspot is a bin with >= 2 events.
COUNTS = {"n1": [3, 0, 2, 1], "n2": [0, 2, 0, 0], "n3": [1, 0, 0, 4], "s1": [0, 1, 0, 0]}
PROB = {
    "xgboost": {"n1": [0.8, 0.3, 0.6, 0.4], "n2": [0.2, 0.7, 0.1, 0.3],
                "n3": [0.5, 0.2, 0.3, 0.9], "s1": [0.1, 0.4, 0.2, 0.1]},
    "prior_counts": {"n1": [0.5, 0.6, 0.4, 0.5], "n2": [0.1, 0.1, 0.3, 0.2],
                     "n3": [0.3, 0.4, 0.2, 0.2], "s1": [0.2, 0.1, 0.2, 0.3]},
}
THRESHOLDS = {"xgboost": 0.5, "prior_counts": 0.4}
DATA = {"label": "zscore", "split": {"test_start": dt.date(2024, 6, 1)}, "sources": ["lapd"]}


def predictions() -> pl.DataFrame:
    rows = []
    for model, probs in PROB.items():
        for unit, (region, _) in UNITS.items():
            for i, bin_start in enumerate(BINS):
                count = COUNTS[unit][i]
                rows.append({
                    "model": model, "unit_id": unit, "region": region, "bin_start": bin_start,
                    "y_true": int(count >= 2), "prob": probs[unit][i],
                    # Baselines rank by a raw score, the model by its probability.
                    "score": probs[unit][i] if model == "xgboost" else float(sum(COUNTS[unit])),
                    "actual_count": count,
                })
    return pl.DataFrame(rows, schema_overrides={"y_true": pl.Int8, "actual_count": pl.Int64})


def unit_areas() -> pl.DataFrame:
    return pl.DataFrame({"unit_id": list(UNITS), "area_km2": [a for _, a in UNITS.values()]})


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return build_evaluation_report(predictions(), unit_areas(), THRESHOLDS, "xgboost", DATA,
                                   n_resamples=30, seed=1)


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def test_the_report_has_exactly_the_documented_shape(report: dict[str, Any]) -> None:
    assert list(report) == ["binary_classification_metrics", "hotspot_metrics", "baselines",
                            "per_area", "decision_threshold", "data"]
    binary = report["binary_classification_metrics"]
    assert list(binary) == list(CLASSIFICATION_METRICS)
    for entry in binary.values():
        assert list(entry) == ["value", "standard_deviation", "ci_low", "ci_high"]
    hotspot_keys = [*metric_keys((0.01, 0.05, 0.10)), "bins_evaluated", "bins_without_events"]
    assert list(report["hotspot_metrics"]) == hotspot_keys
    for key in metric_keys((0.01, 0.05, 0.10)):
        assert list(report["hotspot_metrics"][key]) == ["value", "standard_deviation"]

    assert list(report["baselines"]) == ["prior_counts"]
    baseline = report["baselines"]["prior_counts"]
    assert list(baseline) == ["binary_classification_metrics", "hotspot_metrics",
                              "decision_threshold"]
    assert list(baseline["binary_classification_metrics"]) == list(CLASSIFICATION_METRICS)
    assert list(baseline["hotspot_metrics"]) == hotspot_keys
    assert baseline["decision_threshold"] == 0.4

    regions = report["per_area"]["regions"]
    assert list(report["per_area"]) == ["regions", "disparity"]
    assert list(regions) == ["North", "South"]
    for info in regions.values():
        assert list(info) == ["rows", "positives", "binary_classification_metrics",
                              "hotspot_metrics"]
        assert all(list(e) == ["value"] for e in info["binary_classification_metrics"].values())
    assert list(regions["North"]["hotspot_metrics"]) == hotspot_keys
    assert regions["South"]["hotspot_metrics"] is None  # one unit: nothing to rank
    assert list(report["per_area"]["disparity"]) == list(DISPARITY_METRICS)
    for entry in report["per_area"]["disparity"].values():
        assert list(entry) == ["max", "min", "gap", "best_region", "worst_region"]
    assert report["decision_threshold"] == 0.5


def test_the_report_is_json_safe_and_rounded(report: dict[str, Any]) -> None:
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text) == report
    assert all(round(f, 6) == f for f in _floats(report))


def test_values_equal_the_metric_functions(report: dict[str, Any]) -> None:
    frame = predictions().filter(pl.col("model") == "xgboost")
    direct = classification_metrics(frame["y_true"].to_numpy(), frame["prob"].to_numpy(), 0.5)
    # The SageMaker ConditionStep's JsonGet path.
    assert report["binary_classification_metrics"]["f1"]["value"] == round(direct["f1"], 6)
    for metric in CLASSIFICATION_METRICS:
        entry = report["binary_classification_metrics"][metric]
        assert entry["value"] == round(direct[metric], 6)
        assert entry["ci_low"] <= entry["ci_high"]
    base = predictions().filter(pl.col("model") == "prior_counts")
    direct = classification_metrics(base["y_true"].to_numpy(), base["prob"].to_numpy(), 0.4)
    got = report["baselines"]["prior_counts"]["binary_classification_metrics"]
    assert {m: got[m]["value"] for m in CLASSIFICATION_METRICS} == {
        m: round(v, 6) for m, v in direct.items()}
    # Baselines rank by score: prior totals n1 6, n3 5, n2 2, s1 1 in every bin.
    # 10% of 8 km² -> n1 alone (1 km², a = 1/8); bins with events: all four.
    # Hits: bin 1 3/4, bin 2 0/3, bin 3 2/2, bin 4 1/5 -> mean (0.75 + 0 + 1 + 0.2) / 4.
    hit = report["baselines"]["prior_counts"]["hotspot_metrics"]["hit_rate@10%"]["value"]
    assert hit == round((0.75 + 0 + 1 + 0.2) / 4, 6)


def test_data_is_passed_through_with_the_test_frame_counts(report: dict[str, Any]) -> None:
    assert report["data"] == {
        "label": "zscore", "split": {"test_start": "2024-06-01"}, "sources": ["lapd"],
        "rows_test": 16, "bins_test": 4, "units": 4,
        "positive_rate_test": 0.25,  # 4 of 16 unit-bins have >= 2 events
    }


def test_per_area_metrics_and_disparity_by_hand(report: dict[str, Any]) -> None:
    north, south = report["per_area"]["regions"]["North"], report["per_area"]["regions"]["South"]
    assert (north["rows"], north["positives"]) == (12, 4)
    assert (south["rows"], south["positives"]) == (4, 0)
    # North at 0.5: predicted n1 b1 b3, n2 b2, n3 b1 b4 -> TP 4, FP 1 (n3 b1), FN 0:
    # F1 = 8 / 9. South: nothing predicted, nothing positive -> F1 0, AUCs undefined.
    assert north["binary_classification_metrics"]["f1"]["value"] == round(8 / 9, 6)
    assert south["binary_classification_metrics"]["f1"]["value"] == 0.0
    assert south["binary_classification_metrics"]["pr_auc"]["value"] is None
    disparity = report["per_area"]["disparity"]
    assert disparity["f1"] == {"max": round(8 / 9, 6), "min": 0.0, "gap": round(8 / 9, 6),
                               "best_region": "North", "worst_region": "South"}
    # Undefined values are skipped: only North has a PR-AUC and a PAI@5%.
    assert disparity["pr_auc"]["best_region"] == disparity["pr_auc"]["worst_region"] == "North"
    assert disparity["pr_auc"]["gap"] == 0.0
    pai = north["hotspot_metrics"]["pai@5%"]["value"]
    assert disparity["pai@5%"] == {"max": pai, "min": pai, "gap": 0.0,
                                   "best_region": "North", "worst_region": "North"}


def test_the_report_is_deterministic_by_seed(report: dict[str, Any]) -> None:
    again = build_evaluation_report(predictions(), unit_areas(), THRESHOLDS, "xgboost", DATA,
                                    n_resamples=30, seed=1)
    assert again == report


def test_unlabelled_rows_count_for_hotspots_only() -> None:
    frame = predictions().with_columns(
        y_true=pl.when(pl.col("bin_start") == BINS[0]).then(None).otherwise(pl.col("y_true")))
    result = build_evaluation_report(frame, unit_areas(), THRESHOLDS, "xgboost", {},
                                     n_resamples=10)
    labelled = frame.filter((pl.col("model") == "xgboost") & pl.col("y_true").is_not_null())
    direct = classification_metrics(labelled["y_true"].to_numpy(), labelled["prob"].to_numpy(),
                                     0.5)
    assert result["binary_classification_metrics"]["f1"]["value"] == round(direct["f1"], 6)
    assert result["hotspot_metrics"]["bins_evaluated"] == 4
    assert result["data"]["rows_test"] == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"thresholds": {"xgboost": 0.5}},
         "thresholds has no finite decision threshold for model 'prior_counts'"),
        ({"primary_model": "catboost"},
         "primary_model 'catboost' has no rows in the predictions frame"),
        ({"predictions": predictions().drop("region")}, "lacks column(s) ['region']"),
        ({"data": {"when": object()}}, "report.data.when holds a value of type object"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"predictions": predictions(), "unit_areas": unit_areas(),
                                 "thresholds": THRESHOLDS, "primary_model": "xgboost",
                                 "data": {}, "n_resamples": 5}
    arguments.update(kwargs)
    with pytest.raises(DataError) as caught:
        build_evaluation_report(**arguments)
    assert message in str(caught.value)


# --- curves ---------------------------------------------------------------------------


def test_pr_curve_is_scikit_learns_in_order_of_recall() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05])
    curve = pr_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    assert curve["recall"] == [round(r, 6) for r in recall[::-1]]
    assert curve["precision"] == [round(v, 6) for v in precision[::-1]]
    assert curve["recall"][0] == 0.0 and curve["precision"][0] == 1.0
    assert pr_curve(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == {"precision": [],
                                                                      "recall": []}


def test_pr_curve_is_downsampled_to_max_points() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(int)
    curve = pr_curve(y, p, max_points=50)
    assert 2 <= len(curve["recall"]) <= 50 and len(curve["precision"]) == len(curve["recall"])
    assert curve["recall"][0] == 0.0 and curve["recall"][-1] == 1.0
    assert curve["recall"] == sorted(curve["recall"])
    json.dumps(curve, allow_nan=False)


def test_calibration_curve_by_hand() -> None:
    y = np.array([0, 1, 0, 1, 1])
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    curve = calibration_curve(y, p, n_bins=10)
    # Bins [0, .1): .05; [.1, .2): .15 .12; [.9, 1]: .95 1.0 — empty bins dropped.
    assert curve == {"mean_predicted": [0.05, 0.135, 0.975],
                     "fraction_positive": [0.0, 0.5, 1.0], "count": [1, 2, 2]}
    observed, predicted = sklearn_calibration_curve(y, p, n_bins=10)
    assert curve["fraction_positive"] == pytest.approx(observed)
    assert curve["mean_predicted"] == pytest.approx(predicted)
