"""``crimecast predict`` and ``crimecast serve`` as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import polars as pl

from .conftest import TOKEN, ServedRun, free_port

CLI = [sys.executable, "-m", "crimecast.cli"]


def crimecast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, check=False)


def test_predict_writes_geojson_and_patrol_boxes(served_run: ServedRun, tmp_path: Path) -> None:
    runs = str(served_run.runs)
    geo = crimecast("predict", "--runs-dir", runs, "--at", "2023-08-01T06:00", "--horizon",
                    "1d", "--top", "4", "--out", str(tmp_path / "h.geojson"))
    assert geo.returncode == 0, geo.stderr
    doc = json.loads((tmp_path / "h.geojson").read_text())
    assert [f["properties"]["rank"] for f in doc["features"]] == [1, 2, 3, 4]
    version = served_run.summary.registration["version"]
    assert doc["properties"]["model_version"] == version
    assert doc["properties"]["run_id"] == served_run.summary.registration["mlflow_run_id"]
    assert "4 units, window 2023-08-01 06:00 to 2023-08-02 06:00" in geo.stderr

    csv = crimecast("predict", "--runs-dir", runs, "--at", "2023-08-01T06:00", "--horizon",
                    "1d", "--top", "4", "--format", "csv", "--run",
                    served_run.summary.run_id, "--data", str(served_run.data_file))
    assert csv.returncode == 0, csv.stderr
    boxes = pl.read_csv(csv.stdout.encode())
    assert boxes.columns[:5] == ["rank", "unit_id", "name", "place", "region"]
    assert boxes["rank"].to_list() == [1, 2, 3, 4]
    assert (boxes["min_lon"] < boxes["max_lon"]).all()
    assert (boxes["min_lat"] <= boxes["centre_lat"]).all()
    assert boxes["model_version"].to_list() == [version] * 4
    # The run's own clean events and the raw CSV re-cleaned give the same forecast.
    ranked = [f["properties"]["unit_id"] for f in doc["features"]]
    assert boxes["unit_id"].cast(pl.Utf8).to_list() == ranked


def test_predict_and_serve_reject_bad_flags_with_one_line(served_run: ServedRun) -> None:
    bad = crimecast("predict", "--runs-dir", str(served_run.runs), "--at", "soon")
    assert bad.returncode == 2
    assert "at must be an ISO 8601 date-time such as 2024-10-01T14:00; got 'soon'." in bad.stderr
    assert "Traceback" not in bad.stderr
    clash = crimecast("serve", "--model", "models:/x@y", "--run", "abc")
    assert clash.returncode == 2
    assert "pass one of --model, --run or --model-dir; got --model and --run." in clash.stderr
    missing = crimecast("serve", "--runs-dir", str(served_run.runs), "--model",
                        "models:/crimecast-hotspots@staging")
    assert missing.returncode == 2
    assert "no version of 'crimecast-hotspots' has the alias 'staging'." in missing.stderr


def test_serve_refuses_a_public_bind_without_a_token(served_run: ServedRun) -> None:
    result = crimecast("serve", "--runs-dir", str(served_run.runs), "--host", "0.0.0.0",
                       env={"CRIMECAST_TOKEN": ""})
    assert result.returncode == 2
    assert ("binding to 0.0.0.0 exposes the server beyond this machine, so it needs a bearer "
            "token. Pass --token TOKEN or set CRIMECAST_TOKEN, or bind --host 127.0.0.1."
            ) in " ".join(result.stderr.split())
    short = crimecast("serve", "--runs-dir", str(served_run.runs), "--token", "abc")
    assert short.returncode == 2
    assert "the bearer token must be at least 16 characters; got 3." in short.stderr


def test_serve_subprocess_with_a_token_serves_the_champion(served_run: ServedRun) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--runs-dir", str(served_run.runs), "--port", str(port)],
        env={**os.environ, "CRIMECAST_TOKEN": TOKEN}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.25)
        assert httpx.get(f"{url}/model").status_code == 401
        summary = httpx.get(f"{url}/model", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert summary["model_version"] == served_run.summary.registration["version"]
        assert summary["source"] == "models:/crimecast-hotspots@champion"
        hot = httpx.get(f"{url}/hotspots", params={"at": "2023-08-01T06:00", "top": 3},
                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert hot.status_code == 200 and len(hot.json()["features"]) == 3
    finally:
        process.terminate()
        process.wait(timeout=20)
