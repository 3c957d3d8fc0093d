"""Starting the server: which model and data to load, the token rule, uvicorn."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimecast.config import ServingConfig, Settings
from crimecast.errors import CrimecastError, ServingError
from crimecast.serving.bundle import ModelBundle, load_bundle, load_bundle_from_dir
from crimecast.serving.forecast_log import ForecastLog
from crimecast.serving.state import Loaded
from crimecast.serving.store import load_event_store
from crimecast.serving.variants import check_challenger

logger = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
OFF = "none"
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_MLFLOW_RUN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from: a registry reference / run id, or a directory."""

    ref: str | None = None
    model_dir: Path | None = None
    state_dir: Path | None = None
    tracking_uri: str | None = None
    runs_dir: Path | None = None

    def load(self) -> ModelBundle:
        """Load the bundle (registry, run folder or model directory)."""
        if self.model_dir is not None:
            return load_bundle_from_dir(self.model_dir)
        return load_bundle(self.ref or "models:/crimecast-hotspots@champion",
                           state_dir=self.state_dir, tracking_uri=self.tracking_uri,
                           runs_dir=self.runs_dir)


def challenger_reference(ref: str, model_name: str, runs_dir: Path | None = None) -> str:
    """``--challenger``: an alias (``challenger`` -> ``models:/NAME@challenger``), a
    version number (``7`` -> ``models:/NAME/7``) or any reference ``--model`` takes (a
    registry URI, an MLflow run id, a crimecast run folder under ``runs_dir``)."""
    ref = ref.strip()
    if ref.startswith("models:/") or _MLFLOW_RUN.match(ref):
        return ref
    if ref.isdigit():
        return f"models:/{model_name}/{int(ref)}"
    if runs_dir is not None and (runs_dir / ref / "train" / "model").is_dir():
        return ref  # a crimecast run id
    if _ALIAS.match(ref):
        return f"models:/{model_name}@{ref}"
    return ref  # load_bundle explains what it accepts


def load_challenger(source: ModelSource, ref: str, champion: ModelBundle) -> ModelBundle:
    """The challenger ``ref`` names (see :func:`challenger_reference`), checked to forecast
    like ``champion``: fails before the port opens."""
    resolved = challenger_reference(ref, champion.model_name, source.runs_dir)
    try:
        challenger = ModelSource(ref=resolved, state_dir=source.state_dir,
                                 tracking_uri=source.tracking_uri,
                                 runs_dir=source.runs_dir).load()
    except CrimecastError as exc:
        raise ServingError(f"--challenger {ref} ({resolved}) cannot be loaded: {exc}") from exc
    check_challenger(champion, challenger)
    return challenger


def forecast_log_dir(value: str | Path | None, runs_dir: Path) -> Path | None:
    """The forecast log's folder: ``none`` turns the log off; a relative path is under
    ``runs_dir`` (the default ``forecast_log`` is ``<runs-dir>/forecast_log``)."""
    if value is None or str(value).strip().lower() == OFF:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else runs_dir / path


def open_forecast_log(folder: Path | None, config: ServingConfig) -> ForecastLog | None:
    """A :class:`ForecastLog` in ``folder`` (None when the log is off), flushed every
    ``serving.forecast_log_flush_seconds``."""
    if folder is None:
        return None
    return ForecastLog(folder, flush_seconds=config.forecast_log_flush_seconds,
                       max_bytes=config.forecast_log_max_bytes)


def resolve_token(host: str, token: str | None, token_env: str,
                  platform_auth: bool = False) -> str | None:
    """The bearer token to require, or None; refuses a non-loopback bind without one."""
    token = token or os.environ.get(token_env) or None
    if token is not None and len(token) < 16:
        raise ServingError(f"the bearer token must be at least 16 characters; got "
                           f"{len(token)}. Generate one with: python -c \"import secrets; "
                           "print(secrets.token_urlsafe(32))\"")
    if host not in LOOPBACK and token is None and not platform_auth:
        raise ServingError(f"binding to {host} exposes the server beyond this machine, so it "
                           f"needs a bearer token. Pass --token TOKEN or set {token_env}, or "
                           "bind --host 127.0.0.1.")
    return token


def check_units(bundles: Sequence[ModelBundle]) -> None:
    """One model per spatial unit (``/hotspots?unit=`` picks among them), all of one set
    of crime types (they share one data store, kept to those types)."""
    units = [b.feature_config.spatial_unit for b in bundles]
    repeated = sorted({u for u in units if units.count(u) > 1})
    if repeated:
        raise ServingError(f"each --model must forecast a different spatial unit; "
                           f"{repeated[0]!r} is given {units.count(repeated[0])} times. "
                           "Pass one model per spatial unit.")
    kinds = sorted({str(b.audit()["crime_types"]) for b in bundles})
    if len(kinds) > 1:
        raise ServingError(f"the models forecast different crime types ({'; '.join(kinds)}); "
                           "one server serves one set. Start a server per crime type.")


def load_served(bundles: Sequence[ModelBundle], data: Sequence[str], settings: Settings,
                schema: str | None = None, challenger: ModelBundle | None = None) -> Loaded:
    """The models plus one data store (``data``, else the first model's training events),
    and the primary model's challenger, if any."""
    from crimecast.features.job import weather_for

    check_units(bundles)
    primary, others = bundles[0], tuple(bundles[1:])
    if challenger is not None:
        check_challenger(primary, challenger)
    hint = next((b.data_hint for b in bundles if b.data_hint is not None), None)
    paths = list(data) or ([str(hint)] if hint is not None else [])
    if not paths:
        logger.warning("no data store: /hotspots and /map need --data FILE; /invocations "
                       "works without one")
        return Loaded(bundle=primary, others=others, challenger=challenger)
    store = load_event_store(paths, schema or settings.data.schema_name, settings.cleaning,
                             settings.data.encoding, primary.feature_config.crime_types)
    return Loaded(bundle=primary, store=store, others=others, challenger=challenger,
                  weather=weather_for(store.events, primary.feature_config))


def loader_for(bundles: Sequence[ModelBundle], data: Sequence[str], settings: Settings,
               schema: str | None = None,
               challenger: ModelBundle | None = None) -> Callable[[], Loaded]:
    """A loader for :func:`~crimecast.serving.app.create_app` (runs on a thread)."""
    return lambda: load_served(bundles, data, settings, schema, challenger)


def run_server(app: Any, host: str, port: int, access_log: bool = False) -> None:
    """Serve ``app`` with uvicorn (uvloop and httptools when installed) until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                timeout_keep_alive=75, server_header=False)
