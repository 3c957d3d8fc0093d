"""Classification metrics against hand arithmetic, and the block bootstrap over bins."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss

from crimecast.errors import DataError
from crimecast.evaluation.bootstrap import (
    bootstrap_by_bin,
    bootstrap_classification_metrics,
    draw_bin_resamples,
    summarise_resamples,
)
from crimecast.evaluation.metrics import CLASSIFICATION_METRICS, classification_metrics

# Eight rows, threshold 0.5:
#   y    = 1    1    1    0    0    0    0    0
#   prob = .9   .6   .3   .7   .4   .2   .1   .05
#   pred = 1    1    0    1    0    0    0    0      -> TP 2, FN 1, FP 1, TN 4
Y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=np.int8)
P = np.array([0.9, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.05])


def test_each_metric_equals_the_hand_computed_value() -> None:
    m = classification_metrics(Y, P, 0.5)
    assert list(m) == list(CLASSIFICATION_METRICS)
    assert m["accuracy"] == pytest.approx(6 / 8)  # (TP + TN) / n = (2 + 4) / 8
    assert m["precision"] == pytest.approx(2 / 3)  # TP / (TP + FP) = 2 / 3
    assert m["recall"] == pytest.approx(2 / 3)  # TP / (TP + FN) = 2 / 3
    assert m["f1"] == pytest.approx(2 / 3)  # 2TP / (2TP + FP + FN) = 4 / 6
    # ROC-AUC = share of (positive, negative) pairs ranked correctly: 15 pairs;
    # .9 beats all 5 negatives, .6 beats 4 (not .7), .3 beats 3 (.2 .1 .05) -> 12 / 15.
    assert m["roc_auc"] == pytest.approx(12 / 15)
    # Average precision: ranked .9+ .7- .6+ .4- .3+ ...; recall rises by 1/3 at
    # precision 1/1, 2/3 and 3/5 -> (1 + 2/3 + 3/5) / 3 = 34/45.
    assert m["pr_auc"] == pytest.approx(34 / 45)
    # Brier: (.1² + .4² + .7² + .7² + .4² + .2² + .1² + .05²) / 8 = 1.3625 / 8.
    assert m["brier"] == pytest.approx(1.3625 / 8)
    # Log loss: -(ln .9 + ln .6 + ln .3 + ln(1-.7) + ln(1-.4) + ln .8 + ln .9 + ln .95) / 8.
    expected = -(2 * math.log(0.9) + 2 * math.log(0.6) + 2 * math.log(0.3)
                 + math.log(0.8) + math.log(0.95)) / 8
    assert m["log_loss"] == pytest.approx(expected)


def test_a_probability_equal_to_the_threshold_is_a_positive_prediction() -> None:
    # prob .6 == threshold -> predicted positive: TP 2 (.9 .6), FP 1 (.7) as before.
    assert classification_metrics(Y, P, 0.6)["precision"] == pytest.approx(2 / 3)
    # Threshold just above .6: only .9 and .7 predicted -> TP 1, FP 1.
    assert classification_metrics(Y, P, 0.6000001)["precision"] == pytest.approx(1 / 2)


def test_one_class_only_gives_no_auc_and_zero_division_zero() -> None:
    # y all 0; prob [.2 .7 .1] at .5 -> pred [0 1 0]: TP 0, FP 1, FN 0, TN 2.
    m = classification_metrics(np.array([0, 0, 0]), np.array([0.2, 0.7, 0.1]), 0.5)
    assert m["pr_auc"] is None and m["roc_auc"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["brier"] == pytest.approx((0.04 + 0.49 + 0.01) / 3)
    only_positives = classification_metrics(np.array([1, 1]), np.array([0.2, 0.7]), 0.5)
    assert only_positives["pr_auc"] is None and only_positives["roc_auc"] is None
    assert only_positives["recall"] == pytest.approx(0.5)
    json.dumps(m, allow_nan=False)


def test_no_predicted_positives_gives_precision_zero() -> None:
    # y [1 0 1 0], prob [.4 .3 .2 .1], nothing reaches .5: TP 0, FP 0, FN 2, TN 2.
    m = classification_metrics(np.array([1, 0, 1, 0]), np.array([0.4, 0.3, 0.2, 0.1]), 0.5)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == pytest.approx(0.5)
    # Pairs: .4 beats .3 and .1, .2 beats .1 -> 3 of 4.
    assert m["roc_auc"] == pytest.approx(0.75)
    # .4+ (P 1, R 1/2), .3-, .2+ (P 2/3, R 1) -> 1/2 · 1 + 1/2 · 2/3 = 5/6.
    assert m["pr_auc"] == pytest.approx(5 / 6)


def test_log_loss_clips_certain_mistakes_at_1e_15() -> None:
    # Row 1: y 1, p 0 -> -ln(1e-15) = 34.538776...; row 2: y 0, p 0 -> -ln(1) = 0.
    m = classification_metrics(np.array([1, 0]), np.array([0.0, 0.0]), 0.5)
    assert m["log_loss"] == pytest.approx(-math.log(1e-15) / 2)
    assert math.isfinite(m["log_loss"])


def test_empty_input_gives_none_everywhere() -> None:
    m = classification_metrics(np.array([], dtype=np.int8), np.array([]), 0.5)
    assert set(m) == set(CLASSIFICATION_METRICS) and all(v is None for v in m.values())


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 2], [0.1, 0.2], "y_true must hold only 0 and 1; got [2]"),
        ([0, 1], [0.1, 1.2], "prob must be finite probabilities in [0, 1]"),
        ([0, 1], [0.1, float("nan")], "prob must be finite probabilities in [0, 1]"),
        ([0, 1, 1], [0.1, 0.2], "y_true and prob must be 1-D arrays of equal length"),
    ],
)
def test_bad_inputs_are_refused(y: list[int], p: list[float], message: str) -> None:
    with pytest.raises(DataError) as caught:
        classification_metrics(np.array(y), np.array(p), 0.5)
    assert message in str(caught.value)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 1e-17, 0.1, 0.5, 0.9, 1.0])),
        min_size=1,
        max_size=30,
    )
)
def test_log_loss_matches_scikit_learn_on_clipped_probabilities(
    rows: list[tuple[int, float]],
) -> None:
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    m = classification_metrics(y, p, 0.5)
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    assert m["log_loss"] == pytest.approx(log_loss(y, clipped, labels=[0, 1]), rel=1e-12)
    for key in ("accuracy", "precision", "recall", "f1", "brier"):
        assert 0.0 <= m[key] <= 1.0


# --- bootstrap --------------------------------------------------------------------


def _frame(n_bins: int, n_units: int, seed: int, decimals: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    prob = np.round(rng.random(n_bins * n_units), decimals)  # rounding makes ties
    return pl.DataFrame({
        "bin_start": [dt.datetime(2024, 1, 1) + dt.timedelta(hours=b)
                      for b in range(n_bins) for _ in range(n_units)],
        "y_true": (rng.random(prob.size) < prob * 0.6).astype(np.int8),
        "prob": prob,
    }).sample(fraction=1.0, shuffle=True, seed=seed)


def test_bootstrap_is_deterministic_by_seed() -> None:
    frame = _frame(12, 10, seed=1)

    def f1(part: pl.DataFrame) -> float | None:
        return classification_metrics(part["y_true"].to_numpy(), part["prob"].to_numpy(), 0.4)["f1"]

    first = bootstrap_by_bin(frame, f1, n_resamples=40, seed=5)
    assert bootstrap_by_bin(frame, f1, n_resamples=40, seed=5) == first
    assert bootstrap_by_bin(frame, f1, n_resamples=40, seed=6) != first
    assert first["ci_low"] <= first["ci_high"] and first["standard_deviation"] > 0
    fast = bootstrap_classification_metrics(frame, 0.4, n_resamples=40, seed=5)
    assert bootstrap_classification_metrics(frame, 0.4, n_resamples=40, seed=5) == fast


def test_identical_bins_give_zero_spread() -> None:
    one_bin = [(1, 0.9), (0, 0.8), (1, 0.3), (0, 0.2), (0, 0.6)]
    frame = pl.DataFrame({
        "bin_start": [dt.datetime(2024, 1, 1 + b) for b in range(6) for _ in one_bin],
        "y_true": [y for _ in range(6) for y, _ in one_bin],
        "prob": [p for _ in range(6) for _, p in one_bin],
    })
    generic = bootstrap_by_bin(frame, lambda f: float(f["prob"].mean()), n_resamples=30)
    assert generic["standard_deviation"] == 0.0
    assert generic["ci_low"] == pytest.approx(0.56) and generic["ci_high"] == pytest.approx(0.56)
    fast = bootstrap_classification_metrics(frame, 0.5, n_resamples=30)
    for metric in CLASSIFICATION_METRICS:
        assert fast[metric]["standard_deviation"] == pytest.approx(0.0, abs=1e-12), metric


def test_resamples_keep_whole_bins() -> None:
    frame = _frame(7, 5, seed=2)
    sizes: list[list[int]] = []

    def bin_sizes(part: pl.DataFrame) -> float:
        sizes.append(part.group_by("bin_start").len()["len"].to_list())
        return float(part.height)

    result = bootstrap_by_bin(frame, bin_sizes, n_resamples=25, seed=3)
    assert all(size % 5 == 0 for drawn in sizes for size in drawn)
    # Every resample holds n_bins bins of 5 rows, so the row count never varies.
    assert result["standard_deviation"] == 0.0


def test_fast_bootstrap_equals_the_generic_one_with_scikit_learn() -> None:
    frame = _frame(15, 12, seed=4)
    fast = bootstrap_classification_metrics(frame, 0.45, n_resamples=30, seed=9)
    for metric in CLASSIFICATION_METRICS:
        slow = bootstrap_by_bin(
            frame,
            lambda part, m=metric: classification_metrics(
                part["y_true"].to_numpy(), part["prob"].to_numpy(), 0.45)[m],
            n_resamples=30,
            seed=9,
        )
        for key, value in slow.items():
            assert fast[metric][key] == pytest.approx(value, rel=1e-9, abs=1e-12), (metric, key)


def test_undefined_resamples_are_skipped() -> None:
    assert summarise_resamples([None, 1.0, float("nan"), 3.0]) == {
        "standard_deviation": pytest.approx(math.sqrt(2.0)),  # sd of (1, 3), ddof 1
        "ci_low": pytest.approx(1.05),  # 2.5th percentile of (1, 3): 1 + 0.025 · 2
        "ci_high": pytest.approx(2.95),
    }
    assert summarise_resamples([None, 2.0]) == dict.fromkeys(
        ("standard_deviation", "ci_low", "ci_high"))
    assert draw_bin_resamples(4, 3, seed=0).shape == (3, 4)
    with pytest.raises(DataError, match="n_resamples must be >= 1"):
        draw_bin_resamples(4, 0, seed=0)
