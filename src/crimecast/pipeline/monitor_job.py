"""``crimecast monitor`` end to end: clean the new data as the champion's run cleaned its
own, monitor (:mod:`.monitor`), check the patrol loop (:mod:`.feedback`), write
``monitor.json`` and ``monitor.html``, and with ``retrain`` train a challenger."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from crimecast.cards.monitor_page import monitor_html
from crimecast.config import CleaningConfig, FeatureConfig, Settings
from crimecast.data.output import write_bytes, write_json
from crimecast.data.prepare import prepare_incidents
from crimecast.pipeline.champion import ChampionRun
from crimecast.pipeline.feedback import feedback_check
from crimecast.pipeline.monitor import monitor_run
from crimecast.pipeline.run import run_pipeline
from crimecast.registry.store import ModelRegistry

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"


@dataclass(frozen=True)
class MonitorResult:
    """What ``crimecast monitor`` wrote and decided."""

    report: dict[str, Any]
    json_path: Path
    html_path: Path

    @property
    def decision(self) -> str:
        """``ok`` or ``retrain``."""
        return str(self.report["decision"])


def known_events(run: ChampionRun, paths: list[str], schema: str | None) -> pl.DataFrame:
    """The champion's training events followed by every newer one in ``paths``, cleaned
    by the champion's own rules and crime types (events the run knew are kept as it knew
    them; an incident id it already held is not added twice)."""
    params = run.params
    types = FeatureConfig.model_validate(run.meta["feature_config"]).crime_types
    cleaned = prepare_incidents(paths, schema or params.get("schema", "auto"),
                                CleaningConfig.model_validate(params.get("cleaning", {})),
                                encoding=params.get("encoding", "utf-8"), crime_types=types)
    train = run.training_events()
    fresh = cleaned.clean.join(train.select("incident_id"), on="incident_id", how="anti")
    return pl.concat([train, fresh.select(train.columns)]).sort("occurred_at")


def placed_events(run: ChampionRun, events: pl.DataFrame) -> pl.DataFrame:
    """``unit_id, occurred_at`` of the events inside the champion's units."""
    units = run.units()
    index = units.assign(events["lat"].to_numpy(), events["lon"].to_numpy(),
                         events["area_id"].to_numpy(), events["district_id"].to_numpy())
    inside = index >= 0
    return pl.DataFrame({"unit_id": np.asarray(units.ids, dtype=object)[index[inside]],
                         "occurred_at": events["occurred_at"].filter(pl.Series(inside))},
                        schema={"unit_id": pl.String, "occurred_at": pl.Datetime("us")})


def served_flags(log: pl.LazyFrame | None, predictions: pl.DataFrame, run: ChampionRun
                 ) -> tuple[pl.DataFrame, str]:
    """Each place's first flag: from the forecast log (places the champion's answers
    listed) when given, else the champion's top 1% of places in each monitored bin."""
    if log is not None:
        served = log.filter((pl.col("role") == "champion") & pl.col("served")
                            & pl.col("unit_id").is_not_null()
                            & (pl.col("crimecast_run_id") == run.run_dir.name)).select(
            "unit_id", flagged_at=pl.col("window_start")).collect()
        if served.height:
            return served, "forecast log"
    champion = predictions.filter(pl.col("model") == run.deployed)
    top = max(1, round(0.01 * champion["unit_id"].n_unique()))
    flags = champion.sort("score", descending=True).group_by("bin_start").head(top).select(
        "unit_id", flagged_at=pl.col("bin_start"))
    return flags, f"the champion's top {top} place(s) of each monitored bin"


def run_monitor(run: ChampionRun, paths: list[str], out: Path, settings: Settings,
                schema: str | None = None, log: pl.LazyFrame | None = None) -> MonitorResult:
    """Monitor ``run`` on the data in ``paths``; write ``out/monitor.json`` and ``.html``."""
    events = known_events(run, paths, schema)
    report, predictions = monitor_run(run, events, settings.monitoring)
    placed = placed_events(run, events)
    flags, source = served_flags(log, predictions, run)
    end = dt.datetime.fromisoformat(report["periods"]["monitor_end"])
    report["feedback"] = {**feedback_check(flags, placed, run.unit_ids(), end,
                                           settings.monitoring.window_weeks),
                          "flags_from": source}
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "monitor.json", out / "monitor.html"
    write_json(report, json_path)
    write_bytes(html_path, monitor_html(report).encode())
    return MonitorResult(report=report, json_path=json_path, html_path=html_path)


def settings_of(run: ChampionRun, settings: Settings, runs_dir: Path) -> Settings:
    """The champion's own configuration (cleaning, features, pipeline, models) with the
    runs folder of this monitor, to train its challenger the same way."""
    params = run.params
    updated = settings
    for section in ("cleaning", "features", "pipeline", "models"):
        if section in params:
            updated = updated.with_overrides(section, **params[section])
    return updated.with_overrides("pipeline", runs_dir=str(runs_dir))


def retrain_challenger(run: ChampionRun, paths: list[str], settings: Settings, runs_dir: Path,
                       schema: str | None = None) -> dict[str, Any]:
    """Run the pipeline on ``paths`` with the champion's configuration; when it passes the
    gate and registers a version, give that version the ``challenger`` alias."""
    summary = run_pipeline(settings_of(run, settings, runs_dir), paths,
                           schema=schema or run.params.get("schema", "auto"),
                           tune=int(run.params.get("tune", 0)))
    version = summary.registration.get("version")
    result = {"run_id": summary.run_id, "gate_passed": bool(summary.gate.get("passed")),
              "version": version, "alias": None}
    if version is not None:  # registered: the gate passed (or --register-best chose it)
        registry = ModelRegistry(tracking_uri=settings.pipeline.tracking_uri,
                                 state_dir=runs_dir / ".mlflow")
        registry.set_alias(int(version), CHALLENGER)
        result["alias"] = CHALLENGER
    return result
