"""Compare an LAPD-schema incident frame with the real LAPD aggregates.

The real side comes from the calibration tables shipped in
``crimecast/resources/generator/`` (never from ``shared/data``). Months are
compared only when the frame's date range covers the whole calendar month and
the real table has that month; partial months at either end are excluded (and
listed in ``months_excluded``), not scaled.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from crimecast.synthetic.tables import N_AREAS, GeneratorTables, load_tables

logger = logging.getLogger(__name__)

_DATE_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M")
# Years with fewer rows than this get a share correlation but are not judged on it.
MIN_ROWS_FOR_YEAR_CHECK = 5_000
# Divisions with fewer rows than this are left out of the per-division hour check.
MIN_ROWS_FOR_DIVISION_HOUR = 500


Row = tuple[str, str, str, str]


class CalibrationThresholds(BaseModel):
    """Pass/fail limits of a calibration report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_share_corr: float = 0.95
    min_hour_corr: float = 0.95
    max_month_rel_error: float = 0.10
    delay_targets_days: tuple[float, float, float] = (0.0, 4.0, 15.0)  # p50, p90, p99
    delay_tolerance_days: float = 1.0


class MonthComparison(BaseModel):
    """Generated versus real incidents of one calendar month."""

    model_config = ConfigDict(frozen=True)

    period: str
    generated: int
    real: int
    rel_error: float


