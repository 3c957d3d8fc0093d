"""What the models reuse instead of computing again gives exactly what computing gives:
LightGBM's training scores, remembered frames and the cached calibration sample."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crimecast.config import PipelineConfig
from crimecast.models.calibration import PLATT_ROWS, _sample_rows, platt
from crimecast.models.estimators import HotspotModel, as_matrix
from crimecast.models.train import fit_learned
from crimecast.models.train_scores import matches_predictions

FEATURES = ["a", "b", "c"]
PARAMS = {"n_estimators": 15, "min_child_samples": 10}


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    n = 2000
    a = rng.normal(size=n)
    return pl.DataFrame({
        "bin_start": (np.repeat(np.arange(n // 10), 10) * 3_600_000).astype("datetime64[ms]"),
        "a": a, "b": rng.normal(size=n),
        "c": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "target_hotspot": (a + rng.normal(size=n) > 1).astype(np.int8),
        "target_count": rng.poisson(np.exp(a)).astype(np.int64),
    })


@pytest.mark.parametrize("objective", ["binary", "poisson", "lambdarank"])
def test_lightgbm_training_scores_are_its_predictions_bit_for_bit(
    rows: pl.DataFrame, objective: str,
) -> None:
    model = HotspotModel("lightgbm", FEATURES, PARAMS, objective=objective)
    groups = np.full(rows.height // 10, 10)
    model.fit(rows, rows["target_hotspot"].to_numpy(), counts=rows["target_count"].to_numpy(),
              groups=groups)
    assert model._memo and model._memo[0][0] is rows  # read off the booster while it trained
    remembered = model.score(rows)
    model.forget()
    predicted = model.score(rows)
    assert np.array_equal(remembered, predicted)
    assert np.array_equal(model.predict_proba(rows), model.predict_proba(rows.clone()))


def test_a_score_mismatch_falls_back_to_predicting() -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(6, 2)
    scores = matrix[:, 0].astype(np.float64)
    assert matches_predictions(scores, lambda m: m[:, 0].astype(np.float64), matrix)
    assert not matches_predictions(scores + 1e-12, lambda m: m[:, 0].astype(np.float64), matrix)
    assert not matches_predictions(scores[:-1], lambda m: m[:, 0].astype(np.float64), matrix)


def test_fit_learned_remembers_the_training_rows_and_their_slices(rows: pl.DataFrame) -> None:
    pipeline = PipelineConfig(model_type="lightgbm")
    model = fit_learned(rows, FEATURES, pipeline, "binary", PARAMS, 7)
    tail = rows.slice(1500)
    model.remember_as(rows, tail, 1500)
    fresh = model._raw(as_matrix(rows, FEATURES))
    assert np.array_equal(model.score(rows), fresh)
    assert np.array_equal(model.score(tail), fresh[1500:])
    model.forget()
    assert np.array_equal(model.score(tail), fresh[1500:])


def test_scores_are_copies_and_other_frames_are_predicted(rows: pl.DataFrame) -> None:
    model = HotspotModel("lightgbm", FEATURES, PARAMS).fit(rows, rows["target_hotspot"].to_numpy())
    first = model.score(rows)
    first[:] = -1.0  # the caller's array is its own
    assert (model.score(rows) >= 0).all()
    other = rows.slice(0, 100)
    assert np.array_equal(model.score(other), model._raw(as_matrix(other, FEATURES)))


def test_the_calibration_sample_is_drawn_once_per_size() -> None:
    n = PLATT_ROWS * 3
    keep = _sample_rows(n, PLATT_ROWS)
    expected = np.random.default_rng(0).choice(n, PLATT_ROWS, replace=False)
    assert np.array_equal(keep, expected) and _sample_rows(n, PLATT_ROWS) is keep
    assert not keep.flags.writeable
    rng = np.random.default_rng(2)
    score = rng.gamma(2.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(4 - score))).astype(np.int8)
    x = np.log1p(score)[expected]  # as platt computed it before the cache
    from sklearn.linear_model import LogisticRegression

    reference = LogisticRegression(C=1e6, max_iter=1000, solver="newton-cholesky").fit(
        x[:, None], labels[expected])
    assert platt(score, labels) == (float(reference.coef_[0, 0]),
                                    float(reference.intercept_[0]))
