"""Issue #14's replay: two years of generated Los Angeles data, week by week.

A champion trained on the first year is monitored on weekly extracts of the second; at a
known week crime shifts to other areas. The monitor must stay ``ok`` before the shift and
advise ``retrain`` within two weeks of it; the retrained challenger is registered,
shadow-scored by the server on the same requests, compared on the logged forecasts once
their outcomes are known, and promoted; the forecast log holds every forecast with its
model version.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli.main import app
from crimecast.config import Settings
from crimecast.data.output import write_incidents
from crimecast.pipeline.champion import find_run
from crimecast.pipeline.monitor_job import retrain_challenger, run_monitor
from crimecast.pipeline.run import run_pipeline
from crimecast.registry.store import ModelRegistry
from crimecast.serving.forecast_log import read_forecast_log
from crimecast.synthetic.generate import generate_incidents

YEAR_TWO = dt.date(2023, 1, 1)
SHIFT_WEEK = 6  # crime moves to other areas from the start of this week of year two
SHIFT_AT = YEAR_TWO + dt.timedelta(weeks=SHIFT_WEEK)
MOVED_AREAS = 6  # the busiest areas lose ...
MOVED_SHARE = 0.6  # ... this share of their crimes to the others


def parsed(frame: pl.DataFrame) -> pl.DataFrame:
    """The generator's LAPD text dates as ``_occ`` (date) and ``_rep`` (date)."""
    fmt = "%m/%d/%Y %I:%M:%S %p"
    return frame.with_columns(_occ=pl.col("DATE OCC").str.strptime(pl.Datetime, fmt).dt.date(),
                              _rep=pl.col("Date Rptd").str.strptime(pl.Datetime, fmt).dt.date())


def shift_crime(frame: pl.DataFrame, at: dt.date, seed: int = 11) -> pl.DataFrame:
    """From ``at`` on, a share of the busiest areas' crimes happen in the other areas:
    each moved row takes the place (area, district, coordinates) of a random row there."""
    busiest = frame.group_by("AREA").len().sort("len", descending=True)["AREA"].head(
        MOVED_AREAS).to_list()
    rng = np.random.default_rng(seed)
    after = (frame["_occ"] >= at).to_numpy()
    moved = after & frame["AREA"].is_in(busiest).to_numpy() & (rng.random(frame.height)
                                                               < MOVED_SHARE)
    donors = np.flatnonzero(~frame["AREA"].is_in(busiest).to_numpy())
    pick = rng.choice(donors, size=int(moved.sum()))
    place = ["AREA", "AREA NAME", "Rpt Dist No", "LAT", "LON"]
    replaced = {c: frame[c].to_numpy().copy() for c in place}
    for column in place:
        replaced[column][moved] = frame[column].to_numpy()[pick]
    return frame.with_columns(pl.Series(c, replaced[c], dtype=pl.String) for c in place)


def extract(frame: pl.DataFrame, through: dt.date, path: Path) -> Path:
    """The data as an extract taken at the end of ``through``: what was reported by then."""
    rows = frame.filter((pl.col("_rep") <= through) & (pl.col("_occ") <= through))
    write_incidents(rows.drop("_occ", "_rep"), path)
    return path


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("replay")
    data = shift_crime(parsed(generate_incidents(dt.date(2022, 1, 1), dt.date(2023, 12, 31),
                                                 seed=5)), SHIFT_AT)
    runs = root / "runs"
    settings = (Settings()
                .with_overrides("features", spatial_unit="area", time_bin="1d", label="topk")
                .with_overrides("pipeline", runs_dir=str(runs), model_type="lightgbm",
                                register_best=True, f1_threshold=0.0))
    first = extract(data, YEAR_TWO - dt.timedelta(days=1), root / "year_one.csv")
    summary = run_pipeline(settings, [str(first)], schema="lapd", bootstrap_resamples=20)
    registry = ModelRegistry(state_dir=runs / ".mlflow")
    registry.promote(int(summary.registration["version"]), by="test", reason="first model")
    decisions = {}
    for week in range(1, SHIFT_WEEK + 3):
        through = YEAR_TWO + dt.timedelta(weeks=week, days=-1)
        path = extract(data, through, root / f"extract_{week}.csv")
        result = run_monitor(find_run(runs), [str(path)], root / f"monitor_{week}", settings)
        decisions[week] = result.report
    return {"root": root, "runs": runs, "settings": settings, "data": data,
            "decisions": decisions}


def test_the_monitor_is_quiet_before_the_shift_and_advises_retraining_within_two_weeks(
        replay: dict) -> None:
    decisions = replay["decisions"]
    quiet = {w: d["rules_fired"] for w, d in decisions.items() if w <= SHIFT_WEEK}
    assert all(d["decision"] == "ok" for w, d in decisions.items() if w <= SHIFT_WEEK), quiet
    detected = [w for w, d in decisions.items() if w > SHIFT_WEEK and d["decision"] == "retrain"]
    assert detected and detected[0] <= SHIFT_WEEK + 2
    assert any("area mix moved" in rule for rule in decisions[detected[0]]["rules_fired"])
    report = decisions[detected[0]]
    assert report["periods"]["weeks"] == detected[0]
    assert report["champion"]["model_version"] == 1
    for role in ("champion", "best_naive"):
        assert report["performance"][role]["window"]["pai@1%"]["value"] is not None
    assert (replay["root"] / f"monitor_{detected[0]}" / "monitor.html").stat().st_size > 10_000


