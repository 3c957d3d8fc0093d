"""Real small and read-only disks for tests: a tmpfs mounted for the test, then removed.

Mounting needs root (or CAP_SYS_ADMIN). Where the platform cannot mount, the tests
that need a full or read-only disk skip with the reason, except when
``CRIMECAST_REQUIRE_TMPFS=1`` (set by ``.ci/run``): then they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})"
        if os.environ.get("CRIMECAST_REQUIRE_TMPFS") == "1":
            pytest.fail(reason + "; CRIMECAST_REQUIRE_TMPFS=1 requires it")
        pytest.skip(reason)


@contextlib.contextmanager
def small_disk(target: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``400k``, ``3m``) mounted at ``target`` for the block."""
    _mount(target, f"size={size}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextlib.contextmanager
def read_only_disk(target: Path, prepare: bool = True) -> Iterator[Path]:
    """A read-only tmpfs at ``target`` (with an empty ``runs`` folder when ``prepare``)."""
    _mount(target, "size=4m")
    try:
        if prepare:
            (target / "runs").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line of a failed command (exit 2, and no traceback)."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]
