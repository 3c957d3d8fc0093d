"""Deterministic, realistic synthetic Los Angeles incidents in LAPD's export schema.

Background events follow the real citywide monthly totals, per-area yearly
shares, weekday and temperature effects, per-area hour-of-day profiles, crime
mixes and real incident locations (all from the shipped calibration tables).
A Hawkes-like branching process adds near-repeat offspring close in space and
time; the background is scaled down so that expected totals are unchanged.
Export quirks (reporting delay, rounded times, zero coordinates, duplicates)
are added last. Everything is vectorised and seeded with
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

from crimecast.config import GeneratorConfig
from crimecast.data.areas import LAPD_AREAS
from crimecast.errors import GenerationError
from crimecast.synthetic.tables import EPOCH, N_AREAS, GeneratorTables, load_tables

logger = logging.getLogger(__name__)

LAPD_COLUMNS: tuple[str, ...] = (
    "DR_NO", "Date Rptd", "DATE OCC", "TIME OCC", "AREA", "AREA NAME", "Rpt Dist No",
    "Part 1-2", "Crm Cd", "Crm Cd Desc", "Mocodes", "Vict Age", "Vict Sex", "Vict Descent",
    "Premis Cd", "Premis Desc", "Weapon Used Cd", "Weapon Desc", "Status", "Status Desc",
    "Crm Cd 1", "Crm Cd 2", "Crm Cd 3", "Crm Cd 4", "LOCATION", "Cross Street", "LAT", "LON",
)  # fmt: skip
EMPTY_COLUMNS = (
    "Mocodes", "Vict Age", "Vict Sex", "Vict Descent", "Weapon Used Cd", "Weapon Desc",
    "Crm Cd 2", "Crm Cd 3", "Crm Cd 4", "LOCATION", "Cross Street",
)  # fmt: skip
MAX_RANGE_DAYS = 50 * 366
METRES_PER_DEG_LAT = 111_320.0
COS_LAT = float(np.cos(np.radians(34.05)))  # longitude scale at Los Angeles
DATE_FORMAT = "%m/%d/%Y 12:00:00 AM"

Events = dict[str, np.ndarray]


def _validate(start: object, end: object, seed: object, config: object) -> None:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, dt.date):
            raise GenerationError(
                f"{name} must be a datetime.date; got {value!r} ({type(value).__name__}). "
                f"Pass --{name} as YYYY-MM-DD."
            )
    assert isinstance(start, dt.date) and isinstance(end, dt.date)
    if end < start:
        raise GenerationError(
            f"end must be on or after start; got start={start.isoformat()}, "
            f"end={end.isoformat()}. Pass --end after --start."
        )
    if (end - start).days > MAX_RANGE_DAYS:
        raise GenerationError(
            f"the date range must span at most {MAX_RANGE_DAYS} days (50 years); got "
            f"{(end - start).days} days from {start.isoformat()} to {end.isoformat()}. "
            "Pass a shorter --start/--end range."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GenerationError(
            f"seed must be a non-negative integer; got {seed!r}. Pass --seed 0 or a larger "
            "whole number."
        )
    if not isinstance(config, GeneratorConfig):
        raise GenerationError(
            f"config must be a GeneratorConfig; got {type(config).__name__}. "
            "Build one with GeneratorConfig(**values) or pass None for the defaults."
        )


def _day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def _sample(rng: np.random.Generator, cum: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Draw one category per row from row ``group`` of the cumulative table ``cum``.

    Offsetting row g of ``cum`` by g makes one sorted array, so a single
    ``searchsorted`` samples every row from its own distribution.
    """
    k = cum.shape[1]
    flat = (cum + np.arange(cum.shape[0])[:, None]).ravel()
    idx = np.searchsorted(flat, group + rng.random(group.size), side="right") - group * k
    return np.clip(idx, 0, k - 1)


