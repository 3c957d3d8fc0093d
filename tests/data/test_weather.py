"""Tests for crimecast.data.weather: unit conversions, merging, gap reports, resources."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from crimecast.data import weather as w
from crimecast.errors import DataError, SchemaError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "weather"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data not available")


# --- unit conversions -------------------------------------------------------------------


def test_fahrenheit_to_celsius_exact_points() -> None:
    assert w.fahrenheit_to_celsius(32.0) == 0.0
    assert w.fahrenheit_to_celsius(212.0) == 100.0
    assert w.fahrenheit_to_celsius(-40.0) == -40.0
    assert w.fahrenheit_to_celsius(50.0) == 10.0
    assert w.fahrenheit_to_celsius(98.6) == pytest.approx(37.0, abs=1e-12)


def test_inches_mph_kelvin_exact_points() -> None:
    assert w.inches_to_mm(1.0) == 25.4
    assert w.inches_to_mm(0.5) == 12.7
    assert w.inches_to_mm(0.0) == 0.0
    assert w.mph_to_ms(1.0) == 0.44704
    assert w.mph_to_ms(10.0) == pytest.approx(4.4704, abs=1e-12)
    assert w.kelvin_to_celsius(273.15) == 0.0
    assert w.kelvin_to_celsius(373.15) == pytest.approx(100.0, abs=1e-12)
    assert w.kelvin_to_celsius(0.0) == -273.15


def test_conversions_work_on_arrays_series_and_exprs() -> None:
    arr = w.fahrenheit_to_celsius(np.array([32.0, 212.0]))
    np.testing.assert_array_equal(arr, [0.0, 100.0])
    ser = w.inches_to_mm(pl.Series([1.0, 2.0]))
    assert ser.to_list() == [25.4, 50.8]
    df = pl.DataFrame({"k": [273.15, 293.15]}).select(w.kelvin_to_celsius(pl.col("k")))
    assert df["k"].to_list() == pytest.approx([0.0, 20.0])


@given(st.floats(min_value=-200, max_value=200, allow_nan=False))
def test_fahrenheit_round_trip(c: float) -> None:
    assert w.fahrenheit_to_celsius(c * 9.0 / 5.0 + 32.0) == pytest.approx(c, abs=1e-9)


# --- normalisation and merging on tiny frames --------------------------------------------


def _ghcnd() -> pl.DataFrame:
    # LAX lacks TMAX on the 2nd, so that value falls back to USC.
    return pl.DataFrame(
        {
            "STATION": [w.STATION_LAX, w.STATION_LAX, w.STATION_USC, w.STATION_USC],
            "DATE": ["2019-01-01", "2019-01-02", "2019-01-01", "2019-01-02"],
            "AWND": ["10.0", "5.0", "1.0", "1.0"],
            "PRCP": ["1.00", "0.00", "2.00", "0.50"],
            "TAVG": ["99", "99", None, None],
            "TMAX": ["50", None, "60", "68"],
            "TMIN": ["32", "41", "40", "50"],
        }
    )


def test_normalise_ghcnd_prefers_primary_station_and_converts_units() -> None:
    out = w.normalise_ghcnd(_ghcnd())
    assert out.columns == list(w.DAILY_SCHEMA)
    assert out["date"].to_list() == [date(2019, 1, 1), date(2019, 1, 2)]
    assert out["tmax_c"].to_list() == [10.0, 20.0]  # 50 °F (LAX), then 68 °F (USC fallback)
    assert out["tmin_c"].to_list() == [0.0, 5.0]
    assert out["tavg_c"].to_list() == [5.0, 12.5]  # mid-range, GHCN TAVG ignored
    assert out["prcp_mm"].to_list() == [25.4, 0.0]
    assert out["wind_ms"].to_list() == pytest.approx([4.4704, 2.2352])
    assert out["source"].to_list() == ["ghcnd:USW00023174", "ghcnd:USW00093134"]
    assert out["wind_source"].to_list() == ["ghcnd_awnd:USW00023174"] * 2


def test_normalise_ghcnd_station_policy_is_a_parameter() -> None:
    out = w.normalise_ghcnd(_ghcnd(), primary=w.STATION_USC, fallback=w.STATION_LAX)
    assert out["tmax_c"].to_list() == pytest.approx([15.5555555, 20.0])
    assert out["prcp_mm"].to_list() == [50.8, 12.7]


def test_normalise_2020_2024_drops_crime_columns_and_converts() -> None:
    raw = pl.DataFrame(
        {"date": ["2020-01-01"], "crimes": [1164], "violent": [396], "temp": [50.0],
         "precip": [0.1], "isHot": [0], "isRainy": [0], "year": [2020]}
    )  # fmt: skip
    out = w.normalise_daily_2020_2024(raw)
    assert out.columns == list(w.DAILY_SCHEMA)
    assert out.row(0, named=True) == {
        "date": date(2020, 1, 1), "tmax_c": None, "tmin_c": None, "tavg_c": 10.0,
        "prcp_mm": pytest.approx(2.54), "wind_ms": None, "source": "la_daily_2020_2024",
        "wind_source": None,
    }  # fmt: skip


def test_normalise_2010_2018_midrange() -> None:
    raw = pl.DataFrame({"date": ["2010-01-01"], "tmax": [20.6], "tmin": [10.0], "prcp": [3.0]})
    row = w.normalise_daily_2010_2018(raw).row(0, named=True)
    assert row["tavg_c"] == pytest.approx(15.3)
    assert row["prcp_mm"] == 3.0
    assert row["source"] == "la_daily_2010_2018"


def test_normalise_rejects_missing_columns() -> None:
    with pytest.raises(SchemaError) as exc:
        w.normalise_daily_2020_2024(pl.DataFrame({"date": ["2020-01-01"], "temp": [50.0]}))
    assert str(exc.value) == (
        "la_daily_2020_2024.json lacks column(s) ['precip']; found ['date', 'temp']. "
        "Pass the unmodified source file."
    )


def _hourly_raw() -> pl.DataFrame:
    # 2013-01-01 08:00 UTC = 00:00 PST, so these 20 readings all fall on local 2013-01-01.
    times = [f"2013-01-01 {h:02d}:00:00" for h in range(8, 24)] + [
        f"2013-01-02 {h:02d}:00:00" for h in range(4)
    ]
    n = len(times)
    return pl.DataFrame(
        {
            "datetime": times,
            "humidity": [50.0] * n,
            "pressure": [1015.0] * n,
            "temperature": [283.15] * (n - 1) + [None],
            "wind_direction": [90.0] * n,
            "wind_speed": [2.0] * 10 + [4.0] * 10,
            "weather_desc": ["sky is clear"] * n,
        }
    )


def test_normalise_hourly_kelvin_and_local_time() -> None:
    out = w.normalise_hourly(_hourly_raw())
    assert out["temp_c"][0] == pytest.approx(10.0)
    assert out["temp_c"][-1] is None
    assert out.schema["time_utc"] == pl.Datetime("us", "UTC")
    assert out.schema["time_local"] == pl.Datetime("us", w.LA_TZ)
    assert out["time_local"][0].replace(tzinfo=None) == datetime(2013, 1, 1, 0, 0)  # PST
    summer = w.normalise_hourly(
        _hourly_raw().with_columns(pl.lit("2013-07-01 12:00:00").alias("datetime"))
    )
    assert summer["time_local"][0].replace(tzinfo=None) == datetime(2013, 7, 1, 5, 0)  # PDT


def test_daily_wind_from_hourly_uses_local_days_and_min_hours() -> None:
    hourly = w.normalise_hourly(_hourly_raw())
    out = w.daily_wind_from_hourly(hourly)
    assert out.row(0, named=True) == {"date": date(2013, 1, 1), "wind_ms": 3.0, "hours": 20}
    assert w.daily_wind_from_hourly(hourly, min_hours=21)["wind_ms"].to_list() == [None]


def test_merge_fills_only_missing_wind_and_rejects_overlaps() -> None:
    a = w.normalise_daily_2010_2018(
        pl.DataFrame({"date": ["2013-01-01"], "tmax": [20.0], "tmin": [10.0], "prcp": [0.0]})
    )
    b = w.normalise_ghcnd(_ghcnd())
    wind = pl.DataFrame({"date": [date(2013, 1, 1), date(2019, 1, 1)], "wind_ms": [3.0, 9.0]})
    out = w.merge_daily_sources([b, a], wind)
    assert out["date"].to_list() == [date(2013, 1, 1), date(2019, 1, 1), date(2019, 1, 2)]
    assert out["wind_ms"].to_list() == pytest.approx([3.0, 4.4704, 2.2352])
    assert out["wind_source"].to_list()[0] == w.HOURLY_WIND_SOURCE
    with pytest.raises(DataError) as exc:
        w.merge_daily_sources([a, a])
    assert str(exc.value) == (
        "daily weather sources overlap on 1 date(s), first [datetime.date(2013, 1, 1)]; "
        "each date must come from exactly one source. Trim one of the sources."
    )


# --- gap reports and joins ----------------------------------------------------------------


def test_weather_gaps_reports_missing_dates_and_null_runs() -> None:
    df = pl.DataFrame(
        {
            "date": [date(2020, 1, d) for d in (1, 2, 5, 6)],
            "tavg_c": [1.0, None, None, 2.0],
            "prcp_mm": [0.0, 0.0, 0.0, 0.0],
            "imputed": [False, True, False, False],
        }
    )
    rep = w.weather_gaps(df, date(2020, 1, 1), date(2020, 1, 6))
    assert rep.expected_days == 6 and rep.present_days == 4
    assert rep.missing_dates == (date(2020, 1, 3), date(2020, 1, 4))
    assert [(r.start, r.end, r.days) for r in rep.missing_ranges] == [
        (date(2020, 1, 3), date(2020, 1, 4), 2)
    ]
    tavg = rep.columns["tavg_c"]
    assert tavg.missing_days == 4
    assert [(r.start, r.end) for r in tavg.ranges] == [(date(2020, 1, 2), date(2020, 1, 5))]
    assert rep.columns["prcp_mm"].missing_days == 2
    assert rep.imputed_days == 1
    assert not rep.complete
    assert "4/6 days present, 2 missing in 1 range(s)" in rep.summary()
    with pytest.raises(ValidationError):  # frozen
        rep.present_days = 6


def test_weather_for_dates_keeps_request_order() -> None:
    df = pl.DataFrame({"date": [date(2020, 1, 1), date(2020, 1, 2)], "tavg_c": [1.0, 2.0]})
    out = w.weather_for_dates(df, [date(2020, 1, 2), date(2019, 1, 1), date(2020, 1, 1)])
    assert out["tavg_c"].to_list() == [2.0, None, 1.0]


# --- packaged resources -------------------------------------------------------------------


def test_packaged_daily_series_covers_2010_2024_except_reported_gap() -> None:
    daily = w.load_daily_weather()
    assert daily.schema == pl.Schema(w.DAILY_SCHEMA)
    assert daily["date"].is_unique().all() and daily["date"].is_sorted()
    assert not {"crimes", "violent", "isHot", "isRainy"} & set(daily.columns)
    rep = w.weather_gaps(daily, date(2010, 1, 1), date(2024, 12, 31))
    assert rep.missing_dates == (date(2024, 12, 31),)  # the 2020-2024 file ends 12-30
    assert rep.columns["tavg_c"].missing_days == 1
    assert rep.columns["prcp_mm"].missing_days == 1
    assert [(r.start, r.end) for r in rep.columns["tmax_c"].ranges] == [
        (date(2020, 1, 1), date(2024, 12, 31))
    ]
    assert [(r.start, r.end) for r in rep.columns["wind_ms"].ranges] == [
        (date(2010, 1, 1), date(2012, 9, 30)),
        (date(2017, 11, 29), date(2018, 12, 31)),
        (date(2020, 1, 1), date(2024, 12, 31)),
    ]
    # plausible LA climate in every source
    assert daily["tavg_c"].min() > 0 and daily["tavg_c"].max() < 40  # type: ignore[operator]
    yearly = daily.group_by(pl.col("date").dt.year()).agg(pl.col("prcp_mm").sum())
    assert yearly["prcp_mm"].min() > 50 and yearly["prcp_mm"].max() < 1100  # type: ignore[operator]


def test_packaged_hourly_slice() -> None:
    hourly = w.load_hourly_weather()
    assert hourly.columns[:3] == ["time_utc", "time_local", "temp_c"]
    assert hourly.height == 45253
    steps = hourly["time_utc"].diff().drop_nulls().unique().to_list()
    assert steps == [timedelta(hours=1)]  # no missing hours, only null readings
    assert hourly["temp_c"].min() > -10 and hourly["temp_c"].max() < 45  # type: ignore[operator]


@needs_shared
def test_packaged_daily_matches_rebuild_from_raw() -> None:
    rebuilt = w.build_daily_weather(
        pl.read_csv(SHARED / "la_daily_2010_2018.csv"),
        pl.read_csv(SHARED / "la_ghcnd_2019_lax_usc.csv", infer_schema_length=0),
        pl.read_json(SHARED / "la_daily_2020_2024.json"),
        pl.read_csv(SHARED / "la_hourly_2012_2017.csv"),
    )
    assert rebuilt.equals(w.load_daily_weather())


@needs_shared
def test_packaged_hourly_is_raw_kelvin_minus_273_15() -> None:
    raw = pl.read_csv(SHARED / "la_hourly_2012_2017.csv")
    hourly = w.load_hourly_weather()
    diff = (hourly["temp_c"] - (raw["temperature"] - 273.15)).abs().drop_nulls()
    assert diff.len() == raw["temperature"].drop_nulls().len()
    assert diff.max() <= 0.005 + 1e-9  # type: ignore[operator]
    first = hourly.row(1, named=True)
    assert first["time_utc"].replace(tzinfo=None) == datetime(2012, 10, 1, 13)
    assert first["time_local"].replace(tzinfo=None) == datetime(2012, 10, 1, 6)  # PDT
