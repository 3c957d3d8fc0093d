"""Tests of the synthetic LAPD incident generator."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from crimecast.config import GeneratorConfig
from crimecast.errors import GenerationError
from crimecast.synthetic.generate import LAPD_COLUMNS, _daily_rates, generate_incidents
from crimecast.synthetic.tables import load_tables

START = dt.date(2022, 1, 1)
END = dt.date(2022, 2, 28)
DATE_FMT = "%m/%d/%Y %I:%M:%S %p"
EXPECTED_COLUMNS = [
    "DR_NO", "Date Rptd", "DATE OCC", "TIME OCC", "AREA", "AREA NAME", "Rpt Dist No",
    "Part 1-2", "Crm Cd", "Crm Cd Desc", "Mocodes", "Vict Age", "Vict Sex", "Vict Descent",
    "Premis Cd", "Premis Desc", "Weapon Used Cd", "Weapon Desc", "Status", "Status Desc",
    "Crm Cd 1", "Crm Cd 2", "Crm Cd 3", "Crm Cd 4", "LOCATION", "Cross Street", "LAT", "LON",
]  # fmt: skip
EMPTY = (
    "Mocodes", "Vict Age", "Vict Sex", "Vict Descent", "Weapon Used Cd", "Weapon Desc",
    "Crm Cd 2", "Crm Cd 3", "Crm Cd 4", "LOCATION", "Cross Street",
)  # fmt: skip
# Generous box around the City of Los Angeles.
LAT_RANGE = (33.65, 34.40)
LON_RANGE = (-118.75, -118.10)


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return generate_incidents(START, END, seed=11)


def _events(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col("DATE OCC").str.strptime(pl.Date, DATE_FMT).alias("occ"),
        pl.col("Date Rptd").str.strptime(pl.Date, DATE_FMT).alias("rptd"),
        pl.col("TIME OCC").cast(pl.Int32).alias("time"),
        pl.col("LAT").cast(pl.Float64).alias("lat"),
        pl.col("LON").cast(pl.Float64).alias("lon"),
    )


def test_same_seed_gives_identical_frame(frame: pl.DataFrame) -> None:
    again = generate_incidents(START, END, seed=11)
    assert again.equals(frame)


def test_different_seeds_differ(frame: pl.DataFrame) -> None:
    other = generate_incidents(START, END, seed=12)
    assert not other.equals(frame)
    assert abs(other.height - frame.height) < 0.05 * frame.height


def test_columns_are_lapd_schema_strings(frame: pl.DataFrame) -> None:
    assert frame.columns == EXPECTED_COLUMNS == list(LAPD_COLUMNS)
    assert all(dtype == pl.Utf8 for dtype in frame.schema.values())


def test_formats_match_the_standard_export(frame: pl.DataFrame) -> None:
    checks = {
        "DR_NO": r"^\d{9}$",
        "DATE OCC": r"^(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/\d{4} 12:00:00 AM$",
        "Date Rptd": r"^(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/\d{4} 12:00:00 AM$",
        "TIME OCC": r"^([01]\d|2[0-3])[0-5]\d$",
        "AREA": r"^\d{2}$",
        "Rpt Dist No": r"^\d{4}$",
        "Part 1-2": r"^[12]$",
        "Crm Cd": r"^\d{3}$",
        "LAT": r"^(0|\d{2}(\.\d{1,4})?)$",
        "LON": r"^(0|-\d{3}(\.\d{1,4})?)$",
    }
    for column, pattern in checks.items():
        bad = frame.filter(~pl.col(column).str.contains(pattern))
        assert bad.height == 0, (column, bad[column].head(3).to_list())
    assert frame.filter(pl.col("Crm Cd 1") != pl.col("Crm Cd")).height == 0
    assert frame["Crm Cd Desc"].null_count() == 0
    assert frame["Premis Cd"].null_count() == 0
    assert set(frame["Status"].unique()) == {"IC"}
    for column in EMPTY:
        assert frame[column].null_count() == frame.height, column


def test_area_codes_names_and_dr_numbers_agree(frame: pl.DataFrame) -> None:
    areas = frame["AREA"].cast(pl.Int32)
    assert areas.min() == 1 and areas.max() == 21
    assert set(areas.unique().to_list()) == set(range(1, 22))
    assert frame.filter(pl.col("DR_NO").str.slice(2, 2) != pl.col("AREA")).height == 0
    assert frame.filter(pl.col("Rpt Dist No").str.slice(0, 2) != pl.col("AREA")).height == 0
    rpt_year = frame["Date Rptd"].str.slice(8, 2)
    assert (frame["DR_NO"].str.slice(0, 2) == rpt_year).all()
    names = frame.group_by("AREA").agg(pl.col("AREA NAME").n_unique().alias("n"))
    assert names["n"].max() == 1


def test_volume_follows_real_monthly_totals(frame: pl.DataFrame) -> None:
    real = 18_567 + 17_750  # LAPD January + February 2022
    assert abs(frame.height - real) / real < 0.05


def test_reporting_delay_quantiles(frame: pl.DataFrame) -> None:
    events = _events(frame)
    delay = (events["rptd"] - events["occ"]).dt.total_days()
    assert delay.min() == 0
    assert delay.quantile(0.5) == 0
    assert abs(delay.quantile(0.9) - 4) <= 1  # type: ignore[operator]
    assert abs(delay.quantile(0.99) - 15) <= 1  # type: ignore[operator]


def test_zero_coordinate_share(frame: pl.DataFrame) -> None:
    zero_lat = frame["LAT"] == "0"
    assert (zero_lat == (frame["LON"] == "0")).all()
    assert 0.001 <= zero_lat.mean() <= 0.0035  # type: ignore[operator]


def test_round_times_are_over_represented(frame: pl.DataFrame) -> None:
    minutes = frame["TIME OCC"].str.slice(2, 2)
    assert 0.25 <= (minutes == "00").mean() <= 0.5  # type: ignore[operator]
    per_time = frame["TIME OCC"].value_counts().sort("count", descending=True)
    assert per_time["TIME OCC"][0] == "1200"


def test_duplicates_present_when_configured() -> None:
    dup = generate_incidents(START, dt.date(2022, 1, 31), 5, GeneratorConfig(duplicate_share=0.01))
    n_dup = dup.height - dup.n_unique()
    assert 0.005 * dup.height < n_dup < 0.015 * dup.height
    none = generate_incidents(START, dt.date(2022, 1, 31), 5, GeneratorConfig(duplicate_share=0.0))
    assert none["DR_NO"].n_unique() == none.height


def _near_repeat_ratio(frame: pl.DataFrame, radius_m: float, hours: float) -> float:
    """Pairs within radius and time window, observed / with shuffled times."""
    events = _events(frame).filter(pl.col("lat") != 0)
    t = events["occ"].cast(pl.Int32).to_numpy() * 24.0 + events["time"].to_numpy() // 100
    t += (events["time"].to_numpy() % 100) / 60
    xy = np.column_stack([events["lat"].to_numpy() * 111_320, events["lon"].to_numpy() * 92_200])
    pairs = cKDTree(xy).query_pairs(radius_m, output_type="ndarray")
    shuffled = np.random.default_rng(0).permutation(t)
    observed = np.sum(np.abs(t[pairs[:, 0]] - t[pairs[:, 1]]) <= hours)
    control = np.sum(np.abs(shuffled[pairs[:, 0]] - shuffled[pairs[:, 1]]) <= hours)
    return float(observed / control)


def test_recent_history_is_informative() -> None:
    january = dt.date(2022, 1, 31)
    clustered = generate_incidents(START, january, 3)
    flat = generate_incidents(START, january, 3, GeneratorConfig(branching_ratio=0.0))
    assert _near_repeat_ratio(clustered, 200, 24) > 1.3
    assert _near_repeat_ratio(clustered, 400, 48) > 1.08
    assert _near_repeat_ratio(flat, 200, 24) < 1.08


def test_daily_rates_keep_monthly_totals_and_favour_warm_days() -> None:
    tables = load_tables()
    first = (dt.date(2022, 1, 1) - dt.date(1970, 1, 1)).days
    last = (dt.date(2022, 12, 31) - dt.date(1970, 1, 1)).days
    cfg = GeneratorConfig(temperature_effect_per_degc=0.02)
    days, rates = _daily_rates(tables, cfg, first, last)
    month = days.astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12
    totals = np.bincount(month, weights=rates.sum(axis=1))
    np.testing.assert_allclose(totals, tables.monthly[tables.monthly_years == 2022][0])
    _, flat = _daily_rates(tables, GeneratorConfig(temperature_effect_per_degc=0.0), first, last)
    # Within a month, log(rate with effect / rate without) = 0.02 * (temp - month mean) + c.
    log_ratio = np.log(rates.sum(axis=1) / flat.sum(axis=1))
    temp = tables.temp_c[np.searchsorted(tables.temp_day, days)]

    def demeaned(x: np.ndarray) -> np.ndarray:
        return x - (np.bincount(month, weights=x) / np.bincount(month))[month]

    np.testing.assert_allclose(demeaned(log_ratio), 0.02 * demeaned(temp), atol=1e-9)


def test_dates_outside_the_real_tables_fall_back() -> None:
    future = generate_incidents(dt.date(2026, 3, 1), dt.date(2026, 3, 7), 1)
    past = generate_incidents(dt.date(2005, 3, 1), dt.date(2005, 3, 7), 1)
    for part in (future, past):
        assert 2_000 < part.height < 6_000
    assert future["DR_NO"].str.slice(0, 2).is_in(["26", "27"]).all()


def test_volume_scale_scales_rows() -> None:
    small = generate_incidents(START, dt.date(2022, 1, 31), 2, GeneratorConfig(volume_scale=0.1))
    assert 1_500 < small.height < 2_300


@settings(max_examples=15, deadline=None)
@given(
    start=st.dates(min_value=dt.date(2012, 1, 1), max_value=dt.date(2026, 12, 1)),
    days=st.integers(min_value=0, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_reports_follow_occurrence_and_points_stay_in_los_angeles(
    start: dt.date, days: int, seed: int
) -> None:
    end = start + dt.timedelta(days=days)
    events = _events(generate_incidents(start, end, seed, GeneratorConfig(volume_scale=0.2)))
    assert (events["rptd"] >= events["occ"]).all()
    assert events["occ"].min() >= start and events["occ"].max() <= end  # type: ignore[operator]
    located = events.filter((pl.col("lat") != 0) | (pl.col("lon") != 0))
    assert located["lat"].is_between(*LAT_RANGE).all()
    assert located["lon"].is_between(*LON_RANGE).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"start": dt.date(2024, 1, 1), "end": dt.date(2023, 1, 1), "seed": 1},
            "end must be on or after start; got start=2024-01-01, end=2023-01-01. "
            "Pass --end after --start.",
        ),
        (
            {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 1, 2), "seed": -1},
            "seed must be a non-negative integer; got -1. Pass --seed 0 or a larger whole number.",
        ),
        (
            {"start": "2024-01-01", "end": dt.date(2024, 1, 2), "seed": 1},
            "start must be a datetime.date; got '2024-01-01' (str). Pass --start as YYYY-MM-DD.",
        ),
        (
            {"start": dt.date(1990, 1, 1), "end": dt.date(2050, 1, 1), "seed": 1},
            "the date range must span at most 18300 days (50 years); got 21915 days from "
            "1990-01-01 to 2050-01-01. Pass a shorter --start/--end range.",
        ),
    ],
)
def test_invalid_arguments_raise_generation_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(GenerationError) as info:
        generate_incidents(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "branching_ratio",
            -0.1,
            "branching_ratio must be in the range [0, 0.9]; got -0.1. "
            "Set branching_ratio in the generator config to a number from 0 to 0.9.",
        ),
        (
            "volume_scale",
            0.0,
            "volume_scale must be in the range (0, 5]; got 0.0. Set volume_scale in the "
            "generator config to a number greater than 0 and at most 5.",
        ),
        (
            "offspring_mean_delay_days",
            0.0,
            "offspring_mean_delay_days must be greater than 0; got 0.0. Set "
            "offspring_mean_delay_days in the generator config to a number greater than 0.",
        ),
        (
            "delay_max_days",
            0,
            "delay_max_days must be at least 1; got 0. "
            "Set delay_max_days in the generator config to 1 or more.",
        ),
    ],
)
def test_invalid_config_raises_generation_error(field: str, value: float, message: str) -> None:
    with pytest.raises(GenerationError) as info:
        GeneratorConfig(**{field: value})  # type: ignore[arg-type]
    assert str(info.value) == message


def test_config_is_frozen_and_rejects_unknown_fields() -> None:
    cfg = GeneratorConfig()
    with pytest.raises(ValueError, match="frozen"):
        cfg.branching_ratio = 0.5
    with pytest.raises(ValueError, match="extra"):
        GeneratorConfig(branching=0.1)  # type: ignore[call-arg]
