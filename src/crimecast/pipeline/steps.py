"""The pipeline's steps: process → train → evaluate → gate → card → register.

Each is a plain function of a :class:`~crimecast.pipeline.runner.StepIO`; the
same functions are what the SageMaker container entry points wrap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from crimecast.config import CleaningConfig, FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.data.load import write_json, write_parquet
from crimecast.data.prepare import write_clean_outputs
from crimecast.evaluation.gate import decide_gate
from crimecast.evaluation.predict import predictions_frame
from crimecast.evaluation.report import build_evaluation_report
from crimecast.features.job import run_features, write_features
from crimecast.features.unit_table import unit_table
from crimecast.models.baselines import BASELINES
from crimecast.models.storage import load_model, save_model
from crimecast.models.train import labelled_rows, train_models
from crimecast.pipeline.runner import StepIO

logger = logging.getLogger(__name__)


def provenance_of(paths: list[Path]) -> dict[str, Any]:
    """Whether the data is synthetic (the generator writes a sidecar) and its sources."""
    sidecars = [Path(str(p) + ".provenance.json") for p in paths]
    synthetic = all(s.is_file() for s in sidecars) and bool(paths)
    details = [json.loads(s.read_text()) for s in sidecars if s.is_file()]
    return {"synthetic": synthetic, "sources": [p.name for p in paths], "generator": details}


def process(io: StepIO) -> dict[str, Any]:
    """Clean the data files and build the feature panel and the unit table."""
    paths = [io.inputs[k] for k in sorted(io.inputs, key=lambda k: int(k.split("_")[1]))]
    cleaning = CleaningConfig.model_validate(io.params["cleaning"])
    features_config = FeatureConfig.model_validate(io.params["features"])
    job = run_features([str(p) for p in paths], io.params["schema"], cleaning, features_config,
                       encoding=io.params["encoding"],
                       train_share=io.params["train_test_split_ratio"])
    cleaned, units, built = job.cleaned, job.units, job.features
    write_clean_outputs(cleaned, io.out)
    built.meta["provenance"] = provenance_of(paths)
    built.meta["excluded_crime_types"] = cleaned.report.excluded_crime_types
    write_features(built, io.out)
    write_parquet(unit_table(units), io.out / "units.parquet")
    return {"rows_in": cleaned.report.rows_in, "rows_clean": cleaned.report.rows_clean,
            "panel_rows": built.frame.height, "units": len(units),
            "positive_rate": built.meta["label"]["positive_rate"]}


def train(io: StepIO) -> dict[str, Any]:
    """Fit the model and the baselines; save them pickle-free with the split details."""
    frame = pl.read_parquet(io.inputs["features"])
    result = train_models(
        frame, PipelineConfig.model_validate(io.params["pipeline"]),
        FeatureConfig.model_validate(io.params["features"]),
        ModelsConfig.model_validate(io.params["models"]), tune_trials=io.params["tune"],
    )
    manifest = save_model(result.model, io.out / "model")
    for name, baseline in result.baselines.items():
        save_model(baseline, io.out / "baselines" / name)
    info = result.info()
    info["feature_importance"] = result.model.feature_importance()
    info["model_files"] = manifest["files"]
    # What serving needs to rebuild the same features and validate requests.
    info["feature_config"] = io.params["features"]
    info["nullable_features"] = [name for name in result.features
                                 if frame[name].null_count()
                                 or frame[name].cast(pl.Float64).is_nan().any()]
    write_json(info, io.out / "train_info.json")
    return {"features": len(result.features), "threshold": result.threshold,
            "train_bins": result.split.train_end, "seconds": result.seconds}


def evaluate(io: StepIO) -> dict[str, Any]:
    """Score the test period with the model and every baseline; write evaluation.json."""
    info = json.loads(io.inputs["train_info"].read_text())
    meta = json.loads(io.inputs["features_meta"].read_text())
    frame = labelled_rows(pl.read_parquet(io.inputs["features"]))
    test = frame.filter(pl.col("bin_start") >= dt.datetime.fromisoformat(
        info["split"]["test_start"]))
    models = {info["model_type"]: load_model(io.inputs["model"])}
    thresholds = {info["model_type"]: info["decision_threshold"]}
    for name in BASELINES:
        models[name] = load_model(io.inputs["baselines"] / name)
        thresholds[name] = info["baseline_thresholds"][name]
    predictions = predictions_frame(test, models)
    write_parquet(predictions, io.out / "predictions.parquet")
    units = pl.read_parquet(io.inputs["units"]).select("unit_id", "area_km2")
    label = meta["label"]["rule"]
    data = {
        "label": label,
        "primary_metric": "pr_auc" if label == "zscore" else "pai@1%",
        "spatial_unit": meta["panel"]["spatial_unit"],
        "time_bin": meta["panel"]["time_bin"],
        "split": info["split"],
        "dropped_features": info["dropped_features"],
        "synthetic": meta.get("provenance", {}).get("synthetic", False),
        "sources": meta.get("provenance", {}).get("sources", []),
    }
    report = build_evaluation_report(predictions, units, thresholds, info["model_type"], data,
                                     n_resamples=io.params["bootstrap_resamples"])
    write_json(report, io.out / "evaluation.json")
    from crimecast.evaluation.curves import calibration_curve, pr_curve

    primary = predictions.filter(pl.col("model") == info["model_type"])
    curves = {
        "pr_curve": pr_curve(primary["y_true"].to_numpy(), primary["prob"].to_numpy()),
        "calibration": calibration_curve(primary["y_true"].to_numpy(),
                                         primary["prob"].to_numpy()),
        "baseline_pr_curves": {
            name: pr_curve(part["y_true"].to_numpy(), part["prob"].to_numpy())
            for name in BASELINES
            for part in [predictions.filter(pl.col("model") == name)]
        },
    }
    write_json(curves, io.out / "curves.json")
    metrics = report["binary_classification_metrics"]
    return {"f1": metrics["f1"]["value"], "pr_auc": metrics["pr_auc"]["value"],
            "pai@1%": report["hotspot_metrics"]["pai@1%"]["value"]}


def gate(io: StepIO) -> dict[str, Any]:
    """The condition step: F1 at least the threshold and better than the best baseline."""
    evaluation = json.loads(io.inputs["evaluation"].read_text())
    decision = decide_gate(evaluation, io.params["f1_threshold"])
    write_json(decision, io.out / "gate.json")
    return decision


def card(io: StepIO) -> dict[str, Any]:
    """Write the model card (SageMaker content schema JSON and a rendered HTML page)."""
    from crimecast.cards.card import build_model_card
    from crimecast.cards.html import render_model_card_html
    from crimecast.cards.inputs import CardInputs

    evaluation = json.loads(io.inputs["evaluation"].read_text())
    info = json.loads(io.inputs["train_info"].read_text())
    meta = json.loads(io.inputs["features_meta"].read_text())
    decision = json.loads(io.inputs["gate"].read_text())
    provenance = {**meta.get("provenance", {}), **io.params["lineage"]}
    inputs = CardInputs(
        evaluation=evaluation,
        model_name=io.params["model_name"],
        model_type=info["model_type"],
        model_version=None,
        run_id=io.run_id,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        hyper_parameters=info["params"],
        use_smote=info["imbalance"] == "smote",
        feature_names=info["features"],
        feature_importance=info["feature_importance"],
        training={**info["split"], "label": meta["label"]["rule"],
                  "positive_rate": meta["label"]["positive_rate"],
                  "spatial_unit": meta["panel"]["spatial_unit"],
                  "time_bin": meta["panel"]["time_bin"],
                  "split_ratio": io.params["train_test_split_ratio"]},
        gate=decision,
        excluded_crime_types=meta.get("excluded_crime_types", {}),
        enforcement_exclusion_enabled=io.params["enforcement_exclusion"],
        provenance=provenance,
        curves=json.loads(io.inputs["curves"].read_text()),
    )
    model_card = build_model_card(inputs)
    write_json(model_card, io.out / "model_card.json")
    (io.out / "model_card.html").write_text(render_model_card_html(model_card, inputs))
    return {"risk_rating": model_card["intended_uses"]["risk_rating"]}


def register(io: StepIO) -> dict[str, Any]:
    """Log the run to MLflow and, when the gate passed, register a new model version."""
    from crimecast.registry.store import ModelRegistry

    decision = json.loads(io.inputs["gate"].read_text())
    evaluation = json.loads(io.inputs["evaluation"].read_text())
    info = json.loads(io.inputs["train_info"].read_text())
    state = io.params["state_dir"]
    registry = ModelRegistry(tracking_uri=io.params["tracking_uri"],
                             state_dir=Path(state) if state else None)
    metrics = {k: v["value"] for k, v in evaluation["binary_classification_metrics"].items()}
    metrics.update({k: v["value"] for k, v in evaluation["hotspot_metrics"].items()
                    if isinstance(v, dict)})
    example = pl.read_parquet(io.inputs["features"], n_rows=5).select(info["features"])
    lineage = io.params["lineage"]
    run_id = registry.log_run(
        run_name=io.run_id,
        params={**io.params["flat_params"], "decision_threshold": info["decision_threshold"]},
        metrics={k.replace("@", "_at_").replace("%", "pct"): v for k, v in metrics.items()},
        artifacts={io.inputs[name].name: io.inputs[name] for name in
                   ("features_meta", "evaluation", "model_card", "model_card_html", "gate",
                    "train_info", "units")},
        model_dir=io.inputs["model"],
        input_example=example,
        tags={"crimecast_run_id": io.run_id, "gate": "passed" if decision["passed"] else
              "failed", **lineage},
    )
    version = None
    if decision["passed"]:
        version = registry.register(run_id, tags={
            **lineage, "gate": "passed", "f1": str(metrics.get("f1")),
            "crimecast_run_id": io.run_id})
    result = {"mlflow_run_id": run_id, "registered": version is not None,
              "version": version, "model_name": registry.model_name,
              "tracking_uri": registry.tracking_uri}
    write_json(result, io.out / "registration.json")
    return result
