"""Reading incident files: the I/O edge of the data layer.

Everything that touches the file system or object storage lives here: reading
plain or gzipped CSV from local paths or ``s3://`` (through fsspec when the
``aws`` extra is installed), checking the encoding, sanitising headers, and
writing outputs. Parsing and cleaning are pure functions elsewhere.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from crimecast.data.lapd import LAPD_REQUIRED_COLUMNS, parse_lapd
from crimecast.data.mapping import GENERIC_MAP, ColumnMap, load_column_map, parse_mapped
from crimecast.data.spreadsheet import write_csv
from crimecast.errors import DataFileError, DependencyError, SchemaError

logger = logging.getLogger(__name__)

SOURCE_ROW = "_source_row"
SOURCE_FILE = "_source_file"


@dataclass(frozen=True)
class RawTable:
    """One file as read: every column as text, plus its path and row numbers."""

    path: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class LoadedIncidents:
    """Parsed incidents in the canonical schema (plus diagnostics) and the raw tables."""

    parsed: pl.DataFrame
    raw: tuple[RawTable, ...]
    schema_name: str
    column_map: ColumnMap | None


def read_bytes(path: str) -> bytes:
    """Read a local or remote file's bytes, decompressing gzip transparently."""
    if "://" in path and not path.startswith("file://"):
        data = _read_remote(path)
    else:
        local = Path(path.removeprefix("file://"))
        if not local.exists():
            raise DataFileError(
                f"data file '{path}' does not exist. Check the path passed to --data."
            )
        if local.is_dir():
            raise DataFileError(f"data file '{path}' is a directory; pass a CSV file to --data.")
        try:
            data = local.read_bytes()
        except OSError as exc:
            raise DataFileError(f"cannot read data file '{path}': {exc.strerror}.") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataFileError(
                f"data file '{path}' is a truncated or corrupt gzip archive ({exc}). "
                "Re-download or re-compress the file."
            ) from exc
    elif path.endswith(".gz"):
        raise DataFileError(
            f"data file '{path}' ends in .gz but is not gzip-compressed. "
            "Rename it without .gz or compress it with gzip."
        )
    return data


def _read_remote(path: str) -> bytes:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        raise DependencyError("reading remote paths needs fsspec: pip install fsspec.") from exc
    if path.startswith("s3://"):
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:
            raise DependencyError(
                f"reading '{path}' needs the aws extra; install it with "
                "pip install 'crimecast[aws]'."
            ) from exc
    try:
        with fsspec.open(path, "rb") as handle:
            data: bytes = handle.read()
    except FileNotFoundError as exc:
        raise DataFileError(f"data file '{path}' does not exist. Check the URI.") from exc
    except Exception as exc:  # remote backends raise their own error types
        raise DataFileError(
            f"cannot read data file '{path}': {exc}. Check the URI and your credentials."
        ) from exc
    return data


def decode_text(data: bytes, path: str, encoding: str = "utf-8") -> str:
    """Decode file bytes strictly, naming the line of the first bad byte on failure."""
    try:
        text = data.decode(encoding)
    except LookupError as exc:
        raise DataFileError(
            f"unknown encoding '{encoding}' for data file '{path}'. Pass --encoding utf-8 "
            "or another Python codec name such as latin-1."
        ) from exc
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(
            f"data file '{path}' is not valid {encoding}: byte 0x{data[exc.start]:02x} at "
            f"line {line}. Re-save the file as UTF-8 or pass --encoding latin-1."
        ) from exc
    return text.removeprefix("\ufeff")


def sanitise_header(names: Sequence[str]) -> list[str]:
    """Strip header names, name blank ones ``Unnamed: i`` and suffix repeats ``.1``, ``.2``."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        clean = name.strip() or f"Unnamed: {index}"
        if clean in seen:
            seen[clean] += 1
            clean = f"{clean}.{seen[clean]}"
        else:
            seen[clean] = 0
        out.append(clean)
    return out


def _locate_csv_problem(text: str, exc: Exception) -> str:
    """Name the first row whose field count differs from the header's, if any."""
    rows = csv.reader(io.StringIO(text))
    width = len(next(rows, []))
    for number, row in enumerate(rows, start=1):
        if len(row) > width:
            return f"data row {number} has {len(row)} fields but the header has {width}"
    return str(exc).strip().splitlines()[0]


