"""Benchmark (issue #15): crimecast against the original design's pandas processing.

Each run launches two child processes on the same incident file: the original AWS
SageMaker design's processing step (``benchmarks/original_design_pandas.py``: pandas,
leaky, area x hour rows with at least one incident) and ``crimecast features
--spatial-unit area --time-bin 1h --label zscore`` (the leak-free panel, the venv's
``crimecast`` console script). The order of the two alternates between runs. Usage::

    python benchmarks/bench_original.py INPUT.csv.gz [RUNS]      # RUNS defaults to 3

Per side it prints the median wall time (min-max), the median peak RSS that
``os.wait4`` reports for the child (on Linux: the largest single process among the
child and the descendants it waited for, e.g. crimecast's process-pool workers) and the
median peak RSS of the whole process tree (summed over processes, sampled every 50 ms
with psutil when it is installed), then the ratio of the median wall times. It exits
non-zero, with the tail of the child's stderr, if any child fails.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PANDAS_SCRIPT = Path(__file__).with_name("original_design_pandas.py")
SIDES = ("pandas", "crimecast")
SAMPLE_S = 0.05


@dataclass
class Measure:
    """One side's measurements over the runs."""

    walls: list[float] = field(default_factory=list)
    maxrss: list[int] = field(default_factory=list)  # bytes, from os.wait4
    tree: list[int] = field(default_factory=list)  # bytes, sampled process-tree sum


class ChildFailedError(RuntimeError):
    """A benchmarked child process exited non-zero."""


def command_for(side: str, data: str, out: str) -> list[str]:
    """The command line for ``side`` writing into the folder ``out``."""
    if side == "pandas":
        return [sys.executable, str(PANDAS_SCRIPT), data, str(Path(out) / "area_hours.parquet")]
    crimecast = str(Path(sys.executable).with_name("crimecast"))
    return [crimecast, "features", "--data", data, "--spatial-unit", "area", "--time-bin",
            "1h", "--label", "zscore", "--out", out]


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (0 without psutil or once gone)."""
    try:
        import psutil
    except ImportError:
        return 0
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total
    except psutil.Error:
        return 0


def run_child(side: str, data: str) -> tuple[float, int, int]:
    """Run ``side`` once; return its wall seconds, wait4 peak RSS and sampled tree peak."""
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryFile("w+") as log:
        began = time.perf_counter()
        child = subprocess.Popen(command_for(side, data, out), stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL)
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid == child.pid:
                break
            tree_peak = max(tree_peak, _tree_rss(child.pid))
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - began
        child.returncode = code = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if code != 0:
        tail = "\n".join(output.strip().splitlines()[-15:]) or "(no output)"
        raise ChildFailedError(f"{side} failed (exit {code}):\n{tail}")
    return wall, usage.ru_maxrss * 1024, tree_peak


def benchmark(data: str, runs: int) -> dict[str, Measure]:
    """Run both sides ``runs`` times, alternating which goes first."""
    results = {side: Measure() for side in SIDES}
    for run in range(runs):
        order = SIDES if run % 2 == 0 else SIDES[::-1]
        for side in order:
            wall, maxrss, tree = run_child(side, data)
            results[side].walls.append(wall)
            results[side].maxrss.append(maxrss)
            results[side].tree.append(tree)
            print(f"run {run + 1}/{runs} {side:>9}: {wall:6.1f} s, peak RSS "
                  f"{maxrss / 2**20:,.0f} MiB (wait4), {tree / 2**20:,.0f} MiB (tree)",
                  flush=True)
    return results


def report(results: dict[str, Measure], runs: int) -> None:
    """Print the per-side table and the ratio of median wall times."""
    print(f"\n{'side':<10} {'median wall (min-max)':<24} {'peak RSS (wait4)':>16} "
          f"{'peak RSS (tree)':>16}   medians over {runs} run(s)")
    for side, measure in results.items():
        walls = measure.walls
        spread = f"{statistics.median(walls):.1f} s ({min(walls):.1f}-{max(walls):.1f} s)"
        maxrss = f"{statistics.median(measure.maxrss) / 2**20:,.0f} MiB"
        tree = statistics.median(measure.tree)
        tree_text = f"{tree / 2**20:,.0f} MiB" if tree else "n/a"
        print(f"{side:<10} {spread:<24} {maxrss:>16} {tree_text:>16}")
    ratio = (statistics.median(results["pandas"].walls)
             / statistics.median(results["crimecast"].walls))
    print(f"ratio pandas/crimecast = {ratio:.2f}×")


def main(argv: list[str]) -> int:
    """Benchmark both sides on ``argv[0]`` for ``argv[1]`` runs (default 3)."""
    if not argv or len(argv) > 2:
        print("usage: python benchmarks/bench_original.py INPUT.csv.gz [RUNS]", file=sys.stderr)
        return 2
    data, runs = argv[0], int(argv[1]) if len(argv) > 1 else 3
    if runs < 1 or not Path(data).exists():
        print(f"need RUNS >= 1 and an existing INPUT (got {data!r}, {runs})", file=sys.stderr)
        return 2
    try:
        results = benchmark(data, runs)
    except ChildFailedError as failure:
        print(failure, file=sys.stderr)
        return 1
    report(results, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
