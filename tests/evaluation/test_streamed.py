"""The streamed evaluation equals the in-memory report: exact hotspot and threshold
metrics, AUCs from probability levels within 0.001 (exact when levels hold one value)."""

from __future__ import annotations

import datetime as dt
import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crimecast.evaluation.bootstrap import bin_counts, bin_sums
from crimecast.evaluation.hotspot import hotspot_curve
from crimecast.evaluation.metrics import PROB_CLIP
from crimecast.evaluation.report import build_evaluation_report
from crimecast.evaluation.streamed import StreamedEvaluation

START = dt.datetime(2024, 1, 1)


def predictions(seed: int, units: int = 120, bins: int = 40, distinct: int | None = None
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two forecasters' predictions over ``units`` × ``bins`` and the unit areas."""
    rng = np.random.default_rng(seed)
    unit = np.tile(np.arange(units), bins)
    bin_ = np.repeat(np.arange(bins), units)
    count = rng.poisson(0.05 + 0.4 * (unit % 13 == 0), unit.size)
    frames = []
    for name, noise in (("learned", 0.6), ("naive", 1.5)):
        prob = np.clip(0.05 + 0.15 * count + noise * 0.2 * rng.random(unit.size), 0, 1)
        if distinct is not None:
            prob = np.round(prob * distinct) / distinct
        frames.append(pl.DataFrame({
            "model": name, "unit_id": [f"u{u:03d}" for u in unit],
            "region": [f"r{u % 3}" for u in unit],
            "bin_start": [START + dt.timedelta(hours=8 * int(b)) for b in bin_],
            "y_true": (count > 0).astype(np.int8), "prob": prob, "score": prob * 2,
            "actual_count": count}))
    areas = pl.DataFrame({"unit_id": [f"u{u:03d}" for u in range(units)],
                          "area_km2": rng.uniform(0.5, 1.5, units)})
    return pl.concat(frames), areas


def streamed(frame: pl.DataFrame, areas: pl.DataFrame, cuts: list[int]) -> StreamedEvaluation:
    evaluation = StreamedEvaluation(areas, THRESHOLDS, ["learned", "naive"])
    bins = frame["bin_start"].unique().sort().to_list()
    edges = [0, *sorted(set(cuts)), len(bins)]
    for lo, hi in itertools.pairwise(edges):
        if hi > lo:
            evaluation.add(frame.filter(pl.col("bin_start").is_between(bins[lo], bins[hi - 1])))
    return evaluation


def streamed_report(frame: pl.DataFrame, areas: pl.DataFrame, cuts: list[int],
                    primary: str = "learned", resamples: int = 30) -> dict:
    return streamed(frame, areas, cuts).report({"source": "test"}, n_resamples=resamples,
                                               primary=primary)


THRESHOLDS = {"learned": 0.2, "naive": 0.25}
EXACT = ("accuracy", "precision", "recall", "f1", "brier", "log_loss")


def assert_close(streamed: dict, exact: dict, auc_tolerance: float) -> None:
    for name in ("learned", "naive"):
        got = streamed if name == "learned" else streamed["baselines"]["naive"]
        want = exact if name == "learned" else exact["baselines"]["naive"]
        assert got["hotspot_metrics"] == want["hotspot_metrics"]
        for metric, value in want["binary_classification_metrics"].items():
            tolerance = 1e-6 if metric in EXACT else auc_tolerance
            for key in ("value", "ci_low", "ci_high", "standard_deviation"):
                assert got["binary_classification_metrics"][metric][key] == pytest.approx(
                    value[key], abs=tolerance), (name, metric, key)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 39), max_size=5))
@example(seed=3905, cuts=[1])  # a first block of one bin: its quantiles alone were too coarse
def test_streamed_equals_in_memory_for_any_blocks(seed: int, cuts: list[int]) -> None:
    frame, areas = predictions(seed)
    exact = build_evaluation_report(frame, areas, THRESHOLDS, "learned", {"source": "test"},
                                    n_resamples=30)
    assert_close(streamed_report(frame, areas, cuts), exact, auc_tolerance=1e-3)


def test_aucs_are_exact_when_each_level_holds_one_probability() -> None:
    frame, areas = predictions(3, distinct=200)
    exact = build_evaluation_report(frame, areas, THRESHOLDS, "learned", {}, n_resamples=30)
    assert_close(streamed_report(frame, areas, [7, 20]), exact, auc_tolerance=1e-9)


def test_per_area_blocks_and_data_match_and_any_primary_can_lead() -> None:
    frame, areas = predictions(5)
    for primary in ("learned", "naive"):
        exact = build_evaluation_report(frame, areas, THRESHOLDS, primary, {}, n_resamples=20)
        got = streamed_report(frame, areas, [10, 25], primary=primary, resamples=20)
        for region, want in exact["per_area"]["regions"].items():
            have = got["per_area"]["regions"][region]
            assert have["hotspot_metrics"] == want["hotspot_metrics"]
            assert (have["rows"], have["positives"]) == (want["rows"], want["positives"])
            for metric in EXACT:
                assert have["binary_classification_metrics"][metric]["value"] == \
                    pytest.approx(want["binary_classification_metrics"][metric]["value"])
        assert got["decision_threshold"] == exact["decision_threshold"]
        assert {k: got["data"][k] for k in exact["data"]} == exact["data"]


