"""LAPD crime codes: descriptions, Part 1/2, category and the enforcement-driven flag.

The table ships in ``resources/lapd_crime_codes.csv``; it was derived from the
LAPD aggregates (every code seen 2010–2022). Categories follow the FBI UCR split
into crimes against persons (``violent``) and against property (``property``);
everything else is ``other``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

import polars as pl

from crimecast.config.crime_types import CRIME_TYPES

_VIOLENT = re.compile(r"ASSAULT|ROBBERY|HOMICIDE|MANSLAUGHTER|RAPE|SHOOT|SHOTS|KIDNAP|BATTERY"
                      r"|WEAPON|SEX|THREAT|STRANGL|MURDER")
_PROPERTY = re.compile(r"BURGLARY|THEFT|STOLEN|LARCENY|VANDAL|ARSON|FRAUD|SHOPLIFT|"
                       r"EMBEZZLE|FORGERY|BUNCO|VEHICLE|PICKPOCKET|PURSE")


def select_crime_types(frame: pl.DataFrame, types: list[str] | tuple[str, ...]) -> pl.DataFrame:
    """The rows of clean incidents of any of ``types`` (all rows when ``types`` is empty)."""
    if not types:
        return frame
    text = pl.col("crime_desc").fill_null("").str.to_uppercase()
    keep = pl.lit(False)
    for name in types:
        kind, value = CRIME_TYPES[name]
        keep = keep | (pl.col("crime_category") == value if kind == "category"
                       else text.str.contains(value))
    return frame.filter(keep)


@cache
def load_crime_codes() -> pl.DataFrame:
    """Return the LAPD crime-code table (codes as strings without zero padding)."""
    path = resources.files("crimecast") / "resources" / "lapd_crime_codes.csv"
    with path.open("rb") as handle:
        table = pl.read_csv(handle, schema_overrides={"crime_code": pl.String})
    return table.with_columns(pl.col("enforcement_driven").cast(pl.Boolean))


def infer_category(text: pl.Expr) -> pl.Expr:
    """Map free-text crime types to ``violent``/``property``/``other`` by keywords."""
    upper = text.str.to_uppercase()
    return (
        pl.when(upper.str.contains(_VIOLENT.pattern))
        .then(pl.lit("violent"))
        .when(upper.str.contains(_PROPERTY.pattern))
        .then(pl.lit("property"))
        .otherwise(pl.lit("other"))
    )
