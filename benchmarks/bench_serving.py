"""Benchmark: load on `crimecast serve` from a generator on loopback.

The server runs as a separate process (``python -m crimecast.cli serve``) on the champion
of a ``crimecast demo`` run; the load generator is a minimal asyncio-streams HTTP/1.1
client over a pool of persistent keep-alive connections (uvloop when installed).

Open loop (coordinated-omission safe): request i is scheduled at t0 + i/rate and latency
is measured from that scheduled time, so time spent queued behind a slow server (or
waiting for a free connection of the bounded pool) counts; the service time from the
actual send is reported too. Closed loop: N connections send back to back, which gives
the maximum throughput. Each run: a warm-up (discarded), then the measured window.

Scenarios (``--only`` takes the keys):
  null / null-closed           a trivial asyncio HTTP server: the generator's own floor
  inv1-json / inv1-json-closed /invocations, 1 real feature row, JSON in and out
  inv1-csv                     /invocations, 1 row, text/csv in and out
  inv1000-json / -closed       /invocations, 1,000 rows, JSON (also rows/s)
  hot-warm / hot-warm-closed   /hotspots for one window (served from the response cache)
  hot-cold                     /hotspots for a new window (hour) per request: the compute

Each statistic is the median over ``--repeats`` runs, with the min..max range. The
target is p99 <= 20 ms at 200 rps for inv1-json, inv1-csv and hot-warm.

Server modes (``--modes``), each a fresh ``crimecast serve`` process:
  plain   no forecast log (``--forecast-log none``): every scenario
  log     the forecast log on (every answer appended to OUT/forecast_log_bench)
  shadow  the log plus a challenger scoring every request in shadow (a second LightGBM
          trained on the demo data with another seed, registered with the alias
          ``challenger``; the champion shadows itself if that run fails the gate)
The log and shadow modes run ``--mode-scenarios`` (the target scenarios) and report
what the log holds: request ids logged against 2xx answers sent.

Usage: .venv/bin/python benchmarks/bench_serving.py [--duration 20] [--repeats 3]
       [--rate 200] [--out bench_out/serving_demo] [--skip-demo] [--port 18080]
       [--modes plain,log,shadow]
Writes bench_out/serving.json (``--json``); the server's log is OUT/serve-MODE.log.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGET_P99_MS = 20.0
VALIDATE_EVERY = 25  # check the body of every 25th request (and of the first)
REQUEST_TIMEOUT_S = 60.0  # the server gives up at 55 s
WARM_AT = "2024-10-01T14:00"
MODES = ("plain", "log", "shadow")
TARGETS = "inv1-json,inv1-csv,hot-warm"
COLD_FIRST = dt.datetime(2024, 9, 1)  # cold windows: successive hours from here
TOP = 20
RequestError = (OSError, EOFError, asyncio.LimitOverrunError, TimeoutError, ValueError)

# A do-nothing HTTP/1.1 keep-alive server: measures what the generator itself adds.
NULL_SERVER = r"""
import asyncio, sys
REPLY = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            size = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    size = int(line[15:])
            if size:
                await reader.readexactly(size)
            writer.write(REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


# --------------------------------------------------------------------------- HTTP client


class Connection:
    """One persistent HTTP/1.1 connection; one request at a time, reopened after errors."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send a fully built request; return (status, body)."""
        if self.writer is None:
            await self.open()
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            body = await _read_chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body, close = await reader.read(), True
        if close:
            self.close()
        return status, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def build_request(method: str, path: str, port: int, body: bytes = b"",
                  content_type: str | None = None, accept: str | None = None) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: bench_serving"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if accept:
        lines.append(f"Accept: {accept}")
    if method == "POST" or body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    """One load shape: which request, how fast, and how to check a response."""

    key: str
    title: str
    mode: str  # "open" (fixed rate) or "closed" (back to back)
    rate: float | None
    connections: int
    make: Callable[[int], bytes]
    check: Callable[[bytes], str | None]
    port: int
    rows: int = 1
    target: bool = False  # the p99 <= 20 ms at 200 rps target applies
    server: bool = True  # False: the null server (no crimecast CPU to read)


@dataclass
class Record:
    sched: float
    sent: float
    done: float
    status: int  # 0: no HTTP response (socket error, timeout)
    error: str | None


@dataclass
class RunState:
    records: list[Record] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)  # error kind -> first body seen


