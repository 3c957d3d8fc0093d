"""The ``crimecast`` command line (Typer): ``app`` is the entry point.

The top layer of crimecast: it may import every other package, and none imports it.
:mod:`~crimecast.cli.main` builds the app from the command modules beside it; every
command goes through the one error handler in :mod:`~crimecast.cli.errors`.

Start-up is kept fast (``crimecast --help`` in well under a second): the command modules
import Polars, NumPy, the settings (pydantic) and every crimecast package below the CLI
inside the command that needs them, never at module level;
``tests/test_cli_startup.py`` guards this.
"""

from crimecast.cli.main import app

__all__ = ["app"]
