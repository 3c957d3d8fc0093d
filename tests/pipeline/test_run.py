"""The pipeline end to end on generated data, with a real MLflow SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crimecast.config import Settings
from crimecast.data.output import write_incidents, write_provenance
from crimecast.models.naive import NAIVE
from crimecast.pipeline.run import RunSummary, run_pipeline
from crimecast.synthetic.generate import generate_incidents


def _settings(runs: Path, **pipeline: object) -> Settings:
    settings = Settings().with_overrides("features", time_bin="1d", spatial_unit="area")
    return settings.with_overrides("pipeline", runs_dir=str(runs), **pipeline)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    write_incidents(generate_incidents(dt.date(2022, 1, 1), dt.date(2023, 12, 31), seed=3), path)
    write_provenance(path, {"synthetic": True, "seed": 3})
    return path


@pytest.fixture(scope="module")
def first_run(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[RunSummary, Path]]:
    runs = tmp_path_factory.mktemp("runs")
    summary = run_pipeline(_settings(runs, f1_threshold=0.0, gate_metric="f1", register_best=True),
                           [str(data_file)], schema="lapd", bootstrap_resamples=20)
    yield summary, runs


def test_run_writes_every_step_and_the_manifest(first_run: tuple[RunSummary, Path]) -> None:
    summary, _ = first_run
    assert [s["status"] for s in summary.steps.values()] == ["ran"] * 6
    manifest = json.loads(summary.manifest.read_text())
    assert set(manifest) >= {"run_id", "data_hash", "config_hash", "params", "steps",
                             "code_version"}
    for step in ("process", "train", "evaluate", "gate", "card", "register"):
        assert (summary.run_dir / step).is_dir()
    evaluation = summary.evaluation
    assert set(evaluation["baselines"]) == {*NAIVE, "sepp", "ensemble"}
    assert evaluation["binary_classification_metrics"]["f1"]["value"] is not None
    assert evaluation["data"]["synthetic"] is True


def test_every_forecaster_is_ranked_on_validation(first_run: tuple[RunSummary, Path]) -> None:
    summary, _ = first_run
    ranking = summary.evaluation["forecasters"]
    names = {"lightgbm", "sepp", "ensemble", *NAIVE}
    assert {r["forecaster"] for r in ranking["validation_ranking"]} == names
    assert set(ranking["test"]) == names
    values = ranking["validation"]
    best = max(v for v in values.values() if v is not None)
    assert values[ranking["champion"]] == best  # chosen on validation, never on test
    assert ranking["validation_ranking"][0]["forecaster"] == ranking["champion"]
    assert ranking["best_naive"] in NAIVE
    assert values[ranking["best_naive"]] == max(values[n] for n in NAIVE
                                                if values[n] is not None)
    assert ranking["metric"] == "f1"
    assert ranking["champion"] in ranking["champion_line"] or \
        ranking["champion_kind"] == "ensemble"
    gate = summary.gate
    assert gate["model_value"] == values["lightgbm"]
    assert gate["baseline_value"] == values[ranking["best_naive"]]
    assert gate["passed"] is (values["lightgbm"] > values[ranking["best_naive"]])


def test_card_metrics_equal_evaluation_json(first_run: tuple[RunSummary, Path]) -> None:
    summary, _ = first_run
    card = json.loads(summary.card_json.read_text())
    # The card describes the forecaster that registration deploys (here the champion).
    evaluation = json.loads((summary.run_dir / "evaluate" / "deploy" / "evaluation.json")
                            .read_text())
    assert evaluation["data"].get("deployed", "lightgbm") == \
        summary.evaluation["forecasters"]["champion"]
    groups = {g["name"]: g for g in card["evaluation_details"][0]["metric_groups"]}
    checked = 0
    for name, entry in evaluation["binary_classification_metrics"].items():
        values = {m["name"]: m["value"] for m in groups["binary_classification_metrics"][
            "metric_data"]}
        assert values[name] == entry["value"]
        checked += 1
    for name, entry in evaluation["hotspot_metrics"].items():
        if isinstance(entry, dict):
            values = {m["name"]: m["value"] for m in groups["hotspot_metrics"]["metric_data"]}
            assert values[name] == entry["value"]
            checked += 1
    assert checked >= 20
    assert "SYNTHETIC" in summary.card_html.read_text()


def test_gate_decision_matches_registration(first_run: tuple[RunSummary, Path]) -> None:
    summary, runs = first_run
    gate, registration = summary.gate, summary.registration
    ranking = summary.evaluation["forecasters"]
    # --register-best: the champion is registered, whatever its kind.
    assert registration["registered"] is (gate["passed"] or ranking["champion_kind"] != "learned")
    assert registration["forecaster"] == ranking["champion"]
    assert registration["mlflow_run_id"]
    if registration["registered"]:
        from crimecast.registry.store import ModelRegistry

        versions = ModelRegistry(state_dir=runs / ".mlflow").list_versions()
        assert versions[0].version == registration["version"]
        assert versions[0].tags["approval_status"] == "PendingManualApproval"
        assert {"data_hash", "config_hash", "code_version"} <= set(versions[0].tags)


def test_rerun_is_served_from_the_cache(first_run: tuple[RunSummary, Path],
                                        data_file: Path) -> None:
    summary, runs = first_run
    again = run_pipeline(_settings(runs, f1_threshold=0.0, gate_metric="f1", register_best=True),
                         [str(data_file)], schema="lapd", bootstrap_resamples=20)
    assert [s["status"] for s in again.steps.values()] == ["cached"] * 6
    assert again.run_id != summary.run_id
    assert again.registration == summary.registration
    assert again.evaluation == summary.evaluation


def test_changed_parameter_reruns_only_downstream_steps(first_run: tuple[RunSummary, Path],
                                                        data_file: Path) -> None:
    _, runs = first_run
    again = run_pipeline(_settings(runs, f1_threshold=0.99, gate_metric="f1"), [str(data_file)],
                         schema="lapd", bootstrap_resamples=20)
    statuses = {k: v["status"] for k, v in again.steps.items()}
    assert statuses["process"] == "cached" and statuses["gate"] == "ran"
    assert again.gate["passed"] is False and again.registration["registered"] is False
    assert any("F1" in r for r in again.gate["reasons"])


def test_killed_run_resumes(data_file: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "crimecast.cli", "run", "--data", str(data_file),
               "--schema", "lapd", "--time-bin", "1d", "--runs-dir", str(runs),
               "--model-type", "logistic"]
    env = {**os.environ, "CRIMECAST_PAUSE_BEFORE": "train:60"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((runs / ".cache" / "process").glob(
            "*/_SUCCESS.json")):
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list((runs / ".cache" / "train").glob("*/_SUCCESS.json"))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    manifests = {json.loads(p.read_text())["status"]: json.loads(p.read_text())
                 for p in runs.glob("*/manifest.json")}
    assert sorted(manifests) == ["complete", "running"]  # the killed run kept its lineage
    assert manifests["running"]["steps"]["process"]["status"] == "ran"
    steps = manifests["complete"]["steps"]
    assert steps["process"]["status"] == "cached" and steps["train"]["status"] == "ran"
    leftovers = [p for p in (runs / ".cache").rglob("*") if ".tmp-" in p.name]
    assert leftovers == []


def test_models_list_and_promote_cli(first_run: tuple[RunSummary, Path]) -> None:
    from typer.testing import CliRunner

    from crimecast.cli import app

    summary, runs = first_run
    assert summary.registration["registered"], summary.gate["reasons"]
    version = str(summary.registration["version"])
    runner = CliRunner()
    promoted = runner.invoke(app, ["models", "promote", version, "--runs-dir", str(runs),
                                   "--by", "A. Analyst", "--reason", "card reviewed"])
    assert promoted.exit_code == 0, promoted.output
    assert f"version {version} is now 'champion' (approval_status=Approved, by A. Analyst)" \
        in " ".join(promoted.output.split())
    record = json.loads((runs / ".mlflow" / "promotions.jsonl").read_text().splitlines()[-1])
    assert {k: record[k] for k in ("version", "approved_by", "approved_reason",
                                   "approved_alias")} == {
        "version": int(version), "approved_by": "A. Analyst",
        "approved_reason": "card reviewed", "approved_alias": "champion"}
    listed = runner.invoke(app, ["models", "list", "--runs-dir", str(runs)])
    assert listed.exit_code == 0 and "champion" in listed.output
    missing = runner.invoke(app, ["models", "promote", "99", "--runs-dir", str(runs)])
    assert missing.exit_code == 2
    assert "model version 99 of 'crimecast-hotspots' does not exist" in " ".join(
        missing.output.split())


def test_model_type_and_smote_flags_run_the_pipeline(data_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crimecast.cli import app

    result = CliRunner().invoke(app, [
        "run", "--data", str(data_file), "--schema", "lapd", "--time-bin", "1d",
        "--runs-dir", str(tmp_path), "--model-type", "xgboost", "--use-smote"])
    assert result.exit_code == 0, result.output
    info = json.loads(next(tmp_path.glob("*/train/train_info.json")).read_text())
    assert (info["model_type"], info["imbalance"]) == ("xgboost", "smote")
    assert list(tmp_path.glob("*/train/model/estimator.ubj"))


def test_tune_runs_optuna_over_time_series_folds(data_file: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path).with_overrides("pipeline", model_type="logistic")
    summary = run_pipeline(settings, [str(data_file)], schema="lapd", tune=2,
                           bootstrap_resamples=10)
    info = json.loads((summary.run_dir / "train" / "train_info.json").read_text())
    tuning = info["tuning"]
    assert tuning["trials"] == 2 and "C" in tuning["best_params"]
    assert info["params"]["C"] == tuning["best_params"]["C"]
    assert tuning["gap_bins"] == info["split"]["gap_bins"]
    ends = [fold[0] for fold in tuning["folds"]]
    assert ends == sorted(ends)  # expanding windows, no shuffling
    for train_end, valid_start, _ in tuning["folds"]:
        assert valid_start - train_end == tuning["gap_bins"]


def test_register_best_deploys_the_champion_with_the_serving_contract(
        first_run: tuple[RunSummary, Path]) -> None:
    import polars as pl

    from crimecast.registry.pyfunc_model import predict_frame
    from crimecast.serving.bundle import load_bundle

    summary, runs = first_run
    ranking = summary.evaluation["forecasters"]
    version = summary.registration["version"]
    bundle = load_bundle(f"models:/crimecast-hotspots/{version}", state_dir=runs / ".mlflow")
    assert bundle.model.model_type == ranking["champion"]
    info = json.loads((summary.run_dir / "train" / "deploy" / "train_info.json").read_text())
    assert info["forecaster_kind"] == ranking["champion_kind"]
    assert bundle.threshold == info["decision_threshold"] == info["thresholds"][
        ranking["champion"]]
    assert bundle.features == info["features"]
    # The same rows scored through the registry's pyfunc contract and directly agree with
    # the run's own test predictions of that forecaster.
    panel = pl.read_parquet(summary.run_dir / "process" / "features.parquet")
    rows = panel.filter(pl.col("bin_start") == panel["bin_start"].max()).sort("unit_id")
    served = predict_frame(bundle.model, rows)["hotspot_probability"].to_numpy()
    predictions = pl.read_parquet(summary.run_dir / "evaluate" / "predictions.parquet").filter(
        pl.col("model") == ranking["champion"],
        pl.col("bin_start") == panel["bin_start"].max()).sort("unit_id")
    assert served.tolist() == pytest.approx(predictions["prob"].to_list(), abs=1e-9)
    card = json.loads(summary.card_json.read_text())
    assert ranking["champion"] in json.dumps(card)
