"""The ``crimecast`` command line (Typer): ``app`` is the entry point.

The top layer of crimecast: it may import every other package, and none imports it.
:mod:`~crimecast.cli.main` builds the app from the command modules beside it; every
command goes through the one error handler in :mod:`~crimecast.cli.errors`.
"""

from crimecast.cli.main import app

__all__ = ["app"]
