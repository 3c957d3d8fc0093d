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
from crimecast.data.output import write_json, write_parquet
from crimecast.data.prepare import prepare_incidents, write_clean_outputs
from crimecast.evaluation.curves import prediction_curves
from crimecast.evaluation.gate import decide_gate
from crimecast.evaluation.hotspot import REPORT_SHARES, hotspot_per_bin_of
from crimecast.evaluation.predict import prediction_parts
from crimecast.evaluation.report import build_evaluation_report, forecaster_ranking
from crimecast.evaluation.streamed import StreamedEvaluation
from crimecast.features.build import build_features
from crimecast.features.job import build_units_for, weather_for
from crimecast.features.meta import feature_columns
from crimecast.features.unit_table import unit_table
from crimecast.models.estimators import HotspotModel
from crimecast.models.naive import ColumnForecaster, EnsembleForecaster
from crimecast.models.storage import load_model, save_model
from crimecast.models.train import labelled_rows
from crimecast.pipeline.runner import StepIO, gc_paused
from crimecast.pipeline.streamed import (
    evaluate_streamed,
    is_streamed,
    nullable_features,
    process_streamed,
    read_features,
    scan_features,
    tested_forecasters,
)
from crimecast.pipeline.training import fit_sepp_feature, train_forecasters

logger = logging.getLogger(__name__)


def provenance_of(paths: list[Path]) -> dict[str, Any]:
    """Whether the data is synthetic (the generator writes a sidecar) and its sources."""
    sidecars = [Path(str(p) + ".provenance.json") for p in paths]
    synthetic = all(s.is_file() for s in sidecars) and bool(paths)
    details = [json.loads(s.read_text()) for s in sidecars if s.is_file()]
    return {"synthetic": synthetic, "sources": [p.name for p in paths], "generator": details}


def process(io: StepIO) -> dict[str, Any]:
    """Clean the data files and build the feature panel and the unit table (a panel too
    large to hold: the training design and validation sample, :mod:`.streamed`)."""
    paths = [io.inputs[k] for k in sorted(io.inputs, key=lambda k: int(k.split("_")[1]))]
    cleaning = CleaningConfig.model_validate(io.params["cleaning"])
    features_config = FeatureConfig.model_validate(io.params["features"])
    share = io.params["train_test_split_ratio"]
    cleaned = prepare_incidents([str(p) for p in paths], io.params["schema"], cleaning,
                                encoding=io.params["encoding"],
                                crime_types=features_config.crime_types)
    units = build_units_for(cleaned.clean, cleaned, features_config, share)
    split_only = PipelineConfig(train_test_split_ratio=share)
    if is_streamed(features_config, len(units), cleaned.clean):
        meta = process_streamed(cleaned, units, features_config, split_only, io.out,
                                io.executor)
    else:
        built = build_features(cleaned.clean, units, features_config,
                               weather=weather_for(cleaned.clean, features_config),
                               executor=io.executor)
        built, _ = fit_sepp_feature(built, cleaned.clean, units, split_only, features_config)
        meta = built.meta
        write_parquet(built.frame.drop("_u", "_b"), io.out / "features.parquet")
    write_clean_outputs(cleaned, io.out)
    meta["provenance"] = {**provenance_of(paths), "estimated_time_share": round(
        cleaned.report.time_is_estimated / max(cleaned.report.rows_clean, 1), 4)}
    meta["excluded_crime_types"] = cleaned.report.excluded_crime_types
    write_json(meta, io.out / "features_meta.json")
    write_parquet(unit_table(units), io.out / "units.parquet")
    return {"rows_in": cleaned.report.rows_in, "rows_clean": cleaned.report.rows_clean,
            "panel_rows": meta["panel"]["rows"], "units": len(units),
            "streamed": "streamed" in meta, "positive_rate": meta["label"]["positive_rate"]}


