"""The one error handler of every ``crimecast`` command.

Every :class:`~crimecast.errors.CrimecastError`, and any storage failure (a full disk, a
read-only or forbidden folder), is printed as one message on stderr with exit code 2,
never as a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from crimecast.errors import CrimecastError, as_storage_error

err_console = Console(stderr=True)

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
