"""``crimecast sagemaker export``: offline, credential-free, and faithful to the local run.

The export runs as a real subprocess of the installed ``crimecast`` command with
every AWS credential source removed and every network connection refused (a
``sitecustomize`` guard reports any attempt). The definition is then checked
against the container contract and against a real local ``evaluation.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crimecast.config import load_settings
from crimecast.pipeline.container_io import ContainerPaths, read_bundle
from tests.pipeline.conftest import LocalRun

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/CrimecastSageMaker"
BUCKET = "crimecast-test-bucket"
REGION = "eu-west-1"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/crimecast:test"
OPT_ML = ContainerPaths(Path("/opt/ml"))

NETWORK_GUARD = '''
import socket
import sys

_connect = socket.socket.connect


def _refuse(self, address):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _connect(self, address)
    sys.stderr.write(f"NETWORK ATTEMPT {address!r}\\n")
    raise OSError("network refused by the offline export test")


socket.socket.connect = _refuse
'''


@dataclass(frozen=True)
class Exported:
    definition: dict[str, Any]
    bundle_bytes: bytes
    bundle_path: Path
    stdout: str
    stderr: str


def _offline_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    guard = tmp / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    env.update({"AWS_CONFIG_FILE": str(tmp / "no-such-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-such-credentials"),
                "HOME": str(tmp / "home"), "PYTHONPATH": str(guard), "COLUMNS": "200"})
    return env


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    tmp = tmp_path_factory.mktemp("export")
    out, bundle = tmp / "pipeline.json", tmp / "pipeline_config.json"
    command = [str(Path(sys.executable).parent / "crimecast"), "sagemaker", "export",
               "--out", str(out), "--role-arn", ROLE, "--bucket", BUCKET, "--region", REGION,
               "--instance-type", "ml.m5.2xlarge", "--image-uri", IMAGE,
               "--config", str(REPO / "config"), "--schema", "lapd", "--bundle-out", str(bundle)]
    done = subprocess.run(command, env=_offline_env(tmp), cwd=tmp, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return Exported(definition=json.loads(out.read_text()), bundle_bytes=bundle.read_bytes(),
                    bundle_path=bundle, stdout=done.stdout, stderr=done.stderr)


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step, including those inside condition branches, by name."""
    found: dict[str, dict[str, Any]] = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            for branch in ("IfSteps", "ElseSteps"):
                found.update(_steps({"Steps": step["Arguments"][branch]}))
    return found


def _references(obj: Any) -> set[str]:
    """Names of the steps whose properties ``obj`` reads (``{"Get": "Steps.NAME..."}``)."""
    if isinstance(obj, dict):
        refs = set()
        get = obj.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            refs.add(get.split(".")[1])
        for value in obj.values():
            refs |= _references(value)
        return refs
    if isinstance(obj, list):
        return set().union(*(_references(v) for v in obj)) if obj else set()
    return set()


