"""CLI commands for serving: ``serve`` (the HTTP server) and ``predict`` (batch scoring).

Registered on the main app by :mod:`crimecast.cli.main`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.options import ConfigOpt, CrimeTypesOpt, SchemaOpt
from crimecast.config import Settings
from crimecast.errors import ConfigError

if TYPE_CHECKING:
    from crimecast.serving.server import ModelSource

err_console = make_console(stderr=True)

ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="models:/NAME@ALIAS, models:/NAME/VERSION or an MLflow run id "
                    "(default: the champion).")]
ModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", help="models:/NAME@ALIAS, models:/NAME/VERSION or an MLflow run id (default: "
                    "the champion). Repeat for models of other spatial units (area, grid): "
                    "the first also answers /invocations.")]
RunOpt = Annotated[str | None, typer.Option(
    "--run", help="A crimecast run id (folder under --runs-dir) or an MLflow run id.")]
ModelDirOpt = Annotated[Path | None, typer.Option(
    "--model-dir", help="A model directory (e.g. SageMaker's /opt/ml/model).")]
ServeDataOpt = Annotated[list[str] | None, typer.Option(
    "--data", help="Data store for /hotspots: incident CSV(s) or a run's clean.parquet "
                   "(default: the training run's cleaned events).")]
RunsDirOpt = Annotated[Path | None, typer.Option(
    "--runs-dir", help="Runs folder; the registry is <runs-dir>/.mlflow (default: runs).")]
TrackingOpt = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")]
def model_sources(settings: Settings, models: list[str], run: str | None,
                  model_dir: Path | None, runs_dir: Path | None,
                  tracking_uri: str | None) -> list[ModelSource]:
    """The model sources the flags describe (the first is the primary model)."""
    from crimecast.serving.server import ModelSource

    given = [name for name, value in (("--model", models), ("--run", run),
                                      ("--model-dir", model_dir)) if value]
    if len(given) > 1:
        raise ConfigError(f"pass one of --model, --run or --model-dir; got {' and '.join(given)}.")
    runs = runs_dir or Path(settings.pipeline.runs_dir)
    tracking = tracking_uri or settings.pipeline.tracking_uri
    refs = models or [run or settings.serving.model]
    return [ModelSource(ref=ref, model_dir=model_dir,
                        state_dir=None if tracking else runs / ".mlflow",
                        tracking_uri=tracking, runs_dir=runs) for ref in refs]


@handle_errors
def serve(
    model: ModelsOpt = None, run: RunOpt = None, model_dir: ModelDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080, SageMaker's).")] = None,
    data: ServeDataOpt = None,
    schema: SchemaOpt = None,
    token: Annotated[str | None, typer.Option(
        help="Bearer token required on every request (default: $CRIMECAST_TOKEN).")] = None,
    platform_auth: Annotated[bool, typer.Option(
        "--platform-auth", help="The host platform authenticates callers (SageMaker IAM); "
                                "allows a non-loopback bind without a token.")] = False,
    runs_dir: RunsDirOpt = None, tracking_uri: TrackingOpt = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    crime_types: CrimeTypesOpt = None,
    tiles: Annotated[str | None, typer.Option(
        "--tiles", help="Map background: a tile URL template with {z}, {x} and {y} (your "
                        "agency's tile server), or none for fully offline use; default "
                        "serving.tiles (OpenStreetMap).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve a model: /ping, /invocations (SageMaker), /hotspots, /map, /model, /docs."""
    from crimecast.config import load_settings
    from crimecast.serving.app import create_app
    from crimecast.serving.server import check_units, loader_for, resolve_token, run_server

    settings = load_settings(config).with_overrides("serving", tiles=tiles)
    cfg = settings.serving.model_copy(update={k: v for k, v in
                                              {"host": host, "port": port}.items() if v})
    bearer = resolve_token(cfg.host, token, cfg.token_env, platform_auth)
    sources = model_sources(settings, model or [], run, model_dir, runs_dir, tracking_uri)
    bundles = [source.load() for source in sources]  # bad references fail before the port opens
    check_units(bundles)
    bundle = bundles[0]
    check_crime_types(settings, bundle, crime_types)
    app = create_app(cfg, token=bearer, loader=loader_for(bundles, data or [], settings, schema))
    shown = "localhost" if cfg.host in ("127.0.0.1", "::1") else cfg.host
    err_console.print(f"serving {bundle.describe()} on http://{shown}:{cfg.port}  map: "
                      f"http://{shown}:{cfg.port}/map{'#token=...' if bearer else ''}  docs: "
                      f"http://{shown}:{cfg.port}/docs", highlight=False, soft_wrap=True)
    run_server(app, cfg.host, cfg.port, access_log=access_log)


def _forecast(settings: Any, at: str, horizon: str, model: str | None, run: str | None,
              model_dir: Path | None, data: list[str] | None, schema: str | None,
              runs_dir: Path | None, tracking_uri: str | None, allow_stale: bool,
              command: str, crime_types: str | None = None) -> tuple[Any, Any]:
    """The served model (with its data store) and its forecast of one window."""
    from crimecast.serving.forecast import compute_forecast, parse_at
    from crimecast.serving.server import load_served

    moment = parse_at(at)
    sources = model_sources(settings, [model] if model else [], run, model_dir, runs_dir,
                            tracking_uri)
    bundle = sources[0].load()
    check_crime_types(settings, bundle, crime_types)
    loaded = load_served([bundle], data or [], settings, schema)
    if loaded.store is None or loaded.bundle.unit_table is None:
        raise ConfigError(f"{command} needs a data store: pass --data FILE (incident CSV or a "
                          "run's clean.parquet).")
    forecast = compute_forecast(loaded.bundle, loaded.store, loaded.weather, moment, horizon,
                                settings.serving.max_horizon_days,
                                settings.serving.stale_after_days, allow_stale)
    return loaded, forecast


