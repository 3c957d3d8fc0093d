"""Reliability of ``crimecast run`` on hostile ground (issue #11): full and read-only disks,
runs killed after registering, two first runs at once. Real processes, real tmpfs mounts,
a real MLflow SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crimecast.data.output import write_incidents
from crimecast.registry.store import STEP_KEY_TAG, ModelRegistry
from crimecast.synthetic.generate import generate_incidents
from tests.disks import one_line_error, read_only_disk, small_disk


@pytest.fixture(scope="module")
def half_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability") / "lapd_2023h1.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 6, 30), seed=5), path)
    return path


def _command(data: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "crimecast.cli", "run", "--data", str(data), "--schema", "lapd",
            "--time-bin", "1d", "--runs-dir", str(runs), "--model-type", "logistic",
            "--register-best"]


def _run(data: Path, runs: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(data, runs), capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "COLUMNS": "200", **env})


def _leftovers(runs: Path) -> list[Path]:
    """Temporary or unfinished cache entries: none may survive a failed run."""
    cache = runs / ".cache"
    temporary = [p for p in cache.rglob("*") if ".tmp" in p.name] if cache.exists() else []
    unfinished = [p for p in cache.glob("*/*") if p.is_dir() and
                  not (p / "_SUCCESS.json").is_file()] if cache.exists() else []
    return temporary + unfinished


def test_full_disk_during_first_registration_leaves_a_usable_registry(
        half_year: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # The registry's disk holds 400 kB; an empty MLflow schema needs about 950 kB.
    with small_disk(runs / ".mlflow", "400k"):
        failed = _run(half_year, runs)
        line = one_line_error(failed)
        assert line == (f"error: cannot write '{runs / '.mlflow'}': No space left on device. "
                        "Free space on that disk or write elsewhere.")
        assert not (runs / ".mlflow" / "mlflow.db").exists()
        assert not list((runs / ".mlflow").glob(".mlflow.db.init-*"))
        assert _leftovers(runs) == []
        moved = tmp_path / "moved"
        shutil.copytree(runs, moved)  # the user moves the runs folder to a disk with space
    done = _run(half_year, moved)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [v.version for v in ModelRegistry(state_dir=moved / ".mlflow").list_versions()] == [1]


def test_a_half_created_registry_is_moved_aside_and_created_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from mlflow import MlflowClient

    disk = tmp_path / "disk"
    with small_disk(disk, "500k"):  # how MLflow alone leaves a first store on a full disk
        uri = f"sqlite:///{disk / 'mlflow.db'}"
        with pytest.raises(Exception, match="database or disk is full"):
            MlflowClient(uri).search_experiments()
        state = tmp_path / "state"
        state.mkdir()
        shutil.copy(disk / "mlflow.db", state / "mlflow.db")
    shutil.copy(state / "mlflow.db", tmp_path / "copy.db")
    with pytest.raises(Exception, match="already exists"):  # what users used to get
        MlflowClient(f"sqlite:///{tmp_path / 'copy.db'}").search_experiments()
    registry = ModelRegistry(state_dir=state)
    assert registry.list_versions() == []
    assert registry.experiment_id() == "1"
    aside = list(state.glob("mlflow.db.incomplete-*"))
    assert len(aside) == 1
    assert "was left half-created by an interrupted first run" in caplog.text


def test_a_registry_with_data_but_an_old_schema_is_refused_not_replaced(tmp_path: Path) -> None:
    from crimecast.errors import RegistryError
    from crimecast.registry.database import ensure_database

    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (run_uuid TEXT)")
        db.execute("INSERT INTO runs VALUES ('abc')")
    with pytest.raises(RegistryError) as caught:
        ensure_database(path)
    assert str(caught.value) == (
        f"the model registry database '{path}' holds runs or models but its schema is not at "
        f"MLflow's current revision. Upgrade it with: mlflow db upgrade sqlite:///{path}")
    assert path.exists() and not list(tmp_path.glob("*.incomplete-*"))


def test_a_run_killed_right_after_registering_does_not_register_twice(
        half_year: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # Pause after the register step's work (run logged, version created), before success.
    proc = subprocess.Popen(_command(half_year, runs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "CRIMECAST_PAUSE_AFTER": "register:120"})
    registry = ModelRegistry(state_dir=runs / ".mlflow")
    deadline = time.time() + 200
    versions: list[object] = []
    while time.time() < deadline and not versions:
        time.sleep(0.5)
        if (runs / ".mlflow" / "mlflow.db").is_file():
            versions = ModelRegistry(state_dir=runs / ".mlflow").list_versions()
    assert versions, "the paused run never registered"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed = sorted(runs.glob("*/manifest.json"))
    assert len(killed) == 1
    lineage = json.loads(killed[0].read_text())
    assert lineage["status"] == "running" and lineage["steps"]["card"]["status"] == "ran"

    done = _run(half_year, runs)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = registry.list_versions()
    assert [v.version for v in listed] == [1]
    assert listed[0].tags["data_hash"] == lineage["data_hash"]
    assert listed[0].tags["crimecast_run_id"] == lineage["run_id"]
    manifests = {json.loads(p.read_text())["status"] for p in runs.glob("*/manifest.json")}
    assert manifests == {"running", "complete"}
    latest = max(runs.glob("*/register/registration.json"), key=lambda p: p.parent.parent.name)
    assert json.loads(latest.read_text())["version"] == 1
    assert _leftovers(runs) == []


def test_two_first_runs_at_once_both_succeed(half_year: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    procs = [subprocess.Popen(_command(half_year, runs), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [proc.communicate(timeout=400) for proc in procs]
    for proc, (_, err) in zip(procs, outcomes, strict=True):
        assert proc.returncode == 0, err[-3000:]
    assert _leftovers(runs) == []
    versions = ModelRegistry(state_dir=runs / ".mlflow").list_versions()
    keys = [v.tags[STEP_KEY_TAG] for v in versions]
    assert len(versions) >= 1 and len(keys) == len(set(keys))


def test_a_full_disk_during_process_is_one_line_and_leaves_no_cache_entry(
        half_year: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with small_disk(disk, "256k"):
        failed = _run(half_year, disk / "runs")
        assert one_line_error(failed) == (
            f"error: cannot write '{disk / 'runs'}': No space left on device. "
            "Free space on that disk or write elsewhere.")
        assert _leftovers(disk / "runs") == []


def test_a_read_only_runs_folder_is_one_line(half_year: Path, tmp_path: Path) -> None:
    with read_only_disk(tmp_path / "ro") as disk:
        failed = _run(half_year, disk / "runs")
        line = one_line_error(failed)
        assert line.startswith(f"error: cannot write '{disk / 'runs'}")
        assert line.endswith(": Read-only file system. Write to a writable folder instead.")


def test_temporary_folders_of_killed_runs_are_swept(tmp_path: Path) -> None:
    from crimecast.pipeline.runner import remove_stale_tmp

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".abc.tmp-{dead.pid}"
    ours = tmp_path / f".abc.tmp-{os.getpid()}"
    finished = tmp_path / "abc"
    for folder in (stale, ours, finished):
        folder.mkdir()
    remove_stale_tmp(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, finished.name])