def check_predictions(rows: int) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        got = len(json.loads(body).get("predictions", []))
        return None if got == rows else f"{got} predictions, expected {rows}"
    return check


def check_csv(rows: int) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        lines = body.decode().splitlines()
        if len(lines) != rows or lines[0].count(",") != 1:
            return f"{len(lines)} CSV lines (first {lines[:1]}), expected {rows} 'score,flag'"
        return None
    return check


def check_geojson(body: bytes) -> str | None:
    doc = json.loads(body)
    n = len(doc.get("features", []))
    if doc.get("type") != "FeatureCollection" or not 1 <= n <= TOP:
        return f"type {doc.get('type')!r} with {n} features"
    return None


def check_any(_: bytes) -> str | None:
    return None


def cycle(requests: list[bytes]) -> Callable[[int], bytes]:
    return lambda i: requests[i % len(requests)]


def scenarios(args: argparse.Namespace, port: int, null_port: int, features: list[str],
              rows: list[dict[str, Any]]) -> list[Scenario]:
    """Every scenario, in run order."""
    one_json = [build_request("POST", "/invocations", port,
                              json.dumps({"instances": [r]}, separators=(",", ":")).encode(),
                              "application/json", "application/json") for r in rows]
    one_csv = [build_request("POST", "/invocations", port,
                             (",".join("" if r[f] is None else repr(r[f]) for f in features)
                              + "\n").encode(), "text/csv", "text/csv") for r in rows]
    bulk = build_request("POST", "/invocations", port,
                         json.dumps({"instances": rows}, separators=(",", ":")).encode(),
                         "application/json", "application/json")
    warm = build_request("GET", f"/hotspots?at={WARM_AT}&horizon=8h&top={TOP}", port)
    null = [build_request("POST", "/invocations", null_port, r[r.index(b"\r\n\r\n") + 4:],
                          "application/json") for r in one_json]
    cold_counter = iter(range(10**9))  # shared by every repeat: a window is never reused

    def cold(_: int) -> bytes:
        at = COLD_FIRST + dt.timedelta(hours=next(cold_counter))
        return build_request("GET", f"/hotspots?at={at:%Y-%m-%dT%H:%M}&horizon=8h&top={TOP}",
                             port)

    rate, conns, closed = args.rate, args.connections, args.closed_connections
    n = len(rows)
    return [
        Scenario("null", "null server (generator floor), 1-row JSON", "open", rate, conns,
                 cycle(null), check_any, null_port, server=False),
        Scenario("null-closed", "null server (generator floor), 1-row JSON", "closed", None,
                 closed, cycle(null), check_any, null_port, server=False),
        Scenario("inv1-json", "1. /invocations 1 row JSON", "open", rate, conns,
                 cycle(one_json), check_predictions(1), port, target=True),
        Scenario("inv1-json-closed", "1. /invocations 1 row JSON", "closed", None, closed,
                 cycle(one_json), check_predictions(1), port),
        Scenario("inv1-csv", "2. /invocations 1 row CSV->CSV", "open", rate, conns,
                 cycle(one_csv), check_csv(1), port, target=True),
        Scenario("inv1000-json", f"3. /invocations {n:,} rows JSON", "open", args.bulk_rate,
                 conns, cycle([bulk]), check_predictions(n), port, rows=n),
        Scenario("inv1000-json-closed", f"3. /invocations {n:,} rows JSON", "closed", None,
                 closed, cycle([bulk]), check_predictions(n), port, rows=n),
        Scenario("hot-warm", "4. /hotspots warm (one window)", "open", rate, conns,
                 cycle([warm]), check_geojson, port, target=True),
        Scenario("hot-warm-closed", "4. /hotspots warm (one window)", "closed", None, closed,
                 cycle([warm]), check_geojson, port),
        Scenario("hot-cold", "5. /hotspots cold (new window each)", "open", args.cold_rate,
                 conns, cold, check_geojson, port),
    ]


