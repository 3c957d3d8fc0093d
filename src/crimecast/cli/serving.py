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
from crimecast.errors import ConfigError

if TYPE_CHECKING:
    from crimecast.config import Settings
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
ForecastLogOpt = Annotated[str | None, typer.Option(
    "--forecast-log", metavar="DIR|none",
    help="Folder of the forecast log (every forecast served, as Parquet parts), or none to "
         "turn it off (default: serving.forecast_log, <runs-dir>/forecast_log).")]


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
    challenger: Annotated[str | None, typer.Option(
        "--challenger", help="A challenger to the (first) model: an alias (challenger = "
                             "models:/NAME@challenger), a version number or any --model "
                             "reference; it must forecast the same places, time bin and "
                             "features (default: none).")] = None,
    challenger_share: Annotated[float | None, typer.Option(
        "--challenger-share", min=0.0, max=1.0,
        help="Share of requests (0-1) the challenger answers; the other model scores each "
             "request in shadow (default: serving.challenger_share, 0 = shadow only).")] = None,
    forecast_log: ForecastLogOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve a model: /ping, /invocations (SageMaker), /hotspots, /map, /model, /docs."""
    from crimecast.config import load_settings
    from crimecast.serving.app import create_app
    from crimecast.serving.server import (
        check_units,
        load_challenger,
        loader_for,
        open_forecast_log,
        resolve_token,
        run_server,
    )

    settings = load_settings(config).with_overrides("serving", tiles=tiles,
                                                    challenger_share=challenger_share)
    cfg = settings.serving.model_copy(update={k: v for k, v in
                                              {"host": host, "port": port}.items() if v})
    bearer = resolve_token(cfg.host, token, cfg.token_env, platform_auth)
    if challenger_share and challenger is None:
        raise ConfigError(f"--challenger-share needs a challenger; got --challenger-share "
                          f"{challenger_share:g} without --challenger. Pass --challenger REF.")
    sources = model_sources(settings, model or [], run, model_dir, runs_dir, tracking_uri)
    bundles = [source.load() for source in sources]  # bad references fail before the port opens
    check_units(bundles)
    bundle = bundles[0]
    check_crime_types(settings, bundle, crime_types)
    rival = load_challenger(sources[0], challenger, bundle) if challenger else None
    if rival is None and cfg.challenger_share > 0:
        logging.getLogger("crimecast").warning(
            "serving.challenger_share is %g but no --challenger is given: the champion "
            "answers every request", cfg.challenger_share)
    log = open_forecast_log(_log_dir(settings, forecast_log, runs_dir), cfg)
    app = create_app(cfg, token=bearer, forecast_log=log,
                     loader=loader_for(bundles, data or [], settings, schema, rival))
    shown = "localhost" if cfg.host in ("127.0.0.1", "::1") else cfg.host
    err_console.print(f"serving {bundle.describe()} on http://{shown}:{cfg.port}  map: "
                      f"http://{shown}:{cfg.port}/map{'#token=...' if bearer else ''}  docs: "
                      f"http://{shown}:{cfg.port}/docs", highlight=False, soft_wrap=True)
    if rival is not None:
        err_console.print(f"challenger {rival.describe()}: answers "
                          f"{cfg.challenger_share:.0%} of requests"
                          + (", scores the rest in shadow" if log is not None else
                             " (no forecast log: no shadow scores)"),
                          highlight=False, soft_wrap=True)
    if log is not None:
        err_console.print(f"forecast log: {log.directory}", highlight=False, soft_wrap=True)
    run_server(app, cfg.host, cfg.port, access_log=access_log)


def _log_dir(settings: Settings, flag: str | None, runs_dir: Path | None) -> Path | None:
    """The forecast log's folder: ``--forecast-log`` (a path as given, or none), else
    ``serving.forecast_log`` (relative to the runs folder)."""
    from crimecast.serving.server import forecast_log_dir

    runs = runs_dir or Path(settings.pipeline.runs_dir)
    if flag is not None and flag.strip().lower() != "none":
        return Path(flag).expanduser().resolve()
    return forecast_log_dir(flag or settings.serving.forecast_log, runs)


def log_forecast(settings: Settings, flag: str | None, runs_dir: Path | None, endpoint: str,
                 bundle: Any, forecast: Any, top: int) -> None:
    """Append the ``top`` places of ``forecast`` to the forecast log (predict, brief):
    written before the command ends; a log that cannot be written only warns."""
    from crimecast.serving.records import new_request_id, stamped, utc_now, window_template
    from crimecast.serving.server import open_forecast_log

    log = open_forecast_log(_log_dir(settings, flag, runs_dir), settings.serving)
    if log is None:
        return
    with log:
        log.append(stamped(window_template(forecast, bundle, top), endpoint=endpoint,
                           request_id=new_request_id(), role="champion", served=True,
                           issued_at=utc_now()))


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
    fmt: Annotated[str, typer.Option("--format", help="geojson, csv (patrol boxes), kml "
                                                      "(GIS and CAD map layers) or all (the "
                                                      "three, side by side in the folder "
                                                      "--out).")] = "geojson",
    out: Annotated[Path | None, typer.Option("--out", help="Output file, or the folder for "
                                                           "--format all (default: stdout).")] =
    None,
    post: Annotated[str | None, typer.Option(
        "--post", help="Also POST the shift's GeoJSON to this URL (a dispatch or CAD "
                       "webhook), retrying transient failures (default: none).")] = None,
    post_timeout: Annotated[float, typer.Option(
        "--post-timeout", help="Seconds to wait for the receiver per attempt.")] = 10.0,
    post_retries: Annotated[int, typer.Option(
        "--post-retries", help="Extra attempts after a connection error, timeout, 429 or "
                               "5xx.")] = 3,
    model: ModelOpt = None, run: RunOpt = None, model_dir: ModelDirOpt = None,
    data: ServeDataOpt = None,
    schema: SchemaOpt = None,
    runs_dir: RunsDirOpt = None, tracking_uri: TrackingOpt = None,
    config: ConfigOpt = None,
    allow_stale: StaleOpt = False,
    crime_types: CrimeTypesOpt = None,
    forecast_log: ForecastLogOpt = None,
) -> None:
    """Batch-score the next period: GeoJSON, a patrol-box CSV or KML for dispatch and GIS."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_bytes
    from crimecast.serving.dispatch import (
        check_post_url,
        forecast_key,
        post_forecast,
        shift_file_name,
    )
    from crimecast.serving.geojson import UnitShapes

    if fmt not in ("geojson", "csv", "kml", "all"):
        raise ConfigError(f"format must be geojson, csv, kml or all; got '{fmt}'. Pass "
                          "--format kml.")
    if fmt == "all" and out is None:
        raise ConfigError("out must be a folder with --format all (the GeoJSON, CSV and KML "
                          "of the shift are written side by side); got none. Pass --out "
                          "shifts/.")
    if post is not None:
        check_post_url(post)
    settings = load_settings(config)
    loaded, forecast = _forecast(settings, at, horizon, model, run, model_dir, data, schema,
                                 runs_dir, tracking_uri, allow_stale, "predict", crime_types)
    bundle = loaded.bundle
    shapes = UnitShapes.from_table(bundle.unit_table)
    if fmt == "all":
        assert out is not None
        for each in ("geojson", "csv", "kml"):
            write_bytes(out / shift_file_name(forecast, each),
                        shift_payload(each, bundle, forecast, shapes, top))
    else:
        payload = shift_payload(fmt, bundle, forecast, shapes, top)
        if out is None:
            sys.stdout.buffer.write(payload if payload.endswith(b"\n") else payload + b"\n")
            sys.stdout.flush()
        else:
            write_bytes(out, payload)
    if post is not None:
        sent = post_forecast(post, shift_payload("geojson", bundle, forecast, shapes, top),
                             timeout_s=post_timeout, retries=post_retries,
                             idempotency_key=forecast_key(forecast, bundle))
        err_console.print(f"posted to {sent.url}: HTTP {sent.status} after {sent.attempts} "
                          f"attempt(s)", highlight=False, soft_wrap=True)
    log_forecast(settings, forecast_log, runs_dir, "predict", bundle, forecast, top)
    logging.getLogger("crimecast").info("forecast computed in %.2f s", forecast.seconds)
    err_console.print(f"{min(top, forecast.ranked.height)} units, window "
                      f"{forecast.window_start:%Y-%m-%d %H:%M} to "
                      f"{forecast.window_end:%Y-%m-%d %H:%M}, model {bundle.describe()}"
                      + (f" -> {out}" if out else ""), highlight=False, soft_wrap=True)


def shift_payload(fmt: str, bundle: Any, forecast: Any, shapes: Any, top: int) -> bytes:
    """One shift's forecast as GeoJSON, a patrol-box CSV or KML."""
    from crimecast.data.spreadsheet import write_csv
    from crimecast.serving.dispatch import forecast_kml
    from crimecast.serving.geojson import hotspots_geojson, patrol_boxes

    if fmt == "csv":
        return str(write_csv(patrol_boxes(forecast, shapes, top, bundle.audit()))).encode()
    if fmt == "kml":
        return forecast_kml(forecast, shapes, bundle, top)
    payload: bytes = hotspots_geojson(forecast, shapes, bundle, top)
    return payload


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
    forecast_log: ForecastLogOpt = None,
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
    log_forecast(settings, forecast_log, runs_dir, "brief", bundle, forecast, top)
    err_console.print(f"briefing of {briefing.rows.height} places, "
                      f"{forecast.window_start:%Y-%m-%d %H:%M} to "
                      f"{forecast.window_end:%Y-%m-%d %H:%M} -> {out}", highlight=False,
                      soft_wrap=True)
