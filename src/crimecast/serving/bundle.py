"""What a server loads: the model plus everything needed to use it honestly.

A :class:`ModelBundle` holds the saved model, its decision threshold, the
feature configuration it was trained with, the exact units it scores, its model
card and the identifiers (MLflow run id, registered version) every answer
carries for auditability. It loads from three places:

* the registry: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or an MLflow
  run id (:meth:`ModelRegistry.resolve` downloads the run's files);
* a local ``crimecast run`` folder (``runs/<run_id>``);
* a model directory such as SageMaker's ``/opt/ml/model`` (the saved model in
  ``model/`` or at the top, ``train_info.json`` and, for ``/hotspots``,
  ``features_meta.json`` and ``units.parquet``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from crimecast.cards.html import with_version
from crimecast.config import FeatureConfig
from crimecast.errors import ModelError, RegistryError
from crimecast.features.unit_table import units_from_table
from crimecast.features.units import UnitSet
from crimecast.models.naive import Forecaster
from crimecast.models.storage import MANIFEST, load_model

logger = logging.getLogger(__name__)

_MLFLOW_RUN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, eq=False)
class ModelBundle:
    """A loaded model with its metadata (see the module docstring)."""

    model: Forecaster
    threshold: float
    feature_config: FeatureConfig
    nullable: frozenset[str]
    source: str
    run_id: str | None
    version: int | None
    model_name: str
    crimecast_run_id: str | None = None
    units: UnitSet | None = None
    unit_table: pl.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None
    card_html: str | None = None
    evaluation: dict[str, Any] | None = None
    data_hint: Path | None = None

    @property
    def features(self) -> list[str]:
        """The model's feature names, in signature order."""
        return self.model.feature_names

    def describe(self) -> str:
        """The model in words for people: ``NAME version 3 (run ...)``, or for a model no
        registry version holds, ``NAME, unregistered run ...`` (never "version None")."""
        if self.version is not None:
            return f"{self.model_name} version {self.version} (run {self.run_id})"
        run = self.crimecast_run_id or self.run_id
        if run is not None:
            return f"{self.model_name}, unregistered run {run}"
        return f"{self.model_name}, unregistered model from {self.source}"

    def audit(self) -> dict[str, Any]:
        """The identifiers every answer carries."""
        return {"model_name": self.model_name, "model_version": self.version,
                "run_id": self.run_id, "crimecast_run_id": self.crimecast_run_id,
                "crime_types": ", ".join(self.feature_config.crime_types) or "all"}