# --------------------------------------------------------------------------- load loops


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (all threads), from /proc; None elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Mark:
    wall: float
    client_cpu: float
    server_cpu: float | None

    @classmethod
    def now(cls, pid: int | None) -> Mark:
        return cls(time.perf_counter(), time.process_time(), _cpu_seconds(pid))


async def exchange(conn: Connection, sc: Scenario, state: RunState, i: int,
                   sched: float) -> Record:
    """One request on ``conn``; never raises for a server or socket problem."""
    raw = sc.make(i)
    sent = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            status, body = await conn.request(raw)
    except RequestError as exc:
        conn.close()
        kind = "timeout" if isinstance(exc, TimeoutError) else f"socket {type(exc).__name__}"
        state.samples.setdefault(kind, str(exc)[:300])
        return Record(sched, sent, time.perf_counter(), 0, kind)
    done = time.perf_counter()
    error = None if 200 <= status < 300 else f"HTTP {status}"
    if error is None and i % VALIDATE_EVERY == 0:
        try:
            problem = sc.check(body)
        except (ValueError, UnicodeDecodeError, AttributeError, IndexError) as exc:
            problem = f"unparsable: {exc}"
        if problem is not None:
            error = "invalid body"
            state.samples.setdefault(error, problem[:300])
    elif error is not None:
        state.samples.setdefault(error, body[:300].decode(errors="replace"))
    return Record(sched, sent, done, status, error)


async def _pool(sc: Scenario, n: int) -> list[Connection]:
    conns = [Connection(sc.port) for _ in range(n)]
    await asyncio.gather(*(c.open() for c in conns))
    return conns


async def open_loop(sc: Scenario, warmup: float, duration: float,
                    pid: int | None) -> dict[str, Any]:
    """Fixed rate: request i is due at t0 + i/rate; a free pooled connection sends it."""
    assert sc.rate is not None
    rate = sc.rate
    conns = await _pool(sc, sc.connections)
    state = RunState()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def worker(conn: Connection) -> None:
        while (item := await queue.get()) is not None:
            state.records.append(await exchange(conn, sc, state, *item))

    workers = [asyncio.create_task(worker(c)) for c in conns]
    first = round(warmup * rate)
    total = first + round(duration * rate)
    t0 = time.perf_counter() + 0.05
    start = None
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if i == first:
            start = Mark.now(pid)
        queue.put_nowait((i, due))
    for _ in workers:
        queue.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=REQUEST_TIMEOUT_S + max(30.0, duration))
    for task in pending:
        task.cancel()
    end = Mark.now(pid)
    for conn in conns:
        conn.close()
    assert start is not None
    window = t0 + first / rate
    return summarise(sc, state, window, window + duration, duration, start, end,
                     scheduled=total - first)


