"""Reading incident files: the I/O edge of the data layer.

Everything that touches the file system or object storage lives here: reading
local paths or ``s3://`` (through fsspec when the ``aws`` extra is installed)
into one all-text :class:`RawTable` per file (CSV or parquet; what a file is, is
decided in :mod:`crimecast.data.sniff`), and writing outputs. Parsing and
cleaning are pure functions elsewhere.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from crimecast.data import sniff
from crimecast.data.canonical import (
    CANONICAL_MAP,
    is_native,
    keep_canonical_flags,
    parse_canonical,
    text_frame,
)
from crimecast.data.lapd import LAPD_OPTIONAL_COLUMNS, LAPD_REQUIRED_COLUMNS, parse_lapd
from crimecast.data.mapping import GENERIC_MAP, ColumnMap, load_column_map, parse_mapped
from crimecast.data.parsing import blank_to_null
from crimecast.data.schema import CANONICAL_COLUMNS
from crimecast.data.sniff import sanitise_header
from crimecast.data.utf8_csv import read_plain_utf8
from crimecast.errors import DataFileError, DependencyError, SchemaError

logger = logging.getLogger(__name__)

SOURCE_ROW = "_source_row"
SOURCE_FILE = "_source_file"
SOURCE_COLUMNS = (SOURCE_ROW, SOURCE_FILE)
_EXCEL_SERIAL_COPIES = ("DATE OCC", "Date Rptd")  # the West LA export repeats DATE OCC


@dataclass(frozen=True)
class RawTable:
    """One file as read: every column as text (a parquet file's as stored; see
    :func:`crimecast.data.canonical.text_frame`), plus its path and row numbers.

    ``_source_row`` is the 1-based ordinal of the record among the file's records
    (the header is row 0); blank lines are not records, so they get no number and
    are counted in ``blank_lines`` instead. ``duplicates`` maps a header name that
    occurs more than once to its 1-based column positions (the frame keeps the
    first under the name and renames repeats ``NAME.1``, ``NAME.2``).
    """

    path: str
    frame: pl.DataFrame
    blank_lines: int = 0
    duplicates: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedIncidents:
    """Parsed incidents in the canonical schema (plus diagnostics) and the raw tables."""

    parsed: pl.DataFrame
    raw: tuple[RawTable, ...]
    schema_name: str
    column_map: ColumnMap | None

    @property
    def blank_lines(self) -> int:
        """Blank lines skipped across all files (they are not rows)."""
        return sum(raw.blank_lines for raw in self.raw)


def read_bytes(path: str) -> bytes:
    """Read a local or remote file's bytes as stored (see :func:`sniff.unpack`)."""
    if "://" in path and not path.startswith("file://"):
        return _read_remote(path)
    local = Path(path.removeprefix("file://"))
    if not local.exists():
        raise DataFileError(
            f"data file '{path}' does not exist. Check the path passed to --data."
        )
    if local.is_dir():
        raise DataFileError(f"data file '{path}' is a directory; pass a CSV file to --data.")
    try:
        return local.read_bytes()
    except OSError as exc:
        raise DataFileError(f"cannot read data file '{path}': {exc.strerror}.") from exc


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


def _read_parquet(data: bytes, path: str, encoding: str) -> tuple[pl.DataFrame, list[str], int]:
    """Read parquet bytes: the all-text frame, its column names and 0 blank lines."""
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        logger.info("read %s: parquet, so --encoding %s does not apply and is ignored",
                    path, encoding)
    try:  # pyarrow, because polars panics (noisily, on stderr) on some corrupt files
        frame = pl.DataFrame(pq.read_table(pa.BufferReader(data)))
    except (pa.ArrowException, pl.exceptions.PolarsError, OSError, ValueError) as exc:
        detail = re.sub(r"^Could not open Parquet input source '<Buffer>': ", "",
                        sniff.first_line(exc)).rstrip(".")
        raise DataFileError(
            f"data file '{path}' is a truncated or corrupt parquet file ({detail}). "
            "Re-download or re-write the file."
        ) from exc
    return frame, frame.columns, 0


