"""Benchmark (issue #12): feature panels at patrol resolution, built in time blocks.

Each case runs ``crimecast features`` in a fresh process on the same generated file
(default: 1M records, 2020-2024, ``crimecast generate --start 2020-01-01 --end
2024-12-31``), several times; the median wall time and the child's peak RSS are
printed. Usage::

    python benchmarks/bench_scale.py DATA.csv.gz [runs] [case ...]

Cases: ``area_1h`` (zscore; the whole panel), ``grid250_1d`` (topk), ``grid150_8h``
(topk, the LA field trial's boxes and shifts) (both: the training design, ``--rows
auto``), ``grid250_1d_all`` (the whole 38M-row panel in time blocks), each with
``--executor local`` (a process pool, one worker per core, for panels in time blocks; a
training design runs in the command's own process) unless the case name ends in
``_serial``. A case prefixed ``run_`` (e.g. ``run_grid150_8h``) runs the whole
pipeline, ``crimecast run``, with the same flags instead of ``crimecast features``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "area_1h": ["--spatial-unit", "area", "--time-bin", "1h", "--label", "zscore"],
    "grid250_1d": ["--spatial-unit", "grid", "--cell-size", "250", "--time-bin", "1d",
                   "--label", "topk"],
    "grid150_8h": ["--spatial-unit", "grid", "--cell-size", "150", "--time-bin", "8h",
                   "--label", "topk"],
    # The whole 250 m x 1 d panel (38M rows) in time blocks, for comparison with the design.
    "grid250_1d_all": ["--spatial-unit", "grid", "--cell-size", "250", "--time-bin", "1d",
                       "--label", "topk", "--rows", "all"],
}


def run_case(data: str, name: str, runs: int) -> None:
    """Run one case ``runs`` times in child processes; print median time and peak RSS."""
    base = name.removesuffix("_serial").removeprefix("run_")
    executor = "serial" if name.endswith("_serial") else "local"
    command = ["run", "--runs-dir"] if name.startswith("run_") else ["features", "--out"]
    timings, peaks = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "crimecast.cli", command[0], "--data", data, command[1],
                 out, "--executor", executor, *CASES[base]],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            peak = 0
            while child.poll() is None:  # the whole process tree: the CLI and its workers
                peak = max(peak, _tree_rss(child.pid))
                time.sleep(0.05)
            stdout, stderr = child.communicate()
            timings.append(time.perf_counter() - began)
            if child.returncode != 0:
                tail = (stderr.strip() or stdout.strip() or "no output").splitlines()[-3:]
                print(f"{name}: failed (exit {child.returncode}): {' | '.join(tail)}")
                return
            peaks.append(peak)
            size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
            lines = [" ".join(stdout.split("wrote", 1)[-1].split())] if "wrote" in stdout else []
            if command[0] == "run":
                lines = [" ".join(line.split()) for line in stdout.splitlines()
                         if line.startswith(("learned model", "hit_rate", "finished"))]
    print(f"{name}: median {statistics.median(timings):.1f} s over {runs} run(s) (min "
          f"{min(timings):.1f}, max {max(timings):.1f}); peak RSS (process tree, sampled "
          f"every 50 ms) {max(peaks) / 2**20:.0f} MB; output {size / 1e6:.0f} MB; "
          f"{lines[-1].strip() if lines else ''}")


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def main() -> None:
    """Run the cases named on the command line (default: all)."""
    data = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for name in sys.argv[3:] or list(CASES):
        run_case(data, name, runs)


if __name__ == "__main__":
    main()
