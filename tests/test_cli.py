"""The crimecast CLI: real subprocesses for exit codes, CliRunner for output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from tests.conftest import lapd_row

runner = CliRunner()
CRIMECAST = [sys.executable, "-m", "crimecast.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CRIMECAST, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, check=False)


def test_bad_input_prints_message_and_exits_2_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    proc = _run("clean", "--data", str(missing), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert f"error: data file '{missing}' does not exist." in " ".join(proc.stderr.split())


def test_bad_config_value_exits_2(tmp_path: Path, write_lapd: Callable[..., Path]) -> None:
    path = write_lapd([lapd_row()])
    proc = _run("clean", "--data", str(path), "--out", str(tmp_path / "o"),
                "--min-date", "tomorrow")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--min-date must be a date in YYYY-MM-DD form; got 'tomorrow'." in " ".join(
        proc.stderr.split())


def test_clean_writes_outputs_for_many_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    from tests.conftest import lapd_csv

    a.write_text(lapd_csv([lapd_row(), lapd_row(DR_NO="2", LAT="0", LON="0")]))
    b.write_text(lapd_csv([lapd_row(DR_NO="3")]))
    out = tmp_path / "out"
    result = runner.invoke(app, ["clean", "--data", str(a), str(b), "--out", str(out),
                                 "--max-date", "2025-01-01"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "clean_report.json").read_text())
    assert (report["rows_in"], report["rows_clean"], report["rows_quarantined"]) == (3, 2, 1)
    assert report["by_reason"] == {"zero_coordinates": 1}
    assert pl.read_parquet(out / "clean.parquet").height == 2
    assert pl.read_parquet(out / "quarantine.parquet")["reason"].to_list() == ["zero_coordinates"]
    assert "rows quarantined" in result.output


def test_schema_command_lists_rules() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert "occurred_at" in result.output and "duplicate_id" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("crimecast ")


def test_generate_volume_scale_multiplies_the_records_and_is_recorded(tmp_path: Path) -> None:
    counts = {}
    for scale in ("1", "3"):
        out = tmp_path / f"x{scale}.csv.gz"
        result = runner.invoke(app, ["generate", "--start", "2024-03-01", "--end",
                                     "2024-03-14", "--out", str(out), "--volume-scale", scale])
        assert result.exit_code == 0, result.output
        counts[scale] = pl.read_csv(out, infer_schema=False).height
        provenance = json.loads(Path(str(out) + ".provenance.json").read_text())
        assert provenance["volume_scale"] == float(scale)
    assert 2.7 < counts["3"] / counts["1"] < 3.3
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "bad.csv"),
                                 "--volume-scale", "9"])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "error: volume_scale must be in the range (0, 5]; got 9.0. Set volume_scale in the "
        "generator config to a number greater than 0 and at most 5.")


@pytest.mark.slow
def test_generate_then_clean_round_trip(tmp_path: Path) -> None:
    raw = tmp_path / "synthetic.csv"
    result = runner.invoke(app, ["generate", "--start", "2024-01-01", "--end", "2024-01-31",
                                 "--seed", "3", "--out", str(raw)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    out = tmp_path / "clean"
    result = runner.invoke(app, ["clean", "--data", str(raw), "--out", str(out),
                                 "--max-date", "2024-12-31"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "clean_report.json").read_text())
    assert report["rows_in"] == report["rows_clean"] + report["rows_quarantined"]
    assert report["by_reason"].get("zero_coordinates", 0) > 0
    assert report["rows_clean"] / report["rows_in"] > 0.95


def test_every_option_of_every_command_says_what_it_is() -> None:
    """`--help` explains every option (issue #13: run's key options had no help text)."""
    import typer.main

    from crimecast.cli import app as cli_app

    missing: list[str] = []

    def walk(group: object, path: list[str]) -> None:
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            if hasattr(command, "commands"):
                walk(command, [*path, name])
                continue
            missing.extend(" ".join([*path, name, param.opts[0]]) for param in command.params
                           if param.param_type_name == "option"
                           and not (getattr(param, "help", None) or "").strip()
                           and param.opts[0] != "--help")

    walk(typer.main.get_command(cli_app), ["crimecast"])
    assert missing == []
