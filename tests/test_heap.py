"""The allocators of long batch commands (crimecast.heap), each case in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from crimecast.heap import GLIBC_ENV, JEMALLOC_ENV, RETURN_FREED_MEMORY

# Fragments glibc's heap as the evaluation's blocks did: one 16 MB array freed raises the
# mmap threshold, then 4 MB arrays come from the heap between small ones that stay alive.
FRAGMENT = """
import json, sys, numpy as np
from crimecast.heap import map_large_blocks, trim_heap
mapped = map_large_blocks() if "map" in sys.argv else None

def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

del_me = np.ones(2 << 20)
del del_me
big, kept = [], []
for _ in range(100):
    big.append(np.ones(1 << 19))
    kept.append(np.ones(1 << 12))
before = resident_mb()
del big
freed = resident_mb()
trimmed = trim_heap()
print(json.dumps([before, freed, resident_mb(), trimmed, mapped]))
"""


def _run(code: str, *args: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (JEMALLOC_ENV, *GLIBC_ENV)}
    return subprocess.run([sys.executable, "-c", code, *args], env={**clean, **env},
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_heap_hands_back_what_fragmentation_kept() -> None:
    before, freed, trimmed, done, _ = json.loads(_run(FRAGMENT))
    assert done
    assert freed > before - 100  # freed, yet still resident: the arena's holes
    assert trimmed < freed - 300  # about 400 MB handed back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_mapped_go_back_when_freed() -> None:
    before, freed, _, _, mapped = json.loads(_run(FRAGMENT, "map"))
    assert mapped
    assert freed < before - 300  # no trim needed


def test_a_threshold_the_user_set_wins() -> None:
    *_, mapped = json.loads(_run(FRAGMENT, "map", MALLOC_MMAP_THRESHOLD_="65536"))
    assert mapped is False


def test_jemalloc_returns_freed_pages_unless_the_user_said_otherwise() -> None:
    probe = ("import os; from crimecast.heap import tune_allocators; tune_allocators(); "
             f"print(os.environ[{JEMALLOC_ENV!r}])")
    assert _run(probe).strip() == RETURN_FREED_MEMORY
    assert _run(probe, **{JEMALLOC_ENV: "dirty_decay_ms:500"}).strip() == "dirty_decay_ms:500"
