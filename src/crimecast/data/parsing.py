"""Polars expressions shared by the source parsers (dates, clock times, numbers)."""

from __future__ import annotations

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
    text: pl.Series, formats: tuple[str, ...] | None = None, timezone: str | None = None
) -> pl.Series:
    """Parse a text Series like :func:`parse_datetime`, fast for single-format files.

    The format that parses most of a sample is applied to every value; only the
    values it fails on go through the full list of formats.
    """
    candidates = formats or DATETIME_FORMATS
    sample = text.drop_nulls().head(2000)
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
