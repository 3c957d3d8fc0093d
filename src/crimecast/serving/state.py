"""What the server holds once loaded, and the ``/model`` summary built from it."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from crimecast.config import FeatureConfig, ServingConfig
from crimecast.errors import ConfigError
from crimecast.features.timebins import STEPS_HOURS, TimeBinning
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecaster
from crimecast.serving.geojson import UnitShapes, boundaries, tract_outlines
from crimecast.serving.store import EventStore

logger = logging.getLogger(__name__)

HORIZON_CHOICES = ("1h", "8h", "12h", "1d", "7d")


@dataclass(frozen=True)
class Loaded:
    """The result of loading: the primary model (``/invocations``), models for other
    spatial units (``others``, for ``/hotspots?unit=``), a data store and weather, and a
    challenger to the primary model (same unit, bin and features), if any."""

    bundle: ModelBundle
    store: EventStore | None = None
    weather: pl.DataFrame | None = None
    others: tuple[ModelBundle, ...] = ()
    challenger: ModelBundle | None = None

    @property
    def bundles(self) -> tuple[ModelBundle, ...]:
        """Every served model, the primary first."""
        return (self.bundle, *self.others)


@dataclass(frozen=True, eq=False)
class UnitView:
    """One spatial unit's model, its forecaster and its shapes."""

    bundle: ModelBundle
    forecaster: Forecaster
    shapes: UnitShapes | None
    horizons: list[str]
    default_horizon: str
    default_at: str
    role: str = "champion"


class ServerState:
    """Everything the routes read. ``ready`` turns True once the model is loaded."""

    def __init__(self, config: ServingConfig, forecast_log: bool = False) -> None:
        self.config = config
        self.forecast_log = forecast_log  # answers (and shadow scores) are logged
        self.loaded: Loaded | None = None
        self.views: dict[str, UnitView] = {}
        self.primary_unit: str | None = None
        self.outlines: bytes | None = None
        self.tracts: bytes | None = None
        self.summary: dict[str, Any] = {}
        self.error: str | None = None
        self.challenger: UnitView | None = None  # the primary unit's challenger
        self._done = threading.Event()

    @property
    def ready(self) -> bool:
        """True once a model is loaded."""
        return self.loaded is not None

    def install(self, loaded: Loaded) -> None:
        """Make ``loaded`` the served model (precomputes shapes and the summary)."""
        import json

        bundle = loaded.bundle
        views: dict[str, UnitView] = {}
        for item in loaded.bundles:
            unit = item.feature_config.spatial_unit
            if unit in views:
                raise ConfigError(f"two served models forecast spatial unit '{unit}'; pass "
                                  "one --model per spatial unit.")
            cfg = item.feature_config
            horizons = horizons_for(cfg.time_bin, self.config.max_horizon_days)
            binning = TimeBinning(cfg.time_bin, cfg.shift_start_hour)
            if loaded.store is not None:  # index when events became known, off the event loop
                loaded.store.first_known(cfg.delay_aware)
            views[unit] = UnitView(
                bundle=item,
                forecaster=Forecaster(item, loaded.store, loaded.weather,
                                      self.config.cache_windows, self.config.max_horizon_days,
                                      self.config.stale_after_days),
                shapes=UnitShapes.from_table(item.unit_table)
                if item.unit_table is not None else None,
                horizons=horizons, default_horizon="8h" if "8h" in horizons else horizons[0],
                default_at=default_at(loaded.store, binning).isoformat(timespec="minutes"))
        if bundle.unit_table is not None:
            self.outlines = json.dumps(boundaries(bundle.unit_table),
                                       separators=(",", ":")).encode()
            self.tracts = json.dumps(tract_outlines(bundle.unit_table),
                                     separators=(",", ":")).encode()
        self.views = views
        self.primary_unit = bundle.feature_config.spatial_unit
        if loaded.challenger is not None:
            primary = views[self.primary_unit]
            self.challenger = UnitView(
                bundle=loaded.challenger,
                forecaster=Forecaster(loaded.challenger, loaded.store, loaded.weather,
                                      self.config.cache_windows, self.config.max_horizon_days,
                                      self.config.stale_after_days),
                shapes=primary.shapes, horizons=primary.horizons,
                default_horizon=primary.default_horizon, default_at=primary.default_at,
                role="challenger")
        self.summary = {**model_summary(loaded, self.config, views),
                        "challenger": challenger_summary(loaded.challenger),
                        "traffic": traffic_summary(self.config, loaded.challenger is not None,
                                                   self.forecast_log)}
        self.loaded = loaded
        # Everything loaded so far lives as long as the server: keep the collector off it,
        # so full collections stay short while requests are served.
        gc.collect()
        gc.freeze()
        self._done.set()

    def load_in_background(self, loader: Callable[[], Loaded]) -> threading.Thread:
        """Run ``loader`` on a thread; ``/ping`` answers 503 until it finishes."""

        def work() -> None:
            try:
                self.install(loader())
            except Exception as exc:  # reported by /ping and the log, never raised
                self.error = f"{type(exc).__name__}: {exc}"
                logger.error("could not load the model: %s", self.error)
                self._done.set()

        thread = threading.Thread(target=work, name="crimecast-loader", daemon=True)
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading finished (successfully or not)."""
        return self._done.wait(timeout)


def challenger_summary(challenger: ModelBundle | None) -> dict[str, Any] | None:
    """The challenger's part of ``/model``: who it is (the map shows the champion)."""
    if challenger is None:
        return None
    return {**challenger.audit(), "source": challenger.source,
            "model_type": challenger.model.model_type,
            "decision_threshold": challenger.threshold}