def test_blocks_must_arrive_in_time_order() -> None:
    frame, areas = predictions(1, bins=4)
    evaluation = StreamedEvaluation(areas, THRESHOLDS, ["learned"])
    evaluation.add(frame.filter(pl.col("bin_start") >= START + dt.timedelta(hours=16)))
    with pytest.raises(ValueError, match="blocks must arrive in time order"):
        evaluation.add(frame.filter(pl.col("bin_start") < START + dt.timedelta(hours=16)))


def test_streamed_hotspot_curves_equal_the_in_memory_curves() -> None:
    frame, areas = predictions(7)
    curves = streamed(frame, areas, [3, 17, 30]).hotspot_curves()
    assert sorted(curves) == ["learned", "naive"]
    for name, curve in curves.items():
        want = hotspot_curve(frame.filter(pl.col("model") == name), areas)
        for column, values in want.to_dict(as_series=False).items():
            # the same per-bin values; a mean over concatenated blocks may round differently
            assert curve[column] == pytest.approx(values, rel=1e-12), column
        assert curve["share"][0] == 0.005 and curve["share"][-1] == 0.2


def _bin_sums_as_before(code: np.ndarray, n_bins: int, y: np.ndarray, prob: np.ndarray,
                        threshold: float) -> np.ndarray:
    """``bin_sums`` as first written: every sum a weighted bincount, both losses on every row."""
    predicted = prob >= threshold
    clipped = np.clip(prob, PROB_CLIP, 1.0 - PROB_CLIP)
    return np.column_stack([
        np.bincount(code, minlength=n_bins),
        np.bincount(code, weights=y, minlength=n_bins),
        np.bincount(code, weights=predicted & y, minlength=n_bins),
        np.bincount(code, weights=predicted & ~y, minlength=n_bins),
        np.bincount(code, weights=(prob - y) ** 2, minlength=n_bins),
        np.bincount(code, weights=np.where(y, -np.log(clipped), -np.log1p(-clipped)),
                    minlength=n_bins),
    ]).astype(np.float64)


@pytest.mark.parametrize("rows", [1, 2, 17, 100_003])
def test_bin_sums_are_bit_for_bit_those_of_the_plain_formula(rows: int) -> None:
    rng = np.random.default_rng(rows)
    code = np.sort(rng.integers(0, 9, rows))
    y = rng.random(rows) < 0.2
    prob = rng.random(rows) ** 3
    prob[: min(rows, 4)] = [0.0, 1.0, 0.2, 1e-300][: min(rows, 4)]
    want = _bin_sums_as_before(code, 12, y, prob, 0.2)
    assert bin_sums(code, 12, y, prob, 0.2).tobytes() == want.tobytes()
    counts = bin_counts(code, 12, y)
    assert bin_sums(code, 12, y, prob, 0.2, counts).tobytes() == want.tobytes()


def test_a_block_shared_by_its_forecasters_reports_what_adding_each_alone_does() -> None:
    frame, areas = predictions(11, bins=12)
    # a few unlabelled rows (the same in every forecaster's part) and a region too small
    # for per-region hotspot measures
    unlabelled = (pl.int_range(pl.len()) % 7 == 3) & (pl.col("bin_start") > START)
    frame = frame.with_columns(
        y_true=pl.when(unlabelled.over("model")).then(None).otherwise(pl.col("y_true")),
        region=pl.when(pl.col("unit_id") == "u000").then(pl.lit("tiny"))
        .otherwise(pl.col("region")))
    bins = frame["bin_start"].unique().sort()
    alone = StreamedEvaluation(areas, THRESHOLDS, ["learned", "naive"])
    shared = StreamedEvaluation(areas, THRESHOLDS, ["learned", "naive"])
    for lo, hi in ((0, 5), (5, 6), (6, 12)):
        part = frame.filter(pl.col("bin_start").is_between(bins[lo], bins[hi - 1]))
        alone.add(part)
        block = shared.block()
        parts = part.partition_by("model", as_dict=True)
        with ThreadPoolExecutor(max_workers=2) as pool:  # forecasters side by side
            added = [pool.submit(block.add, name, parts[(name,)]) for name in ("learned", "naive")]
            for future in added:
                future.result()
    for primary in ("learned", "naive"):
        assert (shared.report({}, n_resamples=20, primary=primary)
                == alone.report({}, n_resamples=20, primary=primary))
    assert shared.curves("naive") == alone.curves("naive")
    assert shared.hotspot_curves() == alone.hotspot_curves()


def test_a_block_takes_only_forecasters_of_the_same_rows() -> None:
    frame, areas = predictions(2, bins=3)
    block = StreamedEvaluation(areas, THRESHOLDS, ["learned"]).block()
    block.add("learned", frame.filter(pl.col("model") == "learned"))
    with pytest.raises(ValueError, match="the same rows"):
        block.add("naive", frame.filter(pl.col("model") == "naive").head(10))