def _read_csv(data: bytes, path: str, encoding: str) -> tuple[pl.DataFrame, list[str], int]:
    """Decode, sniff and read CSV bytes: the all-text frame, header names, blank lines."""
    text, codec = sniff.decode_text(data, path, encoding)
    if codec.startswith(("utf-16", "utf-32")):
        logger.info("read %s: %s text", path, codec.upper())
    body = text.replace("\r", "\n") if "\r" in text and "\n" not in text else text
    first = re.search(r"\S", body)
    if first is None:
        raise DataFileError(f"data file '{path}' is empty; expected a CSV header and rows.")
    if body is not text:
        logger.info("read %s: old Mac line ends (\\r only) read as line breaks", path)
    start = body.rfind("\n", 0, first.start()) + 1  # where the header line starts
    head = [line for line in sniff.head_lines(body[start:]) if line.strip()]
    delimiter = sniff.sniff_delimiter(head[0], head[1:])
    if delimiter != ",":
        logger.info("read %s: %s-delimited", path, sniff.DELIMITER_NAMES[delimiter])
    names = sniff.parse_header(head[0], delimiter, path)
    body, blank = sniff.drop_blank_lines(body, delimiter)
    unchanged = body is text and codec == "utf-8"
    payload = data.removeprefix(b"\xef\xbb\xbf") if unchanged else body.encode("utf-8")
    separated = f"(fields separated by {sniff.SHOWN_DELIMITERS[delimiter]})"
    try:
        frame = pl.read_csv(io.BytesIO(payload), infer_schema=False, has_header=True,
                            separator=delimiter)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise DataFileError(
            f"data file '{path}' is not a well-formed CSV: "
            f"{sniff.locate_csv_problem(body, exc, delimiter)} {separated}. Fix that row "
            f"(quote fields that contain {sniff.DELIMITER_NAMES[delimiter]}s) and retry."
        ) from exc
    if frame.width != len(names):
        raise DataFileError(
            f"data file '{path}' has {len(names)} header fields but rows with {frame.width} "
            f"{separated}. Check the header line."
        )
    return frame, names, blank


def read_raw_csv(path: str, encoding: str = "utf-8") -> RawTable:
    """Read one incident file with every column as text and 1-based record numbers.

    CSV may be plain or gzip/bz2/xz-compressed (recognised by content, even
    nested) or the single member of a zip archive, in any text encoding and
    delimited by ``, ; \\t |``; parquet (recognised by its ``PAR1`` magic
    bytes) is read natively with datetimes as ISO 8601 text and ``encoding``
    ignored. Blank lines are skipped and counted, never numbered.
    """
    stored = read_bytes(path)
    plain = read_plain_utf8(stored, path, encoding)
    if plain is not None:
        frame, names, blank = plain.frame, plain.names, 0
        if plain.layer is not None:
            logger.info("read %s: unpacked %s", path, plain.layer)
        if plain.delimiter != ",":
            logger.info("read %s: %s-delimited", path, sniff.DELIMITER_NAMES[plain.delimiter])
    else:
        unpacked = sniff.unpack(stored, path)
        if unpacked.layers:
            logger.info("read %s: unpacked %s", path, " > ".join(unpacked.layers))
        read = _read_parquet if unpacked.is_parquet else _read_csv
        frame, names, blank = read(unpacked.data, path, encoding)
    if frame.height == 0:
        skipped = f" ({blank} blank line(s) skipped)" if blank else ""
        raise DataFileError(f"data file '{path}' has a header but no data rows{skipped}.")
    if blank:
        logger.warning("data file '%s': skipped %d blank line(s); blank lines are not records "
                       "and are not counted in rows_in", path, blank)
    frame = frame.rename(dict(zip(frame.columns, sanitise_header(names), strict=True)))
    frame = frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(SOURCE_ROW),
        pl.lit(path).alias(SOURCE_FILE),
    )
    logger.info("read %s: %d rows, %d columns", path, frame.height, len(names))
    return RawTable(path=path, frame=frame, blank_lines=blank,
                    duplicates=sniff.duplicate_columns(names))


