"""The ``crimecast`` command line (Typer).

Only this module and the server configure logging handlers. Every
:class:`~crimecast.errors.CrimecastError` is printed as one message on stderr
with exit code 2, never as a traceback.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from crimecast import __version__
from crimecast.cli_options import (
    ConfigOpt,
    DataOpt,
    EncodingOpt,
    GateMetricOpt,
    ObjectiveOpt,
    SchemaOpt,
    ShiftOpt,
    ZOpt,
)
from crimecast.cli_sagemaker import sagemaker_app
from crimecast.cli_views import (
    render_calibration,
    render_clean_report,
    render_synthetic_banner,
    render_weather,
)
from crimecast.config import Settings, load_settings
from crimecast.errors import CrimecastError, as_storage_error

app = typer.Typer(
    name="crimecast",
    help="Leak-free crime hotspot forecasting with a local-first MLOps pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
logger = logging.getLogger("crimecast")

F = TypeVar("F", bound=Callable[..., Any])

def handle_errors(func: F) -> F:
    """Turn CrimecastError into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            # A full disk, a read-only or forbidden folder: one line naming the path,
            # whichever library (SQLite, Polars, MLflow) hit it first.
            storage = as_storage_error(exc, permission=not isinstance(exc, CrimecastError))
            if storage is None and not isinstance(exc, CrimecastError):
                raise
            err_console.print(f"[bold red]error:[/] {storage or exc}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"crimecast {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """crimecast: forecast where crime concentrates in the next hour, shift, day or week."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CrimecastError(
            f"{option} must be a date in YYYY-MM-DD form; got '{value}'. "
            f"Pass {option} 2024-01-31."
        ) from None


def _synthetic_provenance(first: dt.date, last: dt.date, seed: int) -> dict[str, Any]:
    return {"synthetic": True, "generator": "crimecast generate", "version": __version__,
            "start": str(first), "end": str(last), "seed": seed}


def _data_paths(data: list[str] | None, extra: list[str], settings: Settings) -> list[str]:
    paths = [*(data or []), *extra] or list(settings.data.paths)
    if not paths:
        raise CrimecastError("no input data: pass --data FILE (repeatable).")
    for path in extra:
        if path.startswith("-"):
            raise CrimecastError(f"unknown option '{path}'. Run with --help for the options.")
    return paths


@app.command()
@handle_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, .csv.gz or .parquet.")],
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2020-01-01",
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD), inclusive.")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same data.")] = 7,
    report: Annotated[
        bool, typer.Option("--report", help="Compare the output with real LAPD aggregates.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Generate synthetic LAPD-schema incidents calibrated to real LA aggregates."""
    from crimecast.data.calibration import build_calibration_report
    from crimecast.data.generate import generate_incidents
    from crimecast.data.output import write_incidents, write_json, write_provenance

    settings = _settings(config)
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    began = time.perf_counter()
    with console.status("generating synthetic incidents..."):
        frame = generate_incidents(first, last, seed, settings.generator)
    elapsed = time.perf_counter() - began
    write_incidents(frame, out)
    write_provenance(out, _synthetic_provenance(first, last, seed))
    render_synthetic_banner(console)
    console.print(
        f"wrote [bold]{frame.height:,}[/] synthetic records ({first} to {last}, seed {seed}) "
        f"to {out} in {elapsed:.1f} s"
    )
    if report:
        calibration = build_calibration_report(frame)
        report_path = out.with_name(out.name.split(".")[0] + "_calibration.json")
        write_json(calibration.model_dump(mode="json"), report_path)
        render_calibration(console, calibration)
        console.print(f"calibration report: {report_path}")
        if not calibration.passed:
            raise typer.Exit(code=1)


@app.command(context_settings={"allow_extra_args": True})
@handle_errors
def clean(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    encoding: EncodingOpt = None,
    min_date: Annotated[str | None, typer.Option(help="Earliest occurrence kept.")] = None,
    max_date: Annotated[str | None, typer.Option(help="Latest occurrence kept.")] = None,
    include_enforcement: Annotated[
        bool,
        typer.Option(
            "--include-enforcement-driven", help="Keep enforcement-driven crime types."
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Load incident files, clean them, and write clean, quarantine and report files.

    Extra file names after --data are read too: --data a.csv b.csv.
    """
    from crimecast.data.prepare import prepare_incidents, write_clean_outputs

    settings = _settings(config)
    settings = settings.with_overrides(
        "cleaning",
        min_date=_parse_date(min_date, "--min-date") if min_date else None,
        max_date=_parse_date(max_date, "--max-date") if max_date else None,
        exclude_enforcement_driven=False if include_enforcement else None,
    )
    paths = _data_paths(data, list(ctx.args), settings)
    with console.status(f"cleaning {len(paths)} file(s)..."):
        result = prepare_incidents(
            paths,
            schema=schema or settings.data.schema_name,
            config=settings.cleaning,
            encoding=encoding or settings.data.encoding,
        )
        written = write_clean_outputs(result, out)
    render_clean_report(console, result.report)
    console.print(f"wrote {written['clean']}, {written['quarantine']} and {written['report']}")


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_out"),
    start: Annotated[str, typer.Option(help="First synthetic day.")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Last synthetic day.")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    config: ConfigOpt = None,
) -> None:
    """Run the whole pipeline on the embedded (synthetic) data and show where it all is."""
    from crimecast.cli_pipeline import promote_demo_champion, run_with_progress
    from crimecast.data.generate import generate_incidents
    from crimecast.data.output import write_incidents, write_provenance

    settings = _settings(config)
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    render_synthetic_banner(console)
    raw_path = out / f"synthetic_lapd_{first:%Y%m%d}_{last:%Y%m%d}_seed{seed}.csv"
    if not raw_path.is_file():
        with console.status("generating synthetic LA incidents..."):
            frame = generate_incidents(first, last, seed, settings.generator)
            write_incidents(frame, raw_path)
            write_provenance(raw_path, _synthetic_provenance(first, last, seed))
        console.print(f"generated {frame.height:,} SYNTHETIC records -> {raw_path}")
    settings = settings.with_overrides("pipeline", runs_dir=str(out / "runs"))
    summary = run_with_progress(settings, [str(raw_path)], "lapd", tune=0)
    state = (out / "runs" / ".mlflow").absolute()
    console.print("MLflow UI: [bold]mlflow ui --backend-store-uri "
                  f"sqlite:///{state}/mlflow.db --default-artifact-root {state}/mlartifacts[/]")
    promote_demo_champion(summary, out / "runs")


@app.command(context_settings={"allow_extra_args": True})
@handle_errors
def features(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    spatial_unit: Annotated[
        str | None, typer.Option(help="area, district or grid (h3 if installed).")
    ] = None,
    cell_size: Annotated[float | None, typer.Option(help="Grid cell size in metres.")] = None,
    time_bin: Annotated[str | None, typer.Option(help="1h, 8h, 12h, 1d or 7d.")] = None,
    label: Annotated[str | None, typer.Option(help="zscore, topk or count.")] = None,
    horizon: Annotated[int | None, typer.Option(help="Bins ahead the forecast is issued.")] = None,
    weather_mode: Annotated[
        str | None, typer.Option("--weather", help="same_bin, lagged or none.")
    ] = None,
    delay_aware: Annotated[
        bool | None,
        typer.Option("--delay-aware/--no-delay-aware", help="Use report dates for as-of."),
    ] = None,
    max_date: Annotated[str | None, typer.Option(help="Latest occurrence kept.")] = None,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Clean incidents and build the leak-free feature panel with labels."""
    from crimecast.cli_views import render_features
    from crimecast.features.job import run_features, write_features

    settings = _settings(config).with_overrides(
        "features", spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin,
        label=label, horizon=horizon, weather=weather_mode, delay_aware=delay_aware,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold,
    ).with_overrides(
        "cleaning", max_date=_parse_date(max_date, "--max-date") if max_date else None
    )
    paths = _data_paths(data, list(ctx.args), settings)
    began = time.perf_counter()
    with console.status("cleaning and building features..."):
        result = run_features(paths, schema or settings.data.schema_name, settings.cleaning,
                              settings.features, encoding=encoding or settings.data.encoding)
        written = write_features(result.features, out)
    render_features(console, result.features.meta, time.perf_counter() - began)
    console.print(f"wrote {written['features']} and {written['meta']}")


@app.command(context_settings={"allow_extra_args": True})
@handle_errors
def run(
    ctx: typer.Context,
    data: DataOpt = None,
    schema: SchemaOpt = None,
    model_type: Annotated[str | None, typer.Option(help="lightgbm, xgboost, catboost, "
                                                   "random_forest, extra_trees, "
                                                   "balanced_random_forest or logistic.")] = None,
    use_smote: Annotated[bool | None, typer.Option("--use-smote/--no-smote")] = None,
    class_weight: Annotated[bool | None, typer.Option("--class-weight/--no-class-weight")] = None,
    train_test_split_ratio: Annotated[float | None, typer.Option()] = None,
    f1_threshold: Annotated[float | None, typer.Option()] = None,
    spatial_unit: Annotated[str | None, typer.Option()] = None,
    cell_size: Annotated[float | None, typer.Option()] = None,
    time_bin: Annotated[str | None, typer.Option()] = None,
    label: Annotated[str | None, typer.Option()] = None,
    tune: Annotated[int, typer.Option(help="Optuna trials (0 = no tuning).")] = 0,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    objective: ObjectiveOpt = None,
    gate_metric: GateMetricOpt = None,
    register_best: Annotated[bool | None, typer.Option(
        "--register-best/--no-register-best", help="Register the best validated forecaster "
        "(naive, SEPP or ensemble included) instead of the learned model.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Where runs are written.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the pipeline: process, train, evaluate, gate, card, register."""
    from crimecast.cli_pipeline import apply_run_flags, run_with_progress

    settings = apply_run_flags(
        _settings(config), model_type=model_type, use_smote=use_smote,
        split_ratio=train_test_split_ratio, f1_threshold=f1_threshold,
        spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin, label=label,
        runs_dir=runs_dir, tracking_uri=tracking_uri, class_weight=class_weight,
        objective=objective, gate_metric=gate_metric, register_best=register_best,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold
    ).with_overrides("data", encoding=encoding)
    paths = _data_paths(data, list(ctx.args), settings)
    run_with_progress(settings, paths, schema or settings.data.schema_name, tune)


@app.command(context_settings={"allow_extra_args": True})
@handle_errors
def backtest(
    ctx: typer.Context,
    origins: Annotated[str, typer.Option(help="START:END of the forecast origins (ISO).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    retrain_every: Annotated[int, typer.Option(help="Bins between retrainings.")] = 1,
    model_type: Annotated[str | None, typer.Option()] = None,
    use_smote: Annotated[bool | None, typer.Option("--use-smote/--no-smote")] = None,
    class_weight: Annotated[bool | None, typer.Option("--class-weight/--no-class-weight")] = None,
    spatial_unit: Annotated[str | None, typer.Option()] = None,
    cell_size: Annotated[float | None, typer.Option()] = None,
    time_bin: Annotated[str | None, typer.Option()] = None,
    label: Annotated[str | None, typer.Option()] = None,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    objective: ObjectiveOpt = None,
    gate_metric: GateMetricOpt = None,
    tune: Annotated[int, typer.Option(help="Optuna trials at each origin (0 = none).")] = 0,
    config: ConfigOpt = None,
) -> None:
    """Rolling-origin backtest of every forecaster, trained at each origin as `run` trains."""
    from crimecast.cli_pipeline import apply_run_flags, render_backtest
    from crimecast.data.output import write_json, write_parquet
    from crimecast.features.job import run_features
    from crimecast.features.unit_table import unit_table
    from crimecast.pipeline.backtest import parse_origins, run_backtest

    settings = apply_run_flags(
        _settings(config), model_type=model_type, use_smote=use_smote, split_ratio=None,
        f1_threshold=None, spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin,
        label=label, runs_dir=None, tracking_uri=None, class_weight=class_weight,
        objective=objective, gate_metric=gate_metric, register_best=None,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold)
    window = parse_origins(origins)
    paths = _data_paths(data, list(ctx.args), settings)
    began = time.perf_counter()
    with console.status("cleaning, building features and backtesting..."):
        job = run_features(paths, schema or settings.data.schema_name, settings.cleaning,
                           settings.features, encoding=encoding or settings.data.encoding)
        result = run_backtest(job.features.frame, job.cleaned.clean, job.units,
                              unit_table(job.units), window, retrain_every, settings.pipeline,
                              settings.features, settings.models, tune_trials=tune)
        write_parquet(result.predictions, out / "predictions.parquet")
        write_json(result.report, out / "backtest.json")
    render_backtest(result.report, time.perf_counter() - began)
    console.print(f"wrote {out / 'predictions.parquet'} and {out / 'backtest.json'}")


@app.command()
@handle_errors
def weather(
    start: Annotated[str, typer.Option(help="First day.")] = "2010-01-01",
    end: Annotated[str, typer.Option(help="Last day.")] = "2024-12-31",
) -> None:
    """Summarise the embedded Los Angeles weather series and report its gaps."""
    from crimecast.data.weather import load_daily_weather, weather_gaps

    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    daily = load_daily_weather()
    render_weather(console, daily, weather_gaps(daily, first, last))


@app.command()
def schema() -> None:
    """Print the canonical incident schema and the cleaning rules."""
    from crimecast.cli_views import render_schema

    render_schema(console)


def _register_subcommands() -> None:
    from crimecast.cli_pipeline import list_models, models_app, promote_model

    models_app.registered_commands.clear()
    models_app.command("list")(handle_errors(list_models))
    models_app.command("promote")(handle_errors(promote_model))
    app.add_typer(models_app, name="models")
    app.add_typer(sagemaker_app, name="sagemaker")
    from crimecast.cli_serving import predict, serve

    app.command("serve")(handle_errors(serve))
    app.command("predict")(handle_errors(predict))


_register_subcommands()

if __name__ == "__main__":  # pragma: no cover
    app()