async def closed_loop(sc: Scenario, warmup: float, duration: float,
                      pid: int | None) -> dict[str, Any]:
    """Back to back on every connection; throughput is completions in the window / duration."""
    conns = await _pool(sc, sc.connections)
    state = RunState()
    t0 = time.perf_counter()
    window, stop = t0 + warmup, t0 + warmup + duration
    marks: list[Mark] = []

    async def worker(k: int, conn: Connection) -> None:
        i = k
        while (now := time.perf_counter()) < stop:
            state.records.append(await exchange(conn, sc, state, i, now))
            i += len(conns)

    async def mark() -> None:
        await asyncio.sleep(window - time.perf_counter())
        marks.append(Mark.now(pid))

    await asyncio.gather(mark(), *(worker(k, c) for k, c in enumerate(conns)))
    end = Mark.now(pid)
    for conn in conns:
        conn.close()
    return summarise(sc, state, window, stop, duration, marks[0], end)


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def summarise(sc: Scenario, state: RunState, window: float, stop: float, duration: float,
              start: Mark, end: Mark, scheduled: int | None = None) -> dict[str, Any]:
    """Statistics of the requests due (open) or sent (closed) inside [window, stop).

    ``scheduled``: how many were due in the window (open loop); those with no record
    were still queued or in flight at the drain timeout and count as errors.
    """
    measured = [r for r in state.records if window <= r.sched < stop]
    unfinished = max(0, scheduled - len(measured)) if scheduled is not None else 0
    answered = [r for r in measured if r.status]
    ok = [r for r in measured if r.error is None]
    latency = np.array([r.done - r.sched for r in answered]) * 1000
    service = np.array([r.done - r.sent for r in answered]) * 1000
    queued = np.array([r.sent - r.sched for r in answered]) * 1000
    if sc.mode == "open":
        last = max((r.done for r in ok), default=stop)
        achieved = len(ok) / max(duration, last - window)
    else:
        achieved = sum(window <= r.done < stop for r in ok) / duration
    errors = Counter(r.error for r in measured if r.error is not None)
    if unfinished:
        errors["unfinished at the drain timeout"] += unfinished
    span = end.wall - start.wall
    client_cpu = end.client_cpu - start.client_cpu
    server_cpu = (end.server_cpu - start.server_cpu
                  if end.server_cpu is not None and start.server_cpu is not None else None)
    completed = sum(r.done >= start.wall for r in state.records) or 1
    return {
        "target_rps": sc.rate, "achieved_rps": round(achieved, 2),
        "rows_per_s": round(achieved * sc.rows, 1),
        "requests": len(measured) + unfinished, "errors": sum(errors.values()),
        "p50_ms": _pct(latency, 50), "p90_ms": _pct(latency, 90), "p99_ms": _pct(latency, 99),
        "max_ms": round(float(latency.max()), 3) if latency.size else None,
        "service_p50_ms": _pct(service, 50), "service_p99_ms": _pct(service, 99),
        "client_queue_p99_ms": _pct(queued, 99),
        "server_cpu_pct": round(100 * server_cpu / span, 1) if server_cpu is not None else None,
        "client_cpu_pct": round(100 * client_cpu / span, 1),
        "client_cpu_us_per_request": round(1e6 * client_cpu / completed, 1),
        # every 2xx answer, warm-up included: what the forecast log should hold
        "answered_total": sum(200 <= r.status < 300 for r in state.records),
        "error_kinds": dict(errors), "error_samples": state.samples,
    }


# --------------------------------------------------------------------------- processes


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) != 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CRIMECAST_TOKEN", None)  # a token would make every request a 401
    return env


def run_demo(out: Path) -> None:
    """``crimecast demo --out OUT`` (synthetic data, pipeline, champion); about 30 s."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    print(f"running crimecast demo --out {out} (log: {log}) ...", flush=True)
    began = time.perf_counter()
    with log.open("wb") as handle:
        done = subprocess.run([sys.executable, "-m", "crimecast.cli", "demo", "--out", str(out)],
                              stdout=handle, stderr=subprocess.STDOUT, env=_env(), check=False)
    if done.returncode != 0:
        sys.exit(f"crimecast demo failed (exit {done.returncode}):\n{_tail(log)}")
    print(f"  demo finished in {time.perf_counter() - began:.1f} s", flush=True)


def start_server(runs: Path, port: int, log: Path,
                 extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``crimecast serve`` (with ``extra`` flags) in its own process, logging to
    ``log``."""
    if not _free(port):
        sys.exit(f"port {port} on {HOST} is already in use; pass --port N.")
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "crimecast.cli", "serve", "--runs-dir", str(runs),
             "--host", HOST, "--port", str(port), *(extra or [])],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env())