def detect_schema(raw: RawTable) -> str:
    """Guess ``lapd``, ``canonical`` (a clean.parquet) or ``generic`` from a file's header."""
    columns = set(raw.frame.columns)
    if {"DR_NO", "DATE OCC"} <= columns:
        return "lapd"
    if set(CANONICAL_COLUMNS) - {"source_file", "source_row"} <= columns:
        return "canonical"
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


def _positions(at: Sequence[int]) -> str:
    listed = [str(i) for i in at]
    return f"columns {', '.join(listed[:-1])} and {listed[-1]}"


def _holds_excel_serials(frame: pl.DataFrame, at: Sequence[int]) -> bool:
    """True when every repeat of a column holds only Excel serial day numbers."""
    for position in at[1:]:
        values = frame.select(blank_to_null(pl.col(frame.columns[position - 1]))).to_series()
        days = values.drop_nulls().cast(pl.Float64, strict=False)
        if days.len() == 0 or days.null_count() or not days.is_between(1, 2_958_465).all():
            return False
    return True


def check_duplicates(raw: RawTable, kind: str, column_map: ColumnMap | None) -> None:
    """Refuse a file that repeats a column the parser for ``kind`` reads.

    Repeats of columns nobody reads stay (renamed ``NAME.1``). LAPD's West LA
    export repeats ``DATE OCC`` with Excel serial dates; that copy is ignored.
    """
    read = set(LAPD_REQUIRED_COLUMNS + LAPD_OPTIONAL_COLUMNS) if kind == "lapd" else set(
        (column_map or GENERIC_MAP).source_columns().values())
    clashes = []
    for name, at in raw.duplicates.items():
        if name not in read:
            continue
        if kind == "lapd" and name in _EXCEL_SERIAL_COPIES and _holds_excel_serials(raw.frame, at):
            logger.info("read %s: column '%s' repeats (%s) with Excel serial dates; using the "
                        "first", raw.path, name, _positions(at))
            continue
        clashes.append((name, _positions(at)))
    if len(clashes) == 1:
        raise SchemaError(f"data file '{raw.path}' has the column '{clashes[0][0]}' more than "
                          f"once ({clashes[0][1]}); remove the duplicate.")
    if clashes:
        listed = [f"'{name}' ({at})" for name, at in clashes]
        raise SchemaError(f"data file '{raw.path}' has the columns {', '.join(listed[:-1])} and "
                          f"{listed[-1]} more than once; remove the duplicates.")


def parse_table(raw: RawTable, kind: str, column_map: ColumnMap | None) -> pl.DataFrame:
    """Parse a raw table (``kind`` lapd, canonical, generic or a map) into the canonical schema."""
    check_duplicates(raw, kind, column_map)
    if kind == "lapd":
        missing = [c for c in LAPD_REQUIRED_COLUMNS if c not in raw.frame.columns]
        if missing:
            shown = [c for c in raw.frame.columns if not c.startswith("_")]
            raise SchemaError(
                f"data file '{raw.path}' is missing LAPD column(s) {missing}; found {shown}. "
                "Pass --schema generic or --schema MAP.yaml if this is not an LAPD export."
            )
        absent = [c for c in LAPD_OPTIONAL_COLUMNS if c not in raw.frame.columns]
        # parse_lapd cannot broadcast a missing date column (Date Rptd): give it nulls.
        return parse_lapd(text_frame(raw.frame, keep=SOURCE_COLUMNS).with_columns(
            pl.lit(None, pl.String).alias(c) for c in absent))
    if kind == "canonical" and is_native(raw.frame):
        return parse_canonical(raw.frame)
    text = text_frame(raw.frame, keep=SOURCE_COLUMNS)
    parsed = parse_mapped(text, column_map or GENERIC_MAP, raw.path)
    return keep_canonical_flags(parsed, text) if kind == "canonical" else parsed


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
        file_map = column_map or {"generic": GENERIC_MAP, "canonical": CANONICAL_MAP}.get(kind)
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
