"""``crimecast run``: process → train → evaluate → gate → card → register, as one call."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimecast.config import Settings
from crimecast.errors import DataFileError
from crimecast.executor import SERIAL, Executor
from crimecast.pipeline import steps
from crimecast.pipeline.runner import PipelineRun, Step, hash_payload

logger = logging.getLogger(__name__)

STEP_NAMES = ("process", "train", "evaluate", "gate", "card", "register")


@dataclass(frozen=True)
class RunSummary:
    """Where a run's artefacts are and what it decided."""

    run_id: str
    run_dir: Path
    manifest: Path
    steps: dict[str, dict[str, Any]]
    evaluation: dict[str, Any]
    gate: dict[str, Any]
    registration: dict[str, Any]
    card_html: Path
    card_json: Path


def pipeline_params(settings: Settings, schema: str, tune: int) -> dict[str, Any]:
    """Every parameter that shapes the run (hashed into the config hash)."""
    return {
        "schema": schema,
        "encoding": settings.data.encoding,
        "cleaning": settings.cleaning.model_dump(mode="json"),
        "features": settings.features.model_dump(mode="json"),
        "pipeline": settings.pipeline.model_dump(mode="json"),
        "models": settings.models.model_dump(mode="json"),
        "tune": tune,
    }


def build_steps(settings: Settings, schema: str, data_files: Sequence[str], tune: int,
                lineage: dict[str, str], bootstrap_resamples: int = 200) -> list[Step]:
    """The six steps with their declared inputs, outputs and parameters."""
    pipe = settings.pipeline
    features = settings.features.model_dump(mode="json")
    flat = {
        "model_type": pipe.model_type, "train_test_split_ratio": pipe.train_test_split_ratio,
        "use_smote": pipe.use_smote, "f1_threshold": pipe.f1_threshold,
        "spatial_unit": settings.features.spatial_unit, "time_bin": settings.features.time_bin,
        "label": settings.features.label, "cell_size": settings.features.cell_size,
        "tune": tune, "schema": schema,
    }
    process_out = ("clean.parquet", "quarantine.parquet", "clean_report.json",
                   "features.parquet", "features_meta.json", "units.parquet")
    return [
        Step("process", steps.process,
             {f"data_{i}": f"data:{i}" for i in range(len(data_files))}, process_out,
             {"schema": schema, "encoding": settings.data.encoding,
              "cleaning": settings.cleaning.model_dump(mode="json"), "features": features,
              "train_test_split_ratio": pipe.train_test_split_ratio}),
        Step("train", steps.train, {"features": "process/features.parquet",
                                    "features_meta": "process/features_meta.json",
                                    "units": "process/units.parquet"},
             ("model", "baselines", "train_info.json", "deploy"),
             {"pipeline": pipe.model_dump(mode="json", exclude={"f1_threshold", "runs_dir",
                                                                "tracking_uri"}),
              "features": features, "models": settings.models.model_dump(mode="json"),
              "tune": tune}),
        Step("evaluate", steps.evaluate,
             {"features": "process/features.parquet", "features_meta":
              "process/features_meta.json", "units": "process/units.parquet",
              "clean": "process/clean.parquet", "model": "train/model",
              "baselines": "train/baselines",
              "train_info": "train/train_info.json", "deploy_info": "train/deploy/train_info.json"},
             ("evaluation.json", "predictions.parquet", "curves.json", "deploy"),
             {"bootstrap_resamples": bootstrap_resamples}),
        Step("gate", steps.gate, {"evaluation": "evaluate/evaluation.json"}, ("gate.json",),
             {"f1_threshold": pipe.f1_threshold}),
        Step("card", steps.card,
             {"evaluation": "evaluate/deploy/evaluation.json",
              "train_info": "train/deploy/train_info.json",
              "features_meta": "process/features_meta.json", "gate": "gate/gate.json",
              "curves": "evaluate/curves.json"},
             ("model_card.json", "model_card.html"),
             {"model_name": "crimecast-hotspots", "lineage": lineage,
              "train_test_split_ratio": pipe.train_test_split_ratio,
              "enforcement_exclusion": settings.cleaning.exclude_enforcement_driven}),
        Step("register", steps.register,
             {"gate": "gate/gate.json", "evaluation": "evaluate/deploy/evaluation.json",
              "train_info": "train/deploy/train_info.json", "model": "train/deploy/model",
              "features": "process/features.parquet", "units": "process/units.parquet",
              "features_meta": "process/features_meta.json",
              "model_card": "card/model_card.json", "model_card_html": "card/model_card.html"},
             ("registration.json",),
             {"tracking_uri": pipe.tracking_uri,
              "state_dir": str(Path(pipe.runs_dir) / ".mlflow") if not pipe.tracking_uri
              else None, "lineage": lineage, "flat_params": flat}),
    ]


def run_pipeline(
    settings: Settings, data_files: Sequence[str], schema: str = "auto", tune: int = 0,
    on_step: Callable[[str, str], None] | None = None, bootstrap_resamples: int = 200,
    executor: Executor | None = None,
) -> RunSummary:
    """Run every step (cached steps are reused) and write the manifest; blocks within a
    step (feature time blocks) run through ``executor``."""
    if not data_files:
        raise DataFileError("no data files given. Pass --data FILE (repeatable).")
    runs_dir = Path(settings.pipeline.runs_dir)
    run = PipelineRun(runs_dir=runs_dir, data_files=list(data_files), on_step=on_step,
                      executor=executor or SERIAL)
    params = pipeline_params(settings, schema, tune)
    from crimecast.pipeline.runner import code_version

    lineage = {"data_hash": run.data_hash(), "config_hash": hash_payload(params),
               "code_version": code_version()}
    # The manifest is rewritten (atomically) after every step, so a run killed midway,
    # even right after registering, leaves its lineage behind, marked incomplete.
    run.write_manifest(params, {"lineage": lineage, "status": "running"})
    try:
        for step in build_steps(settings, schema, data_files, tune, lineage,
                                bootstrap_resamples):
            run.run_step(step)
            run.write_manifest(params, {"lineage": lineage, "status": "running"})
    except BaseException as exc:
        with contextlib.suppress(Exception):  # a full disk may refuse this too
            run.write_manifest(params, {"lineage": lineage, "status": "failed",
                                        "error": f"{type(exc).__name__}: {exc}"})
        raise
    manifest = run.write_manifest(params, {"lineage": lineage, "status": "complete"})
    out = run.run_dir
    return RunSummary(
        run_id=run.run_id, run_dir=out, manifest=manifest, steps=run.records,
        evaluation=json.loads((out / "evaluate" / "evaluation.json").read_text()),
        gate=json.loads((out / "gate" / "gate.json").read_text()),
        registration=json.loads((out / "register" / "registration.json").read_text()),
        card_html=out / "card" / "model_card.html", card_json=out / "card" / "model_card.json",
    )