class CalibrationReport(BaseModel):
    """How closely an incident frame matches the real LAPD aggregates."""

    model_config = ConfigDict(frozen=True)

    rows: int
    start: dt.date | None
    end: dt.date | None
    share_corr_overall: float | None
    share_corr_by_year: dict[int, float]
    hour_corr_overall: float | None
    hour_corr_division_mean: float | None
    hour_corr_division_min: float | None
    months: list[MonthComparison]
    months_excluded: list[str]
    max_month_rel_error: float | None
    delay_p50: float | None
    delay_p90: float | None
    delay_p99: float | None
    zero_coordinate_share: float
    duplicate_rows: int
    thresholds: CalibrationThresholds
    passed: bool
    failures: list[str]

    def to_rows(self) -> list[Row]:
        """Return ``(metric, value, target, status)`` rows for printing as a table."""
        t = self.thresholds

        def fmt(value: float | None, spec: str = ".4f") -> str:
            return "n/a" if value is None else format(value, spec)

        def judged(name: str, value: float | None, target: str, ok: bool | None) -> Row:
            status = "-" if ok is None or value is None else ("ok" if ok else "FAIL")
            return (name, fmt(value), target, status)

        def at_least(name: str, value: float | None, limit: float) -> Row:
            return judged(name, value, f">= {limit}", value is not None and value >= limit)

        rows: list[Row] = [
            ("rows", str(self.rows), "", "-"),
            ("date range", f"{self.start} .. {self.end}", "", "-"),
            at_least("area share corr (overall)", self.share_corr_overall, t.min_share_corr),
        ]
        rows += [
            at_least(f"area share corr {year}", corr, t.min_share_corr)
            for year, corr in sorted(self.share_corr_by_year.items())
        ]
        worst = self.max_month_rel_error
        rows += [
            at_least("hour corr (citywide)", self.hour_corr_overall, t.min_hour_corr),
            at_least("hour corr (division mean)", self.hour_corr_division_mean, t.min_hour_corr),
            ("hour corr (division min)", fmt(self.hour_corr_division_min), "", "-"),
            ("months compared", str(len(self.months)), "", "-"),
            judged(
                "max month |rel error|",
                worst,
                f"<= {t.max_month_rel_error}",
                worst is not None and worst <= t.max_month_rel_error,
            ),
        ]
        delays = (self.delay_p50, self.delay_p90, self.delay_p99)
        for q, value, target in zip((50, 90, 99), delays, t.delay_targets_days, strict=True):
            ok = value is not None and abs(value - target) <= t.delay_tolerance_days
            name, _, goal, status = judged(
                f"delay p{q} (days)", value, f"{target:g} ± {t.delay_tolerance_days:g}", ok
            )
            rows.append((name, fmt(value, ".1f"), goal, status))
        rows += [
            ("zero-coordinate share", fmt(self.zero_coordinate_share), "", "-"),
            ("duplicate rows", str(self.duplicate_rows), "", "-"),
            ("passed", str(self.passed), "", "ok" if self.passed else "FAIL"),
        ]
        return rows


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _parse(raw: pl.DataFrame) -> pl.DataFrame:
    def date(col: str) -> pl.Expr:
        return pl.coalesce(
            [pl.col(col).str.strptime(pl.Date, f, strict=False) for f in _DATE_FORMATS]
        )

    return raw.select(
        date("DATE OCC").alias("occ"),
        date("Date Rptd").alias("rptd"),
        (pl.col("TIME OCC").cast(pl.Int32, strict=False) // 100).alias("hour"),
        pl.col("AREA").cast(pl.Int32, strict=False).alias("area"),
        pl.col("LAT").cast(pl.Float64, strict=False).alias("lat"),
        pl.col("LON").cast(pl.Float64, strict=False).alias("lon"),
    )


def _area_shares(
    events: pl.DataFrame, tables: GeneratorTables
) -> tuple[float | None, dict[int, float], list[str]]:
    counts = (
        events.filter(pl.col("area").is_between(1, N_AREAS))
        .group_by(pl.col("occ").dt.year().alias("year"), "area")
        .agg(pl.len().alias("n"))
    )
    failures: list[str] = []
    by_year: dict[int, float] = {}
    generated = np.zeros(N_AREAS)
    expected = np.zeros(N_AREAS)
    for year in sorted(counts["year"].unique().to_list()):
        if year not in tables.share_years:
            continue
        part = counts.filter(pl.col("year") == year)
        gen = np.zeros(N_AREAS)
        gen[part["area"].to_numpy() - 1] = part["n"].to_numpy()
        real = tables.shares_for(np.array([year]))[0]
        generated += gen
        expected += gen.sum() * real
        corr = _corr(gen / gen.sum(), real)
        if corr is None:
            continue
        by_year[year] = corr
        if gen.sum() >= MIN_ROWS_FOR_YEAR_CHECK and corr < 0.95:
            failures.append(f"area share correlation {year} is {corr:.4f}")
    return _corr(generated, expected), by_year, failures


def _hour_corrs(
    events: pl.DataFrame, tables: GeneratorTables
) -> tuple[float | None, float | None, float | None]:
    hourly = events.filter(pl.col("hour").is_between(0, 23) & pl.col("area").is_between(1, N_AREAS))
    grid = np.zeros((N_AREAS, 24))
    counts = hourly.group_by("area", "hour").agg(pl.len().alias("n"))
    grid[counts["area"].to_numpy() - 1, counts["hour"].to_numpy()] = counts["n"].to_numpy()
    overall = _corr(grid.sum(axis=0), tables.hour_citywide)
    per_division = [
        c
        for a in range(N_AREAS)
        if grid[a].sum() >= MIN_ROWS_FOR_DIVISION_HOUR
        and (c := _corr(grid[a], tables.area_hour[a])) is not None
    ]
    if not per_division:
        return overall, None, None
    return overall, float(np.mean(per_division)), float(np.min(per_division))


def _months(
    events: pl.DataFrame, tables: GeneratorTables, start: dt.date, end: dt.date
) -> tuple[list[MonthComparison], list[str]]:
    counts = dict(
        events.group_by(pl.col("occ").dt.strftime("%Y-%m").alias("period"))
        .agg(pl.len())
        .iter_rows()
    )
    months: list[MonthComparison] = []
    excluded: list[str] = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        period = f"{year:04d}-{month:02d}"
        first = dt.date(year, month, 1)
        nxt = dt.date(year + month // 12, month % 12 + 1, 1)
        yi = np.flatnonzero(tables.monthly_years == year)
        if first < start or nxt - dt.timedelta(days=1) > end:
            excluded.append(f"{period} (partial month)")
        elif yi.size == 0:
            excluded.append(f"{period} (no real total)")
        else:
            real = int(tables.monthly[yi[0], month - 1])
            gen = int(counts.get(period, 0))
            months.append(
                MonthComparison(
                    period=period, generated=gen, real=real, rel_error=(gen - real) / real
                )
            )
        year, month = nxt.year, nxt.month
    return months, excluded


def build_calibration_report(
    raw: pl.DataFrame,
    start: dt.date | None = None,
    end: dt.date | None = None,
    thresholds: CalibrationThresholds | None = None,
) -> CalibrationReport:
    """Compare an LAPD-schema frame (string columns) with the real aggregates.

    ``start``/``end`` give the generated occurrence range; by default the first
    and last ``DATE OCC`` in the frame. Checks: area-share correlation (overall
    and each year with at least 5,000 rows), hour-of-day correlation (citywide
    and the mean over divisions), every whole month within the relative-error
    limit, and the reporting-delay quantiles p50/p90/p99 within the tolerance.
    """
    limits = thresholds or CalibrationThresholds()
    tables = load_tables()
    events = _parse(raw)
    dated = events.filter(pl.col("occ").is_not_null())
    start = start or dated["occ"].min()  # type: ignore[assignment]
    end = end or dated["occ"].max()  # type: ignore[assignment]
    failures: list[str] = []

    share_overall, share_by_year, share_failures = _area_shares(dated, tables)
    failures += share_failures
    if share_overall is not None and share_overall < limits.min_share_corr:
        failures.append(f"overall area share correlation is {share_overall:.4f}")
    hour_overall, hour_mean, hour_min = _hour_corrs(events, tables)
    for label, value in (("citywide", hour_overall), ("division mean", hour_mean)):
        if value is not None and value < limits.min_hour_corr:
            failures.append(f"hour-of-day correlation ({label}) is {value:.4f}")
    months, excluded = (
        ([], []) if start is None or end is None else _months(dated, tables, start, end)
    )
    worst = max((abs(m.rel_error) for m in months), default=None)
    failures += [
        f"month {m.period}: {m.generated} generated vs {m.real} real ({m.rel_error:+.1%})"
        for m in months
        if abs(m.rel_error) > limits.max_month_rel_error
    ]
    delays = dated.select((pl.col("rptd") - pl.col("occ")).dt.total_days()).to_series().drop_nulls()
    quantiles: list[float | None] = (
        [float(delays.quantile(q, interpolation="linear") or 0.0) for q in (0.5, 0.9, 0.99)]
        if delays.len()
        else [None, None, None]
    )
    for q, value, target in zip((50, 90, 99), quantiles, limits.delay_targets_days, strict=True):
        if value is not None and abs(value - target) > limits.delay_tolerance_days:
            failures.append(f"reporting delay p{q} is {value:g} days (target {target:g})")
    zero = events.select(((pl.col("lat") == 0) & (pl.col("lon") == 0)).mean()).item()
    report = CalibrationReport(
        rows=raw.height,
        start=start,
        end=end,
        share_corr_overall=share_overall,
        share_corr_by_year=share_by_year,
        hour_corr_overall=hour_overall,
        hour_corr_division_mean=hour_mean,
        hour_corr_division_min=hour_min,
        months=months,
        months_excluded=excluded,
        max_month_rel_error=worst,
        delay_p50=quantiles[0],
        delay_p90=quantiles[1],
        delay_p99=quantiles[2],
        zero_coordinate_share=float(zero or 0.0),
        duplicate_rows=raw.height - raw.n_unique(),
        thresholds=limits,
        passed=not failures,
        failures=failures,
    )
    logger.info("calibration report: passed=%s, %d failure(s)", report.passed, len(failures))
    return report
