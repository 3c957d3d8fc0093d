"""Benchmark: how long ``crimecast --help`` takes, from process start to exit (issue #15).

Run with ``python benchmarks/bench_cli_start.py [RUNS]`` (default 7). Runs the console
script beside this interpreter (the venv's ``crimecast``) RUNS times per command, after
one untimed warm-up run, and prints the median, min and max wall time. The target is a
median of at most 0.3 s for ``crimecast --help``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
COMMANDS = (["--help"], ["predict", "--help"])
TARGET_S = 0.3


def crimecast_script() -> str:
    """The venv's ``crimecast`` console script (beside this Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("crimecast")
    found = str(beside) if beside.is_file() else shutil.which("crimecast")
    if found is None:
        raise SystemExit("no crimecast script: install the package (make install) first")
    return found


def wall_times(command: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``command`` (output discarded; exit code 0 checked)."""
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # warm the file cache
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        timings.append(time.perf_counter() - began)
    return timings


def main() -> None:
    """Time each command and print median/min/max."""
    script = crimecast_script()
    print(f"{script}, {RUNS} runs each")
    for args in COMMANDS:
        timings = wall_times([script, *args], RUNS)
        median = statistics.median(timings)
        mark = "ok" if median <= TARGET_S else f"over the {TARGET_S} s target"
        print(f"crimecast {' '.join(args):<16} median {median:.3f} s  min {min(timings):.3f} s"
              f"  max {max(timings):.3f} s  ({mark})")


if __name__ == "__main__":
    main()