def ensure_challenger(out: Path, runs: Path) -> str:
    """A ``--challenger`` for the shadow mode: the version holding the alias
    ``challenger``, else a new run on the demo data with another LightGBM seed (about a
    minute; the feature step is reused), promoted to it. Falls back to the champion."""
    from crimecast.config import load_settings
    from crimecast.pipeline.run import run_pipeline
    from crimecast.registry.store import ModelRegistry

    registry = ModelRegistry(state_dir=runs / ".mlflow")
    if any("challenger" in v.aliases for v in registry.list_versions()):
        return "challenger"
    raw = sorted(out.glob("synthetic_lapd_*.csv"))
    if not raw:
        print("no demo CSV to train a challenger on: the champion shadows itself", flush=True)
        return "champion"
    print("training a challenger (LightGBM, random_state 8) on the demo data ...", flush=True)
    began = time.perf_counter()
    settings = (load_settings(None).with_overrides("pipeline", runs_dir=str(runs))
                .with_overrides("models", random_state=8))
    summary = run_pipeline(settings, [str(raw[-1])], schema="lapd")
    version = summary.registration.get("version") if summary.registration else None
    if version is None:
        print("the challenger run did not pass the gate: the champion shadows itself",
              flush=True)
        return "champion"
    registry.promote(int(version), "challenger")
    print(f"  challenger version {version} in {time.perf_counter() - began:.0f} s", flush=True)
    return "challenger"


def mode_flags(mode: str, out: Path, challenger: str | None) -> list[str]:
    """The ``crimecast serve`` flags of a server mode (the log folder starts empty)."""
    folder = out / "forecast_log_bench"
    shutil.rmtree(folder, ignore_errors=True)
    if mode == "plain":
        return ["--forecast-log", "none"]
    flags = ["--forecast-log", str(folder)]
    return [*flags, "--challenger", challenger or "challenger"] if mode == "shadow" else flags


def log_contents(out: Path) -> dict[str, Any]:
    """What the benchmark's forecast log holds once the server has stopped."""
    import polars as pl

    folder = out / "forecast_log_bench"
    parts = sorted(folder.glob("*.parquet"))
    if not parts:
        return {"parts": 0, "rows": 0, "request_ids": 0, "bytes": 0}
    frame = pl.read_parquet(parts, columns=["request_id", "served"])
    return {"parts": len(parts), "rows": frame.height,
            "request_ids": frame["request_id"].n_unique(),
            "shadow_rows": int((~frame["served"]).sum()),
            "bytes": sum(p.stat().st_size for p in parts)}


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path,
               timeout: float = 180.0) -> float:
    """Poll GET /ping until 200 (503 while loading); seconds from now."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode} while starting:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=5) as reply:
                if reply.status == 200:
                    return time.perf_counter() - began
        except (urllib.error.URLError, OSError):
            pass  # 503 (loading) raises HTTPError, a closed port URLError
        time.sleep(0.2)
    sys.exit(f"the server did not answer /ping with 200 within {timeout:.0f} s:\n{_tail(log)}")


def start_null_server() -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen([sys.executable, "-c", NULL_SERVER], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        sys.exit("the null server did not start")
    return proc, int(line)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a child process (SIGTERM, then SIGKILL after 15 s)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load_rows(runs: Path, run_id: str | None, features: list[str],
              n: int) -> list[dict[str, Any]]:
    """The last ``n`` rows of the served run's feature panel (NaN as None)."""
    import polars as pl

    path = runs / str(run_id) / "process" / "features.parquet"
    if not path.is_file():
        found = sorted(p for p in runs.glob("*/process/features.parquet")
                       if not p.parent.parent.name.startswith("."))
        if not found:
            sys.exit(f"no features.parquet under {runs}/<run>/process")
        path = found[-1]
    frame = pl.read_parquet(path, columns=features).tail(n)
    floats = [c for c, t in frame.schema.items() if t.is_float()]
    return frame.with_columns(pl.col(floats).fill_nan(None)).to_dicts()


# --------------------------------------------------------------------------- report


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max over repeats of each numeric statistic."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) or value is None:
            values = [r[key] for r in runs if r[key] is not None]
            out[key] = ({"median": statistics.median(values), "min": min(values),
                         "max": max(values)} if values else None)
    errors: Counter[str] = Counter()
    for r in runs:
        errors.update(r["error_kinds"])
    out["error_kinds"] = dict(errors)
    out["error_samples"] = {k: v for r in runs for k, v in r["error_samples"].items()}
    return out


