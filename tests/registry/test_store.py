"""The MLflow-backed registry on a real SQLite store: log, register, promote, resolve."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
import yaml
from mlflow import MlflowClient

from crimecast.errors import CrimecastError, ModelError, ModelIntegrityError, RegistryError
from crimecast.models.estimators import HotspotModel
from crimecast.models.storage import load_model, save_model
from crimecast.registry.pyfunc_model import PREDICTION_COLUMN
from crimecast.registry.store import (
    APPROVAL_TAG,
    DEFAULT_MODEL_NAME,
    STATE_DIR_ENV,
    ModelRegistry,
    default_state_dir,
    tracking_uri_for,
)

FEATURES = ["prior_counts_4w", "hour_sin", "is_weekend"]


@dataclass
class Store:
    registry: ModelRegistry
    model: HotspotModel
    frame: pl.DataFrame
    run_ids: list[str]
    versions: list[int]
    artifacts: dict[str, Path]


def _frame(n: int = 120, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3, n).astype(np.float32)  # the panel's dtypes: Float32, Int8 flags
    frame = pl.DataFrame({
        "unit_id": [f"u{i % 7}" for i in range(n)],
        "prior_counts_4w": counts,
        "hour_sin": rng.uniform(-1, 1, n),
        "is_weekend": rng.integers(0, 2, n).astype(np.int8),
    })
    labels = (counts + rng.normal(0, 1, n) > 3).astype(np.int8)
    return frame, labels


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two logged runs of a tiny logistic model, registered as versions 1 and 2."""
    root = tmp_path_factory.mktemp("registry")
    frame, labels = _frame()
    model = HotspotModel("logistic", FEATURES).fit(frame, labels)
    save_model(model, root / "saved")
    (root / "evaluation.json").write_text(json.dumps({"pr_auc": 0.5}))
    (root / "card.json").write_text(json.dumps({"model": "logistic"}))
    artifacts = {"evaluation.json": root / "evaluation.json",
                 "model_card.json": root / "card.json"}
    registry = ModelRegistry(state_dir=root / "state")
    run_ids, versions = [], []
    for i in range(2):
        run_ids.append(registry.log_run(
            run_name=f"train-{i}",
            params={"model_type": "logistic", "features": {"window": 28, "list": [1, 2]},
                    "long": "x" * 7000, "none": None},
            metrics={"pr_auc": 0.4 + i / 10, "brier": None, "nan_metric": math.nan},
            artifacts=artifacts, model_dir=root / "saved", input_example=frame,
            tags={"data_hash": f"d{i}", "config_hash": "c"}))
        versions.append(registry.register(run_ids[-1], tags={
            "data_hash": f"d{i}", "config_hash": "c", "code_version": "abc", "gate": "passed",
            "pr_auc": str(0.4 + i / 10)}))
    return Store(registry, model, frame, run_ids, versions, artifacts)


def test_state_dir_and_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    assert default_state_dir() == Path("runs/.mlflow")
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    assert default_state_dir() == tmp_path
    assert tracking_uri_for(tmp_path) == f"sqlite:///{tmp_path.absolute()}/mlflow.db"
    registry = ModelRegistry(tracking_uri=tracking_uri_for(tmp_path / "s"))
    assert registry.state_dir == (tmp_path / "s").absolute()


def test_log_run_records_params_metrics_and_artifacts(store: Store) -> None:
    registry = store.registry
    run = MlflowClient(registry.tracking_uri).get_run(store.run_ids[1])
    params = run.data.params
    assert params["model_type"] == "logistic"
    assert params["features.window"] == "28" and params["features.list"] == "[1, 2]"
    assert len(params["long"]) == 6000 and params["none"] == "None"
    assert run.data.metrics == {"pr_auc": pytest.approx(0.5)}
    assert run.data.tags["data_hash"] == "d1" and run.info.run_name == "train-1"
    assert run.info.artifact_uri.startswith((registry.state_dir / "mlartifacts").as_uri())
    names = {a.path for a in MlflowClient(registry.tracking_uri).list_artifacts(run.info.run_id)}
    assert names == {"evaluation.json", "model_card.json"}


