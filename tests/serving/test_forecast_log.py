"""The forecast log: batching, atomic parts, retries, retention, threads, the schema."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crimecast.cli import app as cli_app
from crimecast.serving.forecast_log import (
    FORECAST_LOG_SCHEMA,
    STAMP_COLUMNS,
    TEMPLATE_SCHEMA,
    ForecastLog,
    StampedRows,
    forecast_log_parts,
    read_forecast_log,
)
from crimecast.serving.server import forecast_log_dir

from .conftest import ServedRun

AT = "2023-08-01T06:00"
runner = CliRunner()

# The contract other commands (crimecast compare, crimecast monitor) read: pinned here.
EXPECTED_SCHEMA = [
    ("issued_at", pl.Datetime("us", "UTC")), ("endpoint", pl.String),
    ("request_id", pl.String), ("role", pl.String), ("served", pl.Boolean),
    ("model_name", pl.String), ("model_version", pl.Int64), ("run_id", pl.String),
    ("crimecast_run_id", pl.String), ("crime_types", pl.String), ("spatial_unit", pl.String),
    ("horizon", pl.String), ("window_start", pl.Datetime("us")),
    ("window_end", pl.Datetime("us")), ("data_through", pl.Datetime("us")),
    ("unit_id", pl.String), ("rank", pl.Int32), ("score", pl.Float64),
    ("expected_count", pl.Float64),
]


def rows(n: int, request_id: str | None = None, start: int = 0) -> list[dict[str, Any]]:
    """``n`` hotspot rows of one request (ranks start+1..start+n)."""
    rid = request_id or uuid.uuid4().hex
    issued = dt.datetime(2024, 10, 1, 21, 0, tzinfo=dt.UTC)
    return [{"issued_at": issued, "endpoint": "hotspots", "request_id": rid,
             "role": "champion", "served": True, "model_name": "crimecast-hotspots",
             "model_version": 3, "run_id": "abc", "crimecast_run_id": "20241001T000000Z-x",
             "crime_types": "all", "spatial_unit": "area", "horizon": "8h",
             "window_start": dt.datetime(2024, 10, 1, 14), "window_end":
             dt.datetime(2024, 10, 1, 22), "data_through": dt.datetime(2024, 9, 30, 23, 50),
             "unit_id": str(i % 21 + 1), "rank": i + 1, "score": 1.0 / (i + 2),
             "expected_count": 0.25 * i} for i in range(start, start + n)]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_schema_is_exactly_the_contract(tmp_path: Path) -> None:
    assert list(FORECAST_LOG_SCHEMA.items()) == EXPECTED_SCHEMA
    empty = read_forecast_log(tmp_path / "never-written")
    assert empty.collect_schema() == FORECAST_LOG_SCHEMA
    assert empty.collect().height == 0
    with ForecastLog(tmp_path) as log:
        log.append(rows(3))
    frame = read_forecast_log(tmp_path).collect()
    assert list(frame.schema.items()) == EXPECTED_SCHEMA
    assert frame["rank"].to_list() == [1, 2, 3]
    assert frame["issued_at"][0] == dt.datetime(2024, 10, 1, 21, 0, tzinfo=dt.UTC)
    assert frame["window_start"][0] == dt.datetime(2024, 10, 1, 14)


def test_no_part_before_the_batch_is_full_or_the_flush_time(tmp_path: Path) -> None:
    batched = ForecastLog(tmp_path / "batched", flush_seconds=60, batch_rows=100)
    batched.append(rows(60))
    time.sleep(0.5)
    assert forecast_log_parts(tmp_path / "batched") == []
    assert batched.pending_rows == 60
    batched.append(rows(40))  # the batch is full: written now, not in 60 s
    assert wait_for(lambda: len(forecast_log_parts(tmp_path / "batched")) == 1)
    assert read_forecast_log(tmp_path / "batched").collect().height == 100
    batched.close()

    timed = ForecastLog(tmp_path / "timed", flush_seconds=0.6, batch_rows=10_000)
    began = time.monotonic()
    timed.append(rows(5))
    timed.append(rows(5))
    assert forecast_log_parts(tmp_path / "timed") == []
    assert wait_for(lambda: bool(forecast_log_parts(tmp_path / "timed")))
    assert time.monotonic() - began >= 0.6
    assert len(forecast_log_parts(tmp_path / "timed")) == 1  # one part for both appends
    assert read_forecast_log(tmp_path / "timed").collect().height == 10
    timed.close()


def test_a_failing_write_leaves_no_part_and_the_rows_are_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def half_then_fail(table: Any, where: str, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1" + b"\0" * 100)  # half a file, then the disk is full
        raise OSError(28, "No space left on device")

    log = ForecastLog(tmp_path, flush_seconds=0.2)
    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with caplog.at_level(logging.WARNING, logger="crimecast.serving.forecast_log"):
        log.append(rows(7))
        assert log.flush() is False
    assert list(tmp_path.iterdir()) == []  # neither a part nor a .tmp
    assert log.pending_rows == 7
    assert "could not write a part" in caplog.text and "7 row(s) kept" in caplog.text
    monkeypatch.undo()
    log.append(rows(3))
    # The background thread retries on its own, after flush_seconds.
    assert wait_for(lambda: log.pending_rows == 0)
    log.close()
    frame = read_forecast_log(tmp_path).collect()
    assert frame.height == 10
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".parquet")] == []


def test_rows_beyond_the_cap_are_dropped_with_an_error_counting_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def fail(table: Any, where: str, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pq, "write_table", fail)
    log = ForecastLog(tmp_path, flush_seconds=60, max_pending_rows=10)
    log.append(rows(6, "a" * 32))
    log.append(rows(6, "b" * 32))
    with caplog.at_level(logging.WARNING, logger="crimecast.serving.forecast_log"):
        assert log.flush() is False
    assert log.pending_rows == 6 and log.rows_dropped == 6
    assert ("dropped 6 row(s), the oldest, to stay under 10 waiting rows" in caplog.text)
    monkeypatch.undo()
    log.close()
    assert read_forecast_log(tmp_path).collect()["request_id"].unique().to_list() == ["b" * 32]


def test_retention_deletes_the_oldest_parts_beyond_max_bytes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = ForecastLog(tmp_path, flush_seconds=60)
    for i in range(3):
        log.append(rows(50, f"{i:032d}"))
        assert log.flush()
    sizes = [p.stat().st_size for p in forecast_log_parts(tmp_path)]
    assert len(sizes) == 3
    log.max_bytes = sum(sizes) + max(sizes) // 2  # room for 3 parts and a half
    with caplog.at_level(logging.WARNING, logger="crimecast.serving.forecast_log"):
        for i in range(3, 6):
            log.append(rows(50, f"{i:032d}"))
            assert log.flush()
    parts = forecast_log_parts(tmp_path)
    assert sum(p.stat().st_size for p in parts) <= log.max_bytes
    assert len(parts) == 3
    kept = read_forecast_log(tmp_path).collect()["request_id"].unique().sort().to_list()
    assert kept == [f"{i:032d}" for i in (3, 4, 5)]  # the newest stay
    assert caplog.text.count("deleted the 1 oldest part(s)") == 3
    log.close()


def test_threads_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    log = ForecastLog(tmp_path, flush_seconds=0.05, batch_rows=50)
    threads, per_thread = 8, 300
    sent: list[list[str]] = [[] for _ in range(threads)]

    def work(k: int) -> None:
        for i in range(per_thread):
            rid = uuid.uuid4().hex
            sent[k].append(rid)
            log.append(rows(1 + i % 3, rid))

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.close()
    frame = read_forecast_log(tmp_path).collect()
    expected = threads * sum(1 + i % 3 for i in range(per_thread))
    assert frame.height == expected == log.rows_written
    assert set(frame["request_id"].unique()) == {r for ids in sent for r in ids}
    assert len(forecast_log_parts(tmp_path)) > 1


def test_close_flushes_and_is_idempotent(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    log = ForecastLog(tmp_path, flush_seconds=3600, batch_rows=10**6)
    log.append(rows(4))
    log.append(pl.DataFrame(rows(2), schema=FORECAST_LOG_SCHEMA))  # a frame works too
    log.close()
    log.close()
    assert read_forecast_log(tmp_path).collect().height == 6
    with caplog.at_level(logging.WARNING, logger="crimecast.serving.forecast_log"):
        log.append(rows(1))  # after close: not logged, never raised
    assert "is closed; 1 row(s) not logged" in caplog.text
    assert len(forecast_log_parts(tmp_path)) == 1


def test_a_frame_of_another_schema_is_refused(tmp_path: Path) -> None:
    log = ForecastLog(tmp_path)
    with pytest.raises(ValueError, match="forecast log rows must have the schema"):
        log.append(pl.DataFrame({"score": [0.5]}))
    log.close()


def test_the_log_folder_resolves_against_the_runs_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    assert forecast_log_dir("forecast_log", runs) == runs / "forecast_log"
    assert forecast_log_dir("audit/2024", runs) == runs / "audit" / "2024"
    assert forecast_log_dir(str(tmp_path / "abs"), runs) == tmp_path / "abs"
    assert forecast_log_dir("none", runs) is None
    assert forecast_log_dir(" None ", runs) is None


def test_predict_and_brief_log_the_places_they_write(served_run: ServedRun,
                                                     tmp_path: Path) -> None:
    runs, folder = str(served_run.runs), tmp_path / "log"
    predicted = runner.invoke(cli_app, [
        "predict", "--runs-dir", runs, "--at", AT, "--horizon", "1d", "--top", "4",
        "--out", str(tmp_path / "h.geojson"), "--forecast-log", str(folder)])
    assert predicted.exit_code == 0, predicted.output
    briefed = runner.invoke(cli_app, [
        "brief", "--runs-dir", runs, "--at", AT, "--top", "6", "--out",
        str(tmp_path / "brief.html"), "--forecast-log", str(folder)])
    assert briefed.exit_code == 0, briefed.output
    frame = read_forecast_log(folder).collect()
    version = served_run.summary.registration["version"]
    places = [f["properties"] for f in json.loads((tmp_path / "h.geojson").read_text())
              ["features"]]
    predict = frame.filter(pl.col("endpoint") == "predict").sort("rank")
    assert predict["unit_id"].to_list() == [p["unit_id"] for p in places]
    assert predict["rank"].to_list() == [1, 2, 3, 4]
    assert predict["score"].to_list() == pytest.approx([p["score"] for p in places], abs=1e-6)
    assert predict["model_version"].unique().to_list() == [version]
    assert predict["request_id"].n_unique() == 1
    assert predict["window_start"][0] == dt.datetime(2023, 8, 1, 6)
    assert predict["window_end"][0] == dt.datetime(2023, 8, 2, 6)
    assert predict["horizon"].unique().to_list() == ["1d"]
    brief = frame.filter(pl.col("endpoint") == "brief")
    assert brief.height == 6 and brief["horizon"].unique().to_list() == ["8h"]
    for part in (predict, brief):
        assert part["role"].unique().to_list() == ["champion"]
        assert part["served"].all()
    assert predict["request_id"][0] != brief["request_id"][0]


def test_predict_logs_under_the_runs_folder_unless_the_log_is_off(
        served_run: ServedRun, tmp_path: Path) -> None:
    runs = str(served_run.runs)
    default = served_run.runs / "forecast_log"
    before = set(forecast_log_parts(default))
    args = ["predict", "--runs-dir", runs, "--at", AT, "--top", "3", "--out",
            str(tmp_path / "h.geojson")]
    assert runner.invoke(cli_app, args).exit_code == 0
    new = sorted(set(forecast_log_parts(default)) - before)
    assert len(new) == 1 and pl.read_parquet(new[0]).height == 3
    off = runner.invoke(cli_app, [*args, "--forecast-log", "none"])
    assert off.exit_code == 0, off.output
    assert sorted(set(forecast_log_parts(default)) - before) == new


def test_rows_that_do_not_fit_the_schema_are_dropped_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = rows(2, "b" * 32)
    bad[1]["rank"] = "first"
    with caplog.at_level(logging.ERROR, logger="crimecast.serving.forecast_log"), \
            ForecastLog(tmp_path) as log:
        log.append(rows(3, "a" * 32))
        log.append(bad)
        log.append(rows(4, "c" * 32))
    frame = read_forecast_log(tmp_path).collect()
    assert frame.group_by("request_id").len().sort("request_id").rows() == [
        ("a" * 32, 3), ("c" * 32, 4)]
    assert "dropped 2 row(s) that do not fit the schema" in caplog.text


def test_stamped_rows_expand_to_one_copy_of_the_window_per_answer(tmp_path: Path) -> None:
    places = rows(4)
    template = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k not in STAMP_COLUMNS} for r in places],
        schema=TEMPLATE_SCHEMA)
    times = [dt.datetime(2024, 10, 1, 21, 0, i, tzinfo=dt.UTC) for i in range(3)]
    with ForecastLog(tmp_path) as log:
        for i, when in enumerate(times):
            log.append(StampedRows(template, (when, "hotspots", f"{i:032d}",
                                              "challenger" if i else "champion", i == 0)))
        log.append(rows(2, "d" * 32))
        with pytest.raises(ValueError, match="a window template must have the schema"):
            log.append(StampedRows(template.drop_columns(["rank"]), tuple(range(5))))
    frame = read_forecast_log(tmp_path).collect().sort("request_id", "rank")
    assert frame.height == 3 * 4 + 2
    first = frame.filter(pl.col("request_id") == f"{0:032d}")
    expected = pl.DataFrame(places, schema=FORECAST_LOG_SCHEMA).with_columns(
        request_id=pl.lit(f"{0:032d}"))
    assert first.equals(expected.select(first.columns))
    second = frame.filter(pl.col("request_id") == f"{1:032d}")
    assert second["issued_at"].unique().to_list() == [times[1]]
    assert second["role"].unique().to_list() == ["challenger"]
    assert not second["served"].any()
    assert second["unit_id"].to_list() == [r["unit_id"] for r in places]
