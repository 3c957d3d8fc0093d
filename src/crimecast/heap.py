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
  (BENCHMARKS.md). :func:`trim_heap` hands free pages back (``malloc_trim``): the
  pipeline runner calls it after each step. The streamed evaluation and the building of a
  training design also fix the threshold at 1 MB (:func:`map_large_blocks`), so that
  arrays of a few MB are mapped and unmapped rather than left in the arenas: the
  evaluation's peak no longer climbs by about 100 MB a block, in the same time; a 250 m ×
  1 d design peaks about 140 MB lower, for about 2 s more of page faults. Not for every
  command: on the area × 1 h panel, where most arrays are a few MB, it slowed the build by
  18% (each one faulted in afresh).

Settings the user made in the environment (``MALLOC_MMAP_THRESHOLD_``,
``GLIBC_TUNABLES``, ``_RJEM_MALLOC_CONF``) win.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
RETURN_FREED_MEMORY = "dirty_decay_ms:0,muzzy_decay_ms:0"
GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
MAPPED_BLOCK_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt(3)


def tune_allocators() -> None:
    """Make Polars' jemalloc return freed pages at once, in this process and its children
    (unless the user configured it)."""
    os.environ.setdefault(JEMALLOC_ENV, RETURN_FREED_MEMORY)


@functools.cache
def _glibc(name: str, *argtypes: str) -> Callable[..., int] | None:
    import ctypes  # here, not at import: every CLI start imports this module

    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc
        return None
    function.argtypes = [getattr(ctypes, argtype) for argtype in argtypes]
    function.restype = ctypes.c_int
    return function


def trim_heap() -> bool:
    """Hand glibc's free heap pages back to the system; whether any were (``False`` off
    glibc)."""
    trim = _glibc("malloc_trim", "c_size_t")
    return trim is not None and trim(0) == 1


def map_large_blocks() -> bool:
    """From now on, for the rest of this process, let glibc map every block of
    :data:`MAPPED_BLOCK_BYTES` or more (and unmap it when freed) instead of keeping it in
    its arenas; whether it was set (not off glibc, nor where the user set glibc's
    threshold)."""
    mallopt = _glibc("mallopt", "c_int", "c_int")
    if mallopt is None or any(name in os.environ for name in GLIBC_ENV):
        return False
    return mallopt(_M_MMAP_THRESHOLD, MAPPED_BLOCK_BYTES) == 1