def train(io: StepIO) -> dict[str, Any]:
    """Fit every forecaster, rank them on validation; save them pickle-free."""
    meta = json.loads(io.inputs["features_meta"].read_text())
    units = pl.read_parquet(io.inputs["units"]).select("unit_id", "area_km2")
    # The panel's own feature config: with the SEPP parameters fitted in process.
    features_config = FeatureConfig.model_validate(meta["feature_config"])
    pipeline = PipelineConfig.model_validate(io.params["pipeline"])
    streamed = meta.get("streamed")
    panel = [read_features(io.inputs["features"])]
    # What serving needs to validate requests, from the panel in memory (not read again).
    nullable = nullable_features(panel[0], feature_columns(panel[0]))
    result = train_forecasters(  # the frame is not kept here: train_forecasters frees it
        panel.pop(), units, pipeline, features_config,
        ModelsConfig.model_validate(io.params["models"]), tune_trials=io.params["tune"],
        bins=[dt.datetime.fromisoformat(b) for b in streamed["bins"]] if streamed else None,
    )
    manifest = save_model(result.learned, io.out / "model")
    for name, model in result.forecasters.items():
        if name != result.learned.model_type:
            save_model(model, io.out / "baselines" / name)
    info = result.info()
    info["feature_importance"] = result.learned.feature_importance()
    info["model_files"] = manifest["files"]
    # What serving needs to rebuild the same features and validate requests.
    info["feature_config"] = meta["feature_config"]
    nullable = [name for name in result.features if name in nullable]
    info["nullable_features"] = nullable
    write_json(info, io.out / "train_info.json")
    deployed = result.champion if pipeline.register_best else result.learned.model_type
    write_deployable(result.forecasters[deployed], info, io.out / "deploy", nullable)
    return {"features": len(result.features),
            "threshold": result.thresholds[result.learned.model_type],
            "champion": result.champion, "train_bins": result.split.train_end,
            "seconds": result.seconds}


def write_deployable(model: Any, info: dict[str, Any], out: Path, nullable: list[str]) -> None:
    """The forecaster registration deploys, with a ``train_info.json`` of its own: the
    learned model, or with ``--register-best`` the champion (naive, SEPP, ensemble)."""
    save_model(model, out / "model")
    name = model.model_type
    if name == info["model_type"]:
        deploy_info = dict(info)
    else:
        deploy_info = {**info, "model_type": name, "features": list(model.feature_names),
                       "params": describe_forecaster(model),
                       "imbalance": "none", "feature_importance": {},
                       "decision_threshold": info["thresholds"][name]}
    deploy_info["forecaster_kind"] = info["forecasters"][name]
    deploy_info["nullable_features"] = [f for f in nullable if f in model.feature_names]
    write_json(deploy_info, out / "train_info.json")


def describe_forecaster(model: Any) -> dict[str, Any]:
    """The hyper-parameters of a forecaster other than the learned model, for the card."""
    if isinstance(model, EnsembleForecaster):
        return {"weight_learned": model.weight, "naive": model.naive.model_type,
                "learned": model.learned.model_type, "learned_objective": model.learned.objective,
                **{f"learned_{k}": v for k, v in model.learned.params.items()}}
    if isinstance(model, ColumnForecaster):
        return {"column": model.column, "calibration_coef": model.coef_,
                "calibration_intercept": model.intercept_}
    return {}


def _load_forecasters(io: StepIO, info: dict[str, Any]) -> dict[str, Any]:
    models = {info["model_type"]: load_model(io.inputs["model"])}
    for name in info["forecasters"]:
        if name != info["model_type"]:
            model = models[name] = load_model(io.inputs["baselines"] / name)
            learned = models[info["model_type"]]
            if isinstance(model, EnsembleForecaster) and isinstance(learned, HotspotModel):
                # The ensemble was built on this very learned model: share the loaded one,
                # so that scoring a frame predicts it once (HotspotModel remembers it).
                model.learned = learned
    return models


