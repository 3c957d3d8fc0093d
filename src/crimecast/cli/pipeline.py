"""CLI commands for the pipeline: ``demo``, ``run`` and ``backtest``.

Registered on the main app by :mod:`crimecast.cli.main`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from crimecast.cli.data import synthetic_provenance
from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.models import promote_demo_champion
from crimecast.cli.options import (
    CellSizeOpt,
    ClassWeightOpt,
    ConfigOpt,
    CrimeTypesOpt,
    DataOpt,
    EncodingOpt,
    ExecutorOpt,
    F1Opt,
    GateMetricOpt,
    LabelOpt,
    ModelTypeOpt,
    ObjectiveOpt,
    RowsOpt,
    SchemaOpt,
    ShiftOpt,
    SmoteOpt,
    SpatialUnitOpt,
    SplitOpt,
    TimeBinOpt,
    ZOpt,
    data_paths,
    parse_date,
)
from crimecast.cli.views import render_synthetic_banner

if TYPE_CHECKING:
    from crimecast.config import Settings

console = make_console()


def apply_run_flags(
    settings: Settings, *, model_type: str | None, use_smote: bool | None,
    split_ratio: float | None, f1_threshold: float | None, spatial_unit: str | None,
    cell_size: float | None, time_bin: str | None, label: str | None,
    runs_dir: Path | None, tracking_uri: str | None, class_weight: bool | None,
    objective: str | None = None, gate_metric: str | None = None,
    register_best: bool | None = None, shift_start_hour: int | None = None,
    z_threshold: float | None = None, rows: str | None = None,
    crime_types: str | None = None,
) -> Settings:
    """CLI flags override the YAML configuration."""
    return settings.with_overrides(
        "pipeline", model_type=model_type, use_smote=use_smote,
        train_test_split_ratio=split_ratio, f1_threshold=f1_threshold,
        runs_dir=str(runs_dir) if runs_dir else None, tracking_uri=tracking_uri,
        class_weight=class_weight, objective=objective, gate_metric=gate_metric,
        register_best=register_best,
    ).with_overrides(
        "features", spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin,
        label=label, shift_start_hour=shift_start_hour, z_threshold=z_threshold, rows=rows,
        crime_types=crime_types,
    )


def run_with_progress(settings: Settings, paths: list[str], schema: str, tune: int,
                      executor: str | None = None) -> Any:
    """Run the pipeline with a progress bar and print the summary table."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from crimecast.executor import opened
    from crimecast.pipeline.run import STEP_NAMES, run_pipeline

    began = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn(),
                  console=console, transient=False) as progress, opened(
            executor or settings.compute.executor, settings.compute.workers) as blocks:
        task = progress.add_task("pipeline", total=len(STEP_NAMES))

        def on_step(step: str, status: str) -> None:
            if status == "running":
                progress.update(task, description=f"{step}: running")
            else:
                progress.update(task, advance=1, description=f"{step}: {status}")

        summary = run_pipeline(settings, paths, schema=schema, tune=tune, on_step=on_step,
                               executor=blocks)
    console.print(f"run directory: {summary.run_dir}")
    render_run_summary(summary, time.perf_counter() - began)
    return summary


