"""The allocators of long batch commands: their settings, and handing freed memory back.

* **Polars** allocates through jemalloc, which keeps freed pages for seconds before giving
  them back: a command that reads a large file and then builds a panel would hold both at
  once. :func:`tune_allocators` (called by the CLI for batch commands, before Polars is
  loaded) makes it return them at once; the server keeps the default, latency first. A
  ``_RJEM_MALLOC_CONF`` the user set wins.
* **NumPy** allocates through glibc's malloc, whose arenas keep the pages of freed blocks
  smaller than the mmap threshold, a threshold glibc raises to the largest block freed so
  far (up to 32 MB). Allocating and freeing arrays of a few MB from several threads, block
  after block, so fragments the arenas that resident memory grows with every block: the
  150 m × 8 h evaluation went from 7.1 to 8.2 GB over its 11 test blocks
  (BENCHMARKS.md). :func:`trim_heap` hands the free pages back (``malloc_trim``); the
  streamed evaluation calls it after each block and the pipeline runner after each step.
  A fixed 1 MB mmap threshold kept memory as flat, but slowed the area × 1 h panel by
  18%: every array of a few MB was mapped and faulted in afresh.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
RETURN_FREED_MEMORY = "dirty_decay_ms:0,muzzy_decay_ms:0"


def tune_allocators() -> None:
    """Make Polars' jemalloc return freed pages at once, in this process and its children
    (unless the user configured it)."""
    os.environ.setdefault(JEMALLOC_ENV, RETURN_FREED_MEMORY)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Hand glibc's free heap pages back to the system; whether any were (``False`` off
    glibc)."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
