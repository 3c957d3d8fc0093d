"""Benchmark: generate about 1M synthetic LAPD-schema records (2020-2024).

Run with `make bench` (or `python benchmarks/bench_generate.py [RUNS]`). Times the
whole of ``generate_incidents`` (simulation and conversion to the string frame),
prints the median of several runs and the calibration report of the last frame.
"""

from __future__ import annotations

import datetime as dt
import resource
import statistics
import sys
import time

from crimecast.synthetic.calibration import build_calibration_report
from crimecast.synthetic.generate import generate_incidents
from crimecast.synthetic.tables import load_tables

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
START, END, SEED = dt.date(2020, 1, 1), dt.date(2024, 12, 31), 7


def main() -> None:
    """Time generation over several runs, then print the calibration report."""
    began = time.perf_counter()
    load_tables()
    load_s = time.perf_counter() - began
    timings = []
    for _ in range(RUNS):
        began = time.perf_counter()
        frame = generate_incidents(START, END, SEED)
        timings.append(time.perf_counter() - began)
    began = time.perf_counter()
    report = build_calibration_report(frame)
    report_s = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {frame.height:,} ({START} to {END}, seed {SEED})")
    print(f"table load (once per process): {load_s:.2f} s")
    print(
        f"generate: median {statistics.median(timings):.2f} s over {RUNS} runs "
        f"(min {min(timings):.2f}, max {max(timings):.2f}); peak RSS {peak_mb:.0f} MB"
    )
    print(f"calibration report: {report_s:.2f} s")
    width = max(len(row[0]) for row in report.to_rows())
    for metric, value, target, status in report.to_rows():
        print(f"  {metric:<{width}}  {value:>24}  {target:>10}  {status}")
    for failure in report.failures:
        print(f"  failure: {failure}")


if __name__ == "__main__":
    main()
