"""``--crime-types``: models for burglary, vehicle crime, violent crime... (issue #13)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.config import CleaningConfig, FeatureConfig
from crimecast.config.crime_types import CRIME_TYPES
from crimecast.data.crime_codes import select_crime_types
from crimecast.data.prepare import prepare_incidents
from tests.conftest import lapd_row

ROWS = [("310", "BURGLARY", "property"), ("510", "VEHICLE - STOLEN", "property"),
        ("330", "BURGLARY FROM VEHICLE", "property"), ("210", "ROBBERY", "violent"),
        ("230", "ASSAULT WITH DEADLY WEAPON, AGGRAVATED ASSAULT", "violent"),
        ("440", "THEFT PLAIN - PETTY ($950 & UNDER)", "property"),
        ("740", "VANDALISM - FELONY ($400 & OVER, ALL CHURCH VANDALISMS)", "property"),
        ("946", "OTHER MISCELLANEOUS CRIME", "other")]


def _frame() -> pl.DataFrame:
    return pl.DataFrame({"crime_code": [r[0] for r in ROWS], "crime_desc": [r[1] for r in ROWS],
                         "crime_category": [r[2] for r in ROWS]})


def test_each_type_selects_what_its_name_says() -> None:
    frame = _frame()
    chosen = {name: select_crime_types(frame, [name])["crime_code"].to_list()
              for name in CRIME_TYPES}
    assert chosen == {
        "violent": ["210", "230"], "property": ["310", "510", "330", "440", "740"],
        "burglary": ["310", "330"], "vehicle": ["510", "330"], "robbery": ["210"],
        "assault": ["230"], "theft": ["510", "440"]}  # a stolen vehicle is a theft too
    assert select_crime_types(frame, ["burglary", "vehicle"])["crime_code"].to_list() == [
        "310", "510", "330"]
    assert select_crime_types(frame, []).equals(frame)


def test_the_report_accounts_for_every_row(write_lapd: Callable[..., Path]) -> None:
    rows = [lapd_row(DR_NO=f"2401000{i:02d}", **{"Crm Cd": code, "Crm Cd Desc": desc,
                                                 "Crm Cd 1": code})
            for i, (code, desc, _) in enumerate(ROWS)]
    path = write_lapd(rows)
    result = prepare_incidents([str(path)], "lapd", CleaningConfig(),
                               crime_types=["burglary"])
    report = result.report
    assert result.clean["crime_code"].to_list() == ["310", "330"]
    assert report.crime_types == ["burglary"] and report.rows_clean == 2
    assert report.rows_in == report.rows_clean + report.rows_quarantined + \
        report.rows_other_crime_types


def test_the_flag_reaches_the_features_and_refuses_unknown_types(tmp_path: Path) -> None:
    from crimecast.data.output import write_incidents
    from crimecast.synthetic.generate import generate_incidents

    data = tmp_path / "la.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 2, 28), seed=2), data)
    out = tmp_path / "f"
    done = CliRunner().invoke(app, ["features", "--data", str(data), "--out", str(out),
                                    "--time-bin", "1d", "--weather", "none",
                                    "--crime-types", "vehicle,burglary"])
    assert done.exit_code == 0, done.output
    meta = json.loads((out / "features_meta.json").read_text())
    assert meta["crime_types"] == ["burglary", "vehicle"]
    everything = prepare_incidents([str(data)], "lapd", CleaningConfig()).clean
    expected = select_crime_types(everything, ["burglary", "vehicle"]).height
    frame = pl.read_parquet(out / "features.parquet")
    assert frame["target_count"].sum() == expected < everything.height
    bad = CliRunner().invoke(app, ["features", "--data", str(data), "--out", str(out),
                                   "--crime-types", "burglary,arson"])
    assert bad.exit_code == 2
    assert ("crime_types: Value error, must be among violent, property, burglary, vehicle, "
            "robbery, assault, theft; 'arson' is not one (pass e.g. --crime-types "
            "burglary,vehicle)") in " ".join(bad.output.split())
    assert FeatureConfig(crime_types="theft, robbery").crime_types == ["robbery", "theft"]