def test_register_creates_new_tagged_versions_newest_first(store: Store) -> None:
    assert store.versions == [1, 2]
    infos = store.registry.list_versions()
    assert [i.version for i in infos] == [2, 1]
    assert [i.run_id for i in infos] == store.run_ids[::-1]
    assert all(i.status == "READY" for i in infos)
    assert infos[1].tags["data_hash"] == "d0" and infos[0].tags["data_hash"] == "d1"
    assert infos[0].tags["gate"] == "passed" and infos[0].tags["code_version"] == "abc"
    assert infos[0].created_at >= infos[1].created_at


def test_register_always_starts_pending(store: Store, tmp_path: Path) -> None:
    other = ModelRegistry(state_dir=store.registry.state_dir, model_name="crimecast-pending")
    version = other.register(store.run_ids[0], tags={APPROVAL_TAG: "Approved", "gate": "failed"})
    info = other.get_version(version)
    assert info.approval_status == "PendingManualApproval"
    with pytest.raises(RegistryError, match="did not pass the evaluation gate"):
        other.promote(version)


def test_failed_registration_leaves_no_version(store: Store) -> None:
    with pytest.raises(RegistryError, match="could not register run"):
        store.registry.register(store.run_ids[0], tags={"huge": "x" * 100_001})
    assert [i.version for i in store.registry.list_versions()] == [2, 1]
    with pytest.raises(RegistryError, match="does not exist"):
        store.registry.register("0" * 32, tags={})


def test_promote_moves_alias_and_approves(store: Store) -> None:
    registry = store.registry
    first = registry.promote(1)
    assert first.aliases == ("champion",) and first.approval_status == "Approved"
    second = registry.promote(2)
    assert second.aliases == ("champion",) and second.approval_status == "Approved"
    assert second.tags["approved_at"] and second.tags["approved_alias"] == "champion"
    assert registry.get_version(1).aliases == ()


def test_unknown_version_and_missing_alias_errors(store: Store, tmp_path: Path) -> None:
    registry = store.registry
    with pytest.raises(RegistryError) as err:
        registry.promote(7)
    assert str(err.value) == ("model version 7 of 'crimecast-hotspots' does not exist; "
                              "versions: [1, 2]. Run crimecast models list.")
    assert isinstance(err.value, CrimecastError)
    with pytest.raises(RegistryError) as err:
        registry.resolve("models:/crimecast-hotspots/9")
    assert str(err.value).startswith("model version 9 of 'crimecast-hotspots' does not exist")
    with pytest.raises(RegistryError) as err:
        registry.resolve("models:/crimecast-hotspots@staging")
    assert str(err.value) == ("no version of 'crimecast-hotspots' has the alias 'staging'. "
                              "Run crimecast models promote VERSION first.")
    with pytest.raises(RegistryError, match="cannot resolve 'latest-please'"):
        registry.resolve("latest-please")
    empty = ModelRegistry(state_dir=registry.state_dir, model_name="crimecast-unregistered")
    assert empty.list_versions() == []
    with pytest.raises(RegistryError) as err:
        empty.promote(1)
    assert str(err.value) == ("model version 1 of 'crimecast-unregistered' does not exist; "
                              "versions: []. Run crimecast models list.")


def test_resolve_champion_downloads_and_loads(store: Store) -> None:
    registry = store.registry
    registry.promote(2)
    resolved = registry.resolve(f"models:/{DEFAULT_MODEL_NAME}@champion")
    assert resolved.run_id == store.run_ids[1] and resolved.version == 2
    assert resolved.tags["data_hash"] == "d1"
    assert (resolved.artifacts_dir / "evaluation.json").is_file()
    assert (resolved.artifacts_dir / "model_card.json").is_file()
    loaded = load_model(resolved.model_dir)
    assert loaded.feature_names == FEATURES
    np.testing.assert_allclose(loaded.predict_proba(store.frame),
                               store.model.predict_proba(store.frame))
    again = registry.resolve(f"models:/{DEFAULT_MODEL_NAME}/2")
    assert again.model_dir == resolved.model_dir  # served from the local cache
    by_run = registry.resolve(store.run_ids[0])
    assert by_run.version is None and by_run.tags["data_hash"] == "d0"
    assert load_model(by_run.model_dir).model_type == "logistic"


