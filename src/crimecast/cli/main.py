"""The ``crimecast`` Typer app: the main callback and the registration of every command.

Only the CLI and the server configure logging handlers. The commands live in the
modules beside this one, each wrapped in :func:`crimecast.cli.errors.handle_errors`;
they are registered here in the order ``--help`` lists them.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from crimecast import __version__
from crimecast.cli.data import clean, eda, features, generate, schema, weather
from crimecast.cli.errors import err_console, make_console
from crimecast.cli.models import models_app
from crimecast.cli.monitoring import compare, monitor
from crimecast.cli.options import CommandGroup
from crimecast.cli.pipeline import backtest, demo, run
from crimecast.cli.sagemaker import sagemaker_app
from crimecast.cli.serving import brief, predict, serve
from crimecast.heap import tune_allocators

app = typer.Typer(
    name="crimecast",
    cls=CommandGroup,
    help="Leak-free crime hotspot forecasting with a local-first MLOps pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = make_console()

# Commands that read extra file names after --data (--data a.csv b.csv).
EXTRA_ARGS = {"allow_extra_args": True}


def _version(value: bool) -> None:
    if value:
        console.print(f"crimecast {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """crimecast: forecast where crime concentrates in the next hour, shift, day or week."""
    from rich.logging import RichHandler

    if ctx.invoked_subcommand != "serve":
        tune_allocators()

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )


app.command()(generate)
app.command(context_settings=EXTRA_ARGS)(clean)
app.command(context_settings=EXTRA_ARGS)(eda)
app.command()(demo)
app.command(context_settings=EXTRA_ARGS)(features)
app.command(context_settings=EXTRA_ARGS)(run)
app.command(context_settings=EXTRA_ARGS)(backtest)
app.command()(weather)
app.command()(schema)
app.add_typer(models_app, name="models")
app.add_typer(sagemaker_app, name="sagemaker")
app.command("serve")(serve)
app.command("predict")(predict)
app.command("brief")(brief)
app.command(context_settings=EXTRA_ARGS)(monitor)
app.command(context_settings=EXTRA_ARGS)(compare)
