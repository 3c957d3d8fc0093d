"""Cleaning rules, flags, enforcement exclusion and the reconciliation invariant."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import CleaningConfig
from crimecast.data.clean import REASONS, clean_incidents
from crimecast.data.lapd import parse_lapd
from crimecast.data.load import SOURCE_FILE, SOURCE_ROW
from crimecast.data.prepare import prepare_incidents
from crimecast.data.schema import CANONICAL_COLUMNS, QUARANTINE_SCHEMA
from tests.conftest import LAPD_HEADER, lapd_row

TODAY = dt.date(2024, 6, 30)


def _raw(rows: list[dict[str, str]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={c: pl.String for c in LAPD_HEADER})
    return frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(SOURCE_ROW),
        pl.lit("mem.csv").alias(SOURCE_FILE),
    )


def test_clean_row_is_canonical(write_lapd: Callable[..., Path]) -> None:
    result = prepare_incidents([str(write_lapd([lapd_row()]))], "lapd", CleaningConfig(),
                               today=TODAY)
    assert result.clean.columns == list(CANONICAL_COLUMNS)
    row = result.clean.row(0, named=True)
    assert row["occurred_at"] == dt.datetime(2024, 2, 23, 6, 15)
    assert row["reported_at"] == dt.datetime(2024, 2, 24)
    assert (row["area_id"], row["area_name"], row["district_id"]) == ("1", "Central", "0163")
    assert (row["crime_code"], row["crime_category"]) == ("310", "property")
    assert row["time_is_estimated"] is False
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)


def test_round_hours_are_kept_and_flagged(write_lapd: Callable[..., Path]) -> None:
    rows = [lapd_row(DR_NO=str(i), **{"TIME OCC": t})
            for i, t in enumerate(["1200", "1900", "0001", "0615", "2359"])]
    result = prepare_incidents([str(write_lapd(rows))], "lapd", CleaningConfig(), today=TODAY)
    assert result.report.rows_clean == 5
    assert result.clean["time_is_estimated"].to_list() == [True, True, True, False, False]
    assert result.report.time_is_estimated == 3


def test_enforcement_exclusion_is_configurable_and_counted(
    write_lapd: Callable[..., Path],
) -> None:
    rows = [
        lapd_row(DR_NO="1", **{"Crm Cd": "437", "Crm Cd Desc": "RESISTING ARREST"}),
        lapd_row(DR_NO="2", **{"Crm Cd": "865", "Crm Cd Desc": "DRUGS, TO A MINOR"}),
        lapd_row(DR_NO="3", **{"Crm Cd": "865", "Crm Cd Desc": "DRUGS, TO A MINOR"}),
        lapd_row(DR_NO="4"),
    ]
    path = str(write_lapd(rows))
    default = prepare_incidents([path], "lapd", CleaningConfig(), today=TODAY)
    assert default.report.by_reason == {"enforcement_driven_excluded": 3}
    assert default.report.excluded_crime_types == {
        "865 DRUGS, TO A MINOR": 2, "437 RESISTING ARREST": 1,
    }
    kept = prepare_incidents([path], "lapd", CleaningConfig(exclude_enforcement_driven=False),
                             today=TODAY)
    assert kept.report.rows_clean == 4


def test_report_shape_and_reasons_documented(write_lapd: Callable[..., Path]) -> None:
    rows = [lapd_row(), lapd_row(DR_NO="2", LAT="0", LON="0")]
    result = prepare_incidents([str(write_lapd(rows))], "lapd", CleaningConfig(), today=TODAY)
    payload = json.loads(result.report.model_dump_json())
    assert list(payload)[:4] == ["rows_in", "rows_clean", "rows_quarantined", "by_reason"]
    assert (payload["rows_in"], payload["rows_clean"], payload["rows_quarantined"]) == (2, 1, 1)
    assert set(payload["by_reason"]) <= set(REASONS)
    raw = json.loads(result.quarantine["raw"][0])
    assert raw["DR_NO"] == "2" and raw["LAT"] == "0"


def test_input_frame_is_not_mutated() -> None:
    parsed = parse_lapd(_raw([lapd_row(), lapd_row(DR_NO="2", LAT="0")]))
    before = parsed.clone()
    clean_incidents(parsed, CleaningConfig(), today=TODAY)
    assert parsed.equals(before)


_FIELD_VALUES = {
    "DR_NO": st.sampled_from(["1", "2", "3", "", "240100001"]),
    "DATE OCC": st.sampled_from(["02/23/2024 12:00:00 AM", "2/3/2024 0:00", "02/30/2024",
                                 "", "junk", "01/01/2001 12:00:00 AM", "12/31/2030"]),
    "Date Rptd": st.sampled_from(["02/24/2024 12:00:00 AM", "01/01/2024", "", "x"]),
    "TIME OCC": st.sampled_from(["0615", "1200", "2400", "-5", "", "abc", "59", "2359"]),
    "AREA": st.sampled_from(["01", "8", "21", "22", "", "A"]),
    "Crm Cd": st.sampled_from(["310", "437", "624", "", "999"]),
    "LAT": st.sampled_from(["34.0459", "0", "", "NaN", "95", "40.7", "34.05"]),
    "LON": st.sampled_from(["-118.2545", "0", "", "-74.0", "-200", "-118.3"]),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries(_FIELD_VALUES), min_size=0, max_size=25))
def test_rows_in_equals_clean_plus_quarantined(rows: list[dict[str, str]]) -> None:
    parsed = parse_lapd(_raw([lapd_row(**r) for r in rows]))
    result = clean_incidents(parsed, CleaningConfig(), today=TODAY)
    assert result.report.rows_in == len(rows)
    assert result.report.rows_clean + result.report.rows_quarantined == len(rows)
    assert sum(result.report.by_reason.values()) == result.report.rows_quarantined
    # Every input row is in exactly one output, identified by its source row.
    seen = sorted(result.clean["source_row"].to_list() + result.quarantine["source_row"].to_list())
    assert seen == list(range(1, len(rows) + 1))
    assert result.clean["incident_id"].is_duplicated().sum() == 0
    assert result.quarantine["reason"].is_in(list(REASONS)).all()