def _calendar(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Year, month (1-12), day of month and weekday (Monday = 0) of day numbers."""
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return months // 12 + 1970, months % 12 + 1, days - first + 1, (days + 3) % 7


def _daily_rates(
    tables: GeneratorTables, cfg: GeneratorConfig, first: int, last: int
) -> tuple[np.ndarray, np.ndarray]:
    """Expected events per day and area for day numbers ``first..last``.

    Each calendar month's total equals the real (or fallback) monthly total; the
    weekday, first-of-month and temperature effects only redistribute it.
    """
    m0 = np.datetime64(first, "D").astype("datetime64[M]")
    m1 = np.datetime64(last, "D").astype("datetime64[M]")
    days = np.arange(m0.astype("datetime64[D]"), (m1 + 1).astype("datetime64[D]")).astype(np.int64)
    year, month, dom, dow = _calendar(days)
    month_id = (year - year[0]) * 12 + month - month[0]
    weight = tables.dow_factor[dow].copy()
    weight *= np.where(
        dom == 1, np.where(month == 1, cfg.new_year_factor, cfg.first_of_month_factor), 1.0
    )
    pos = np.clip(np.searchsorted(tables.temp_day, days), 0, tables.temp_day.size - 1)
    known = tables.temp_day[pos] == days
    temp = np.where(known, tables.temp_c[pos], 0.0)
    n_known = np.bincount(month_id, weights=known.astype(float))
    month_mean = np.bincount(month_id, weights=temp) / np.maximum(n_known, 1.0)
    weight *= np.exp(
        cfg.temperature_effect_per_degc * np.where(known, temp - month_mean[month_id], 0.0)
    )
    per_day = (
        tables.monthly_target(year, month)
        * weight
        / np.bincount(month_id, weights=weight)[month_id]
    )
    rates = per_day[:, None] * tables.shares_for(year) * cfg.volume_scale
    keep = (days >= first) & (days <= last)
    return days[keep], rates[keep]


def _pick_points(
    rng: np.random.Generator,
    tables: GeneratorTables,
    cfg: GeneratorConfig,
    area: np.ndarray,
    hour: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Real incident locations of the event's area (and hour), plus Gaussian jitter."""
    start = tables.area_start[area]
    count = tables.area_count[area]
    if cfg.hour_weighted_points:
        cell_count = tables.cell_count[area, hour]
        use_cell = cell_count > 0
        start = np.where(use_cell, tables.cell_start[area, hour], start)
        count = np.where(use_cell, cell_count, count)
    idx = start + (rng.random(area.size) * count).astype(np.int64)
    return _jitter(rng, tables.point_lat[idx], tables.point_lon[idx], cfg.point_jitter_m)


def _jitter(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, sd_m: float
) -> tuple[np.ndarray, np.ndarray]:
    offsets = rng.normal(0.0, sd_m, size=(2, lat.size))
    return (
        lat + offsets[0] / METRES_PER_DEG_LAT,
        lon + offsets[1] / (METRES_PER_DEG_LAT * COS_LAT),
    )


def _with_minutes(
    rng: np.random.Generator, tables: GeneratorTables, day: np.ndarray, hour: np.ndarray
) -> np.ndarray:
    """Event time in days; minutes follow the real per-hour minute distribution."""
    minute = _sample(rng, tables.minute_cum, hour)
    return day + (hour * 60 + minute) / 1440.0


def _background(
    rng: np.random.Generator, tables: GeneratorTables, cfg: GeneratorConfig, first: int, last: int
) -> Events:
    days, rates = _daily_rates(tables, cfg, first, last)
    eta, gens = cfg.branching_ratio, cfg.max_generations
    # Offspring add eta + eta^2 + ... + eta^gens per background event.
    background_scale = 1.0 / sum(eta**g for g in range(gens + 1))
    counts = rng.poisson(rates * background_scale).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    day = days[cell // N_AREAS]
    area = cell % N_AREAS
    year, _, _, dow = _calendar(day)
    hour_cum = tables.area_hour[:, None, :] * tables.dow_hour_ratio[None, :, :]
    hour = _sample(rng, _cum(hour_cum.reshape(N_AREAS * 7, 24)), area * 7 + dow)
    t = _with_minutes(rng, tables, day, hour)
    code = _sample_codes(rng, tables, year, area)
    lat, lon = _pick_points(rng, tables, cfg, area, hour)
    return {"t": t, "area": area, "code": code, "lat": lat, "lon": lon}


def _cum(weights: np.ndarray) -> np.ndarray:
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    return cum


def _sample_codes(
    rng: np.random.Generator, tables: GeneratorTables, year: np.ndarray, area: np.ndarray
) -> np.ndarray:
    """Index into ``tables.mix_codes`` drawn from the area's crime mix of that year."""
    mix = tables.mix_cum.reshape(-1, tables.mix_codes.size)
    return _sample(rng, mix, tables.mix_index(year) * N_AREAS + area)


def _near_repeats(
    rng: np.random.Generator,
    tables: GeneratorTables,
    cfg: GeneratorConfig,
    background: Events,
    last: int,
) -> Events:
    """Add ``max_generations`` generations of near-repeat offspring (same area)."""
    parts = [background]
    parents = background
    for _ in range(cfg.max_generations):
        n_children = rng.poisson(cfg.branching_ratio, size=parents["t"].size)
        src = np.repeat(np.arange(n_children.size), n_children)
        t = parents["t"][src] + rng.exponential(cfg.offspring_mean_delay_days, size=src.size)
        inside = t < last + 1
        src, t = src[inside], t[inside]
        if src.size == 0:
            break
        day = np.floor(t).astype(np.int64)
        hour = np.minimum(((t - day) * 24).astype(np.int64), 23)
        area = parents["area"][src]
        fresh = _sample_codes(rng, tables, _calendar(day)[0], area)
        same = rng.random(src.size) < cfg.offspring_same_crime_prob
        lat, lon = _jitter(rng, parents["lat"][src], parents["lon"][src], cfg.offspring_distance_m)
        children = {
            "t": _with_minutes(rng, tables, day, hour),
            "area": area,
            "code": np.where(same, parents["code"][src], fresh),
            "lat": lat,
            "lon": lon,
        }
        parts.append(children)
        parents = children
    logger.debug("near-repeat generations: %s", [p["t"].size for p in parts])
    return {key: np.concatenate([p[key] for p in parts]) for key in background}


def _report_delay(rng: np.random.Generator, cfg: GeneratorConfig, n: int) -> np.ndarray:
    """Whole days from occurrence to report: a mass at 0 and a Weibull tail."""
    tail = 1 + np.floor(cfg.delay_tail_scale_days * rng.weibull(cfg.delay_tail_shape, size=n))
    delay = np.where(rng.random(n) < cfg.delay_zero_prob, 0, tail)
    return np.minimum(delay, cfg.delay_max_days).astype(np.int64)


def _districts(
    tables: GeneratorTables, area: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    """Nearest real reporting-district centroid within each event's area."""
    rd = np.zeros(area.size, dtype=np.int64)
    for a in range(N_AREAS):
        rows = np.flatnonzero(area == a)
        own = np.flatnonzero(tables.district_area == a + 1)
        if rows.size == 0 or own.size == 0:
            continue
        tree = cKDTree(
            np.column_stack([tables.district_lat[own], tables.district_lon[own] * COS_LAT])
        )
        _, nearest = tree.query(np.column_stack([lat[rows], lon[rows] * COS_LAT]))
        rd[rows] = tables.district_rd[own[nearest]]
    return rd


def _dr_numbers(
    area: np.ndarray, reported: np.ndarray, t: np.ndarray, volume_scale: float
) -> np.ndarray:
    """DR_NO: report year (2 digits), area (2 digits), sequence within area and year."""
    rpt_year = _calendar(reported)[0]
    order = np.lexsort((t, reported, area, rpt_year))
    group = (rpt_year * 100 + area)[order]
    pos = np.arange(group.size)
    new_group = np.r_[True, group[1:] != group[:-1]]
    seq = np.empty(group.size, dtype=np.int64)
    seq[order] = pos - np.maximum.accumulate(np.where(new_group, pos, 0)) + 1
    if seq.size and seq.max() > 99_999:
        raise GenerationError(
            f"volume_scale must keep each area below 100000 reports a year (the DR_NO "
            f"sequence has 5 digits); got volume_scale={volume_scale:g}, which gives "
            f"{seq.max()}. Lower volume_scale in the generator config."
        )
    return (rpt_year % 100) * 10_000_000 + (area + 1) * 100_000 + seq


def _coord_strings(values: np.ndarray) -> pl.Series:
    # LAPD writes the shortest form: 34.07, 34 and 0 rather than 34.0700 / 0.0.
    return pl.Series(np.round(values, 4) + 0.0).cast(pl.Utf8).str.replace(r"\.0$", "")


def _date_strings(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32)).cast(pl.Date).dt.strftime(DATE_FORMAT)


def _padded(values: np.ndarray, width: int) -> pl.Series:
    return pl.Series(values).cast(pl.Utf8).str.zfill(width)


def _lookup(labels: Sequence[object], idx: np.ndarray) -> pl.Series:
    return pl.Series([str(v) for v in labels]).gather(pl.Series(idx))


def _premise_rows(tables: GeneratorTables, codes: np.ndarray) -> np.ndarray:
    """Row of ``premise_cum`` for each crime code; codes without one use the pooled row."""
    known = tables.premise_codes
    pos = np.minimum(np.searchsorted(known, codes), known.size - 1)
    return np.where(known[pos] == codes, pos, known.size)


def _to_frame(
    rng: np.random.Generator, tables: GeneratorTables, cfg: GeneratorConfig, ev: Events
) -> pl.DataFrame:
    n = ev["t"].size
    occurred = np.floor(ev["t"]).astype(np.int64)
    minutes = np.rint((ev["t"] - occurred) * 1440).astype(np.int64)
    reported = occurred + _report_delay(rng, cfg, n)
    rd = _districts(tables, ev["area"], ev["lat"], ev["lon"])
    zero = rng.random(n) < cfg.zero_coordinate_share
    lat = np.where(zero, 0.0, ev["lat"])
    lon = np.where(zero, 0.0, ev["lon"])
    dr = _dr_numbers(ev["area"], reported, ev["t"], cfg.volume_scale)
    duplicated = np.flatnonzero(rng.random(n) < cfg.duplicate_share)
    rows = np.sort(np.concatenate([np.arange(n), duplicated]))
    area = ev["area"][rows]
    code = ev["code"][rows]
    codes = [int(c) for c in tables.mix_codes]
    columns: dict[str, pl.Series] = {
        "DR_NO": _padded(dr[rows], 9),
        "Date Rptd": _date_strings(reported[rows]),
        "DATE OCC": _date_strings(occurred[rows]),
        "TIME OCC": _padded((minutes // 60 * 100 + minutes % 60)[rows], 4),
        "AREA": _padded(area + 1, 2),
        "AREA NAME": _lookup(list(LAPD_AREAS.values()), area),
        "Rpt Dist No": _padded(rd[rows], 4),
        "Part 1-2": _lookup([tables.code_part[c] for c in codes], code),
        "Crm Cd": _lookup(codes, code),
        "Crm Cd Desc": _lookup([tables.code_desc[c] for c in codes], code),
        "Crm Cd 1": _lookup(codes, code),
        "LAT": _coord_strings(lat[rows]),
        "LON": _coord_strings(lon[rows]),
    }
    if cfg.include_premises:
        premise_row = _premise_rows(tables, tables.mix_codes[ev["code"]])
        premise = _sample(rng, tables.premise_cum, premise_row)[rows]
        columns["Premis Cd"] = _lookup(list(tables.premise_cd), premise)
        columns["Premis Desc"] = _lookup(tables.premise_desc, premise)
    empty = [c for c in (*EMPTY_COLUMNS, "Premis Cd", "Premis Desc") if c not in columns]
    return (
        pl.DataFrame(columns)
        .with_columns(
            pl.lit("IC").alias("Status"),
            pl.lit("Invest Cont").alias("Status Desc"),
            *(pl.lit(None, pl.Utf8).alias(c) for c in empty),
        )
        .select(LAPD_COLUMNS)
    )


def generate_incidents(
    start: dt.date, end: dt.date, seed: int, config: GeneratorConfig | None = None
) -> pl.DataFrame:
    """Generate synthetic LAPD incidents that occurred from ``start`` to ``end`` inclusive.

    Returns LAPD's 28-column open-data schema (:data:`LAPD_COLUMNS`), every
    column a string formatted as the standard export writes it; empty fields are
    null. The same ``seed`` and ``config`` give an identical frame.

    Raises:
        GenerationError: an argument is invalid, or the volume cannot be numbered.
    """
    cfg = GeneratorConfig() if config is None else config
    start, end = (d.date() if isinstance(d, dt.datetime) else d for d in (start, end))
    _validate(start, end, seed, cfg)
    tables = load_tables()
    rng = np.random.default_rng(int(seed))
    first, last = _day_number(start), _day_number(end)
    events = _background(rng, tables, cfg, first - cfg.burn_in_days, last)
    events = _near_repeats(rng, tables, cfg, events, last)
    in_range = events["t"] >= first
    order = np.argsort(events["t"][in_range], kind="stable")
    events = {key: value[in_range][order] for key, value in events.items()}
    frame = _to_frame(rng, tables, cfg, events)
    logger.info("generated %d incidents from %s to %s (seed %d)", frame.height, start, end, seed)
    return frame