def render_ranking(ranking: dict[str, Any], limit: int = 12) -> None:
    """Forecasters ranked on validation (where the champion is chosen), with their test
    values beside; the champion and the plain-language reason below."""
    metric = ranking["metric"]
    table = Table(title=f"Forecasters ranked by validation {metric} (test shown, never "
                        "used to choose)")
    for column, justify in (("rank", "right"), ("forecaster", "left"), ("kind", "left"),
                            (f"validation {metric}", "right"), (f"test {metric}", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    rows = ranking["validation_ranking"]
    shown = rows[:limit] + [r for r in rows[limit:] if r["kind"] != "naive"]
    for row in shown:
        name = row["forecaster"]
        mark = " (champion)" if name == ranking["champion"] else ""
        value, test = row["value"], ranking["test"].get(name)
        table.add_row(str(row["rank"]), name + mark, row["kind"],
                      "n/a" if value is None else f"{value:.4f}",
                      "n/a" if test is None else f"{test:.4f}")
    console.print(table)
    if len(rows) > len(shown):
        console.print(f"({len(rows) - len(shown)} weaker naive forecasters not shown; all are "
                      "in evaluation.json)")
    console.print(f"[bold]champion:[/] {ranking['champion_line']}")


def render_run_summary(summary: object, seconds: float) -> None:
    """The ranking of forecasters, the gate, the registered version and the paths."""
    from crimecast.pipeline.run import RunSummary

    assert isinstance(summary, RunSummary)
    evaluation = summary.evaluation
    render_ranking(evaluation["forecasters"])
    learned = evaluation["forecasters"]["learned"]
    metrics = [f"{m} {evaluation[f].get(m, {}).get('value') or 0:.4f}" for f, m in (
        ("binary_classification_metrics", "f1"), ("binary_classification_metrics", "pr_auc"),
        ("hotspot_metrics", "pai@1%"), ("hotspot_metrics", "hit_rate@1%"))]
    console.print(f"learned model {learned} on test: " + ", ".join(metrics))
    data = evaluation.get("data", {})
    if str(data.get("evaluation", "")).startswith("streamed"):
        console.print(f"test: every unit of every test bin scored in blocks "
                      f"({data['rows_test']:,} rows = {data['units']:,} units x "
                      f"{data['bins_test']:,} bins per forecaster; the panel was never built)")
    gate = summary.gate
    verdict = "[green]PASSED[/]" if gate["passed"] else "[yellow]NOT PASSED[/]"
    console.print(f"gate: {verdict} — " + "; ".join(gate["reasons"]))
    reg = summary.registration
    if reg.get("registered"):
        console.print(f"registered: {reg['model_name']} version {reg['version']} "
                      f"({reg.get('forecaster', learned)}; approval_status="
                      "PendingManualApproval)")
    else:
        console.print("registered: no (the gate did not pass; the run ended cleanly; "
                      "--register-best registers the champion)")
    steps = ", ".join(f"{k} {v['status']}" for k, v in summary.steps.items())
    console.print(f"steps: {steps}")
    console.print(f"model card: {summary.card_html}")
    console.print(f"manifest: {summary.manifest}")
    console.print(f"MLflow run: {reg.get('mlflow_run_id')} at {reg.get('tracking_uri')}")
    console.print(f"finished in {seconds:.1f} s")


def render_backtest(report: dict[str, Any], seconds: float) -> None:
    """Hotspot metrics per forecaster (champion and best naive per origin included)."""
    table = Table(title=f"Backtest: {len(report['origins'])} origins, "
                        f"{report['forecast_bins']} forecast bins, {report['units']} units")
    table.add_column("forecaster", no_wrap=True)
    metrics = ("hit_rate@1%", "pai@1%", "pei_star@1%", "pai@5%", "pai@10%")
    for metric in (*metrics, "pr_auc"):
        table.add_column(metric, justify="right", no_wrap=True)
    ordered = sorted(report["models"].items(), key=lambda kv: -(
        kv[1]["hotspot_metrics"].get("pai@1%", {}).get("value") or 0))
    for name, block in ordered[:14]:
        values = [block["hotspot_metrics"].get(m, {}).get("value") for m in metrics]
        values.append(block["binary_classification_metrics"].get("pr_auc"))
        table.add_row(name, *("n/a" if v is None else f"{v:.4f}" for v in values))
    console.print(table)
    interval = report["intervals"]["pai@1%"]
    for name in (report["learned"], "ensemble", "champion"):
        if name in interval:
            block = interval[name]
            console.print(f"{name}: PAI@1% {block['value']:.3f} (95% CI {block['ci95'][0]:.3f}"
                          f"–{block['ci95'][1]:.3f}), {block['ratio_to_best_naive']:.3f} x the "
                          f"best naive (95% CI {block['ratio_ci95'][0]:.3f}–"
                          f"{block['ratio_ci95'][1]:.3f})")
    champions = [o["champion"] for o in report["origins"]]
    console.print("champion per origin: " + ", ".join(champions))
    console.print(f"finished in {seconds:.1f} s")


@handle_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_out"),
    start: Annotated[str, typer.Option(help="First synthetic day.")] = "2023-01-01",
    end: Annotated[str, typer.Option(help="Last synthetic day.")] = "2024-12-31",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    config: ConfigOpt = None,
) -> None:
    """Run the whole pipeline on the embedded (synthetic) data and show where it all is."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_incidents, write_provenance
    from crimecast.synthetic.generate import generate_incidents

    settings = load_settings(config)
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    render_synthetic_banner(console)
    raw_path = out / f"synthetic_lapd_{first:%Y%m%d}_{last:%Y%m%d}_seed{seed}.csv"
    if not raw_path.is_file():
        with console.status("generating synthetic LA incidents..."):
            frame = generate_incidents(first, last, seed, settings.generator)
            write_incidents(frame, raw_path)
            write_provenance(raw_path, synthetic_provenance(first, last, seed))
        console.print(f"generated {frame.height:,} SYNTHETIC records -> {raw_path}")
    settings = settings.with_overrides("pipeline", runs_dir=str(out / "runs"))
    summary = run_with_progress(settings, [str(raw_path)], "lapd", tune=0)
    state = (out / "runs" / ".mlflow").absolute()
    console.print("MLflow UI: [bold]mlflow ui --backend-store-uri "
                  f"sqlite:///{state}/mlflow.db --default-artifact-root {state}/mlartifacts[/]")
    promote_demo_champion(summary, out / "runs")


@handle_errors
def run(
    ctx: typer.Context,
    data: DataOpt = None,
    schema: SchemaOpt = None,
    model_type: ModelTypeOpt = None,
    use_smote: SmoteOpt = None,
    class_weight: ClassWeightOpt = None,
    train_test_split_ratio: SplitOpt = None,
    f1_threshold: F1Opt = None,
    spatial_unit: SpatialUnitOpt = None,
    cell_size: CellSizeOpt = None,
    time_bin: TimeBinOpt = None,
    label: LabelOpt = None,
    crime_types: CrimeTypesOpt = None,
    tune: Annotated[int, typer.Option(help="Optuna trials (0 = no tuning).")] = 0,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    executor: ExecutorOpt = None,
    rows: RowsOpt = None,
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
    from crimecast.config import load_settings

    settings = apply_run_flags(
        load_settings(config), model_type=model_type, use_smote=use_smote,
        split_ratio=train_test_split_ratio, f1_threshold=f1_threshold,
        spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin, label=label,
        runs_dir=runs_dir, tracking_uri=tracking_uri, class_weight=class_weight,
        objective=objective, gate_metric=gate_metric, register_best=register_best,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold, rows=rows,
        crime_types=crime_types,
    ).with_overrides("data", encoding=encoding)
    paths = data_paths(data, list(ctx.args), settings)
    run_with_progress(settings, paths, schema or settings.data.schema_name, tune, executor)


@handle_errors
def backtest(
    ctx: typer.Context,
    origins: Annotated[str, typer.Option(help="START:END of the forecast origins (ISO).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    data: DataOpt = None,
    schema: SchemaOpt = None,
    retrain_every: Annotated[int, typer.Option(help="Bins between retrainings.")] = 1,
    model_type: ModelTypeOpt = None,
    use_smote: SmoteOpt = None,
    class_weight: ClassWeightOpt = None,
    spatial_unit: SpatialUnitOpt = None,
    cell_size: CellSizeOpt = None,
    time_bin: TimeBinOpt = None,
    label: LabelOpt = None,
    crime_types: CrimeTypesOpt = None,
    shift_start_hour: ShiftOpt = None,
    z_threshold: ZOpt = None,
    encoding: EncodingOpt = None,
    executor: ExecutorOpt = None,
    objective: ObjectiveOpt = None,
    gate_metric: GateMetricOpt = None,
    tune: Annotated[int, typer.Option(help="Optuna trials at each origin (0 = none).")] = 0,
    config: ConfigOpt = None,
) -> None:
    """Rolling-origin backtest of every forecaster, trained at each origin as `run` trains."""
    from crimecast.config import load_settings
    from crimecast.data.output import write_json, write_parquet
    from crimecast.executor import opened
    from crimecast.features.job import run_features
    from crimecast.features.unit_table import unit_table
    from crimecast.pipeline.backtest import parse_origins, run_backtest, write_backtest_views

    settings = apply_run_flags(
        load_settings(config), model_type=model_type, use_smote=use_smote, split_ratio=None,
        f1_threshold=None, spatial_unit=spatial_unit, cell_size=cell_size, time_bin=time_bin,
        label=label, runs_dir=None, tracking_uri=None, class_weight=class_weight,
        objective=objective, gate_metric=gate_metric, register_best=None,
        shift_start_hour=shift_start_hour, z_threshold=z_threshold, crime_types=crime_types)
    window = parse_origins(origins)
    paths = data_paths(data, list(ctx.args), settings)
    began = time.perf_counter()
    with console.status("cleaning, building features and backtesting..."), opened(
            executor or settings.compute.executor, settings.compute.workers) as blocks:
        job = run_features(paths, schema or settings.data.schema_name, settings.cleaning,
                           settings.features, encoding=encoding or settings.data.encoding,
                           executor=blocks)
        units = unit_table(job.units)
        result = run_backtest(job.features.frame, job.cleaned.clean, job.units, units,
                              window, retrain_every, settings.pipeline, settings.features,
                              settings.models, tune_trials=tune, executor=blocks)
        write_parquet(result.predictions, out / "predictions.parquet")
        write_json(result.report, out / "backtest.json")
    with console.status("drawing backtest.html..."):
        write_backtest_views(result, units, settings.pipeline.model_type, out)
    render_backtest(result.report, time.perf_counter() - began)
    console.print(f"wrote {out / 'predictions.parquet'}, {out / 'backtest.json'}, "
                  f"{out / 'backtest.html'} and {out / 'units.geojson'} (the places' shapes, "
                  "to join on unit_id in QGIS or ArcGIS)")