def _first(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def _read_json(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path is not None else None


def _assemble(model_dir: Path, files: dict[str, Path | None], *, source: str,
              run_id: str | None, version: int | None, model_name: str,
              crimecast_run_id: str | None, data_hint: Path | None) -> ModelBundle:
    model = load_model(model_dir)
    info = _read_json(files["train_info"])
    if info is None:
        raise ModelError(f"no train_info.json next to the model in '{model_dir}'; it holds "
                         "the decision threshold. Serve a model written by crimecast run.")
    meta = _read_json(files["features_meta"]) or {}
    config = FeatureConfig.model_validate(info.get("feature_config") or {
        "spatial_unit": meta.get("panel", {}).get("spatial_unit", "area"),
        "time_bin": meta.get("panel", {}).get("time_bin", "1h")})
    units = table = None
    if files["units"] is not None and meta.get("panel"):
        table = pl.read_parquet(files["units"])
        panel = meta["panel"]
        units = units_from_table(table, panel["spatial_unit"], panel["crs"],
                                 panel.get("cell_size_m"))
    nullable = info.get("nullable_features")
    html = files["card_html"].read_text() if files["card_html"] is not None else None
    card = _read_json(files["model_card"])
    if version is not None:  # the card was written before registration assigned it
        html = with_version(html, version) if html is not None else None
        details = (card or {}).get("additional_information", {}).get("custom_details")
        if isinstance(details, dict):
            details["model_version"] = str(version)
    return ModelBundle(
        model=model, threshold=float(info["decision_threshold"]), feature_config=config,
        nullable=frozenset(model.feature_names if nullable is None else nullable),
        source=source, run_id=run_id, version=version, model_name=model_name,
        crimecast_run_id=crimecast_run_id, units=units, unit_table=table, meta=meta,
        card=card, card_html=html,
        evaluation=_read_json(files["evaluation"]), data_hint=data_hint,
    )


def load_bundle_from_dir(directory: Path) -> ModelBundle:
    """Load a model directory (SageMaker's ``/opt/ml/model`` layout) or a run folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"model directory '{directory}' does not exist. Pass --model-dir "
                         "with a folder holding model.json and train_info.json.")
    if (directory / "train" / "deploy" / "model" / MANIFEST).is_file():
        return _load_run_dir(directory)
    if (directory / "deploy" / "model" / MANIFEST).is_file():  # a training job's output
        deploy = directory / "deploy"
        files = {name: _first(deploy / file, directory / file) for name, file in _FILES.items()}
        return _assemble(deploy / "model", files, source=str(directory), run_id=None,
                         version=None, model_name="crimecast-hotspots", crimecast_run_id=None,
                         data_hint=None)
    model_dir = directory / "model" if (directory / "model" / MANIFEST).is_file() else directory
    files = {name: _first(directory / file, model_dir / file) for name, file in _FILES.items()}
    return _assemble(model_dir, files, source=str(directory), run_id=None, version=None,
                     model_name="crimecast-hotspots", crimecast_run_id=None, data_hint=None)


_FILES = {"train_info": "train_info.json", "features_meta": "features_meta.json",
          "units": "units.parquet", "model_card": "model_card.json",
          "card_html": "model_card.html", "evaluation": "evaluation.json"}
_RUN_FILES = {"train_info": "train/deploy/train_info.json",
              "features_meta": "process/features_meta.json",
              "units": "process/units.parquet", "model_card": "card/model_card.json",
              "card_html": "card/model_card.html",
              "evaluation": "evaluate/deploy/evaluation.json"}


def _load_run_dir(run_dir: Path) -> ModelBundle:
    files = {name: _first(run_dir / file) for name, file in _RUN_FILES.items()}
    registration = _read_json(_first(run_dir / "register" / "registration.json")) or {}
    return _assemble(run_dir / "train" / "deploy" / "model", files, source=str(run_dir),
                     run_id=registration.get("mlflow_run_id"),
                     version=registration.get("version"),
                     model_name=registration.get("model_name", "crimecast-hotspots"),
                     crimecast_run_id=run_dir.name,
                     data_hint=_first(run_dir / "process" / "clean.parquet"))


def load_bundle(ref: str, state_dir: Path | None = None, tracking_uri: str | None = None,
                runs_dir: Path | None = None) -> ModelBundle:
    """Load ``ref``: a registry reference, an MLflow run id or a crimecast run id.

    A crimecast run id (``20241001T120000Z-ab12cd``) is looked up under
    ``runs_dir``. The training run's cleaned events, when still on disk, become
    the default data store for ``/hotspots``.
    """
    from crimecast.registry.store import ModelRegistry

    ref = ref.strip()
    if not ref.startswith("models:/") and not _MLFLOW_RUN.match(ref):
        run_dir = (runs_dir or Path("runs")) / ref
        if not (run_dir / "train" / "model").is_dir():
            raise RegistryError(f"model reference '{ref}' is not models:/NAME@ALIAS, "
                                "models:/NAME/VERSION, an MLflow run id, or a run folder "
                                f"under '{runs_dir or Path('runs')}'. Run crimecast models "
                                "list to see the registered versions.")
        return _load_run_dir(run_dir)
    registry = ModelRegistry(tracking_uri=tracking_uri, state_dir=state_dir)
    resolved = registry.resolve(ref)
    art = resolved.artifacts_dir
    files = {name: _first(art / file) for name, file in _FILES.items()}
    crimecast_run = resolved.tags.get("crimecast_run_id")
    hint = None
    if crimecast_run:
        hint = _first(registry.state_dir.parent / crimecast_run / "process" / "clean.parquet")
    return _assemble(resolved.model_dir, files, source=ref, run_id=resolved.run_id,
                     version=resolved.version, model_name=registry.model_name,
                     crimecast_run_id=crimecast_run, data_hint=hint)
