"""Loading real LAPD variants, the generic schema and column maps."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import polars as pl
import pytest

from crimecast.config import CleaningConfig
from crimecast.data.load import load_incidents, read_raw_csv, sanitise_header
from crimecast.data.prepare import prepare_incidents
from crimecast.data.schema import PARSED_SCHEMA
from tests.conftest import lapd_csv, lapd_row

REPO = Path(__file__).resolve().parents[2]
PORTLAND_MAP = REPO / "config" / "maps" / "portland_nij.yaml"

LAPD_FILES = {
    # file: (rows, min clean share)
    "lapd_2024_02_citywide.csv.gz": 15_661,
    "lapd_2024_03_citywide.csv.gz": 14_710,
    "lapd_west_la_2020_2021.csv.gz": 12_954,
    "lapd_2020_first10k.csv.gz": 10_000,
    "lapd_2020_sample_13areas.csv.gz": 6_007,
    "lapd_2022_sample1k.csv": 1_000,
}


def test_sanitise_header_names_blank_and_repeated_columns() -> None:
    assert sanitise_header(["DR_NO", " AREA ", "Crm Cd 1", "", "", "DATE OCC", "DATE OCC"]) == [
        "DR_NO", "AREA", "Crm Cd 1", "Unnamed: 3", "Unnamed: 4", "DATE OCC", "DATE OCC.1",
    ]


def test_gzip_and_plain_read_the_same(tmp_path: Path) -> None:
    text = lapd_csv([lapd_row(), lapd_row(DR_NO="2")])
    plain, packed = tmp_path / "a.csv", tmp_path / "a.csv.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    a = read_raw_csv(str(plain)).frame.drop("_source_file")
    b = read_raw_csv(str(packed)).frame.drop("_source_file")
    assert a.equals(b)


def test_many_files_keep_their_source(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(lapd_csv([lapd_row()]))
    second.write_text(lapd_csv([lapd_row(DR_NO="9"), lapd_row(DR_NO="10")]))
    loaded = load_incidents([str(first), str(second)])
    assert loaded.parsed.schema == pl.Schema(PARSED_SCHEMA)
    assert loaded.parsed.select("source_file", "source_row").rows() == [
        (str(first), 1), (str(second), 1), (str(second), 2),
    ]


def test_lapd_variant_formats_parse_to_the_same_instant() -> None:
    from crimecast.data.lapd import parse_lapd
    from crimecast.data.load import SOURCE_FILE, SOURCE_ROW

    variants = ["02/03/2024 12:00:00 AM", "2/3/2024 0:00", "02/03/2024 00:00", "02/03/2024"]
    raw = pl.DataFrame(
        [lapd_row(DR_NO=str(i), **{"DATE OCC": v, "TIME OCC": "615"})
         for i, v in enumerate(variants)]
    ).with_columns(pl.int_range(1, 5, dtype=pl.Int64).alias(SOURCE_ROW),
                   pl.lit("m").alias(SOURCE_FILE))
    parsed = parse_lapd(raw)
    assert parsed["occurred_at"].to_list() == [dt.datetime(2024, 2, 3, 6, 15)] * 4


def test_generic_schema_with_offsets_and_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "city.csv"
    path.write_text(
        "incident_id,occurred_at,lat,lon,crime_type\n"
        "a,2024-01-01T10:30:00,34.05,-118.25,ROBBERY\n"
        "b,2024-01-01T18:30:00Z,34.05,-118.25,BURGLARY\n"
        "c,2024-01-01 09:00,34.05,-118.25,LOITERING\n"
    )
    loaded = load_incidents([str(path)])
    assert loaded.schema_name == "generic"
    frame = loaded.parsed
    assert frame["occurred_at"].to_list() == [
        dt.datetime(2024, 1, 1, 10, 30), dt.datetime(2024, 1, 1, 10, 30),
        dt.datetime(2024, 1, 1, 9, 0),
    ]
    assert frame["crime_category"].to_list() == ["violent", "property", "other"]
    assert frame["reported_at"].null_count() == 3 and frame["area_id"].null_count() == 3


def test_map_with_date_and_hhmm_time(tmp_path: Path) -> None:
    cmap = tmp_path / "m.yaml"
    cmap.write_text("incident_id: id\ndate: d\ntime: t\nlat: la\nlon: lo\ncrime_type: k\n"
                    "area: pct\n")
    data = tmp_path / "d.csv"
    data.write_text("id,d,t,la,lo,k,pct\n1,2023-05-06,945,40.7,-74.0,THEFT,12\n")
    row = load_incidents([str(data)], schema=str(cmap)).parsed.row(0, named=True)
    assert row["occurred_at"] == dt.datetime(2023, 5, 6, 9, 45)
    assert (row["area_id"], row["crime_category"], row["time_is_estimated"]) == (
        "12", "property", False)


@pytest.mark.parametrize("name", sorted(LAPD_FILES))
def test_real_lapd_files_load_and_reconcile(shared_data: Path, name: str) -> None:
    result = prepare_incidents([str(shared_data / "lapd" / name)], "auto", CleaningConfig(),
                               today=dt.date(2026, 1, 1))
    report = result.report
    assert report.rows_in == LAPD_FILES[name]
    assert report.rows_in == report.rows_clean + report.rows_quarantined
    assert report.rows_clean / report.rows_in > 0.95
    assert result.clean["area_id"].is_in([str(i) for i in range(1, 22)]).all()


def test_real_portland_file_loads_through_the_shipped_map(shared_data: Path) -> None:
    path = shared_data / "portland_nij" / "portland_cfs_2016_aug_nov.csv.gz"
    result = prepare_incidents([str(path)], str(PORTLAND_MAP), CleaningConfig(),
                               today=dt.date(2026, 1, 1))
    report = result.report
    assert report.rows_in == 72_342
    assert report.rows_in == report.rows_clean + report.rows_quarantined
    assert report.rows_clean / report.rows_in > 0.9
    clean = result.clean
    assert clean["lat"].is_between(45.2, 45.8).all() and clean["lon"].is_between(-123, -122).all()
    assert clean["occurred_at"].min() == dt.datetime(2016, 8, 1)
    assert clean["time_is_estimated"].all()