def traffic_summary(config: ServingConfig, has_challenger: bool,
                    forecast_log: bool) -> dict[str, Any]:
    """How requests are split between champion and challenger, for ``/model``: the
    challenger's share of answers, and whether the other model scores in shadow (it
    does when a forecast log records the scores)."""
    return {"challenger_share": config.challenger_share if has_challenger else 0.0,
            "shadow": has_challenger and forecast_log, "seed": config.challenger_seed,
            "variant_header": "X-Crimecast-Variant",
            "variants": ["champion", "challenger"] if has_challenger else ["champion"],
            "forecast_log": forecast_log}


def horizons_for(time_bin: str, max_days: int) -> list[str]:
    """The horizons offered for a model's bin (multiples of it, up to ``max_days``)."""
    hours = STEPS_HOURS[time_bin]
    choices = [h for h in HORIZON_CHOICES
               if (n := STEPS_HOURS[h]) % hours == 0 and n <= max_days * 24]
    return choices or [time_bin]


def default_at(store: EventStore | None, binning: TimeBinning) -> dt.datetime:
    """Now, or (for a data store that ends earlier) the bin after its last event."""
    now = dt.datetime.now().replace(second=0, microsecond=0)
    last = store.last if store is not None else None
    if last is None or last >= now - dt.timedelta(days=2):
        return binning.start_of(binning.index_of(now))
    return binning.start_of(binning.index_of(last) + 1)


def hotspot_meaning(cfg: FeatureConfig) -> str:
    """What a hotspot is under ``cfg``'s label, in words a commander reads."""
    if cfg.label == "topk":
        return f"among the busiest {cfg.topk_pct:g}% of places in a {cfg.time_bin} period"
    if cfg.label == "count":
        return f"ranked by expected crimes in a {cfg.time_bin} period (no hotspot label)"
    return (f"unusually busy for that place: more than {cfg.z_threshold:g} standard "
            f"deviations above its own recent {cfg.time_bin} average")


def model_summary(loaded: Loaded, config: ServingConfig,
                  views: dict[str, UnitView]) -> dict[str, Any]:
    """The ``/model`` document: identity, metrics, gate, intended use, data."""
    bundle = loaded.bundle
    cfg = bundle.feature_config
    view = views[cfg.spatial_unit]
    card = bundle.card or {}
    evaluation = bundle.evaluation or {}
    intended = card.get("intended_uses", {})
    metrics = {k: v.get("value") for k, v in
               evaluation.get("binary_classification_metrics", {}).items()}
    hotspot = {k: v.get("value") for k, v in evaluation.get("hotspot_metrics", {}).items()
               if isinstance(v, dict)}
    per_area = {region: {k: m.get("value") for k, m in
                         values.get("binary_classification_metrics", {}).items()}
                for region, values in evaluation.get("per_area", {}).get("regions", {}).items()}
    custom = card.get("additional_information", {}).get("custom_details", {})
    return {
        **bundle.audit(), "source": bundle.source,
        "model_type": bundle.model.model_type, "decision_threshold": bundle.threshold,
        "features": bundle.features, "nullable_features": sorted(bundle.nullable),
        "spatial_unit": cfg.spatial_unit, "time_bin": cfg.time_bin,
        "lead_bins": cfg.horizon, "label": cfg.label, "hotspot_meaning": hotspot_meaning(cfg),
        "units": len(bundle.units) if bundle.units is not None else None,
        "metrics": metrics, "hotspot_metrics": hotspot, "metrics_by_area": per_area,
        "gate": custom.get("gate"), "risk_rating": intended.get("risk_rating"),
        "champion_line": evaluation.get("forecasters", {}).get("champion_line"),
        "validation_ranking": evaluation.get("forecasters", {}).get("validation_ranking"),
        "intended_uses": intended.get("intended_uses"),
        "purpose": intended.get("purpose_of_model"),
        "synthetic_data": evaluation.get("data", {}).get("synthetic"),
        "training_sources": evaluation.get("data", {}).get("sources"),
        "data_store": loaded.store.summary() if loaded.store is not None else None,
        "horizons": view.horizons, "default_horizon": view.default_horizon,
        "default_at": view.default_at,
        "spatial_units": {unit: {**v.bundle.audit(), "time_bin": v.bundle.feature_config.time_bin,
                                 "horizons": v.horizons, "default_horizon": v.default_horizon,
                                 "units": len(v.bundle.units) if v.bundle.units else None}
                          for unit, v in views.items()},
        "card_url": "/model/card" if bundle.card_html else None,
        "limits": {"max_rows": config.max_rows, "max_body_bytes": config.max_body_bytes,
                   "max_top": config.max_top, "request_timeout_s": config.request_timeout_s},
    }