def check_crime_types(settings: Settings, bundle: Any, asked: str | None) -> None:
    """``--crime-types`` on serve, predict and brief: the model must forecast those types
    (the types are the model's, fixed when it was trained)."""
    if asked is None:
        return
    # Parsed and checked as the features config does (one rule for the flag everywhere).
    types = settings.with_overrides("features", crime_types=asked).features
    wanted = ", ".join(types.crime_types) or "all"
    has = bundle.audit()["crime_types"]
    if wanted != has:
        raise ConfigError(f"crime_types must match the model's; the model forecasts {has}, "
                          f"--crime-types asked for {wanted}. Pass --model with a model "
                          f"trained with crimecast run --crime-types {asked}.")


StaleOpt = Annotated[bool, typer.Option(
    "--allow-stale", help="Forecast a window that starts more than "
                          "serving.stale_after_days after the last known event.")]


@handle_errors
def predict(
    at: Annotated[str, typer.Option("--at", help="Window start, local ISO time.")],
    horizon: Annotated[str, typer.Option(help="Window length: 1h, 8h, 1d, 7d...")] = "8h",
    top: Annotated[int, typer.Option(help="How many units to return.", min=1)] = 20,
    fmt: Annotated[str, typer.Option("--format", help="geojson or csv (patrol boxes).")] =
    "geojson",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: stdout).")] =
    None,
    model: ModelOpt = None, run: RunOpt = None, model_dir: ModelDirOpt = None,
    data: ServeDataOpt = None,
    schema: SchemaOpt = None,
    runs_dir: RunsDirOpt = None, tracking_uri: TrackingOpt = None,
    config: ConfigOpt = None,
    allow_stale: StaleOpt = False,
    crime_types: CrimeTypesOpt = None,
) -> None:
    """Batch-score the next period: GeoJSON hotspots or a patrol-box CSV for dispatch/CAD."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_bytes
    from crimecast.data.spreadsheet import write_csv
    from crimecast.serving.geojson import UnitShapes, hotspots_geojson, patrol_boxes

    if fmt not in ("geojson", "csv"):
        raise ConfigError(f"format must be geojson or csv; got '{fmt}'. Pass --format csv.")
    settings = load_settings(config)
    loaded, forecast = _forecast(settings, at, horizon, model, run, model_dir, data, schema,
                                 runs_dir, tracking_uri, allow_stale, "predict", crime_types)
    bundle = loaded.bundle
    shapes = UnitShapes.from_table(bundle.unit_table)
    if fmt == "csv":
        payload = str(write_csv(patrol_boxes(forecast, shapes, top, bundle.audit()))).encode()
    else:
        payload = hotspots_geojson(forecast, shapes, bundle, top)
    if out is None:
        sys.stdout.buffer.write(payload if payload.endswith(b"\n") else payload + b"\n")
        sys.stdout.flush()
    else:
        write_bytes(out, payload)
    logging.getLogger("crimecast").info("forecast computed in %.2f s", forecast.seconds)
    err_console.print(f"{min(top, forecast.ranked.height)} units, window "
                      f"{forecast.window_start:%Y-%m-%d %H:%M} to "
                      f"{forecast.window_end:%Y-%m-%d %H:%M}, model {bundle.describe()}"
                      + (f" -> {out}" if out else ""), highlight=False, soft_wrap=True)


@handle_errors
def brief(
    at: Annotated[str, typer.Option("--at", help="Start of the shift, local ISO time.")],
    out: Annotated[Path, typer.Option("--out", help="brief.pdf (one A4 page) or brief.html.")],
    horizon: Annotated[str, typer.Option(help="Shift length: 1h, 8h, 1d...")] = "8h",
    top: Annotated[int, typer.Option(help="How many places to list.", min=1, max=40)] = 20,
    model: ModelOpt = None, run: RunOpt = None, model_dir: ModelDirOpt = None,
    data: ServeDataOpt = None,
    schema: SchemaOpt = None,
    runs_dir: RunsDirOpt = None, tracking_uri: TrackingOpt = None,
    config: ConfigOpt = None,
    allow_stale: StaleOpt = False,
    crime_types: CrimeTypesOpt = None,
) -> None:
    """A printable one-page shift briefing: map, ranked places, freshness, model, limits."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_bytes
    from crimecast.serving.briefing import briefing_html, briefing_pdf, build_briefing
    from crimecast.serving.geojson import UnitShapes

    if out.suffix.lower() not in (".pdf", ".html"):
        raise ConfigError(f"out must end in .pdf or .html; got '{out.name}'. Pass --out "
                          "brief.pdf.")
    settings = load_settings(config)
    loaded, forecast = _forecast(settings, at, horizon, model, run, model_dir, data, schema,
                                 runs_dir, tracking_uri, allow_stale, "brief", crime_types)
    bundle = loaded.bundle
    briefing = build_briefing(bundle, forecast, UnitShapes.from_table(bundle.unit_table), top,
                              loaded.store.estimated_time_share)
    payload = (briefing_pdf(briefing) if out.suffix.lower() == ".pdf"
               else briefing_html(briefing).encode())
    write_bytes(out, payload)
    err_console.print(f"briefing of {briefing.rows.height} places, "
                      f"{forecast.window_start:%Y-%m-%d %H:%M} to "
                      f"{forecast.window_end:%Y-%m-%d %H:%M} -> {out}", highlight=False,
                      soft_wrap=True)
