"""Loading a served model: registry references, run folders and SageMaker model dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from crimecast.errors import ModelError, RegistryError
from crimecast.serving.bundle import ModelBundle, load_bundle, load_bundle_from_dir

from .conftest import ServedRun


def sagemaker_model_dir(served_run: ServedRun, target: Path, nested: bool) -> Path:
    """Lay a run's outputs out like SageMaker's /opt/ml/model."""
    run = served_run.summary.run_dir
    shutil.copytree(run / "train" / "model", target / "model" if nested else target)
    for source in ("train/train_info.json", "process/features_meta.json",
                   "process/units.parquet", "card/model_card.json"):
        shutil.copy2(run / source, target / Path(source).name)
    return target


@pytest.mark.parametrize("nested", [True, False])
def test_a_sagemaker_model_dir_serves_the_same_model(served_run: ServedRun, tmp_path: Path,
                                                     bundle: ModelBundle, nested: bool) -> None:
    loaded = load_bundle_from_dir(sagemaker_model_dir(served_run, tmp_path / "m", nested))
    assert loaded.features == bundle.features
    assert loaded.threshold == bundle.threshold
    assert loaded.nullable == bundle.nullable
    assert loaded.units is not None and loaded.units.ids == bundle.units.ids  # type: ignore[union-attr]
    x = np.random.default_rng(1).random((4, len(bundle.features))).astype(np.float32)
    np.testing.assert_array_equal(loaded.model.predict_proba(x), bundle.model.predict_proba(x))
    assert (loaded.version, loaded.run_id) == (None, None)


def test_run_folder_and_registry_reference_agree(served_run: ServedRun,
                                                 bundle: ModelBundle) -> None:
    by_run = load_bundle(served_run.summary.run_id, runs_dir=served_run.runs)
    assert (by_run.version, by_run.run_id) == (bundle.version, bundle.run_id)
    assert by_run.crimecast_run_id == served_run.summary.run_id == bundle.crimecast_run_id
    assert by_run.data_hint == bundle.data_hint
    assert bundle.data_hint == served_run.summary.run_dir / "process" / "clean.parquet"
    assert bundle.card is not None and bundle.evaluation is not None


def test_bad_model_locations_are_named(served_run: ServedRun, tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_bundle_from_dir(tmp_path / "nowhere")
    assert str(err.value) == (f"model directory '{tmp_path / 'nowhere'}' does not exist. Pass "
                              "--model-dir with a folder holding model.json and "
                              "train_info.json.")
    baseline = served_run.summary.run_dir / "train" / "baselines" / "kde_52w_2x"
    with pytest.raises(ModelError) as err:
        load_bundle_from_dir(baseline)
    assert str(err.value) == (f"no train_info.json next to the model in '{baseline}'; it "
                              "holds the decision threshold. Serve a model written by "
                              "crimecast run.")
    bare = tmp_path / "bare"
    shutil.copytree(served_run.summary.run_dir / "train" / "model", bare)
    with pytest.raises(ModelError) as err:
        load_bundle_from_dir(bare)
    assert str(err.value) == (f"no train_info.json next to the model in '{bare}'; it holds the "
                              "decision threshold. Serve a model written by crimecast run.")
    with pytest.raises(RegistryError) as err:
        load_bundle("no-such-run", runs_dir=served_run.runs)
    assert str(err.value).startswith("model reference 'no-such-run' is not models:/NAME@ALIAS")