def read_raw_csv(path: str, encoding: str = "utf-8") -> RawTable:
    """Read one CSV with every column as text and 1-based data row numbers."""
    data = read_bytes(path)
    text = decode_text(data, path, encoding)
    if not text.strip():
        raise DataFileError(f"data file '{path}' is empty; expected a CSV header and rows.")
    first_line = text.split("\n", 1)[0].rstrip("\r")
    header = sanitise_header(next(csv.reader([first_line])))
    try:
        payload = (
            data.removeprefix(b"\xef\xbb\xbf")
            if encoding.lower().replace("-", "") in ("utf8", "utf_8")
            else text.encode("utf-8")
        )
        frame = pl.read_csv(
            io.BytesIO(payload),
            infer_schema=False,
            has_header=True,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise DataFileError(
            f"data file '{path}' is not a well-formed CSV: {_locate_csv_problem(text, exc)}. "
            "Fix that row (quote fields that contain commas) and retry."
        ) from exc
    if frame.width != len(header):
        raise DataFileError(
            f"data file '{path}' has {len(header)} header fields but rows with "
            f"{frame.width}. Check the header line."
        )
    if frame.height == 0:
        raise DataFileError(f"data file '{path}' has a header but no data rows.")
    frame = frame.rename(dict(zip(frame.columns, header, strict=True)))
    frame = frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(SOURCE_ROW),
        pl.lit(path).alias(SOURCE_FILE),
    )
    logger.info("read %s: %d rows, %d columns", path, frame.height, len(header))
    return RawTable(path=path, frame=frame)


def detect_schema(raw: RawTable) -> str:
    """Guess ``lapd`` or ``generic`` from a file's header."""
    columns = set(raw.frame.columns)
    if {"DR_NO", "DATE OCC"} <= columns:
        return "lapd"
    if {"occurred_at", "lat", "lon"} <= columns:
        return "generic"
    shown = [c for c in raw.frame.columns if not c.startswith("_")]
    raise SchemaError(
        f"cannot tell the schema of data file '{raw.path}' from its columns {shown}. "
        "Pass --schema lapd, --schema generic or --schema MAP.yaml."
    )


def resolve_column_map(schema: str) -> ColumnMap | None:
    """Return the column map a ``--schema`` value names (None for lapd/auto)."""
    if schema in ("lapd", "auto"):
        return None
    if schema == "generic":
        return GENERIC_MAP
    if schema.endswith((".yaml", ".yml")):
        return load_column_map(Path(schema))
    raise SchemaError(
        f"schema must be auto, lapd, generic or a path to a .yaml column map; got '{schema}'. "
        "Pass --schema lapd."
    )


def parse_table(raw: RawTable, kind: str, column_map: ColumnMap | None) -> pl.DataFrame:
    """Parse one raw table (``kind`` lapd, generic or a map) into the canonical schema."""
    if kind == "lapd":
        missing = [c for c in LAPD_REQUIRED_COLUMNS if c not in raw.frame.columns]
        if missing:
            shown = [c for c in raw.frame.columns if not c.startswith("_")]
            raise SchemaError(
                f"data file '{raw.path}' is missing LAPD column(s) {missing}; found {shown}. "
                "Pass --schema generic or --schema MAP.yaml if this is not an LAPD export."
            )
        return parse_lapd(raw.frame)
    return parse_mapped(raw.frame, column_map or GENERIC_MAP, raw.path)


def load_incidents(
    paths: Sequence[str], schema: str = "auto", encoding: str = "utf-8"
) -> LoadedIncidents:
    """Read and parse one or many incident files into one canonical frame.

    With ``schema="auto"`` each file's schema is detected from its header; the
    result's ``column_map`` is that of the first file (None for LAPD exports).
    """
    if not paths:
        raise DataFileError("no data files given. Pass --data FILE (repeatable).")
    repeated = sorted(p for p, n in Counter(map(str, paths)).items() if n > 1)
    if repeated:
        raise DataFileError(
            f"data file '{repeated[0]}' is given more than once. Pass each file once."
        )
    column_map = resolve_column_map(schema)
    raws: list[RawTable] = []
    parsed: list[pl.DataFrame] = []
    maps: list[ColumnMap | None] = []
    for path in paths:
        raw = read_raw_csv(str(path), encoding)
        kind = detect_schema(raw) if schema == "auto" else schema
        file_map = GENERIC_MAP if kind == "generic" and column_map is None else column_map
        parsed.append(parse_table(raw, kind, file_map))
        raws.append(raw)
        maps.append(file_map)
    first = maps[0]
    return LoadedIncidents(
        parsed=pl.concat(parsed, how="vertical"),
        raw=tuple(raws),
        schema_name=first.name if first is not None else "lapd",
        column_map=first,
    )


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write a frame atomically (to a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)


def write_json(payload: dict[str, Any], path: Path) -> None:
    """Write JSON atomically with stable key order and indentation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def write_incidents(frame: pl.DataFrame, path: Path) -> None:
    """Write an LAPD-schema frame as CSV (``.csv``/``.csv.gz``) or parquet by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    name = path.name.lower()
    if name.endswith(".parquet"):
        frame.write_parquet(tmp)
    elif name.endswith(".csv.gz"):
        write_csv(frame, tmp, compression="gzip", check_extension=False)
    elif name.endswith(".csv"):
        write_csv(frame, tmp)
    else:
        raise DataFileError(
            f"output file '{path}' must end in .csv, .csv.gz or .parquet. Pass --out data.csv."
        )
    tmp.replace(path)


def write_provenance(data_path: Path, payload: dict[str, Any]) -> Path:
    """Write ``<data file>.provenance.json`` beside a data file (e.g. marking it synthetic)."""
    path = data_path.with_name(data_path.name + ".provenance.json")
    write_json(payload, path)
    return path
