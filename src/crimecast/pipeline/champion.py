"""The deployed champion's training run: where it is and what it was trained on.

``crimecast monitor`` and ``crimecast compare`` start from a registry alias (the
``champion``) or a run id, and need the run's folder under the runs directory: its
cleaned training events, unit table, features metadata, the deployed forecaster and
the naive forecasters it was compared with.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from crimecast.errors import ConfigError, RegistryError
from crimecast.features.unit_table import units_from_table
from crimecast.features.units import UnitSet
from crimecast.registry.store import ModelRegistry


@dataclass(frozen=True)
class ChampionRun:
    """One finished ``crimecast run`` and, when registered, its registry identity."""

    run_dir: Path
    info: dict[str, Any]  # train/train_info.json (the learned model, the validation ranking)
    deploy_info: dict[str, Any]  # train/deploy/train_info.json (the deployed forecaster)
    meta: dict[str, Any]  # process/features_meta.json
    evaluation: dict[str, Any]  # the deployed forecaster's evaluation.json
    params: dict[str, Any]  # manifest.json's parameters (cleaning, features, pipeline, …)
    version: int | None = None
    model_name: str = "crimecast-hotspots"
    mlflow_run_id: str | None = None

    @property
    def deployed(self) -> str:
        """The deployed forecaster's name (the learned model, or with --register-best the
        validation champion)."""
        return str(self.deploy_info["model_type"])

    @property
    def best_naive(self) -> str:
        """The naive forecaster chosen on validation when the champion was trained."""
        return str(self.info["validation"]["best_naive"])

    @property
    def features(self) -> list[str]:
        """The learned model's features (what the feature-drift check compares)."""
        return list(self.info["features"])

    @cached_property
    def data_through(self) -> dt.datetime:
        """The last training event's time."""
        clean = pl.scan_parquet(self.run_dir / "process" / "clean.parquet")
        last = clean.select(pl.col("occurred_at").max()).collect().item()
        if last is None:
            raise ConfigError(f"run '{self.run_dir.name}' has no cleaned events.")
        return last

    def training_events(self) -> pl.DataFrame:
        """The cleaned events the champion was trained on."""
        return pl.read_parquet(self.run_dir / "process" / "clean.parquet")

    @cached_property
    def _units_file(self) -> pl.DataFrame:
        return pl.read_parquet(self.run_dir / "process" / "units.parquet")

    def unit_table(self) -> pl.DataFrame:
        """The run's unit table (``process/units.parquet``, read once)."""
        return self._units_file

    @cached_property
    def _unit_set(self) -> UnitSet:
        panel = self.meta["panel"]
        return units_from_table(self.unit_table(), panel["spatial_unit"], panel["crs"],
                                panel.get("cell_size_m"))

    def units(self) -> UnitSet:
        """The units the champion scores, rebuilt from its unit table (once)."""
        return self._unit_set

    def unit_ids(self) -> list[str]:
        """Every place's id."""
        return self.unit_table()["unit_id"].to_list()

    def model_paths(self) -> dict[str, Path]:
        """Saved-model folders of the deployed forecaster and the best naive one."""
        train = self.run_dir / "train"
        paths = {self.deployed: train / "deploy" / "model"}
        if self.best_naive != self.deployed:
            paths[self.best_naive] = train / "baselines" / self.best_naive
        return paths

    def describe(self) -> dict[str, Any]:
        """Identity for reports: version, run ids, forecaster, spatial unit and time bin."""
        panel = self.meta.get("panel", {})
        return {"model_name": self.model_name, "model_version": self.version,
                "run_id": self.mlflow_run_id, "crimecast_run_id": self.run_dir.name,
                "forecaster": self.deployed, "best_naive": self.best_naive,
                "spatial_unit": panel.get("spatial_unit"), "time_bin": panel.get("time_bin"),
                "crime_types": ", ".join(self.meta.get("feature_config", {})
                                         .get("crime_types") or []) or "all",
                "data_through": self.data_through.isoformat()}


def _read(run_dir: Path, *names: str) -> dict[str, Any]:
    for name in names:
        if (run_dir / name).is_file():
            loaded: dict[str, Any] = json.loads((run_dir / name).read_text())
            return loaded
    raise ConfigError(f"run folder '{run_dir}' lacks {names[0]}: it is not a finished "
                      "crimecast run. Pass --run with the id of a completed run.")


def load_run(run_dir: Path, version: int | None = None, mlflow_run_id: str | None = None,
             model_name: str = "crimecast-hotspots") -> ChampionRun:
    """Read a finished run folder."""
    if not (run_dir / "train" / "deploy" / "model").is_dir():
        raise ConfigError(f"run folder '{run_dir}' has no trained model (train/deploy/model). "
                          "Pass --run with the id of a completed run under --runs-dir.")
    manifest = _read(run_dir, "manifest.json")
    return ChampionRun(
        run_dir=run_dir, info=_read(run_dir, "train/train_info.json"),
        deploy_info=_read(run_dir, "train/deploy/train_info.json"),
        meta=_read(run_dir, "process/features_meta.json"),
        evaluation=_read(run_dir, "evaluate/deploy/evaluation.json",
                         "evaluate/evaluation.json"),
        params=manifest.get("params", {}), version=version, model_name=model_name,
        mlflow_run_id=mlflow_run_id)


def find_run(runs_dir: Path, alias: str = "champion", run: str | None = None,
             tracking_uri: str | None = None) -> ChampionRun:
    """The run behind registry ``alias`` (or version number), or run folder ``run``."""
    if run is not None:
        return load_run(runs_dir / run)
    registry = ModelRegistry(tracking_uri=tracking_uri, state_dir=runs_dir / ".mlflow")
    versions = registry.list_versions()
    chosen = next((v for v in versions if (str(v.version) == alias if alias.isdigit()
                                           else alias in v.aliases)), None)
    if chosen is None:
        raise RegistryError(f"no version of '{registry.model_name}' is '{alias}' in "
                            f"{runs_dir / '.mlflow'}. Run crimecast models promote VERSION, "
                            "or pass --run RUN_ID.")
    folder = chosen.tags.get("crimecast_run_id")
    if not folder or not (runs_dir / folder).is_dir():
        raise ConfigError(f"version {chosen.version} was trained by run '{folder}', whose "
                          f"folder is not under '{runs_dir}'. Pass --runs-dir with the "
                          "folder that holds it.")
    return load_run(runs_dir / folder, version=chosen.version, mlflow_run_id=chosen.run_id,
                    model_name=registry.model_name)
