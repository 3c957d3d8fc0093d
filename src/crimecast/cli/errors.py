"""The one error handler of every ``crimecast`` command.

Every :class:`~crimecast.errors.CrimecastError`, and any storage failure (a full disk, a
read-only or forbidden folder), is printed as one message on stderr with exit code 2,
never as a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from crimecast.errors import CrimecastError, as_storage_error

WIDE = 160  # columns when the output is not a terminal (a file, a pipe, CI logs)


def make_console(stderr: bool = False, **options: Any) -> Console:
    """A console for the CLI: the terminal's width, or WIDE columns when writing to a file
    or pipe (rich's 80 would cut table cells such as 'PendingManualApproval')."""
    stream = sys.stderr if stderr else sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    width = None if tty or os.environ.get("COLUMNS") else WIDE
    return Console(stderr=stderr, width=width, **options)


err_console = make_console(stderr=True)

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