def evaluate(io: StepIO) -> dict[str, Any]:
    """Score the test period with every forecaster; write evaluation.json and the ranking
    (a streamed panel: every unit of every test bin in blocks, :mod:`.streamed`)."""
    info = json.loads(io.inputs["train_info"].read_text())
    meta = json.loads(io.inputs["features_meta"].read_text())
    models = _load_forecasters(io, info)
    thresholds = {name: info["thresholds"][name] for name in models}
    unit_table_ = pl.read_parquet(io.inputs["units"])
    units = unit_table_.select("unit_id", "area_km2")
    learned = info["model_type"]
    deployed = json.loads(io.inputs["deploy_info"].read_text())["model_type"]
    validation = info["validation"]
    shown = [n for n in (validation["best_naive"], "sepp", "ensemble") if n in models]
    n = io.params["bootstrap_resamples"]
    data = {
        "label": meta["label"]["rule"],
        "primary_metric": validation["metric"],
        "spatial_unit": meta["panel"]["spatial_unit"],
        "time_bin": meta["panel"]["time_bin"],
        "split": info["split"],
        "objective": info["objective"],
        "synthetic": meta.get("provenance", {}).get("synthetic", False),
        "sources": meta.get("provenance", {}).get("sources", []),
    }
    if "streamed" in meta:
        models = {name: models[name] for name in tested_forecasters(info, deployed)}
        thresholds = {name: thresholds[name] for name in models}
        shown = [name for name in shown if name in models]
        streamed = StreamedEvaluation(units, thresholds, [learned, deployed])
        evaluate_streamed(meta, pl.read_parquet(io.inputs["clean"]), unit_table_, models,
                          streamed, io.out / "predictions.parquet", io.executor)

        def report_for(primary: str, extra: dict[str, Any]) -> dict[str, Any]:
            return streamed.report({**data, **extra}, n_resamples=n, primary=primary)

        primary_curves = streamed.curves(learned)
        curves = {**primary_curves, "baseline_pr_curves": {
            name: streamed.curves(name)["pr_curve"] for name in shown},
            "hotspot_curves": streamed.hotspot_curves()}
    else:
        test = labelled_rows(scan_features(io.inputs["features"]).filter(
            pl.col("bin_start") >= dt.datetime.fromisoformat(info["split"]["test_start"])
        ).collect())
        parts = prediction_parts(test, models)
        predictions = pl.concat(list(parts.values()))
        write_parquet(predictions, io.out / "predictions.parquet")
        # Each forecaster's per-bin hotspot measures, once for the report and the curves.
        per_bin = hotspot_per_bin_of(parts, units, REPORT_SHARES)

        def report_for(primary: str, extra: dict[str, Any]) -> dict[str, Any]:
            return build_evaluation_report(predictions, units, thresholds, primary,
                                           {**data, **extra}, n_resamples=n, per_bin=per_bin,
                                           parts=parts)

        curves = prediction_curves(parts, per_bin, learned, shown)
    report = report_for(learned, {})
    report["forecasters"] = forecaster_ranking(report, info)
    write_json(report, io.out / "evaluation.json")
    if deployed != learned:
        deploy_report = report_for(deployed, {"deployed": deployed})
        deploy_report["forecasters"] = report["forecasters"]
        write_json(deploy_report, io.out / "deploy" / "evaluation.json")
    else:
        write_json(report, io.out / "deploy" / "evaluation.json")
    write_json(curves, io.out / "curves.json")
    metrics = report["binary_classification_metrics"]
    return {"f1": metrics["f1"]["value"], "pr_auc": metrics["pr_auc"]["value"],
            "pai@1%": report["hotspot_metrics"]["pai@1%"]["value"],
            "champion": validation["champion"]}


def gate(io: StepIO) -> dict[str, Any]:
    """The condition step: the learned model beats the best naive forecaster on validation
    (and reaches the F1 threshold when the gate metric is F1)."""
    evaluation = json.loads(io.inputs["evaluation"].read_text())
    decision = decide_gate(evaluation, io.params["f1_threshold"])
    write_json(decision, io.out / "gate.json")
    return decision


