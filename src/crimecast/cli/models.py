"""CLI commands for the model registry: ``models list`` and ``models promote``.

Registered on the main app by :mod:`crimecast.cli.main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.options import CommandGroup

console = make_console()
models_app = typer.Typer(help="The model registry: list versions, promote one to champion.",
                         no_args_is_help=True, cls=CommandGroup)


@models_app.command("list")
@handle_errors
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
@handle_errors
def promote_model(
    version: Annotated[int, typer.Argument(help="Version to promote.")],
    runs_dir: Annotated[Path, typer.Option(help="Runs folder holding .mlflow.")] = Path("runs"),
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
    by: Annotated[str | None, typer.Option(
        "--by", help="Who promotes (default: the login name).")] = None,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why, e.g. the compare recommendation (default: none).")] = None,
) -> None:
    """Move the champion alias to VERSION and mark it Approved, recording who and why."""
    from crimecast.registry.store import ModelRegistry

    registry = ModelRegistry(tracking_uri=tracking_uri, state_dir=runs_dir / ".mlflow")
    info = registry.promote(version, alias=alias, by=by, reason=reason)
    console.print(f"{registry.model_name} version {info.version} is now '{alias}' "
                  f"(approval_status={info.approval_status}, by "
                  f"{info.tags.get('approved_by')})", highlight=False)


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
