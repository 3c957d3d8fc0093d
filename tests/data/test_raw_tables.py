"""Raw tables: parquet input, blank lines between records and duplicated columns."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import zipfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.config import CleaningConfig
from crimecast.data.load import load_incidents, read_raw_csv, sanitise_header
from crimecast.data.output import write_incidents
from crimecast.data.prepare import prepare_incidents, write_clean_outputs
from crimecast.errors import DataFileError, SchemaError
from tests.conftest import LAPD_HEADER, lapd_csv, lapd_row

TODAY = dt.date(2024, 6, 30)
ROWS = [lapd_row(DR_NO=str(240100001 + i), **{"TIME OCC": f"{600 + i}"}) for i in range(50)]


def _parsed(path: Path, **options: str) -> pl.DataFrame:
    return load_incidents([str(path)], **options).parsed.drop("source_file")


# --- parquet -----------------------------------------------------------------------


def test_lapd_parquet_parses_like_the_csv(tmp_path: Path) -> None:
    frame = pl.DataFrame(ROWS)
    write_incidents(frame, tmp_path / "x.parquet")
    write_incidents(frame, tmp_path / "x.csv")
    raw = read_raw_csv(str(tmp_path / "x.parquet")).frame
    assert raw["_source_row"].to_list() == list(range(1, 51))
    assert raw["_source_file"].unique().to_list() == [str(tmp_path / "x.parquet")]
    assert _parsed(tmp_path / "x.parquet").equals(_parsed(tmp_path / "x.csv"))


def test_typed_parquet_columns_become_parseable_text(tmp_path: Path) -> None:
    frame = pl.DataFrame({
        "incident_id": ["a", "b", "c"],
        "occurred_at": [dt.datetime(2024, 1, 1, 10, 30), dt.datetime(2024, 1, 2, 0, 5, 7, 250),
                        None],
        "reported_at": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
        "lat": [34.05, float("nan"), 34.1],
        "lon": [-118.25, -118.3, None],
        "crime_type": ["ROBBERY", "BURGLARY", "THEFT"],
        "area": [1, 2, None],
    })
    frame.write_parquet(tmp_path / "g.parquet")
    frame.write_csv(tmp_path / "g.csv")
    assert _parsed(tmp_path / "g.parquet").equals(_parsed(tmp_path / "g.csv"))
    aware = frame.with_columns(pl.col("occurred_at").dt.replace_time_zone("UTC"))
    aware.write_parquet(tmp_path / "utc.parquet")
    aware.write_csv(tmp_path / "utc.csv")
    parsed = _parsed(tmp_path / "utc.parquet")
    assert parsed.equals(_parsed(tmp_path / "utc.csv"))
    assert parsed["occurred_at"][0] == dt.datetime(2024, 1, 1, 2, 30)  # UTC -> Los Angeles


def test_parquet_found_by_magic_bytes_and_encoding_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "really_parquet.csv"
    pl.DataFrame(ROWS[:2]).write_parquet(path)
    with caplog.at_level(logging.INFO, logger="crimecast.data.load"):
        loaded = load_incidents([str(path)], encoding="latin-1")
    assert loaded.parsed.height == 2
    assert f"read {path}: parquet, so --encoding latin-1 does not apply and is ignored" in (
        caplog.text)


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    pl.DataFrame(ROWS).write_parquet(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)], encoding="latin-1")
    message = str(err.value)
    assert message.startswith(f"data file '{path}' is a truncated or corrupt parquet file (")
    assert message.endswith("). Re-download or re-write the file.")
    assert "\n" not in message


def test_parquet_suffix_without_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text(lapd_csv(ROWS[:1]))
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' ends in .parquet but does not start with the parquet magic bytes "
        "PAR1. Re-write the parquet file, or rename it to .csv if it is a CSV."
    )


def test_parquet_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "none.parquet"
    pl.DataFrame(ROWS).head(0).write_parquet(path)
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == f"data file '{path}' has a header but no data rows."


def test_clean_parquet_of_a_run_is_accepted(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(lapd_csv([*ROWS, lapd_row(DR_NO="9", LAT="0", LON="0")]))
    first = prepare_incidents([str(source)], "auto", CleaningConfig(), today=TODAY)
    write_clean_outputs(first, tmp_path / "out")
    again = prepare_incidents([str(tmp_path / "out" / "clean.parquet")], "auto",
                              CleaningConfig(), today=TODAY)
    assert (again.report.rows_in, again.report.rows_clean) == (50, 50)
    keep = [c for c in first.clean.columns if not c.startswith("source_")]
    assert again.clean.select(keep).equals(first.clean.select(keep))


def test_cli_cleans_parquet_with_an_encoding_and_its_own_output(tmp_path: Path) -> None:
    data = tmp_path / "lapd.parquet"
    write_incidents(pl.DataFrame(ROWS), data)
    runner = CliRunner()
    for source, out in ((data, tmp_path / "o1"), (tmp_path / "o1" / "clean.parquet",
                                                   tmp_path / "o2")):
        result = runner.invoke(app, ["clean", "--data", str(source), "--out", str(out),
                                     "--encoding", "latin-1", "--max-date", "2025-01-01"])
        assert result.exit_code == 0, result.output
        assert json.loads((out / "clean_report.json").read_text())["rows_clean"] == 50


# --- blank lines -------------------------------------------------------------------


def test_blank_lines_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spaced.csv"
    path.write_text(lapd_csv(ROWS).replace("\n", "\n\n"))
    with caplog.at_level(logging.WARNING):
        result = prepare_incidents([str(path)], "lapd", CleaningConfig(), today=TODAY)
    assert (result.report.rows_in, result.report.rows_clean) == (50, 50)
    assert "missing_incident_id" not in result.report.by_reason
    assert result.report.blank_lines_skipped == 51  # not records, but never silent
    assert f"data file '{path}': skipped 51 blank line(s)" in caplog.text
    raw = read_raw_csv(str(path))
    assert raw.blank_lines == 51
    assert raw.frame["_source_row"].to_list() == list(range(1, 51))  # record ordinals
    assert load_incidents([str(path)]).blank_lines == 51


def test_delimiter_only_line_is_a_record_not_a_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "commas.csv"
    lines = lapd_csv(ROWS[:2]).splitlines()
    path.write_text("\n".join([*lines[:2], "," * 27, "", lines[2]]) + "\n")
    result = prepare_incidents([str(path)], "lapd", CleaningConfig(), today=TODAY)
    assert (result.report.rows_in, result.report.rows_quarantined) == (3, 1)
    assert result.report.by_reason == {"missing_incident_id": 1}
    assert result.quarantine["source_row"].to_list() == [2]


def test_only_blank_lines_after_the_header(tmp_path: Path) -> None:
    path = tmp_path / "hollow.csv"
    path.write_text(",".join(LAPD_HEADER) + "\n\n  \n\n")
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' has a header but no data rows (3 blank line(s) skipped)."
    )


# --- duplicated columns ------------------------------------------------------------


def test_duplicated_read_column(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(lapd_csv([lapd_row()], header=[*LAPD_HEADER, "LAT"]))
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' has the column 'LAT' more than once (columns 27 and 29); "
        "remove the duplicate."
    )


def test_several_duplicated_read_columns(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(lapd_csv([lapd_row()], header=[*LAPD_HEADER, "LAT", " LON", "LAT"]))
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)], schema="lapd")
    assert str(err.value) == (
        f"data file '{path}' has the columns 'LAT' (columns 27, 29 and 31) and 'LON' "
        "(columns 28 and 30) more than once; remove the duplicates."
    )


def test_duplicated_unread_column_is_kept_renamed(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(lapd_csv([lapd_row()], header=[*LAPD_HEADER, "Mocodes"]))
    raw = read_raw_csv(str(path))
    assert "Mocodes.1" in raw.frame.columns and raw.duplicates == {"Mocodes": (11, 29)}
    assert load_incidents([str(path)]).parsed.height == 1


def test_duplicated_column_of_generic_schema_and_map(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("incident_id,occurred_at,lat,lon,crime_type,lat,note,note\n"
                    "1,2024-01-01T10:00,34.0,-118.2,THEFT,0,a,b\n")
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' has the column 'lat' more than once (columns 3 and 6); "
        "remove the duplicate."
    )
    cmap = tmp_path / "m.yaml"  # reads 'note' (twice in the file) but not 'lat'
    cmap.write_text("occurred_at: occurred_at\nlat: lon\nlon: lon\ncrime_type: note\n")
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)], schema=str(cmap))
    assert str(err.value) == (
        f"data file '{path}' has the column 'note' more than once (columns 7 and 8); "
        "remove the duplicate."
    )


def test_repeated_date_column_with_excel_serials_is_the_west_la_variant(tmp_path: Path) -> None:
    header = [*LAPD_HEADER[:3], "DATE OCC", *LAPD_HEADER[3:]]
    path = tmp_path / "wla.csv"
    head, row = lapd_csv([lapd_row()], header=header).splitlines()
    fields = row.split(",")
    path.write_text(f"{head}\n{','.join([*fields[:3], '45345', *fields[4:]])}\n")
    assert load_incidents([str(path)]).parsed["occurred_at"].to_list() == [
        dt.datetime(2024, 2, 23, 6, 15)]
    path.write_text(f"{head}\n{row}\n")  # the repeat holds dates: which one is meant?
    with pytest.raises(SchemaError, match=r"'DATE OCC' more than once \(columns 3 and 4\)"):
        load_incidents([str(path)])


def test_sanitise_header_never_collides_with_a_real_name() -> None:
    assert sanitise_header(["a", "a", "a.1", " "]) == ["a", "a.2", "a.1", "Unnamed: 3"]


# --- other LAPD layouts ------------------------------------------------------------


def test_lapd_file_without_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "lean.csv"
    path.write_text(lapd_csv(ROWS[:2], header=[c for c in LAPD_HEADER if c != "Date Rptd"]))
    parsed = load_incidents([str(path)]).parsed
    assert parsed["reported_at"].to_list() == [None, None] and parsed.height == 2


# --- the real February 2024 export -------------------------------------------------


def test_real_february_file_reads_the_same_from_zip_and_parquet(
    shared_data: Path, tmp_path: Path
) -> None:
    source = shared_data / "lapd" / "lapd_2024_02_citywide.csv.gz"
    base = load_incidents([str(source)])
    assert (base.parsed.height, base.blank_lines) == (15_661, 0)
    base.raw[0].frame.drop("_source_row", "_source_file").write_parquet(tmp_path / "feb.parquet")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("feb.csv", gzip.decompress(source.read_bytes()))
    (tmp_path / "feb.zip").write_bytes(buffer.getvalue())
    expected = base.parsed.drop("source_file")
    assert _parsed(tmp_path / "feb.parquet").equals(expected)
    assert _parsed(tmp_path / "feb.zip").equals(expected)