def card_view(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation with only the forecasters a card compares against: the learned model,
    the best naive one (on validation), SEPP and the ensemble; the card's ranking table
    lists them all."""
    ranking = evaluation.get("forecasters") or {}
    keep = {ranking.get("learned"), ranking.get("best_naive"), "sepp", "ensemble"}
    baselines = {k: v for k, v in (evaluation.get("baselines") or {}).items() if k in keep}
    return {**evaluation, "baselines": baselines}


@gc_paused
def card(io: StepIO) -> dict[str, Any]:
    """Write the model card (SageMaker content schema JSON and a rendered HTML page)."""
    from crimecast.cards.card import build_model_card
    from crimecast.cards.html import render_model_card_html
    from crimecast.cards.inputs import CardInputs

    evaluation = card_view(json.loads(io.inputs["evaluation"].read_text()))
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
        hyper_parameters=info.get("effective_params") or info["params"],
        use_smote=info["imbalance"] == "smote",
        feature_names=info["features"],
        feature_importance=info["feature_importance"],
        training={**info["split"], "label": meta["label"]["rule"],
                  "positive_rate": meta["label"]["positive_rate"],
                  "spatial_unit": meta["panel"]["spatial_unit"],
                  "time_bin": meta["panel"]["time_bin"],
                  "crime_types": ", ".join(
                      meta.get("feature_config", {}).get("crime_types") or []) or "all",
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


@gc_paused
def register(io: StepIO) -> dict[str, Any]:
    """Log the run to MLflow and, when the gate passed, register a new model version."""
    from crimecast.registry.store import STEP_KEY_TAG, ModelRegistry

    decision = json.loads(io.inputs["gate"].read_text())
    evaluation = json.loads(io.inputs["evaluation"].read_text())
    info = json.loads(io.inputs["train_info"].read_text())
    state = io.params["state_dir"]
    registry = ModelRegistry(tracking_uri=io.params["tracking_uri"],
                             state_dir=Path(state) if state else None)
    metrics = {k: v["value"] for k, v in evaluation["binary_classification_metrics"].items()}
    metrics.update({k: v["value"] for k, v in evaluation["hotspot_metrics"].items()
                    if isinstance(v, dict)})
    lineage = io.params["lineage"]
    kind = info.get("forecaster_kind", "learned")
    # A naive, SEPP or ensemble champion deploys with --register-best: it beat the
    # learned model on validation, which the gate measures.
    wanted = decision["passed"] or kind != "learned"
    with registry.writing():  # concurrent runs on one runs folder take turns here
        # Idempotent on resume: a run killed after logging or registering left its run and
        # version tagged with this step's key (same data, config, code and inputs).
        earlier = registry.find_version(io.key)
        run_id = earlier.run_id if earlier is not None and earlier.run_id else \
            registry.find_logged_run(io.key)
        if run_id is None:
            example = scan_features(io.inputs["features"]).head(5).select(
                info["features"]).collect()
            run_id = registry.log_run(
                run_name=io.run_id,
                params={**io.params["flat_params"],
                        "decision_threshold": info["decision_threshold"]},
                metrics={k.replace("@", "_at_").replace("%", "pct"): v
                         for k, v in metrics.items()},
                artifacts={io.inputs[name].name: io.inputs[name] for name in
                           ("features_meta", "evaluation", "model_card", "model_card_html",
                            "gate", "train_info", "units")},
                model_dir=io.inputs["model"],
                input_example=example,
                tags={"crimecast_run_id": io.run_id, "gate": "passed" if decision["passed"]
                      else "failed", "forecaster": info["model_type"], STEP_KEY_TAG: io.key,
                      **lineage},
            )
        else:
            logger.info("register: reusing MLflow run %s logged by an earlier attempt", run_id)
        version = earlier.version if earlier is not None else None
        if wanted and version is None:
            version = registry.register(run_id, tags={
                **lineage, "gate": "passed" if decision["passed"] else "champion",
                "forecaster": info["model_type"], "forecaster_kind": kind,
                "crime_types": ", ".join(
                    info.get("feature_config", {}).get("crime_types") or []) or "all",
                "f1": str(metrics.get("f1")), "crimecast_run_id": io.run_id,
                STEP_KEY_TAG: io.key})
    result = {"mlflow_run_id": run_id, "registered": version is not None,
              "version": version, "forecaster": info["model_type"], "forecaster_kind": kind,
              "model_name": registry.model_name,
              "tracking_uri": registry.tracking_uri}
    write_json(result, io.out / "registration.json")
    return result
