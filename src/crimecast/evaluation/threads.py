"""Scoring several forecasters at once on the threads of this process.

A report measures two dozen forecasters on the same rows, one after the other, and
the work is Polars, NumPy and SciPy, which release the GIL while they compute: on
threads the forecasters share the machine's cores. Each forecaster's numbers are
computed exactly as on one thread (nothing is summed across threads), so results
do not depend on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from crimecast.executor import shares_cores

T = TypeVar("T")
R = TypeVar("R")

MAX_THREADS = 4  # each thread holds its forecaster's resample blocks (tens of MB)


def thread_map(func: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[func(item) for item in items]`` on one thread per core (at most
    :data:`MAX_THREADS`; one inside a pool worker that shares the cores,
    :func:`~crimecast.executor.shares_cores`); results in the items' order."""
    work = list(items)
    count = min(len(work), os.cpu_count() or 1, MAX_THREADS)
    if shares_cores():
        count = 1
    if count <= 1:
        return [func(item) for item in work]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="crimecast-eval") as pool:
        return list(pool.map(func, work))