def _dependencies(step: dict[str, Any]) -> set[str]:
    own = {k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")}
    return _references(own) | _references(step.get("PropertyFiles", [])) | set(
        step.get("DependsOn", []))


def _resolve(document: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        document = document[part]
    return document


def test_export_is_offline(exported: Exported) -> None:
    assert "NETWORK ATTEMPT" not in exported.stderr, exported.stderr
    assert "error" not in exported.stderr.lower()
    assert "placeholders" not in exported.stdout  # every value was given


def test_parameters_have_names_types_and_defaults(exported: Exported) -> None:
    pipeline = load_settings(REPO / "config").pipeline
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"])
                  for p in exported.definition["Parameters"]}
    assert parameters == {
        "ModelType": ("String", pipeline.model_type),
        "TrainTestSplitRatio": ("Float", pipeline.train_test_split_ratio),
        "UseSmote": ("Boolean", pipeline.use_smote),
        "F1Threshold": ("Float", pipeline.f1_threshold),
        "InputDataUri": ("String", f"s3://{BUCKET}/crimecast/data/"),
    }


def test_step_graph(exported: Exported) -> None:
    definition = exported.definition
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("Process", "Processing"), ("Train", "Training"), ("Evaluate", "Processing"),
        ("CheckGate", "Condition")]
    steps = _steps(definition)
    check = steps["CheckGate"]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in check["IfSteps"]] == [
        ("CreateModelCard", "Processing"), ("RegisterModel", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in check["ElseSteps"]] == [("GateFailed", "Fail")]
    assert {name: _dependencies(step) for name, step in steps.items()} == {
        "Process": set(), "Train": {"Process"}, "Evaluate": {"Process", "Train"},
        "CheckGate": {"Evaluate"}, "CreateModelCard": {"Process", "Train", "Evaluate"},
        "RegisterModel": {"Train", "Evaluate", "CreateModelCard"}, "GateFailed": {"Evaluate"}}


def test_condition_reads_f1_where_the_local_evaluation_writes_it(
        exported: Exported, sagemaker_local_run: LocalRun) -> None:
    evaluate = _steps(exported.definition)["Evaluate"]
    files = {f["PropertyFileName"]: f for f in evaluate["PropertyFiles"]}
    assert files["EvaluationReport"] == {"PropertyFileName": "EvaluationReport",
                                         "OutputName": "evaluation",
                                         "FilePath": "evaluation.json"}
    beats, gate = _steps(exported.definition)["CheckGate"]["Arguments"]["Conditions"]
    # The repository's config ranks on validation PR-AUC (z-score label): the condition
    # compares the learned model's validation value with the best naive forecaster's.
    decision_file = {"Get": "Steps.Evaluate.PropertyFiles.GateDecision"}
    assert beats == {"Type": "GreaterThan",
                     "LeftValue": {"Std:JsonGet": {"PropertyFile": decision_file,
                                                   "Path": "model_value"}},
                     "RightValue": {"Std:JsonGet": {"PropertyFile": decision_file,
                                                    "Path": "baseline_value"}}}
    # The paths resolve, in a real local gate.json, to the values the local gate compared.
    summary = sagemaker_local_run.summary
    local_gate = json.loads((summary.run_dir / "gate" / "gate.json").read_text())
    assert local_gate["primary_metric"] == "pr_auc"
    for path in ("model_value", "baseline_value"):
        value = _resolve(local_gate, path)
        assert isinstance(value, float) and value == summary.gate[path]
    local = json.loads((summary.run_dir / "evaluate" / "evaluation.json").read_text())
    assert _resolve(local, "binary_classification_metrics.f1.value") == summary.gate["f1"]
    # The second condition is the local gate's own decision, written beside it.
    assert files["GateDecision"]["FilePath"] == "gate.json"
    assert gate == {"Type": "Equals", "RightValue": True, "LeftValue": {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.GateDecision"}, "Path": "passed"}}}
    assert _resolve(local_gate, "passed") is summary.gate["passed"]


def test_fail_step_message_names_the_gate_metric(exported: Exported) -> None:
    message = _steps(exported.definition)["GateFailed"]["Arguments"]["ErrorMessage"]
    assert any("validation pr_auc" in str(v) for v in message["Std:Join"]["Values"])


def test_jobs_follow_the_container_contract(exported: Exported) -> None:
    steps = _steps(exported.definition)
    expected = {
        "Process": ("process", {"data": OPT_ML.processing_input("data")},
                    {"process": OPT_ML.processing_output("process")}),
        "Evaluate": ("evaluate", {"process": OPT_ML.processing_input("process"),
                                  "model": OPT_ML.processing_input("model")},
                     {"evaluation": OPT_ML.evaluation_dir}),
        "CreateModelCard": ("card", {"process": OPT_ML.processing_input("process"),
                                     "model": OPT_ML.processing_input("model"),
                                     "evaluation": OPT_ML.processing_input("evaluation")},
                            {"card": OPT_ML.processing_output("card")}),
    }
    for name, (entry, inputs, outputs) in expected.items():
        args = steps[name]["Arguments"]
        assert args["AppSpecification"]["ImageUri"] == IMAGE
        assert args["AppSpecification"]["ContainerEntrypoint"] == [
            "crimecast", "sagemaker", "entrypoint", entry]
        assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.2xlarge"
        assert args["RoleArn"] == ROLE
        mounted = {i["InputName"]: i["S3Input"]["LocalPath"] for i in args["ProcessingInputs"]}
        assert mounted == {**{k: str(v) for k, v in inputs.items()},
                           "config": str(OPT_ML.processing_input("config"))}
        written = {o["OutputName"]: o["S3Output"]["LocalPath"]
                   for o in args["ProcessingOutputConfig"]["Outputs"]}
        assert written == {k: str(v) for k, v in outputs.items()}
    train = steps["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert "ContainerEntrypoint" not in train["AlgorithmSpecification"]  # the image's `train`
    assert {c["ChannelName"] for c in train["InputDataConfig"]} == {"train", "config"}
    assert _references(train["HyperParameters"]) == set()
    assert json.dumps(train["HyperParameters"], sort_keys=True).count("Parameters.") == 3
    assert set(train["HyperParameters"]) == {"model_type", "use_smote", "train_test_split_ratio"}


def test_cache_and_retry_policies_on_job_steps(exported: Exported) -> None:
    steps = _steps(exported.definition)
    for name in ("Process", "Train", "Evaluate"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    for name in ("Process", "Train", "Evaluate", "CreateModelCard"):
        kinds = {t for p in steps[name]["RetryPolicies"] for t in p["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= kinds
    assert steps["RegisterModel"]["RetryPolicies"][0]["ExceptionType"] == [
        "Step.SERVICE_FAULT", "Step.THROTTLING"]


def test_register_model_attaches_evaluation_json(exported: Exported) -> None:
    register = _steps(exported.definition)["RegisterModel"]
    args = register["Arguments"]
    assert register["DependsOn"] == ["CreateModelCard"]
    assert args["ModelPackageGroupName"] == "crimecast-hotspots"
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    container = args["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGE
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    statistics = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"] == {"Std:Join": {"On": "/", "Values": [
        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
        "evaluation.json"]}}


def test_every_job_reads_the_content_addressed_bundle(exported: Exported) -> None:
    digest = hashlib.sha256(exported.bundle_bytes).hexdigest()[:16]
    uri = f"s3://{BUCKET}/crimecast/code/{digest}/pipeline_config.json"
    steps = _steps(exported.definition)
    for name in ("Process", "Evaluate", "CreateModelCard"):
        sources = {i["InputName"]: i["S3Input"]["S3Uri"]
                   for i in steps[name]["Arguments"]["ProcessingInputs"]}
        assert sources["config"] == uri
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    assert channels["config"] == uri
    assert uri in exported.stdout.replace("\n", "")
    bundle = read_bundle(exported.bundle_path)
    assert bundle.settings == load_settings(REPO / "config")
    assert (bundle.schema, bundle.tune, bundle.bootstrap_resamples) == ("lapd", 0, 200)


def test_condition_follows_an_f1_gate_metric(tmp_path: Path) -> None:
    """With gate_metric f1 the ConditionStep is the original design's F1 check."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    main = config / "config.yaml"
    main.write_text(main.read_text().replace("gate_metric: auto", "gate_metric: f1"))
    out = tmp_path / "pipeline.json"
    command = [str(Path(sys.executable).parent / "crimecast"), "sagemaker", "export",
               "--out", str(out), "--role-arn", ROLE, "--bucket", BUCKET, "--region", REGION,
               "--image-uri", IMAGE, "--config", str(config), "--schema", "lapd"]
    done = subprocess.run(command, env=_offline_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    steps = _steps(json.loads(out.read_text()))
    f1, gate = steps["CheckGate"]["Arguments"]["Conditions"]
    assert f1 == {"Type": "GreaterThanOrEqualTo", "RightValue": {"Get": "Parameters.F1Threshold"},
                  "LeftValue": {"Std:JsonGet": {
                      "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                      "Path": "binary_classification_metrics.f1.value"}}}
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "passed"
    message = steps["GateFailed"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert {"Get": "Parameters.F1Threshold"} in message
    assert any("validation f1" in str(v) for v in message)
