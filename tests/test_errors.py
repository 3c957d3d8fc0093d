"""One-line storage errors: disk full, read-only, permission, through any library's wrapper."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest

from crimecast.errors import DataFileError, StorageError, as_storage_error


@pytest.mark.parametrize(("code", "message"), [
    (errno.ENOSPC, "cannot write '/x/runs/a.parquet': No space left on device. "
                   "Free space on that disk or write elsewhere."),
    (errno.EROFS, "cannot write '/x/runs/a.parquet': Read-only file system. "
                  "Write to a writable folder instead."),
    (errno.EFBIG, "cannot write '/x/runs/a.parquet': File too large. "
                  "Raise the file-size limit (ulimit -f) or write elsewhere."),
    (errno.EACCES, "cannot use '/x/runs/a.parquet': Permission denied. "
                   "Fix the folder's permissions or write elsewhere."),
])
def test_os_errors_name_the_path_and_the_cause(code: int, message: str) -> None:
    error = as_storage_error(OSError(code, os.strerror(code), "/x/runs/a.parquet"))
    assert isinstance(error, StorageError) and str(error) == message


def test_wrapped_sqlite_and_polars_failures_are_recognised() -> None:
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("(sqlite3.OperationalError) ... [SQL: INSERT ...]") from inner
    except RuntimeError as outer:
        wrapped = outer
    assert str(as_storage_error(wrapped, where="/x/.mlflow")) == (
        "cannot write '/x/.mlflow': No space left on device. Free space on that disk or write "
        "elsewhere.")
    rust = RuntimeError("parquet: underlying IO error: Read-only file system (os error 30)")
    assert str(as_storage_error(rust, where="/r")).startswith(
        "cannot write '/r': Read-only file system.")


def test_other_errors_are_not_storage_errors() -> None:
    assert as_storage_error(ValueError("bad value")) is None
    assert as_storage_error(OSError(errno.ENOENT, "No such file", "/x")) is None
    denied = DataFileError("cannot read data file 'x': Permission denied.")
    denied.__cause__ = OSError(errno.EACCES, "Permission denied", "x")
    assert as_storage_error(denied, permission=False) is None  # a read, already explained
    done = StorageError("cannot write 'y': No space left on device.")
    assert as_storage_error(done) is done