def test_the_cli_exits_1_when_retraining_is_advised_and_registers_a_challenger(
        replay: dict) -> None:
    root, runs = replay["root"], replay["runs"]
    week = SHIFT_WEEK + 2
    result = CliRunner().invoke(app, [
        "monitor", "--runs-dir", str(runs), "--data", str(root / f"extract_{week}.csv"),
        "--schema", "lapd", "--out", str(root / "cli_monitor"), "--retrain"])
    assert result.exit_code == 1, result.output
    assert "decision: retrain" in result.output
    assert "as 'challenger'" in result.output
    saved = json.loads((root / "cli_monitor" / "monitor.json").read_text())
    assert saved["decision"] == "retrain"
    versions = {v.version: v.aliases for v in ModelRegistry(
        state_dir=runs / ".mlflow").list_versions()}
    assert "challenger" in versions[2] and "champion" in versions[1]
    assert retrain_challenger  # the CLI used the same function


def test_monitor_html_shows_the_decision_and_its_plots(replay: dict, tmp_path: Path) -> None:
    from tests.browser import DESKTOP, screenshot

    page_path = replay["root"] / f"monitor_{SHIFT_WEEK + 2}" / "monitor.html"
    page = page_path.read_text()
    for title in ("Realised accuracy", "Has the data moved?", "Feature drift",
                  "Patrol-loop check"):
        assert f"<h2>{title}</h2>" in page, title
    assert 'Decision: <b style="color:#b00020">retrain</b>' in page
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert len(links) == 4 and all(link.startswith("data:image/png;base64,") for link in links)
    pixels = screenshot(page_path.as_uri(), tmp_path, "monitor", window=DESKTOP).reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.95  # not blank
    assert int(((r < 30) & (g > 95) & (g < 135) & (b > 160)).sum()) > 300  # champion lines
    assert int(((r > 190) & (g > 70) & (g < 115) & (b < 40)).sum()) > 300  # naive lines
    assert int(((r > 150) & (g < 30) & (b < 60)).sum()) > 50  # the red decision


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_challenger_is_shadow_scored_compared_and_promoted(replay: dict) -> None:
    """Runs after the CLI test registered the challenger (module order)."""
    root, runs, data = replay["root"], replay["runs"], replay["data"]
    later = extract(data, YEAR_TWO + dt.timedelta(weeks=SHIFT_WEEK + 5, days=-1),
                    root / "later.csv")
    port, log = free_port(), root / "forecast_log"
    server = subprocess.Popen(
        [sys.executable, "-m", "crimecast.cli", "serve", "--runs-dir", str(runs),
         "--challenger", "challenger", "--data", str(later), "--schema", "lapd", "--port",
         str(port), "--forecast-log", str(log), "--tiles", "none"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    days = [YEAR_TWO + dt.timedelta(weeks=SHIFT_WEEK + 2, days=d) for d in range(20)]
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(f"{base}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[0].decode()[-3000:]
            time.sleep(0.5)
        answers = [httpx.get(f"{base}/hotspots", params={"at": f"{day}T00:00", "horizon": "1d",
                                                         "top": 3}, timeout=60)
                   for day in days for _ in range(2)]  # every window asked twice
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=60)[0].decode()
    assert all(a.status_code == 200 for a in answers), output[-2000:]
    assert {a.headers["X-Crimecast-Variant"] for a in answers} == {"champion"}
    assert {a.headers["X-Crimecast-Model-Version"] for a in answers} == {"1"}
    # The log holds every forecast: 3 places answered by the champion and 3 scored in
    # shadow by the challenger, for every request, each with its version.
    logged = read_forecast_log(log).collect()
    per_request = logged.group_by("request_id", "role", "served", "model_version").len()
    assert per_request.height == 2 * len(answers)
    assert set(per_request.select("role", "served", "model_version", "len").unique().rows()) \
        == {("champion", True, 1, 3), ("challenger", False, 2, 3)}
    result = CliRunner().invoke(app, [
        "compare", "--runs-dir", str(runs), "--data", str(later), "--schema", "lapd",
        "--log", str(log), "--out", str(root / "compare")])
    assert result.exit_code == 0, result.output
    report = json.loads((root / "compare" / "compare.json").read_text())
    assert report["windows"] == len(days)  # each window once, however often it was asked
    assert report["models"]["champion"]["model_versions"] == [1]
    assert report["models"]["challenger"]["model_versions"] == [2]
    assert report["recommendation"] in ("promote", "keep the champion", "not decided yet")
    replay["compare"] = report
    result = CliRunner().invoke(app, [
        "models", "promote", "2", "--runs-dir", str(runs), "--by", "replay test",
        "--reason", f"compare: {report['recommendation']} ({report['why']})"])
    assert result.exit_code == 0, result.output
    versions = {v.version: v for v in ModelRegistry(state_dir=runs / ".mlflow").list_versions()}
    assert "champion" in versions[2].aliases
    assert versions[2].tags["approved_by"] == "replay test"
    promotions = (runs / ".mlflow" / "promotions.jsonl").read_text().splitlines()
    assert json.loads(promotions[-1])["replaced_version"] == 1
    print("replay:", json.dumps({  # the figures the closing note quotes (pytest -s)
        "decisions": {w: (d["decision"], d["rules_fired"]) for w, d in
                      replay["decisions"].items()},
        "compare": {k: report[k] for k in ("windows", "recommendation", "why")},
        "pai": {r: report["models"][r]["pai"]["value"] for r in report["models"]}}))