def _cell(stat: dict[str, Any] | None, digits: int = 1) -> str:
    if stat is None:
        return "-"
    median = f"{stat['median']:,.{digits}f}"
    if stat["min"] == stat["max"]:
        return median
    return f"{median} ({stat['min']:,.{digits}f}..{stat['max']:,.{digits}f})"


def meets(sc: Scenario, agg: dict[str, Any]) -> str:
    """'yes'/'NO' for the p99 <= 20 ms target (median p99, no errors, rate held)."""
    if not sc.target:
        return ""
    p99, rate = agg["p99_ms"], agg["achieved_rps"]
    ok = (p99 is not None and p99["median"] <= TARGET_P99_MS and agg["errors"]["max"] == 0
          and rate["median"] >= 0.99 * (sc.rate or 0))
    return "yes" if ok else "NO"


def table(rows: list[tuple[Scenario, dict[str, Any]]]) -> str:
    head = ("| scenario | loop | target rps | achieved rps | requests | errors | p50 ms | "
            "p90 ms | p99 ms | max ms | service p50 / p99 ms | server CPU % | client CPU % "
            f"| p99 <= {TARGET_P99_MS:g} ms |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for sc, agg in rows:
        loop = (f"open, {sc.connections} conns" if sc.mode == "open"
                else f"closed, {sc.connections} conns")
        service = (f"{_cell(agg['service_p50_ms'])} / {_cell(agg['service_p99_ms'])}")
        lines.append(
            f"| {sc.title} | {loop} | {f'{sc.rate:g}' if sc.rate else 'max'} | "
            f"{_cell(agg['achieved_rps'])} | {_cell(agg['requests'], 0)} | "
            f"{_cell(agg['errors'], 0)} | {_cell(agg['p50_ms'])} | {_cell(agg['p90_ms'])} | "
            f"{_cell(agg['p99_ms'])} | {_cell(agg['max_ms'])} | {service} | "
            f"{_cell(agg['server_cpu_pct'], 0)} | {_cell(agg['client_cpu_pct'], 0)} | "
            f"{meets(sc, agg)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "serving_demo",
                        help="demo output folder; the server uses OUT/runs")
    parser.add_argument("--skip-demo", action="store_true",
                        help="reuse an existing OUT instead of running crimecast demo")
    parser.add_argument("--json", type=Path, default=ROOT / "bench_out" / "serving.json",
                        help="where to write the results")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="discarded seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="requests/s for the open-loop 1-row and warm scenarios")
    parser.add_argument("--bulk-rate", type=float, default=10.0,
                        help="requests/s for the 1,000-row scenario")
    parser.add_argument("--cold-rate", type=float, default=2.0,
                        help="requests/s for cold /hotspots windows")
    parser.add_argument("--bulk-rows", type=int, default=1000, help="rows per bulk request")
    parser.add_argument("--connections", type=int, default=32,
                        help="keep-alive connections for open-loop runs (the concurrency cap)")
    parser.add_argument("--closed-connections", type=int, default=8,
                        help="concurrent connections for closed-loop (max throughput) runs")
    parser.add_argument("--port", type=int, default=18080, help="port for crimecast serve")
    parser.add_argument("--only", default="",
                        help="comma-separated scenario keys to run (default: all)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="server modes to run, comma-separated: plain (no forecast log), "
                             "log (forecast log on), shadow (log + a shadow challenger)")
    parser.add_argument("--serve-config", type=Path, default=None,
                        help="a config folder for crimecast serve (--config)")
    parser.add_argument("--mode-scenarios", default=TARGETS,
                        help="scenario keys for the log and shadow modes")
    return parser.parse_args()


async def run_all(args: argparse.Namespace, todo: list[Scenario],
                  server: subprocess.Popen[bytes], log: Path) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {sc.key: [] for sc in todo}
    for repeat in range(1, args.repeats + 1):
        for sc in todo:
            pid = server.pid if sc.server else None
            loop: Callable[..., Coroutine[Any, Any, dict[str, Any]]] = (
                open_loop if sc.mode == "open" else closed_loop)
            result = await loop(sc, args.warmup, args.duration, pid)
            results[sc.key].append(result)
            print(f"[{repeat}/{args.repeats}] {sc.key:20s} achieved {result['achieved_rps']:8.1f}"
                  f" rps  p50 {result['p50_ms'] or 0:7.1f}  p99 {result['p99_ms'] or 0:8.1f}  "
                  f"max {result['max_ms'] or 0:8.1f} ms  errors {result['errors']}"
                  f"{' ' + str(result['error_kinds']) if result['errors'] else ''}", flush=True)
            if server.poll() is not None:
                sys.exit(f"the server exited with {server.returncode}:\n{_tail(log)}")
            await asyncio.sleep(0.5)
    return results


def pick(todo: list[Scenario], only: str) -> list[Scenario]:
    """The scenarios named in ``only`` (comma-separated keys; empty: all)."""
    if not only:
        return todo
    keys = set(only.split(","))
    unknown = keys - {sc.key for sc in todo}
    if unknown:
        sys.exit(f"unknown scenario(s) {sorted(unknown)}; pick from {[sc.key for sc in todo]}")
    return [sc for sc in todo if sc.key in keys]


@dataclass
class ModeRun:
    """One server mode's scenarios and results."""

    mode: str
    todo: list[Scenario]
    results: dict[str, list[dict[str, Any]]]
    ready_s: float
    log: Path
    model: dict[str, Any]
    forecast_log: dict[str, Any] | None = None


def run_mode(args: argparse.Namespace, mode: str, runs: Path,
             challenger: str | None) -> tuple[ModeRun, str]:
    """Start the server in ``mode``, run its scenarios, stop it; the client's loop name."""
    out = args.out
    log = out / f"serve-{mode}.log"
    server = null = None
    if not _free(args.port):  # before mode_flags empties the log folder
        sys.exit(f"port {args.port} on {HOST} is already in use; pass --port N.")
    flags = mode_flags(mode, out, challenger)
    if args.serve_config is not None:
        flags += ["--config", str(args.serve_config)]
    try:
        server = start_server(runs, args.port, log, flags)
        ready = wait_ready(server, args.port, log)
        print(f"[{mode}] server ready after {ready:.1f} s (pid {server.pid}, log {log})",
              flush=True)
        with urllib.request.urlopen(f"http://{HOST}:{args.port}/model", timeout=30) as reply:
            model = json.loads(reply.read())
        features = model["features"]
        rows = load_rows(runs, model.get("crimecast_run_id"), features, args.bulk_rows)
        null, null_port = start_null_server()
        todo = scenarios(args, args.port, null_port, features, rows)
        todo = pick(todo, args.only)
        # The generator's own heap (Polars, the feature rows) out of the collector's way:
        # a full collection while a GeoJSON body is validated would stall every request.
        gc.collect()
        gc.freeze()
        if mode != "plain":
            keys = set(args.mode_scenarios.split(","))
            todo = [sc for sc in todo if sc.key in keys and sc.server]
        try:
            import uvloop
            results = uvloop.run(run_all(args, todo, server, log))
            client_loop = "uvloop"
        except ImportError:
            results = asyncio.run(run_all(args, todo, server, log))
            client_loop = "asyncio"
    finally:
        stop(null)
        stop(server)  # SIGTERM: the server flushes its forecast log before it exits
    run = ModeRun(mode, todo, results, ready, log, model)
    if mode != "plain":
        run.forecast_log = {**log_contents(out), "answered": sum(
            r["answered_total"] for sc in todo for r in results[sc.key])}
    return run, client_loop


def report(run: ModeRun, args: argparse.Namespace, client_loop: str) -> list[dict[str, Any]]:
    """Print one mode's table and notes; its scenarios for the JSON document."""
    model = run.model
    summary = [(sc, aggregate(run.results[sc.key])) for sc in run.todo]
    shadow = model.get("challenger") or {}
    print()
    print(f"[{run.mode}] crimecast serve, model {model.get('model_name')} "
          f"v{model.get('model_version')} ({model.get('model_type')}, "
          f"{len(model['features'])} features)"
          + (f", shadow challenger v{shadow.get('model_version')}" if shadow else "")
          + f", {args.repeats} repeat(s) x {args.duration:g} s measured after "
          f"{args.warmup:g} s warm-up; median (min..max) over repeats; latency from the "
          "scheduled send time (open loop)")
    print()
    print(table(summary))
    print()
    for sc, agg in summary:
        if sc.rows > 1:
            print(f"{sc.key}: {_cell(agg['rows_per_s'], 0)} rows/s")
        if agg["error_kinds"]:
            print(f"{sc.key}: errors {agg['error_kinds']}; first bodies: {agg['error_samples']}")
        if sc.key == "null" and agg["client_cpu_us_per_request"]:
            print(f"generator cost: {_cell(agg['client_cpu_us_per_request'], 0)} us CPU per "
                  f"request at {sc.rate:g} rps ({client_loop}); floor p99 "
                  f"{_cell(agg['p99_ms'], 2)} ms against a null server")
    if run.forecast_log is not None:
        fl = run.forecast_log
        print(f"forecast log: {fl['rows']:,} rows ({fl.get('shadow_rows', 0):,} shadow) in "
              f"{fl['parts']} parts, {fl['bytes'] / 1e6:.1f} MB; {fl['request_ids']:,} request "
              f"ids logged for {fl['answered']:,} 2xx answers sent")
    return [{"key": sc.key, "server_mode": run.mode, "title": sc.title, "mode": sc.mode,
             "target_rps": sc.rate, "connections": sc.connections, "rows": sc.rows,
             "meets_target": meets(sc, agg) or None, "summary": agg,
             "repeats": run.results[sc.key]} for sc, agg in summary]


def main() -> None:
    """Start the server (after the demo) in each mode, run its scenarios, print and save
    the results."""
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks run
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        sys.exit(f"--modes takes {', '.join(MODES)}; got '{args.modes}'.")
    out = args.out
    if not args.skip_demo:
        run_demo(out)
    runs = out / "runs"
    if not (runs / ".mlflow").is_dir():
        sys.exit(f"{runs}/.mlflow not found; run without --skip-demo first.")
    challenger = ensure_challenger(out, runs) if "shadow" in modes else None
    load_before = os.getloadavg()
    done = [run_mode(args, mode, runs, challenger) for mode in modes]
    load_after = os.getloadavg()
    entries: list[dict[str, Any]] = []
    problems: dict[str, list[str]] = {}
    for run, client_loop in done:
        entries += report(run, args, client_loop)
        problems[run.mode] = [
            line for line in run.log.read_text(errors="replace").splitlines()
            if any(w in line for w in ("Traceback", "ERROR", "WARNING", "Exception", "Error:"))]
        print(f"[{run.mode}] server log: {len(problems[run.mode])} error/warning line(s) in "
              f"{run.log}")
        for line in problems[run.mode][:10]:
            print(f"  {line}")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/"
          f"{load_after[2]:.2f} on {os.cpu_count()} CPUs (other work on the machine inflates "
          "the tails)")
    first = done[0][0]
    doc = {
        "benchmark": "bench_serving", "when": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_avg_before": load_before,
                    "load_avg_after": load_after},
        "model": {k: first.model.get(k) for k in ("model_name", "model_version", "run_id",
                                                  "crimecast_run_id", "model_type")},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "client": {"event_loop": done[0][1], "validate_every": VALIDATE_EVERY,
                   "request_timeout_s": REQUEST_TIMEOUT_S},
        "server_start_s": {run.mode: round(run.ready_s, 2) for run, _ in done},
        "challenger": {run.mode: run.model.get("challenger") for run, _ in done
                       if run.model.get("challenger")},
        "forecast_log": {run.mode: run.forecast_log for run, _ in done if run.forecast_log},
        "target": {"p99_ms": TARGET_P99_MS, "scenarios": [sc.key for run, _ in done
                                                          for sc in run.todo if sc.target]},
        "scenarios": entries,
        "server_log_problems": {mode: lines[:50] for mode, lines in problems.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
