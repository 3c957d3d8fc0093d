"""clean.parquet read back natively cleans exactly as the same file read as text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crimecast.config import CleaningConfig
from crimecast.data.canonical import (
    CANONICAL_MAP,
    is_native,
    keep_canonical_flags,
    parse_canonical,
    text_frame,
)
from crimecast.data.clean import attach_raw_values, clean_incidents
from crimecast.data.load import RawTable
from crimecast.data.mapping import parse_mapped
from crimecast.data.prepare import prepare_incidents, write_clean_outputs
from crimecast.data.schema import CANONICAL_SCHEMA
from crimecast.synthetic.generate import generate_incidents

TEXTS = st.sampled_from(["1", " 1", "2 ", "", "   ", "ASSAULT", "THEFT OF IDENTITY", "x y", None])
FLOATS = st.sampled_from([34.05, -118.25, 0.0, 95.0, float("nan"), float("inf"), None])
TIMES = st.one_of(st.none(), st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2030, 1, 1)))
ROW = st.fixed_dictionaries({
    "incident_id": st.sampled_from(["a", "b", " a", "", None, "c"]),
    "occurred_at": TIMES, "reported_at": TIMES, "lat": FLOATS, "lon": FLOATS,
    "area_id": TEXTS, "area_name": TEXTS, "district_id": TEXTS, "crime_code": TEXTS,
    "crime_desc": TEXTS, "crime_category": st.sampled_from(["violent", "other", "", None]),
    "premise": TEXTS, "time_is_estimated": st.sampled_from([True, False, None]),
})


def _raw(frame: pl.DataFrame) -> RawTable:
    return RawTable(path="x.parquet", frame=frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("_source_row"),
        pl.lit("x.parquet").alias("_source_file")))


def _cleaned(raw: RawTable, parsed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    result = clean_incidents(parsed, CleaningConfig(min_date=dt.date(2000, 1, 1)),
                             today=dt.date(2025, 1, 1))
    return result.clean, attach_raw_values(result.quarantine, [raw])


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=40))
def test_native_parse_cleans_as_the_text_path(rows: list[dict[str, object]]) -> None:
    schema = {k: v for k, v in CANONICAL_SCHEMA.items() if k not in ("source_file", "source_row")}
    raw = _raw(pl.DataFrame(rows, schema=schema))
    assert is_native(raw.frame)
    text = text_frame(raw.frame)
    by_text = keep_canonical_flags(parse_mapped(text, CANONICAL_MAP, raw.path), text)
    native = _cleaned(raw, parse_canonical(raw.frame))
    expected = _cleaned(raw, by_text)
    assert_frame_equal(native[0], expected[0])
    assert_frame_equal(native[1], expected[1])


def test_clean_output_is_reusable_as_input(tmp_path: Path) -> None:
    incidents = generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 2, 28), seed=3)
    source = tmp_path / "in.parquet"
    incidents.write_parquet(source)
    first = prepare_incidents([str(source)], "auto", CleaningConfig(), today=dt.date(2024, 1, 1))
    write_clean_outputs(first, tmp_path)
    again = prepare_incidents([str(tmp_path / "clean.parquet")], "auto", CleaningConfig(),
                              today=dt.date(2024, 1, 1))
    assert again.report.rows_quarantined == 0
    assert_frame_equal(again.clean.drop("source_file", "source_row"),
                       first.clean.drop("source_file", "source_row"))
