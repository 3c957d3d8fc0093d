"""Every model type trains on tiny data, saves pickle-free and loads with hash checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crimecast.errors import ModelError, ModelIntegrityError
from crimecast.models.estimators import ESTIMATORS, OBJECTIVES, HotspotModel
from crimecast.models.naive import COLUMN_FORECASTERS, ColumnForecaster, EnsembleForecaster
from crimecast.models.split import best_f1_threshold, expanding_folds, time_split
from crimecast.models.storage import load_model, save_model

FEATURES = ["a", "b", "c"]
SMALL = {"random_forest": {"n_estimators": 10}, "extra_trees": {"n_estimators": 10},
         "balanced_random_forest": {"n_estimators": 10}, "xgboost": {"n_estimators": 10},
         "catboost": {"iterations": 10}, "lightgbm": {"n_estimators": 10, "min_child_samples": 10},
         "logistic": {}}


@pytest.fixture(scope="module")
def tiny() -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 300
    a = rng.normal(size=n)
    c = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    frame = pl.DataFrame({"a": a, "b": rng.normal(size=n), "c": c}).with_columns(
        pl.col("c").fill_nan(None),
        **{column: pl.Series(rng.random(n) * 5) for column in
           sorted(set(COLUMN_FORECASTERS.values()) - {"prior_counts_52w"})},
        prior_counts_52w=pl.Series(np.maximum(a * 3 + 3, 0)),
        target_count=pl.Series(rng.poisson(np.exp(a)), dtype=pl.Int64))
    y = (a + rng.normal(size=n) * 0.5 > 1).astype(np.int8)
    return frame, y


@pytest.mark.parametrize("objective", ["poisson", "lambdarank"])
@pytest.mark.parametrize("model_type", list(ESTIMATORS))
def test_count_and_rank_objectives_train_and_round_trip(
    tiny: tuple[pl.DataFrame, np.ndarray], tmp_path: Path, model_type: str, objective: str,
) -> None:
    frame, y = tiny
    counts = frame["target_count"].to_numpy()
    model = HotspotModel(model_type, FEATURES, SMALL[model_type], objective=objective)
    if model_type not in OBJECTIVES[objective]:
        with pytest.raises(ModelError) as err:
            model.fit(frame, y, counts=counts, groups=np.array([100, 100, 100]))
        assert str(err.value) == (
            f"objective '{objective}' needs a model type among "
            f"{', '.join(OBJECTIVES[objective])}; got '{model_type}'. Pass --objective binary "
            "or --model-type lightgbm.")
        return
    model.fit(frame, y, counts=counts, groups=np.array([100, 100, 100]))
    score, prob = model.score(frame), model.predict_proba(frame)
    assert ((prob >= 0) & (prob <= 1)).all()
    # The probability is a monotone calibration of the ranking score.
    order = np.argsort(score, kind="stable")
    assert (np.diff(prob[order]) >= -1e-12).all()
    if objective == "poisson":
        assert (score >= 0).all()
        # Counts rise with feature a: the expected count ranks them (Spearman > 0.3).
        assert np.corrcoef(np.argsort(np.argsort(score)),
                           np.argsort(np.argsort(frame["a"].to_numpy())))[0, 1] > 0.3
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert np.allclose(loaded.score(frame), score, rtol=1e-5, atol=1e-6)
    assert np.allclose(loaded.predict_proba(frame), prob, atol=1e-6)


def test_imbalance_needs_the_binary_objective(tiny: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, y = tiny
    with pytest.raises(ModelError) as err:
        HotspotModel("lightgbm", FEATURES, imbalance="smote", objective="poisson").fit(
            frame, y, counts=frame["target_count"].to_numpy())
    assert str(err.value) == (
        "imbalance 'smote' applies to the binary objective; got objective 'poisson'. Pass "
        "--objective binary or drop --use-smote/--class-weight.")


def test_ensemble_blends_learned_and_naive_and_round_trips(
    tiny: tuple[pl.DataFrame, np.ndarray], tmp_path: Path,
) -> None:
    frame, y = tiny
    learned = HotspotModel("lightgbm", FEATURES, SMALL["lightgbm"], objective="poisson").fit(
        frame, y, counts=frame["target_count"].to_numpy())
    naive = ColumnForecaster("prior_counts_52w").fit(frame, y)
    only_naive = EnsembleForecaster(learned, naive, weight=0.0).fit(frame, y)
    ranks = np.argsort(np.argsort(only_naive.score(frame)))
    assert np.array_equal(ranks, np.argsort(np.argsort(naive.score(frame))))
    blend = EnsembleForecaster(learned, naive, weight=0.4).fit(frame, y)
    assert blend.feature_names == [*FEATURES, "prior_counts_52w"]
    save_model(blend, tmp_path)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, EnsembleForecaster) and loaded.weight == 0.4
    assert np.allclose(loaded.score(frame), blend.score(frame), atol=1e-6)
    assert np.allclose(loaded.predict_proba(frame), blend.predict_proba(frame), atol=1e-6)


@pytest.mark.parametrize("model_type", list(ESTIMATORS))
@pytest.mark.parametrize("imbalance", ["none", "smote", "class_weight"])
def test_every_model_type_trains_and_round_trips(
    tiny: tuple[pl.DataFrame, np.ndarray], tmp_path: Path, model_type: str, imbalance: str,
) -> None:
    frame, y = tiny
    model = HotspotModel(model_type, FEATURES, SMALL[model_type], imbalance).fit(frame, y)
    prob = model.predict_proba(frame)
    assert prob.shape == (frame.height,) and ((prob >= 0) & (prob <= 1)).all()
    manifest = save_model(model, tmp_path)
    assert not list(tmp_path.glob("*.pkl")) and manifest["files"]
    assert np.allclose(load_model(tmp_path).predict_proba(frame), prob, atol=1e-6)
    assert set(model.feature_importance()) == set(FEATURES)


def test_smote_resamples_training_rows_only(tiny: tuple[pl.DataFrame, np.ndarray]) -> None:
    frame, y = tiny
    model = HotspotModel("logistic", FEATURES, imbalance="smote").fit(frame, y)
    # Prediction never resamples: one probability per evaluation row.
    assert model.predict_proba(frame.head(7)).shape == (7,)


def test_tampered_model_file_is_refused(tiny: tuple[pl.DataFrame, np.ndarray],
                                        tmp_path: Path) -> None:
    frame, y = tiny
    save_model(HotspotModel("xgboost", FEATURES, SMALL["xgboost"]).fit(frame, y), tmp_path)
    target = tmp_path / "estimator.ubj"
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelIntegrityError) as err:
        load_model(tmp_path)
    assert str(err.value).startswith(f"model file '{target}' has sha256 ")
    assert str(err.value).endswith("the file was changed or corrupted. Re-train or re-download.")


def test_unknown_model_type_message(tiny: tuple[pl.DataFrame, np.ndarray]) -> None:
    with pytest.raises(ModelError) as err:
        HotspotModel("svm", FEATURES).fit(*tiny)
    assert str(err.value) == (
        "model_type must be one of random_forest, extra_trees, balanced_random_forest, "
        "xgboost, catboost, lightgbm, logistic; got 'svm'. Pass --model-type lightgbm."
    )


@pytest.mark.parametrize("name", list(COLUMN_FORECASTERS))
def test_column_forecasters_rank_by_their_column_and_round_trip(
    tiny: tuple[pl.DataFrame, np.ndarray], tmp_path: Path, name: str,
) -> None:
    frame, y = tiny
    baseline = ColumnForecaster(name).fit(frame, y)
    assert np.array_equal(baseline.score(frame), frame[COLUMN_FORECASTERS[name]].to_numpy())
    save_model(baseline, tmp_path)
    assert np.allclose(load_model(tmp_path).predict_proba(frame), baseline.predict_proba(frame))


def test_time_split_keeps_a_gap_and_never_shuffles() -> None:
    split = time_split(100, 0.8, gap=7)
    assert (split.train_end, split.test_start) == (73, 80)
    folds = expanding_folds(60, 3, gap=5)
    assert folds == [(10, 15, 30), (25, 30, 45), (40, 45, 60)]


def test_threshold_maximises_f1_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    prob = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    # At 0.35: predicted positives {0.35, 0.4, 0.7, 0.8} -> TP 3, FP 1, FN 0 -> F1 6/7;
    # at 0.7: TP 2, FP 0, FN 1 -> F1 0.8. The best is 0.35.
    assert best_f1_threshold(y, prob) == pytest.approx(0.35)


@pytest.mark.parametrize("model_type", list(ESTIMATORS))
def test_the_card_sees_the_fitted_hyper_parameters_defaults_included(
        tiny: tuple[pl.DataFrame, np.ndarray], model_type: str) -> None:
    frame, y = tiny
    model = HotspotModel(model_type, FEATURES, SMALL[model_type])
    assert model.effective_params() == {}
    params = model.fit(frame, y).effective_params()
    given = next(iter(SMALL[model_type].items()), None)
    if given is not None:
        assert params[given[0]] == given[1]
    assert len(params) >= 3 and all(isinstance(v, str | int | float | bool)
                                    for v in params.values())
    if model_type == "lightgbm":
        assert params["learning_rate"] == 0.03 and params["num_leaves"] == 7
