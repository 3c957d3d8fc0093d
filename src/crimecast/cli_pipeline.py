"""CLI commands for the pipeline: ``run``, ``backtest`` and ``models list|promote``.

Registered on the main app by :mod:`crimecast.cli`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from crimecast.config import Settings

console = Console()
models_app = typer.Typer(help="The model registry: list versions, promote one to champion.",
                         no_args_is_help=True)


def apply_run_flags(
    settings: Settings, *, model_type: str | None, use_smote: bool | None,
    split_ratio: float | None, f1_threshold: float | None, spatial_unit: str | None,
    cell_size: float | None, time_bin: str | None, label: str | None,
    runs_dir: Path | None, tracking_uri: str | None, class_weight: bool | None,
    objective: str | None = None, gate_metric: str | None = None,
    register_best: bool | None = None, shift_start_hour: int | None = None,
    z_threshold: float | None = None,
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
        label=label, shift_start_hour=shift_start_hour, z_threshold=z_threshold,
    )


def run_with_progress(settings: Settings, paths: list[str], schema: str, tune: int) -> Any:
    """Run the pipeline with a progress bar and print the summary table."""
    from crimecast.pipeline.run import STEP_NAMES, run_pipeline

    began = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("pipeline", total=len(STEP_NAMES))

        def on_step(step: str, status: str) -> None:
            if status == "running":
                progress.update(task, description=f"{step}: running")
            else:
                progress.update(task, advance=1, description=f"{step}: {status}")

        summary = run_pipeline(settings, paths, schema=schema, tune=tune, on_step=on_step)
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


@models_app.command("list")
def list_models(
    runs_dir: Annotated[Path, typer.Option(help="Runs folder holding .mlflow.")] = Path("runs"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """List the registered versions of crimecast-hotspots with their tags."""
    from crimecast.registry.store import ModelRegistry

    registry = ModelRegistry(tracking_uri=tracking_uri, state_dir=runs_dir / ".mlflow")
    table = Table(title=f"{registry.model_name} @ {registry.tracking_uri}")
    for column in ("version", "aliases", "approval", "created", "run", "data hash", "f1"):
        table.add_column(column)
    for info in registry.list_versions():
        table.add_row(str(info.version), ",".join(info.aliases), str(info.approval_status),
                      str(info.created_at)[:19], (info.run_id or "")[:12],
                      info.tags.get("data_hash", "")[:12], info.tags.get("f1", ""))
    console.print(table)


@models_app.command("promote")
def promote_model(
    version: Annotated[int, typer.Argument(help="Version to promote.")],
    runs_dir: Annotated[Path, typer.Option(help="Runs folder holding .mlflow.")] = Path("runs"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
) -> None:
    """Move the champion alias to VERSION and mark it Approved."""
    from crimecast.registry.store import ModelRegistry

    registry = ModelRegistry(tracking_uri=tracking_uri, state_dir=runs_dir / ".mlflow")
    info = registry.promote(version, alias=alias)
    console.print(f"{registry.model_name} version {info.version} is now '{alias}' "
                  f"(approval_status={info.approval_status})")


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


def promote_demo_champion(summary: Any, runs_dir: Path) -> None:
    """The demo is a local sandbox: give its model the champion alias if none holds it,
    then print how to serve it."""
    from crimecast.registry.store import DEFAULT_ALIAS, ModelRegistry

    registry = ModelRegistry(state_dir=runs_dir / ".mlflow")
    champion = next((v for v in registry.list_versions() if DEFAULT_ALIAS in v.aliases), None)
    version = summary.registration.get("version")
    if champion is None and version is not None:
        champion = registry.promote(int(version))
        console.print(f"demo sandbox: promoted version {champion.version} to '{DEFAULT_ALIAS}' "
                      "(in production a person reviews the card first)")
    if champion is None:
        console.print("no version holds the champion alias (the gate did not pass); serve "
                      f"this run with: [bold]crimecast serve --runs-dir {runs_dir} --run "
                      f"{summary.run_id}[/]")
        return
    console.print(f"serve the champion (version {champion.version}): "
                  f"[bold]crimecast serve --runs-dir {runs_dir}[/]")
    console.print("then open the map: [bold]http://localhost:8080/map[/]  (API docs: "
                  "http://localhost:8080/docs)")

