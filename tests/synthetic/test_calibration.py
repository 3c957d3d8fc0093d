"""Tests of the calibration report that compares incidents with real LAPD aggregates."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from crimecast.synthetic.calibration import (
    CalibrationReport,
    CalibrationThresholds,
    build_calibration_report,
)
from crimecast.synthetic.generate import generate_incidents


@pytest.fixture(scope="module")
def year_2022() -> pl.DataFrame:
    return generate_incidents(dt.date(2022, 1, 1), dt.date(2022, 12, 31), seed=21)


@pytest.fixture(scope="module")
def report_2022(year_2022: pl.DataFrame) -> CalibrationReport:
    return build_calibration_report(year_2022)


def test_generated_year_passes(report_2022: CalibrationReport) -> None:
    assert report_2022.passed, report_2022.failures
    assert report_2022.failures == []
    assert report_2022.share_corr_overall is not None and report_2022.share_corr_overall >= 0.95
    assert set(report_2022.share_corr_by_year) == {2022}
    assert report_2022.hour_corr_overall is not None and report_2022.hour_corr_overall >= 0.95
    assert report_2022.hour_corr_division_min is not None
    assert len(report_2022.months) == 12 and report_2022.months_excluded == []
    assert report_2022.max_month_rel_error is not None and report_2022.max_month_rel_error <= 0.1
    assert report_2022.delay_p50 == 0.0
    assert 0.001 < report_2022.zero_coordinate_share < 0.003
    assert report_2022.duplicate_rows > 0


def test_report_round_trips_through_json(report_2022: CalibrationReport) -> None:
    again = CalibrationReport.model_validate_json(report_2022.model_dump_json())
    assert again == report_2022


def test_to_rows_gives_printable_table(report_2022: CalibrationReport) -> None:
    rows = report_2022.to_rows()
    assert all(len(row) == 4 and all(isinstance(cell, str) for cell in row) for row in rows)
    metrics = [row[0] for row in rows]
    assert "area share corr (overall)" in metrics and "max month |rel error|" in metrics
    assert rows[-1] == ("passed", "True", "", "ok")


def test_partial_months_are_excluded_not_scaled(year_2022: pl.DataFrame) -> None:
    part = year_2022.filter(
        pl.col("DATE OCC").str.strptime(pl.Date, "%m/%d/%Y %I:%M:%S %p") >= dt.date(2022, 1, 15)
    )
    report = build_calibration_report(part, start=dt.date(2022, 1, 15), end=dt.date(2022, 3, 31))
    periods = [m.period for m in report.months]
    assert periods[:2] == ["2022-02", "2022-03"]
    assert report.months_excluded[0] == "2022-01 (partial month)"


def test_wrong_hours_and_volumes_fail(year_2022: pl.DataFrame) -> None:
    broken = year_2022.gather_every(2).with_columns(pl.lit("0300").alias("TIME OCC"))
    report = build_calibration_report(broken)
    assert not report.passed
    assert any(f.startswith("hour-of-day correlation (citywide)") for f in report.failures)
    assert any(f.startswith("month 2022-0") for f in report.failures)


def test_wrong_area_mix_fails(year_2022: pl.DataFrame) -> None:
    skewed = year_2022.with_columns(
        pl.when(pl.col("AREA").is_in(["01", "02", "03"]))
        .then(pl.lit("21"))
        .otherwise("AREA")
        .alias("AREA")
    )
    report = build_calibration_report(skewed)
    assert "area share correlation 2022 is" in " ".join(report.failures)


def test_thresholds_can_be_tightened(year_2022: pl.DataFrame) -> None:
    strict = CalibrationThresholds(max_month_rel_error=0.0001)
    report = build_calibration_report(year_2022.head(5), thresholds=strict)
    assert report.months == []  # five rows cover no whole month
    assert report.rows == 5
