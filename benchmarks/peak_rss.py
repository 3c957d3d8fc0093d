"""Benchmark helper: run a command; print its wall time and peak memory (Linux).

Two peaks are printed: the largest sum of ``VmRSS`` over the command's process tree,
read from ``/proc/PID/status`` every 0.2 s (cheap: sampling ``smaps_rollup`` walks the
page tables of a large process and slows it), and the largest single ``VmHWM`` (the
kernel's own high-water mark, exact for one process). BENCHMARKS.md's figures since
issue #12's last sections come from this script. Usage::

    python benchmarks/peak_rss.py [--timeline FILE] [--quiet] -- crimecast features ...

``--timeline FILE`` writes ``epoch peak_MiB`` once a second (the tree's largest sum in
that second); ``--quiet`` discards the command's standard output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found += tree(child)
    except OSError:
        pass
    return found


def status(pid: int) -> tuple[int, int]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in KiB (0 once it has exited)."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def main() -> int:
    """Run the command after ``--``; print its wall time, both peaks and its exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeline", type=Path, help="write 'epoch MiB' once a second")
    parser.add_argument("--quiet", action="store_true", help="discard the command's stdout")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL if args.quiet else None)
    peak_rss = peak_hwm = second_peak = 0
    last = 0.0
    timeline = args.timeline.open("w") if args.timeline else None
    while child.poll() is None:
        total = 0
        for pid in tree(child.pid):
            rss, hwm = status(pid)
            total += rss
            peak_hwm = max(peak_hwm, hwm)
        peak_rss, second_peak = max(peak_rss, total), max(second_peak, total)
        now = time.perf_counter() - began
        if timeline and now - last >= 1:
            timeline.write(f"{time.time():.1f} {second_peak / 1024:.0f}\n")
            timeline.flush()
            last, second_peak = now, 0
        time.sleep(0.2)
    if timeline:
        timeline.close()
    print(f"wall {time.perf_counter() - began:.2f} s  peak RSS {peak_rss / 1024:.0f} MiB  "
          f"peak HWM {peak_hwm / 1024:.0f} MiB  rc {child.returncode}", file=sys.stderr)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
