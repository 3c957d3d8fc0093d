"""Polars expressions shared by the source parsers (dates, clock times, numbers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

# Formats seen in LAPD exports and common ISO 8601 variants, tried in order.
DATETIME_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %I:%M:%S %p",  # LAPD standard export: 02/23/2024 12:00:00 AM
    "%m/%d/%Y %H:%M",  # West LA variant and older exports: 10/15/2020 0:00
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
OFFSET_FORMATS: tuple[str, ...] = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")


def blank_to_null(expr: pl.Expr) -> pl.Expr:
    """Strip whitespace and turn empty strings into nulls."""
    stripped = expr.str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped).otherwise(None)


# A value blank_to_null would change: edge whitespace (Unicode, as strip_chars) or empty.
_NEEDS_STRIP = r"^\s|\s$|^$"
SAMPLE_ROWS = 20_000


def _repetitive(column: pl.Series) -> bool:
    """True when a column holds few distinct values (judged on its first rows)."""
    sample = column.head(SAMPLE_ROWS)
    return sample.n_unique() * 4 <= sample.len()


@dataclass(frozen=True)
class TextColumns:
    """Text columns stripped with blanks as null, and the distinct values of the
    repetitive ones (codes, dates, clock times), for work done once per value."""

    frame: pl.DataFrame
    distinct: dict[str, pl.Series]

    def per_value(self, name: str, derived: Mapping[str, pl.Expr]) -> list[pl.Expr]:
        """Expressions of ``pl.col(name)``, computed once per distinct value of the column
        and broadcast back with one hash lookup per row (nulls are values too)."""
        distinct = self.distinct.get(name)
        if distinct is None:
            return [expr.alias(alias) for alias, expr in derived.items()]
        table = distinct.to_frame().select(**derived)
        return [pl.col(name).replace_strict(distinct, table[alias],
                                            return_dtype=table[alias].dtype).alias(alias)
                for alias in derived]


def blank_to_null_columns(frame: pl.DataFrame, columns: Sequence[str]) -> TextColumns:
    """``frame[columns]`` through :func:`blank_to_null`; missing columns are all null.

    Most columns need no change, and finding that out is cheaper than stripping
    every value: repetitive columns are checked (and fixed) per distinct value,
    the others with one scan, and only columns holding a blank or padded value
    are rewritten. Lazy queries throughout, so the columns are worked on in
    parallel and never copied into one chunk.
    """
    present = [c for c in columns if c in frame.columns]
    repetitive = [c for c in present if _repetitive(frame[c])]
    scan = [c for c in present if c not in repetitive]
    found = frame.lazy().select(
        *(pl.col(c).unique().implode() for c in repetitive),
        *(pl.col(c).str.contains(_NEEDS_STRIP).any() for c in scan),
    ).collect()
    distinct = {c: found[c].explode() for c in repetitive}
    chosen = {c: pl.lit(None, pl.String).alias(c) for c in columns if c not in present}
    for name, values in distinct.items():
        chosen[name] = pl.col(name)
        if values.str.contains(_NEEDS_STRIP).any():
            fixed = pl.select(blank_to_null(pl.lit(values))).to_series()
            chosen[name] = pl.col(name).replace_strict(values, fixed)
            distinct[name] = fixed.unique()
    for name in scan:
        flagged = bool(found[name][0])
        chosen[name] = blank_to_null(pl.col(name)).alias(name) if flagged else pl.col(name)
    text = frame.lazy().select(chosen[name] for name in columns).collect()
    return TextColumns(frame=text, distinct=distinct)


def parse_datetime(
    text: pl.Expr, formats: tuple[str, ...] | None = None, timezone: str | None = None
) -> pl.Expr:
    """Parse text into a naive ``Datetime(us)``, trying each format; failures are null.

    Timestamps with a UTC offset are converted to ``timezone`` wall-clock time,
    because the rest of crimecast works in the source city's local time.
    """
    attempts = [
        text.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
        for fmt in (formats or DATETIME_FORMATS)
    ]
    if formats is None and timezone is not None:
        attempts += [
            text.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False, exact=True)
            .dt.convert_time_zone(timezone)
            .dt.replace_time_zone(None)
            for fmt in OFFSET_FORMATS
        ]
    return pl.coalesce(attempts)


def parse_datetime_series(
    text: pl.Series, formats: tuple[str, ...] | None = None, timezone: str | None = None,
    sample: pl.Series | None = None,
) -> pl.Series:
    """Parse a text Series like :func:`parse_datetime`, fast for single-format files.

    The format that parses most of a sample (by default the first 2,000 values) is
    applied to every value; only the values it fails on go through the full list
    of formats.
    """
    candidates = formats or DATETIME_FORMATS
    sample = (text if sample is None else sample).drop_nulls().head(2000)
    if sample.len() == 0:
        return pl.select(parse_datetime(pl.lit(text), formats, timezone)).to_series()
    hits = [
        sample.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True).is_not_null().sum()
        for fmt in candidates
    ]
    primary = candidates[max(range(len(candidates)), key=hits.__getitem__)]
    out = text.str.strptime(pl.Datetime("us"), primary, strict=False, exact=True)
    failed = out.is_null() & text.is_not_null()
    if failed.any():
        retry = pl.select(parse_datetime(pl.lit(text.filter(failed)), formats, timezone))
        out = out.scatter(failed.arg_true(), retry.to_series())
    return out.alias(text.name)


def parse_clock(text: pl.Expr, kind: str) -> tuple[pl.Expr, pl.Expr]:
    """Return (minutes after midnight, invalid flag) for a clock-time column.

    ``kind`` is ``hhmm`` (LAPD ``TIME OCC``: 615 is 06:15), ``hour`` (0..23) or
    ``hh:mm``. A value is invalid when present but unparseable or out of range
    (negative, 2400, minute 60 or more).
    """
    if kind == "hh:mm":
        parts = text.str.split_exact(":", 1)
        hours = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        minutes = parts.struct.field("field_1").cast(pl.Int64, strict=False)
    else:
        number = text.cast(pl.Int64, strict=False)
        hours = number // 100 if kind == "hhmm" else number
        minutes = number % 100 if kind == "hhmm" else pl.lit(0, pl.Int64)
        hours = pl.when(number >= 0).then(hours).otherwise(None)
    valid = hours.is_between(0, 23) & minutes.is_between(0, 59)
    total = pl.when(valid).then(hours * 60 + minutes).otherwise(None)
    return total, text.is_not_null() & ~valid.fill_null(False)


def parse_float(text: pl.Expr) -> pl.Expr:
    """Parse text as Float64; unparseable values become null (NaN stays NaN)."""
    return text.cast(pl.Float64, strict=False)