def test_tampered_model_is_refused(store: Store, tmp_path: Path) -> None:
    resolved = store.registry.resolve(store.run_ids[1])
    copy = tmp_path / "copy"
    shutil.copytree(resolved.model_dir, copy)
    estimator = next(p for p in copy.iterdir() if p.suffix == ".skops")
    estimator.write_bytes(estimator.read_bytes() + b"tampered")
    with pytest.raises(ModelIntegrityError):
        load_model(copy)


def test_pyfunc_loads_from_registry_end_to_end(store: Store) -> None:
    registry = store.registry
    registry.promote(2)
    rows = store.frame.head(20)
    with registry.activated():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
        pyfunc = mlflow.pyfunc.load_model(f"models:/{DEFAULT_MODEL_NAME}@champion")
        predicted = pyfunc.predict(rows.to_pandas())
    assert mlflow.get_tracking_uri() != registry.tracking_uri
    assert list(predicted.columns) == [PREDICTION_COLUMN]
    np.testing.assert_allclose(predicted[PREDICTION_COLUMN].to_numpy(),
                               store.model.predict_proba(rows))
    local = mlflow.pyfunc.load_model(str(registry.resolve(store.run_ids[1]).pyfunc_dir))
    assert local.predict(rows.to_pandas()).shape == (20, 1)
    # The signature is double throughout, so JSON-like float rows with nulls are accepted.
    loose = rows.select(FEATURES).cast(pl.Float64).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("prior_counts_4w"))
        .alias("prior_counts_4w"))
    scores = local.predict(loose.to_pandas())[PREDICTION_COLUMN].to_numpy()
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()


def test_logged_model_holds_code_not_pickles(store: Store) -> None:
    resolved = store.registry.resolve(store.run_ids[1])
    files = [p for p in resolved.pyfunc_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".cloudpickle", ".joblib"}]
    assert (resolved.pyfunc_dir / "pyfunc_model.py").is_file()
    mlmodel = yaml.safe_load((resolved.pyfunc_dir / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert flavor["model_code_path"].endswith("pyfunc_model.py")
    assert "python_model" not in flavor  # no cloudpickled PythonModel
    assert mlmodel["signature"]["inputs"] and "input_example.json" in {p.name for p in files}
    inputs = {c["name"]: c["type"] for c in json.loads(mlmodel["signature"]["inputs"])}
    assert inputs == dict.fromkeys(FEATURES, "double")


def test_log_run_rejects_rows_without_the_features(store: Store, tmp_path: Path) -> None:
    saved = store.registry.resolve(store.run_ids[1]).model_dir
    with pytest.raises(ModelError, match="lack the model's feature columns"):
        store.registry.log_run(run_name="bad", params={}, metrics={}, artifacts={},
                               model_dir=saved, input_example=store.frame.drop("hour_sin"),
                               tags={})


def test_read_only_commands_never_create_a_registry(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crimecast.cli import app

    typo = tmp_path / "typo" / "x"
    with pytest.raises(RegistryError) as caught:
        ModelRegistry(state_dir=typo / ".mlflow").list_versions()
    assert str(caught.value) == (
        f"no model registry at '{typo / '.mlflow' / 'mlflow.db'}'. Check --runs-dir (or "
        "--tracking-uri), or run crimecast run first to create one.")
    listed = CliRunner().invoke(app, ["models", "list", "--runs-dir", str(typo)])
    promoted = CliRunner().invoke(app, ["models", "promote", "1", "--runs-dir", str(typo)])
    assert listed.exit_code == promoted.exit_code == 2
    assert "no model registry at" in listed.output and "no model registry at" in promoted.output
    assert not (tmp_path / "typo").exists()


def test_the_registry_database_is_created_once_and_atomically(tmp_path: Path) -> None:
    from crimecast.registry.database import ensure_database, schema_is_complete

    path = tmp_path / "state" / "mlflow.db"
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / ".mlflow.db.init-999999").write_bytes(b"half")  # a killed creator
    ensure_database(path)
    assert schema_is_complete(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [".mlflow.db.lock", "mlflow.db"]
    before = path.stat().st_mtime_ns
    ensure_database(path)  # complete: untouched
    assert path.stat().st_mtime_ns == before
