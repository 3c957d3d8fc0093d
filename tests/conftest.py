"""Shared fixtures: small LAPD-schema files written into a temp dir."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

LAPD_HEADER = [
    "DR_NO", "Date Rptd", "DATE OCC", "TIME OCC", "AREA", "AREA NAME", "Rpt Dist No",
    "Part 1-2", "Crm Cd", "Crm Cd Desc", "Mocodes", "Vict Age", "Vict Sex", "Vict Descent",
    "Premis Cd", "Premis Desc", "Weapon Used Cd", "Weapon Desc", "Status", "Status Desc",
    "Crm Cd 1", "Crm Cd 2", "Crm Cd 3", "Crm Cd 4", "LOCATION", "Cross Street", "LAT", "LON",
]


def lapd_row(**overrides: str) -> dict[str, str]:
    """One valid LAPD standard-export row (Central division, a burglary) with overrides."""
    row = {name: "" for name in LAPD_HEADER}
    row.update({
        "DR_NO": "240100001", "Date Rptd": "02/24/2024 12:00:00 AM",
        "DATE OCC": "02/23/2024 12:00:00 AM", "TIME OCC": "0615", "AREA": "01",
        "AREA NAME": "Central", "Rpt Dist No": "0163", "Part 1-2": "1", "Crm Cd": "310",
        "Crm Cd Desc": "BURGLARY", "Premis Desc": "STREET", "Status": "IC",
        "Crm Cd 1": "310", "LAT": "34.0459", "LON": "-118.2545",
    })
    row.update(overrides)
    return row


def lapd_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    """Render rows as LAPD CSV text."""
    columns = header or LAPD_HEADER
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.fixture
def write_lapd(tmp_path: Path) -> Callable[..., Path]:
    """Write LAPD rows to a CSV in tmp_path and return its path."""

    def _write(rows: list[dict[str, str]], name: str = "lapd.csv") -> Path:
        path = tmp_path / name
        path.write_text(lapd_csv(rows))
        return path

    return _write


@pytest.fixture
def shared_data() -> Path:
    """The real data folder beside the project; tests needing it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
