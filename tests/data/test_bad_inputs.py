"""The bad-input corpus: every kind ends in a CrimecastError or a quarantine reason."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from crimecast.config import CleaningConfig
from crimecast.data.load import load_incidents
from crimecast.data.prepare import prepare_incidents
from crimecast.errors import CRSError, DataFileError, MappingError, SchemaError
from tests.conftest import LAPD_HEADER, lapd_csv, lapd_row

TODAY = dt.date(2024, 6, 30)


def _quarantine_reason(path: Path, schema: str = "lapd") -> tuple[str, str]:
    result = prepare_incidents([str(path)], schema, CleaningConfig(), today=TODAY)
    assert result.report.rows_in == 1
    assert result.report.rows_quarantined == 1, result.clean
    row = result.quarantine.row(0, named=True)
    assert row["raw"] is not None and '"DR_NO"' in row["raw"]
    return row["reason"], row["detail"]


# --- file-level problems: a CrimecastError naming the file and the fix -------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' does not exist. Check the path passed to --data."
    )


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as err:
        load_incidents([str(tmp_path)])
    assert str(err.value) == (
        f"data file '{tmp_path}' is a directory; pass a CSV file to --data."
    )


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' is empty; expected a CSV header and rows."
    )


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text(",".join(LAPD_HEADER) + "\n")
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == f"data file '{path}' has a header but no data rows."


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(lapd_csv([lapd_row()] * 50).encode())[:-30])
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    message = str(err.value)
    assert message.startswith(f"data file '{path}' is a truncated or corrupt gzip archive (")
    assert message.endswith("). Re-download or re-compress the file.")


def test_gz_suffix_without_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.gz"
    path.write_text(lapd_csv([lapd_row()]))
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' ends in .gz but is not gzip-compressed. "
        "Rename it without .gz or compress it with gzip."
    )


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    text = lapd_csv([lapd_row(), lapd_row(DR_NO="240100002", **{"Premis Desc": "CAFE"})])
    path.write_bytes(text.encode().replace(b"CAFE", b"CAF\xe9"))
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' is not valid utf-8: byte 0xe9 at line 3. "
        "Re-save the file as UTF-8 or pass --encoding latin-1."
    )
    loaded = load_incidents([str(path)], encoding="latin-1")
    assert loaded.parsed["premise"].to_list() == ["STREET", "CAFé"]


def test_unknown_encoding(write_lapd: Callable[..., Path]) -> None:
    path = write_lapd([lapd_row()])
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)], encoding="klingon")
    assert str(err.value) == (
        f"unknown encoding 'klingon' for data file '{path}'. Pass --encoding utf-8 "
        "or another Python codec name such as latin-1."
    )


def test_missing_required_column(tmp_path: Path) -> None:
    path = tmp_path / "no_time.csv"
    header = [c for c in LAPD_HEADER if c != "TIME OCC"]
    path.write_text(lapd_csv([lapd_row()], header=header))
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)], schema="lapd")
    assert str(err.value).startswith(
        f"data file '{path}' is missing LAPD column(s) ['TIME OCC']; found ['DR_NO',"
    )
    assert str(err.value).endswith(
        "Pass --schema generic or --schema MAP.yaml if this is not an LAPD export."
    )


def test_unrecognised_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("when,where\n2024-01-01,here\n")
    with pytest.raises(SchemaError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"cannot tell the schema of data file '{path}' from its columns ['when', 'where']. "
        "Pass --schema lapd, --schema generic or --schema MAP.yaml."
    )


def test_bad_schema_name(write_lapd: Callable[..., Path]) -> None:
    with pytest.raises(SchemaError) as err:
        load_incidents([str(write_lapd([lapd_row()]))], schema="nypd")
    assert str(err.value) == (
        "schema must be auto, lapd, generic or a path to a .yaml column map; got 'nypd'. "
        "Pass --schema lapd."
    )


def test_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(lapd_csv([lapd_row(), lapd_row()]) + lapd_csv([lapd_row()]).splitlines()[1]
                    + ",extra,fields\n")
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)])
    assert str(err.value) == (
        f"data file '{path}' is not a well-formed CSV: data row 3 has 30 fields but the "
        "header has 28 (fields separated by ','). Fix that row (quote fields that contain "
        "commas) and retry."
    )


def test_same_file_twice(write_lapd: Callable[..., Path]) -> None:
    path = str(write_lapd([lapd_row()]))
    with pytest.raises(DataFileError) as err:
        load_incidents([path, path])
    assert str(err.value) == f"data file '{path}' is given more than once. Pass each file once."


def test_generic_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "generic.csv"
    path.write_text("incident_id,occurred_at,lat,lon\n1,2024-01-01T10:00:00,34.05,-118.25\n")
    with pytest.raises(MappingError) as err:
        load_incidents([str(path)], schema="generic")
    assert str(err.value) == (
        f"data file '{path}' lacks generic-schema column(s) ['crime_type']; found "
        "['incident_id', 'occurred_at', 'lat', 'lon']. Rename the columns or pass "
        "--schema MAP.yaml."
    )


def _write_map(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(body)
    return path


def _city_csv(tmp_path: Path) -> Path:
    path = tmp_path / "city.csv"
    path.write_text("when,x,y,kind\n2016-08-01,7639201.0,683983.0,BURGLARY\n")
    return path


def test_map_names_missing_column(tmp_path: Path) -> None:
    cmap = _write_map(tmp_path, "date: when\nx: x\ny: y\ncrs: EPSG:2913\ncrime_type: type\n")
    data = _city_csv(tmp_path)
    with pytest.raises(MappingError) as err:
        load_incidents([str(data)], schema=str(cmap))
    assert str(err.value) == (
        f"column map 'city' maps crime_type to column 'type', which data file '{data}' does "
        "not have; available: ['when', 'x', 'y', 'kind']. Fix the map's 'crime_type' entry."
    )


def test_map_unknown_crs(tmp_path: Path) -> None:
    cmap = _write_map(tmp_path, "date: when\nx: x\ny: y\ncrs: EPSG:999999\ncrime_type: kind\n")
    with pytest.raises(CRSError) as err:
        load_incidents([str(_city_csv(tmp_path))], schema=str(cmap))
    assert str(err.value) == (
        "column map 'city' names an unknown CRS 'EPSG:999999'. "
        "Use an EPSG code such as EPSG:2913 or EPSG:4326."
    )


def test_map_without_coordinates(tmp_path: Path) -> None:
    cmap = _write_map(tmp_path, "date: when\ncrime_type: kind\n")
    with pytest.raises(MappingError) as err:
        load_incidents([str(_city_csv(tmp_path))], schema=str(cmap))
    assert str(err.value) == (
        f"column map '{cmap}' is invalid at '(map)': Value error, set either both 'lat' and "
        "'lon' or both 'x' and 'y'. See config/maps/portland_nij.yaml for a working example."
    )


def test_map_file_missing(tmp_path: Path) -> None:
    cmap = tmp_path / "absent.yaml"
    with pytest.raises(MappingError) as err:
        load_incidents([str(_city_csv(tmp_path))], schema=str(cmap))
    assert str(err.value) == (
        f"column map '{cmap}' does not exist. Pass --schema with a YAML file."
    )


# --- row-level problems: a quarantine row with a reason -----------------------------

ROW_CASES: list[tuple[str, dict[str, str], str, str]] = [
    ("unparseable date", {"DATE OCC": "yesterday"}, "unparseable_occurred_at",
     "occurred date 'yesterday'"),
    ("impossible date", {"DATE OCC": "02/30/2024 12:00:00 AM"}, "unparseable_occurred_at",
     "occurred date '02/30/2024 12:00:00 AM'"),
    ("missing date", {"DATE OCC": ""}, "unparseable_occurred_at", "occurred date ''"),
    ("future date", {"DATE OCC": "07/04/2024 12:00:00 AM", "Date Rptd": "07/04/2024"},
     "occurred_in_future", "occurred 2024-07-04 > max date 2024-06-30"),
    ("before min date", {"DATE OCC": "01/01/2001 12:00:00 AM", "Date Rptd": "01/02/2001"},
     "occurred_before_min_date", "occurred 2001-01-01 < min date 2010-01-01"),
    ("reported before occurred", {"Date Rptd": "02/20/2024 12:00:00 AM"},
     "reported_before_occurred", "reported 2024-02-20 < occurred 2024-02-23"),
    ("unparseable report date", {"Date Rptd": "soon"}, "unparseable_reported_at",
     "reported date 'soon'"),
    ("zero coordinates", {"LAT": "0", "LON": "0"}, "zero_coordinates", "lat 0.0, lon 0.0"),
    ("NaN coordinates", {"LAT": "NaN", "LON": "-118.25"}, "missing_coordinates",
     "lat 'NaN', lon '-118.25'"),
    ("empty coordinates", {"LAT": "", "LON": ""}, "missing_coordinates", "lat '', lon ''"),
    ("text coordinates", {"LAT": "north", "LON": "-118.25"}, "missing_coordinates",
     "lat 'north', lon '-118.25'"),
    ("out-of-range coordinates", {"LAT": "134.05", "LON": "-118.25"},
     "coordinates_out_of_range", "lat 134.05, lon -118.25"),
    ("outside the study area", {"LAT": "40.7128", "LON": "-74.006"}, "outside_study_area",
     "lat 40.7128, lon -74.006"),
    ("unknown area code", {"AREA": "99"}, "unknown_area_code", "area '99'"),
    ("non-numeric area code", {"AREA": "XX"}, "unknown_area_code", "area 'XX'"),
    ("negative TIME OCC", {"TIME OCC": "-5"}, "invalid_time_of_day", "time '-5'"),
    ("TIME OCC 2400", {"TIME OCC": "2400"}, "invalid_time_of_day", "time '2400'"),
    ("TIME OCC minute 60", {"TIME OCC": "1260"}, "invalid_time_of_day", "time '1260'"),
    ("TIME OCC text", {"TIME OCC": "noon"}, "invalid_time_of_day", "time 'noon'"),
    ("missing id", {"DR_NO": ""}, "missing_incident_id", "incident id is empty"),
    ("missing crime code", {"Crm Cd": "", "Crm Cd Desc": ""}, "missing_crime_type",
     "crime code is empty"),
    ("enforcement-driven type", {"Crm Cd": "437", "Crm Cd Desc": "RESISTING ARREST"},
     "enforcement_driven_excluded", "437 RESISTING ARREST"),
]


@pytest.mark.parametrize(("case", "overrides", "reason", "detail"), ROW_CASES,
                         ids=[c[0] for c in ROW_CASES])
def test_bad_row_is_quarantined(
    write_lapd: Callable[..., Path], case: str, overrides: dict[str, str], reason: str,
    detail: str,
) -> None:
    path = write_lapd([lapd_row(**overrides)])
    assert _quarantine_reason(path) == (reason, detail)


def test_duplicate_ids_keep_first(write_lapd: Callable[..., Path]) -> None:
    rows = [lapd_row(), lapd_row(**{"TIME OCC": "0700"}), lapd_row(DR_NO="240100009")]
    result = prepare_incidents([str(write_lapd(rows))], "lapd", CleaningConfig(), today=TODAY)
    assert result.clean["incident_id"].to_list() == ["240100001", "240100009"]
    assert result.clean["occurred_at"][0] == dt.datetime(2024, 2, 23, 6, 15)
    assert result.quarantine.select("source_row", "reason", "detail").rows() == [
        (2, "duplicate_id", "incident id '240100001' seen before")
    ]
