"""Work the evaluation shares across forecasters (per-bin rankings, resample counts,
confusion counts, threads) gives exactly what computing it for each one gives."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

import crimecast.evaluation.bootstrap as bootstrap
from crimecast.evaluation.hotspot import (
    CURVE_SHARES,
    DEFAULT_SHARES,
    REPORT_SHARES,
    hotspot_metrics,
    hotspot_per_bin,
    hotspot_per_bin_of,
    summarise_per_bin,
)
from crimecast.evaluation.metrics import (
    CLASSIFICATION_METRICS,
    classification_metric,
    classification_metrics,
    confusion_counts,
)
from crimecast.evaluation.threads import thread_map

UNITS = [f"u{i:02d}" for i in range(12)]
AREAS = pl.DataFrame({"unit_id": UNITS, "area_km2": [1.0 + 0.37 * i for i in range(12)]})


def _frame(seed: int, bins: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(7)  # the same units, bins and counts for every forecaster
    counts = rng.poisson(0.8, size=bins * len(UNITS))
    scores = np.random.default_rng(seed).random(bins * len(UNITS)).round(2)  # with ties
    return pl.DataFrame({
        "unit_id": UNITS * bins,
        "bin_start": [dt.datetime(2024, 1, 1) + dt.timedelta(hours=b)
                      for b in range(bins) for _ in UNITS],
        "score": scores, "actual_count": counts,
    })


def test_per_bin_tables_of_many_forecasters_equal_each_computed_alone() -> None:
    frames = {f"m{seed}": _frame(seed) for seed in range(5)}
    frames["other rows"] = _frame(9, bins=30)  # not the first one's rows: computed alone
    tables = hotspot_per_bin_of(frames, AREAS, REPORT_SHARES)
    assert list(tables) == list(frames)
    for name, frame in frames.items():
        assert tables[name].equals(hotspot_per_bin(frame, AREAS, REPORT_SHARES))
        # The report's measures read off the wider table are the 3-share ones exactly.
        assert summarise_per_bin(tables[name], DEFAULT_SHARES) == hotspot_metrics(frame, AREAS)
    assert set(DEFAULT_SHARES) <= set(REPORT_SHARES) and set(CURVE_SHARES) <= set(REPORT_SHARES)


def test_confusion_counts_are_scikit_learns_values() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50, 1000):
        for rate in (0.0, 0.1, 0.9, 1.0):
            y = (rng.random(n) < rate).astype(np.int8)
            for share in (0.0, 0.3, 1.0):
                predicted = rng.random(n) < share
                p, r, f1, _ = precision_recall_fscore_support(
                    y, predicted.astype(np.int8), average="binary", pos_label=1, zero_division=0)
                assert confusion_counts(y, predicted) == {
                    "accuracy": float(accuracy_score(y, predicted.astype(np.int8))),
                    "precision": float(p), "recall": float(r), "f1": float(f1)}


def test_one_metric_alone_is_the_metric_among_all() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.2).astype(np.int8)
    prob = rng.random(500).round(3)
    every = classification_metrics(y, prob, 0.4)
    for metric in (*CLASSIFICATION_METRICS, "pai@1%"):
        assert classification_metric(y, prob, 0.4, metric) == every.get(metric)
    assert classification_metric(np.zeros(5, np.int8), prob[:5], 0.4, "pr_auc") is None


def test_resample_counts_count_the_drawn_bins() -> None:
    for n_bins, n_resamples, seed in ((1, 3, 0), (17, 40, 5), (300, 7, 1)):
        draws = bootstrap.draw_bin_resamples(n_bins, n_resamples, seed)
        expected = np.stack([np.bincount(drawn, minlength=n_bins) for drawn in draws])
        counts = bootstrap.resample_counts(n_bins, n_resamples, seed)
        assert np.array_equal(counts, expected) and not counts.flags.writeable


@pytest.mark.parametrize("prob_digits", [1, 3, 8])
def test_auc_bootstrap_in_float32_equals_float64(monkeypatch: pytest.MonkeyPatch,
                                                 prob_digits: int) -> None:
    rng = np.random.default_rng(prob_digits)
    n_bins, rows = 60, 60 * 15
    codes = np.repeat(np.arange(n_bins), 15)
    y = (rng.random(rows) < 0.15).astype(np.int8)
    prob = rng.random(rows).round(prob_digits)
    counts = bootstrap.resample_counts(n_bins, 50, 3)
    fast = bootstrap._ranking_values(counts, codes, y, prob)
    monkeypatch.setattr(bootstrap, "_FLOAT32_EXACT", 0)  # no count fits: float64 throughout
    exact = bootstrap._ranking_values(counts, codes, y, prob)
    for metric in ("pr_auc", "roc_auc"):
        assert np.array_equal(fast[metric], exact[metric], equal_nan=True)


def test_thread_map_keeps_order_and_runs_alone_inside_a_pool_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert thread_map(lambda x: x * x, range(20)) == [x * x for x in range(20)]
    import crimecast.evaluation.threads as threads

    monkeypatch.setattr(threads, "shares_cores", lambda: True)
    seen = thread_map(lambda _: threading.current_thread().name, range(4))
    assert set(seen) == {threading.current_thread().name}
