"""CLI commands that keep a deployed forecaster honest: ``monitor`` and ``compare``.

Registered on the main app by :mod:`crimecast.cli.main`. ``monitor`` exits 0 when the
champion is fine, 1 when it advises retraining, 2 on an error (as every command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.options import ConfigOpt, DataOpt, SchemaOpt, data_paths

console = make_console()

RunsOpt = Annotated[Path, typer.Option(
    "--runs-dir", help="Runs folder holding the champion's run and .mlflow (default: runs).")]
AliasOpt = Annotated[str, typer.Option(
    "--model", help="Registry alias or version number of the model to monitor (default: "
                    "champion).")]
RunIdOpt = Annotated[str | None, typer.Option(
    "--run", help="Monitor this run folder under --runs-dir instead of a registry alias "
                  "(default: none).")]
LogOpt = Annotated[Path | None, typer.Option(
    "--log", help="Forecast log folder written by serve and predict (default: "
                  "<runs-dir>/forecast_log when it exists).")]


def _log(log: Path | None, runs_dir: Path) -> Path | None:
    folder = log or runs_dir / "forecast_log"
    return folder if folder.is_dir() else None


@handle_errors
def monitor(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for monitor.json and "
                                                    "monitor.html.")],
    data: DataOpt = None,
    runs_dir: RunsOpt = Path("runs"),
    model: AliasOpt = "champion",
    run: RunIdOpt = None,
    log: LogOpt = None,
    schema: SchemaOpt = None,
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="When retraining is advised, train on --data with the champion's "
                          "configuration and register the result as 'challenger' if it "
                          "passes the gate (default: off).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Is the champion still working? Realised accuracy, data drift and a decision."""
    from crimecast.config import load_settings
    from crimecast.pipeline.champion import find_run
    from crimecast.pipeline.monitor_job import retrain_challenger, run_monitor
    from crimecast.serving.forecast_log import read_forecast_log

    settings = load_settings(config)
    paths = data_paths(data, list(ctx.args), settings)
    champion = find_run(runs_dir, model, run, settings.pipeline.tracking_uri)
    folder = _log(log, runs_dir)
    result = run_monitor(champion, paths, out, settings, schema,
                         read_forecast_log(folder) if folder else None)
    colour = "red" if result.decision == "retrain" else "green"
    console.print(f"decision: [bold {colour}]{result.decision}[/]", highlight=False)
    for rule in result.report["rules_fired"]:
        console.print(f"  - {rule}", highlight=False, soft_wrap=True)
    console.print(f"-> {result.json_path}, {result.html_path}", highlight=False, soft_wrap=True)
    if result.decision == "retrain" and retrain:
        outcome = retrain_challenger(champion, paths, settings, runs_dir, schema)
        words = (f"registered version {outcome['version']} as 'challenger'" if outcome["alias"]
                 else "the retrained model did not pass the gate; nothing registered")
        console.print(f"retrained: run {outcome['run_id']}, {words}", highlight=False)
    if result.decision == "retrain":
        raise typer.Exit(code=1)


@handle_errors
def compare(
    ctx: typer.Context,
    data: DataOpt = None,
    runs_dir: RunsOpt = Path("runs"),
    log: LogOpt = None,
    schema: SchemaOpt = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write compare.json here (default: print only).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Champion against challenger on the forecasts they made, once outcomes are known."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_json
    from crimecast.errors import ConfigError
    from crimecast.pipeline.champion import find_run
    from crimecast.pipeline.compare import compare_models
    from crimecast.pipeline.monitor_job import known_events, placed_events
    from crimecast.serving.forecast_log import read_forecast_log

    settings = load_settings(config)
    paths = data_paths(data, list(ctx.args), settings)
    folder = _log(log, runs_dir)
    if folder is None:
        raise ConfigError(f"log must be a forecast log folder; none at "
                          f"'{log or runs_dir / 'forecast_log'}'. Pass --log DIR (written by "
                          "crimecast serve and predict).")
    champion = find_run(runs_dir, "champion", None, settings.pipeline.tracking_uri)
    events = known_events(champion, paths, schema)
    report = compare_models(read_forecast_log(folder), placed_events(champion, events),
                            champion.unit_table().select("unit_id", "area_km2"),
                            events["occurred_at"].max())  # type: ignore[arg-type]
    for role, info in report["models"].items():
        console.print(f"{role}: versions {info['model_versions']}, PAI "
                      f"{info['pai']['value']:.2f} ({info['pai']['ci_low']:.2f}–"
                      f"{info['pai']['ci_high']:.2f}), hit rate {info['hit_rate']['value']:.3f}"
                      f" over {report['windows']} windows", highlight=False, soft_wrap=True)
    console.print(f"recommendation: [bold]{report['recommendation']}[/] ({report['why']})",
                  highlight=False, soft_wrap=True)
    if out is not None:
        write_json(report, out / "compare.json")
