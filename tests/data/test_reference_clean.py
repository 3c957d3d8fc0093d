"""Cleaning the real LAPD files gives, row for row, what it gave before issue #15.

``reference_clean/`` holds the clean table, the quarantine (reasons, details and
raw values) and the report that the implementation before the issue #15 speed-up
produced for every file in ``../shared/data/lapd``, and for a seeded, damaged copy
of two of them that trips every quarantine rule (blank, padded and impossible
values, duplicates, blank lines). The files were written by the old code; the
test runs the current code on the same inputs and compares every row and value.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crimecast.config import CleaningConfig
from crimecast.data.prepare import prepare_incidents

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lapd"
REFERENCE = Path(__file__).parent / "reference_clean"
TODAY = dt.date(2025, 1, 1)
FILES = sorted(p.name for p in SHARED.glob("*.csv*")) if SHARED.is_dir() else []
# (file, with blank lines): files with blank lines take the careful reader, others the fast one.
DAMAGED = (("lapd_2024_02_citywide.csv.gz", False), ("lapd_west_la_2020_2021.csv.gz", True))
# (column, replacement) pairs a damaged copy draws from; "" blanks the field.
DAMAGE = (
    ("DR_NO", ""), ("DR_NO", "  "), ("DATE OCC", "13/45/2024 12:00:00 AM"),
    ("DATE OCC", "02/30/2024 12:00:00 AM"), ("DATE OCC", ""),
    ("DATE OCC", "01/01/2031 12:00:00 AM"),
    ("DATE OCC", "01/01/1999 12:00:00 AM"), ("TIME OCC", "2400"), ("TIME OCC", "-5"),
    ("TIME OCC", "1261"), ("TIME OCC", " 0930 "), ("Date Rptd", "not a date"),
    ("Date Rptd", "01/01/2001 12:00:00 AM"), ("LAT", ""), ("LAT", "0"), ("LON", "abc"),
    ("LAT", "95.0"), ("LON", "-200"), ("LAT", "40.7128"), ("AREA", "99"), ("AREA", " 7 "),
    ("AREA", "x"), ("Crm Cd", ""), ("Crm Cd", "0510"), ("Crm Cd", "999"),
    ("Crm Cd Desc", "  LOITERING  "), ("Crm Cd Desc", ""), ("Premis Desc", "  STREET "),
    ("Rpt Dist No", "0814"), ("Rpt Dist No", "N/A"), ("AREA NAME", " "),
)


def _damaged(source: Path, out: Path, blank_lines: bool, seed: int = 15) -> Path:
    """A copy of ``source`` with 8% of rows damaged, 1% repeated, maybe a few blank lines."""
    with gzip.open(source, "rt", newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    rng = np.random.default_rng(seed)
    lines = [header]
    for row in rows:
        values = list(row)
        if rng.random() < 0.08:
            column, value = DAMAGE[rng.integers(len(DAMAGE))]
            values[header.index(column)] = value
        lines.append(values)
        if rng.random() < 0.01:
            lines.append(row)
    for at in sorted(rng.integers(2, len(lines) - 1, 3 if blank_lines else 0), reverse=True):
        lines.insert(int(at), [])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(lines)
    out.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
    return out


def _check(path: Path, stem: str) -> None:
    result = prepare_incidents([str(path)], "auto", CleaningConfig(), today=TODAY)
    for name, frame in (("clean", result.clean), ("quarantine", result.quarantine)):
        assert frame["source_file"].unique().to_list() in ([str(path)], [])
        expected = pl.read_parquet(REFERENCE / f"{stem}.{name}.parquet")
        assert_frame_equal(frame.drop("source_file"), expected)
    report = json.loads(result.report.model_dump_json(exclude={"files"}))
    assert report == json.loads((REFERENCE / f"{stem}.report.json").read_text())


@pytest.mark.skipif(not FILES, reason="../shared/data/lapd is not present")
@pytest.mark.parametrize("name", FILES)
def test_real_file_cleans_as_before(name: str) -> None:
    _check(SHARED / name, name.split(".")[0])


@pytest.mark.skipif(not FILES, reason="../shared/data/lapd is not present")
@pytest.mark.parametrize(("name", "blank_lines"), DAMAGED)
def test_damaged_copy_cleans_as_before(name: str, blank_lines: bool, tmp_path: Path) -> None:
    stem = "damaged_" + name.split(".")[0]
    path = _damaged(SHARED / name, tmp_path / f"{stem}.csv.gz", blank_lines)
    _check(path, stem)
