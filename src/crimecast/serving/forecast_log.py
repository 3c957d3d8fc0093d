"""The forecast log: every forecast served, appended to local Parquet part files.

Each answer of ``/hotspots``, ``/invocations``, ``crimecast predict`` and ``crimecast
brief`` becomes one row per place returned (or per scored ``/invocations`` row), with
the model that made it, whether it was returned to the caller (``served``) or scored
in shadow, and the window it covers. It is the audit trail of what the service said,
and the input of realised-performance monitoring (``crimecast compare`` and
``crimecast monitor`` read :data:`FORECAST_LOG_SCHEMA`).

:class:`ForecastLog` keeps appends off the disk: :meth:`ForecastLog.append` puts rows
on an in-memory buffer, and a background thread writes one Parquet part per flush
(every ``flush_seconds``, or as soon as ``batch_rows`` are waiting), to a ``.tmp`` file
renamed into place, so a crash never leaves a half-written part. Past ``max_bytes``
the oldest parts are deleted. A disk error keeps the rows for the next attempt, up to
``max_pending_rows``; nothing a log does ever fails the caller.

The writer shares two cores with a latency-bound server, so it builds each part with
PyArrow on its own thread (one core, no thread pool) and mostly in vectorised code: a
window's places are one :class:`StampedRows` (a table built once per window, plus the
request's id, time and role), expanded when the part is written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

_COLUMNS: dict[str, pl.DataType] = {
    "issued_at": pl.Datetime("us", "UTC"),  # when the answer was issued
    "endpoint": pl.String(),  # hotspots | invocations | predict | brief
    "request_id": pl.String(),  # uuid4 hex, one per request or command
    "role": pl.String(),  # champion | challenger
    "served": pl.Boolean(),  # False: scored in shadow, never returned
    "model_name": pl.String(),
    "model_version": pl.Int64(),  # null: an unregistered model
    "run_id": pl.String(),
    "crimecast_run_id": pl.String(),
    "crime_types": pl.String(),
    "spatial_unit": pl.String(),
    "horizon": pl.String(),  # null for invocations
    "window_start": pl.Datetime("us"),  # the data's local clock; null for invocations
    "window_end": pl.Datetime("us"),
    "data_through": pl.Datetime("us"),  # null when unknown
    "unit_id": pl.String(),  # null for invocations
    "rank": pl.Int32(),  # the place's rank; for invocations the row's index, from 0
    "score": pl.Float64(),
    "expected_count": pl.Float64(),  # null for invocations
}
#: The log's columns, in order. Fixed: other commands read it; extend only by appending.
FORECAST_LOG_SCHEMA = pl.Schema(_COLUMNS)
ARROW_SCHEMA: pa.Schema = pl.DataFrame(schema=FORECAST_LOG_SCHEMA).to_arrow().schema
#: The columns one answer sets for all its rows; the others make a window's template.
STAMP_COLUMNS = ("issued_at", "endpoint", "request_id", "role", "served")
TEMPLATE_SCHEMA = pa.schema([f for f in ARROW_SCHEMA if f.name not in STAMP_COLUMNS])
ENDPOINTS = ("hotspots", "invocations", "predict", "brief")
ROLES = ("champion", "challenger")
GIB = 1024**3
PART_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
STALE_TMP_S = 3600.0  # a .tmp older than this is a crashed writer's, removed on open
RESCAN_S = 60.0  # how often retention re-reads the folder (other writers' parts)
YIELD_ROWS = 256  # row mappings converted between two pauses for other threads

_sequence = itertools.count()


@dataclass(frozen=True, eq=False)
class StampedRows:
    """The rows of one answer about a window: ``template`` (the window's places, every
    column but :data:`STAMP_COLUMNS`, shared by all the answers about it) and ``stamp``
    (those columns' values, in that order)."""

    template: pa.Table
    stamp: tuple[Any, ...]

    def __len__(self) -> int:
        return int(self.template.num_rows)


Rows = pl.DataFrame | StampedRows | Sequence[Mapping[str, Any]]


class ForecastLog:
    """An append-only forecast log in ``directory`` (see the module docstring).

    ``append`` is cheap and thread-safe; ``close`` flushes what is left and stops the
    writer thread (idempotent). ``max_pending_rows`` bounds what a failing disk keeps.
    """

    def __init__(self, directory: Path | str, *, flush_seconds: float = 1.0,
                 batch_rows: int = 10_000, max_bytes: int = GIB,
                 max_pending_rows: int | None = None) -> None:
        if flush_seconds <= 0:
            raise ValueError(f"flush_seconds must be > 0; got {flush_seconds}.")
        if batch_rows < 1 or max_bytes < 1:
            raise ValueError(f"batch_rows and max_bytes must be >= 1; got {batch_rows} and "
                             f"{max_bytes}.")
        self.directory = Path(directory)
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.max_bytes = max_bytes
        self.max_pending_rows = max_pending_rows or max(10 * batch_rows, 100_000)
        self._lock = threading.Lock()  # guards the buffer
        self._write_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._pending: list[Rows] = []
        self._rows = 0
        self._since = 0.0  # monotonic time the oldest buffered row arrived
        self._retry_at = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._parts: OrderedDict[str, int] = OrderedDict()  # name -> bytes, oldest first
        self._scanned = 0.0
        self.rows_written = 0
        self.rows_dropped = 0
        self._open_folder()

    # ------------------------------------------------------------------ appending

    def append(self, rows: Rows) -> None:
        """Buffer ``rows`` (a frame in :data:`FORECAST_LOG_SCHEMA`, :class:`StampedRows`,
        or row mappings with the schema's keys); written by the background thread. Never
        touches the disk."""
        if isinstance(rows, pl.DataFrame) and rows.schema != FORECAST_LOG_SCHEMA:
            raise ValueError(f"forecast log rows must have the schema {FORECAST_LOG_SCHEMA}; "
                             f"got {rows.schema}.")
        if isinstance(rows, StampedRows) and not rows.template.schema.equals(TEMPLATE_SCHEMA):
            raise ValueError(f"a window template must have the schema {TEMPLATE_SCHEMA}; got "
                             f"{rows.template.schema}.")
        n = len(rows)
        if n == 0:
            return
        with self._lock:
            if self._closed:
                self.rows_dropped += n
                logger.warning("forecast log %s is closed; %d row(s) not logged",
                               self.directory, n)
                return
            if not self._rows:
                self._since = time.monotonic()
            self._pending.append(rows)
            self._rows += n
            wake = self._rows >= self.batch_rows or self._rows == n
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crimecast-forecast-log",
                                                daemon=True)
                self._thread.start()
        if wake:  # a full batch, or a first row (the thread sets its deadline)
            self._wake.set()

    @property
    def pending_rows(self) -> int:
        """Rows buffered, not yet written."""
        return self._rows

    # ------------------------------------------------------------------ writing

    def flush(self) -> bool:
        """Write every buffered row now, as one part (on the caller's thread). True when
        nothing is left buffered; on a disk error the rows stay buffered (up to the cap)."""
        with self._write_lock:
            with self._lock:
                taken, count = self._pending, self._rows
                self._pending, self._rows = [], 0
            if not taken:
                return True
            table = _materialise(taken)
            try:
                if table.num_rows:
                    self._write_part(table)
            except OSError as exc:
                self._keep(taken, count, exc)
                return False
            self.rows_written += table.num_rows
            self._retain()
            return True

    def _keep(self, taken: list[Rows], count: int, exc: OSError) -> None:
        """Put rows that failed to write back in front of the buffer, up to the cap."""
        with self._lock:
            self._pending = taken + self._pending
            self._rows += count
            self._since = time.monotonic()
            self._retry_at = self._since + self.flush_seconds
            dropped = 0
            while self._rows > self.max_pending_rows and len(self._pending) > 1:
                oldest = self._pending.pop(0)
                self._rows -= len(oldest)
                dropped += len(oldest)
            self.rows_dropped += dropped
            waiting = self._rows
        self._wake.set()  # the writer thread may be idle: it retries after flush_seconds
        logger.warning("forecast log: could not write a part to %s (%s); %d row(s) kept for "
                       "the next attempt", self.directory, exc, waiting)
        if dropped:
            logger.error("forecast log: dropped %d row(s), the oldest, to stay under %d "
                         "waiting rows while %s cannot be written", dropped,
                         self.max_pending_rows, self.directory)

    def _write_part(self, table: pa.Table) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"part-{stamp}-{os.getpid()}-{next(_sequence):06d}{PART_SUFFIX}"
        final = self.directory / name
        tmp = self.directory / f".{name}{TMP_SUFFIX}"
        try:
            pq.write_table(table, str(tmp), compression="zstd")
            descriptor = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._parts[name] = final.stat().st_size

    def _retain(self) -> None:
        """Delete the oldest parts while the parts total more than ``max_bytes`` (the
        newest part always stays)."""
        if sum(self._parts.values()) <= self.max_bytes:
            return
        if time.monotonic() - self._scanned > RESCAN_S:
            self._scan()  # other writers' parts count too
        deleted: list[str] = []
        total = sum(self._parts.values())
        while total > self.max_bytes and len(self._parts) > 1:
            name, size = self._parts.popitem(last=False)
            total -= size
            try:
                (self.directory / name).unlink()
            except FileNotFoundError:
                pass  # another writer removed it
            except OSError as exc:
                logger.warning("forecast log: could not delete %s: %s", name, exc)
                continue
            deleted.append(name)
        if deleted:
            logger.warning("forecast log %s passed %d bytes: deleted the %d oldest part(s), "
                           "%s to %s", self.directory, self.max_bytes, len(deleted),
                           deleted[0], deleted[-1])

    def _scan(self) -> None:
        try:
            found = sorted((p.name, p.stat().st_size)
                           for p in self.directory.glob(f"*{PART_SUFFIX}"))
        except OSError:
            return
        self._parts = OrderedDict(found)
        self._scanned = time.monotonic()

    def _open_folder(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            now = time.time()
            for tmp in self.directory.glob(f".*{TMP_SUFFIX}"):
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink(missing_ok=True)
        except OSError as exc:  # the writer retries; never fail the server or command
            logger.warning("forecast log: cannot use %s yet: %s", self.directory, exc)
        self._scan()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                if self._rows >= self.batch_rows:
                    due = time.monotonic()
                elif self._rows:
                    due = self._since + self.flush_seconds
                else:
                    due = None
                if due is not None:
                    due = max(due, self._retry_at)
            # Idle, it still looks again every flush_seconds (rows put back by a failed
            # flush on another thread wake it too).
            timeout = self.flush_seconds if due is None else due - time.monotonic()
            if timeout > 0:
                self._wake.wait(timeout)
                self._wake.clear()
                continue
            try:
                self.flush()
            except Exception:  # never let the writer die: the next flush tries again
                logger.exception("forecast log: unexpected error while writing %s",
                                 self.directory)
                time.sleep(self.flush_seconds)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Write what is buffered and stop the writer thread (a second call does nothing).
        Rows that still cannot be written are dropped, with an error log counting them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        if not self.flush():
            with self._lock:
                lost, self._pending, self._rows = self._rows, [], 0
            self.rows_dropped += lost
            logger.error("forecast log: dropped %d row(s) at close: %s cannot be written",
                         lost, self.directory)

    def __enter__(self) -> ForecastLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _materialise(parts: list[Rows]) -> pa.Table:
    """One table in :data:`ARROW_SCHEMA`; a part that does not convert is dropped (logged).

    Row mappings are converted ``YIELD_ROWS`` at a time with a pause in between (that
    holds the GIL, which the server's event loop must not wait long for); stamped rows
    are grouped by template and expanded in vectorised code."""
    tables: list[pa.Table] = []
    batch: list[Sequence[Mapping[str, Any]]] = []
    size = 0
    stamped: dict[int, tuple[pa.Table, list[tuple[Any, ...]]]] = {}
    for part in parts:
        if isinstance(part, StampedRows):
            stamped.setdefault(id(part.template), (part.template, []))[1].append(part.stamp)
        elif isinstance(part, pl.DataFrame):
            tables.append(part.to_arrow().cast(ARROW_SCHEMA))
        else:
            batch.append(part)
            size += len(part)
            if size >= YIELD_ROWS:
                tables += _convert(batch)
                batch, size = [], 0
                time.sleep(0)  # let a waiting thread (the event loop) have the GIL
    tables += _convert(batch)
    tables += [_expand(template, stamps) for template, stamps in stamped.values()]
    if not tables:
        return ARROW_SCHEMA.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _convert(batch: list[Sequence[Mapping[str, Any]]]) -> list[pa.Table]:
    """Row mappings as tables: all at once, else part by part (dropping those that do
    not fit the schema, with an error log)."""
    if not batch:
        return []
    try:
        return [pa.Table.from_pylist([row for part in batch for row in part],
                                     schema=ARROW_SCHEMA)]
    except (pa.ArrowException, TypeError, ValueError):
        pass
    tables = []
    for part in batch:
        try:
            tables.append(pa.Table.from_pylist(list(part), schema=ARROW_SCHEMA))
        except (pa.ArrowException, TypeError, ValueError) as exc:
            logger.error("forecast log: dropped %d row(s) that do not fit the schema: %s",
                         len(part), exc)
    return tables


def _expand(template: pa.Table, stamps: list[tuple[Any, ...]]) -> pa.Table:
    """``template`` once per stamp, each copy with its stamp's columns."""
    rows, copies = template.num_rows, len(stamps)
    which = pa.array(np.repeat(np.arange(copies), rows))
    body = template.take(pa.array(np.tile(np.arange(rows), copies)))
    stamp = {name: pa.array([s[i] for s in stamps], ARROW_SCHEMA.field(name).type).take(which)
             for i, name in enumerate(STAMP_COLUMNS)}
    return pa.Table.from_arrays([stamp[name] if name in stamp else body.column(name)
                                 for name in ARROW_SCHEMA.names], schema=ARROW_SCHEMA)


def forecast_log_parts(directory: Path | str) -> list[Path]:
    """The log's part files, oldest first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{PART_SUFFIX}"))


def read_forecast_log(directory: Path | str) -> pl.LazyFrame:
    """The forecast log in ``directory`` as one lazy frame (:data:`FORECAST_LOG_SCHEMA`);
    an empty frame with that schema when no part exists."""
    parts = forecast_log_parts(directory)
    if not parts:
        return pl.LazyFrame(schema=FORECAST_LOG_SCHEMA)
    return pl.scan_parquet(parts).select(
        pl.col(name).cast(dtype) for name, dtype in FORECAST_LOG_SCHEMA.items())
