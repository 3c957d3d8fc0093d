"""Writing outputs atomically: a temporary sibling renamed into place, removed on failure.

A full disk, a read-only folder or a crash mid-write never leaves a half-written file
under the final name, and never leaves the temporary file behind either.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from crimecast.data.spreadsheet import write_csv
from crimecast.errors import DataFileError, as_storage_error


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` when the block succeeds.

    The sibling is hidden and named by process, so concurrent writers never share one.
    A failure removes it, and a disk-full / read-only / permission failure is reported
    as a :class:`StorageError` naming ``path`` (not the temporary name).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        tmp.replace(path)
    except Exception as exc:
        storage = as_storage_error(exc, where=str(path), named=str(path))
        if storage is None:
            raise
        raise storage from exc
    finally:
        with contextlib.suppress(OSError):  # e.g. no folder could be made: nothing to remove
            tmp.unlink(missing_ok=True)


def write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` atomically and durably (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, tmp.open("wb") as stream:
        stream.write(payload)
        stream.flush()
        os.fsync(stream.fileno())


def write_parquet(frame: pl.DataFrame, path: Path, compression_level: int | None = None) -> None:
    """Write a frame atomically (to a temporary name, then renamed), zstd-compressed at
    ``compression_level`` (default: Polars' level)."""
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", compression_level=compression_level)


def write_json(payload: dict[str, Any], path: Path) -> None:
    """Write JSON atomically with stable key order and indentation."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_incidents(frame: pl.DataFrame, path: Path) -> None:
    """Write an LAPD-schema frame as CSV (``.csv``/``.csv.gz``) or parquet by suffix."""
    name = path.name.lower()
    if not name.endswith((".parquet", ".csv.gz", ".csv")):
        raise DataFileError(
            f"output file '{path}' must end in .csv, .csv.gz or .parquet. Pass --out data.csv."
        )
    with atomic_path(path) as tmp:
        if name.endswith(".parquet"):
            frame.write_parquet(tmp)
        elif name.endswith(".csv.gz"):
            write_csv(frame, tmp, compression="gzip", check_extension=False)
        else:
            write_csv(frame, tmp)


def write_provenance(data_path: Path, payload: dict[str, Any]) -> Path:
    """Write ``<data file>.provenance.json`` beside a data file (e.g. marking it synthetic)."""
    path = data_path.with_name(data_path.name + ".provenance.json")
    write_json(payload, path)
    return path
