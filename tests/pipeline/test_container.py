"""The SageMaker container entry points, run in sequence on a temporary /opt/ml tree.

Between steps the test moves artefacts the way SageMaker does: a processing
output is uploaded and mounted as the next job's input, the training job's
SM_MODEL_DIR becomes model.tar.gz, hyper-parameters arrive as strings. The
results must equal those of a local ``crimecast run`` on the same data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crimecast.errors import ConfigError, PipelineError
from crimecast.pipeline.container import run_entrypoint
from crimecast.pipeline.container_io import (
    BUNDLE_FILE,
    ContainerPaths,
    RuntimeParams,
    make_bundle,
    model_tree,
    read_hyperparameters,
)
from tests.pipeline.conftest import BOOTSTRAP, MODEL_TYPE, SPLIT_RATIO, LocalRun

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Container:
    root: Path
    local: LocalRun
    mlflow_db: Path
    card_args: tuple[str, ...]


def _mount(source: Path, target: Path) -> None:
    """Between jobs SageMaker uploads one job's output and downloads it for the next."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def container(sagemaker_local_run: LocalRun, tmp_path_factory: pytest.TempPathFactory
              ) -> Container:
    local = sagemaker_local_run
    base = tmp_path_factory.mktemp("container")
    root = base / "opt" / "ml"
    # The bundle holds the configuration defaults (lightgbm, split 0.8); the
    # execution-time parameters below override them, as on SageMaker.
    bundle = make_bundle(local.settings, "lapd", tune=0, bootstrap_resamples=BOOTSTRAP)
    for config in (root / "processing" / "input" / "config", root / "input" / "data" / "config"):
        config.mkdir(parents=True)
        (config / BUNDLE_FILE).write_bytes(bundle.to_bytes())
    _mount(local.data.parent, root / "processing" / "input" / "data")

    # Process: its own process, through the module entry point and the root env var.
    done = subprocess.run(
        [sys.executable, "-m", "crimecast.pipeline.container", "process",
         "--train-test-split-ratio", str(SPLIT_RATIO)],
        env={**os.environ, "CRIMECAST_CONTAINER_ROOT": str(root)}, capture_output=True,
        text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    # Train: channel from SM_CHANNEL_TRAIN, model into SM_MODEL_DIR, string hyper-parameters.
    _mount(root / "processing" / "output" / "process", root / "channels" / "train")
    hyper = root / "input" / "config" / "hyperparameters.json"
    hyper.parent.mkdir(parents=True)
    hyper.write_text(json.dumps({"model_type": MODEL_TYPE, "use_smote": "False",
                                 "train_test_split_ratio": str(SPLIT_RATIO)}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SM_CHANNEL_TRAIN", str(root / "channels" / "train"))
        patch.setenv("SM_MODEL_DIR", str(root / "model"))
        run_entrypoint(["train", "--root", str(root)])
    archive = root / "processing" / "input" / "model" / "model.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted((root / "model").iterdir()):
            tar.add(item, arcname=item.name)

    _mount(root / "processing" / "output" / "process", root / "processing" / "input" / "process")
    run_entrypoint(["evaluate", "--root", str(root), "--f1-threshold", "0.0"])
    _mount(root / "processing" / "evaluation", root / "processing" / "input" / "evaluation")
    card_args = ["--model-type", MODEL_TYPE, "--train-test-split-ratio", str(SPLIT_RATIO),
                 "--use-smote", "false", "--f1-threshold", "0.0", "--run-id", "execution-1"]
    run_entrypoint(["card", "--root", str(root), *card_args])
    _mount(root / "processing" / "output" / "card", root / "processing" / "input" / "card")
    mlflow_db = base / "mlflow.db"
    run_entrypoint(["register", "--root", str(root), "--tracking-uri", f"sqlite:///{mlflow_db}",
                    *card_args])
    return Container(root=root, local=local, mlflow_db=mlflow_db, card_args=tuple(card_args))


def test_evaluation_equals_the_local_run(container: Container) -> None:
    evaluation = _json(container.root / "processing" / "evaluation" / "evaluation.json")
    local = container.local.summary.evaluation
    assert evaluation["binary_classification_metrics"] == local["binary_classification_metrics"]
    assert evaluation["binary_classification_metrics"]["f1"]["value"] is not None
    assert evaluation == local  # hotspot metrics, baselines, per-area, split: all of it
    gate = _json(container.root / "processing" / "evaluation" / "gate.json")
    assert gate == container.local.summary.gate
    assert gate["passed"] is True


def test_training_used_the_execution_parameters(container: Container) -> None:
    info = _json(container.root / "model" / "train_info.json")
    local = _json(container.local.summary.run_dir / "train" / "train_info.json")
    assert (info["model_type"], info["imbalance"]) == (MODEL_TYPE, local["imbalance"])
    # Timings differ, and skops archives embed their write time, so file hashes do too;
    # equal predictions (the evaluation test) show the estimators are the same.
    varying = {"seconds", "model_files", "files"}
    assert {k: v for k, v in info.items() if k not in varying} == \
        {k: v for k, v in local.items() if k not in varying}
    manifest = _json(container.root / "model" / "model" / "model.json")
    local_manifest = _json(container.local.summary.run_dir / "train" / "model" / "model.json")
    assert {k: v for k, v in manifest.items() if k not in varying} == \
        {k: v for k, v in local_manifest.items() if k not in varying}


def test_model_dir_is_a_self_contained_serving_folder(container: Container) -> None:
    from crimecast.serving.bundle import load_bundle_from_dir

    model_dir = container.root / "model"
    for name in ("model/model.json", "train_info.json", "features_meta.json", "units.parquet",
                 "baselines/kde_52w_2x/model.json", "deploy/model/model.json",
                 "deploy/train_info.json"):
        assert (model_dir / name).is_file(), name
    bundle = load_bundle_from_dir(model_dir)
    info = _json(model_dir / "train_info.json")
    assert bundle.model.model_type == MODEL_TYPE
    assert bundle.threshold == info["decision_threshold"]
    assert bundle.units is not None


def test_card_and_lineage_match_the_local_run(container: Container) -> None:
    card = _json(container.root / "processing" / "output" / "card" / "model_card.json")
    local = _json(container.local.summary.card_json)

    def groups(c: dict[str, Any]) -> dict[str, Any]:
        return {g["name"]: g for g in c["evaluation_details"][0]["metric_groups"]}

    assert groups(card) == groups(local)
    provenance = json.loads(card["additional_information"]["custom_details"]["provenance"])
    assert provenance == json.loads(
        local["additional_information"]["custom_details"]["provenance"])
    manifest = _json(container.local.summary.manifest)
    assert provenance["data_hash"] == manifest["data_hash"]
    assert "execution-1" in card["model_overview"]["model_description"]


def test_register_logs_to_mlflow_like_the_local_run(container: Container) -> None:
    registration = _json(container.root / "processing" / "output" / "register" /
                         "registration.json")
    assert registration["registered"] is container.local.summary.registration["registered"]
    assert registration["version"] == 1
    assert registration["tracking_uri"] == f"sqlite:///{container.mlflow_db}"


def test_no_failure_message_after_success(container: Container) -> None:
    assert not (container.root / "output").exists()


def test_card_entrypoint_creates_the_sagemaker_model_card(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        run_entrypoint(["card", "--root", str(container.root), *container.card_args,
                        "--model-card-name", "crimecast-execution-1", "--region", "us-west-2"])
        described = boto3.client("sagemaker", region_name="us-west-2").describe_model_card(
            ModelCardName="crimecast-execution-1")
    written = _json(container.root / "processing" / "output" / "card" / "model_card.json")
    assert described["ModelCardStatus"] == "Draft"
    assert json.loads(described["Content"]) == written


def test_model_tree_accepts_an_archive_or_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "extracted"
    (folder / "model").mkdir(parents=True)
    (folder / "train_info.json").write_text("{}")
    assert model_tree(folder, tmp_path / "scratch1") == folder
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    with tarfile.open(mounted / "model.tar.gz", "w:gz") as tar:
        tar.add(folder / "train_info.json", arcname="train_info.json")
    extracted = model_tree(mounted, tmp_path / "scratch2")
    assert (extracted / "train_info.json").read_text() == "{}"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PipelineError) as err:
        model_tree(empty, tmp_path / "scratch3")
    assert str(err.value) == (
        f"'{empty}' must hold the training job's model.tar.gz or its extracted files "
        "(train_info.json, model/, baselines/); found []. Wire the Train step's "
        "ModelArtifacts.S3ModelArtifacts to this input.")


def test_hyperparameters_are_parsed_from_strings(tmp_path: Path) -> None:
    path = tmp_path / "hyperparameters.json"
    path.write_text(json.dumps({"model_type": '"xgboost"', "use_smote": "TRUE",
                                "train_test_split_ratio": "0.7", "sagemaker_region": "x"}))
    params = RuntimeParams.parse(read_hyperparameters(path))
    assert params == RuntimeParams(model_type="xgboost", train_test_split_ratio=0.7,
                                   use_smote=True, f1_threshold=None)
    with pytest.raises(ConfigError) as err:
        RuntimeParams.parse({"use_smote": "maybe"})
    assert str(err.value) == ("use_smote must be true or false; got 'maybe'. Pass "
                              "use_smote=true or use_smote=false.")
    with pytest.raises(ConfigError) as err:
        RuntimeParams.parse({"f1_threshold": "high"})
    assert str(err.value) == "f1_threshold must be a number; got 'high'. Pass e.g. " \
                             "f1_threshold=0.8."


def test_failures_leave_the_reason_where_sagemaker_reads_it(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    with pytest.raises(PipelineError) as err:
        run_entrypoint(["evaluate", "--root", str(root)])
    bundle = root / "processing" / "input" / "config" / BUNDLE_FILE
    expected = (f"pipeline bundle '{bundle}' is missing. The job needs the {BUNDLE_FILE} "
                "that crimecast sagemaker upsert uploads; re-run upsert.")
    assert str(err.value) == expected
    assert (root / "output" / "message").read_text() == f"evaluate: {expected}"

    hyper = ContainerPaths(root).hyperparameters
    hyper.parent.mkdir(parents=True)
    hyper.write_text(json.dumps({"use_smote": "maybe"}))
    with pytest.raises(ConfigError):
        run_entrypoint(["train", "--root", str(root)])
    assert (root / "output" / "failure").read_text().startswith(
        "train: use_smote must be true or false; got 'maybe'.")


def test_docker_entrypoint_maps_train_to_the_train_entry_point(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "CRIMECAST_CONTAINER_ROOT": str(tmp_path)}
    done = subprocess.run(["sh", str(REPO / "docker" / "entrypoint.sh"), "train"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    # Through `crimecast sagemaker entrypoint train`: one message, exit 2, failure file.
    assert done.returncode == 2
    assert "pipeline bundle" in done.stderr and "is missing" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "output" / "failure").read_text().startswith(
        "train: pipeline bundle")
    unknown = subprocess.run(["sh", str(REPO / "docker" / "entrypoint.sh"), "fly"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 2
    assert "unknown command 'fly'" in unknown.stderr


def test_docker_serve_serves_the_training_output(container: Container, tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "SM_MODEL_DIR": str(container.root / "model"), "SAGEMAKER_BIND_TO_PORT": str(port)}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(["sh", str(REPO / "docker" / "entrypoint.sh"), "serve"],
                                  env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, log.read_text()[-3000:]
        model = httpx.get(f"http://127.0.0.1:{port}/model", timeout=10).json()
        info = _json(container.root / "model" / "train_info.json")
        assert (model["model_type"], model["decision_threshold"]) == (
            MODEL_TYPE, info["decision_threshold"])
    finally:
        server.terminate()
        server.wait(timeout=30)
