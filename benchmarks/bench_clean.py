"""Benchmark: load + clean about 1M generated LAPD-schema records (2020-2024).

Run with `make bench` (or `python benchmarks/bench_clean.py`). Prints the median of
several runs; record the figures in BENCHMARKS.md with the machine and date.
"""

from __future__ import annotations

import datetime as dt
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from crimecast.config import CleaningConfig
from crimecast.data.output import write_incidents
from crimecast.data.prepare import prepare_incidents
from crimecast.synthetic.generate import generate_incidents

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def main() -> None:
    """Generate once, then time load + clean of the CSV over several runs."""
    frame = generate_incidents(dt.date(2020, 1, 1), dt.date(2024, 12, 31), seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_2020_2024.csv"
        write_incidents(frame, path)
        size_mb = path.stat().st_size / 1e6
        timings = []
        for _ in range(RUNS):
            began = time.perf_counter()
            result = prepare_incidents([str(path)], "lapd", CleaningConfig(),
                                       today=dt.date(2024, 12, 31))
            timings.append(time.perf_counter() - began)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = result.report
    print(f"rows_in={report.rows_in:,} rows_clean={report.rows_clean:,} "
          f"rows_quarantined={report.rows_quarantined:,} by_reason={report.by_reason}")
    print(f"csv size: {size_mb:.0f} MB")
    print(f"load+clean: median {statistics.median(timings):.2f} s over {RUNS} runs "
          f"(min {min(timings):.2f}, max {max(timings):.2f}); peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
