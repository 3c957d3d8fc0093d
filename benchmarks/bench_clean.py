"""Benchmark: load + clean of about 1M generated LAPD-schema records against Polars' read.

Run with `make bench` or `python benchmarks/bench_clean.py [FILE.csv.gz] [RUNS]`. Without
a file it generates the 2020-2024 records (seed 7) and writes them as a gzip CSV. In one
process, alternating, it times `polars.read_csv(FILE)` (Polars just reading the file) and
`prepare_incidents` (crimecast's load + clean: read, parse, every rule, the quarantine
with raw values); then the same records as the `clean.parquet` crimecast wrote (read
back natively). Peak RSS of load + clean alone is measured in a fresh child process.
Prints medians (min-max) and the ratio; record the figures in BENCHMARKS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from crimecast.config import CleaningConfig
from crimecast.data.output import write_incidents
from crimecast.data.prepare import prepare_incidents, write_clean_outputs
from crimecast.synthetic.generate import generate_incidents

TODAY = dt.date(2024, 12, 31)
CHILD = """
import datetime as dt, resource, sys, time
from crimecast.config import CleaningConfig
from crimecast.data.prepare import prepare_incidents
began = time.perf_counter()
prepare_incidents([sys.argv[1]], "auto", CleaningConfig(), today=dt.date(2024, 12, 31))
print(time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def _summary(name: str, times: list[float]) -> str:
    return (f"{name}: median {statistics.median(times):.3f} s "
            f"({min(times):.3f}-{max(times):.3f}) over {len(times)} runs")


def _clean(path: Path) -> None:
    prepare_incidents([str(path)], "auto", CleaningConfig(), today=TODAY)


def main() -> None:
    """Time Polars' read and crimecast's load + clean side by side, then the parquet case."""
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else None
        if path is None:
            path = Path(tmp) / "synthetic_2020_2024.csv.gz"
            write_incidents(generate_incidents(dt.date(2020, 1, 1), TODAY, seed=7), path)
        result = prepare_incidents([str(path)], "auto", CleaningConfig(), today=TODAY)
        report = result.report
        print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB; rows_in={report.rows_in:,} "
              f"rows_clean={report.rows_clean:,} rows_quarantined={report.rows_quarantined:,}")
        reads, cleans = [], []
        for _ in range(runs):
            reads.append(_timed(lambda: pl.read_csv(path)))
            cleans.append(_timed(lambda: _clean(path)))
        write_clean_outputs(result, Path(tmp))
        parquet = Path(tmp) / "clean.parquet"
        parquet_reads = [_timed(lambda: pl.read_parquet(parquet)) for _ in range(runs)]
        parquet_cleans = [_timed(lambda: _clean(parquet)) for _ in range(runs)]
        child = subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True,
                               capture_output=True, text=True, env=os.environ)
        seconds, peak_mb = (float(v) for v in child.stdout.split())
    print(_summary("polars.read_csv", reads))
    print(_summary("crimecast load + clean", cleans))
    print(f"ratio load + clean / polars read: "
          f"{statistics.median(cleans) / statistics.median(reads):.2f}x (target <= 2x)")
    print(f"load + clean in a fresh process: {seconds:.2f} s, peak RSS {peak_mb:,.0f} MB")
    print(_summary("polars.read_parquet(clean.parquet)", parquet_reads))
    print(_summary("crimecast load + clean of clean.parquet", parquet_cleans))


if __name__ == "__main__":
    main()
