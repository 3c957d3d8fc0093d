"""The common case read at the speed of the CSV reader: UTF-8 text, plain or gzipped.

:func:`read_plain_utf8` hands a file that is UTF-8 CSV text, or one gzip layer
over it, straight to Polars (which decompresses gzip itself), after sniffing the
delimiter and header from the first decompressed bytes only. It returns None
whenever the file needs the careful path in :mod:`crimecast.data.load` (another
encoding or compression, a byte-order mark, lines before the header, old Mac
line ends, a blank line, invalid UTF-8, a malformed row), which then reads it
again and gives the exact advice; so the fast path never changes a result.
"""

from __future__ import annotations

import codecs
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import polars as pl

from crimecast.data import sniff

HEAD_BYTES = 1 << 16
_GZIP = b"\x1f\x8b"
_NOT_TEXT = (*sniff.COMPRESSED_MAGIC.values(), *sniff.ZIP_MAGIC, sniff.PARQUET_MAGIC,
             *(magic for magic, _ in sniff.ARCHIVE_MAGIC), codecs.BOM_UTF8, codecs.BOM_UTF16_LE,
             codecs.BOM_UTF16_BE)


def _head(data: bytes, path: str) -> tuple[bytes, bool, str | None] | None:
    """The first bytes of the text, whether they are all of it, and the layer around it."""
    if data.startswith(_GZIP):
        member = zlib.decompressobj(31)
        try:  # a megabyte of gzip holds far more than HEAD_BYTES of CSV text
            head = member.decompress(data[: 1 << 20], HEAD_BYTES)
        except zlib.error:
            return None
        return head, member.eof, "gzip"
    if PurePosixPath(path).suffix.lower() in sniff.COMPRESSED_SUFFIXES:
        return None  # a suffix that promises compression: the careful path names the problem
    return data[:HEAD_BYTES], len(data) <= HEAD_BYTES, None


def _head_text(head: bytes, whole: bool) -> str | None:
    """The complete lines among the first bytes, decoded; None when they are not UTF-8."""
    if not whole:
        head = head[: head.rfind(b"\n") + 1]
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _has_blank_rows(frame: pl.DataFrame) -> bool:
    """True when a row could have come from a blank line (or a line of only delimiters).

    Polars reads such lines as rows whose fields after the first are all null and
    whose first field is empty or whitespace; the careful path tells them apart.
    """
    first = frame.columns[0]
    blank_first = pl.col(first).is_null() | (pl.col(first).str.strip_chars(" \t\r") == "")
    rest = [pl.col(c).is_null() for c in frame.columns[1:]] or [pl.lit(True)]
    return bool(frame.select((blank_first & pl.all_horizontal(rest)).any()).item())


@dataclass(frozen=True)
class PlainRead:
    """A file read by the fast path: the all-text frame, its header, how it was read."""

    frame: pl.DataFrame
    names: list[str]
    delimiter: str
    layer: str | None


def read_plain_utf8(data: bytes, path: str, encoding: str) -> PlainRead | None:
    """Read UTF-8 CSV bytes (or gzip over them) with Polars, without blank lines.

    Returns None when the careful reader must handle the file instead.
    """
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        return None  # the careful path checks the codec and names the problem
    found = _head(data, path)
    if found is None:
        return None
    head, whole, layer = found
    if (head.startswith(_NOT_TEXT) or b"\n" not in head or not head[:1].strip()
            or path.lower().endswith(".parquet")):
        return None  # not text, old Mac line ends, or a blank line before the header
    text = _head_text(head, whole)
    if text is None:
        return None
    sniff.refuse_binary(head, path)
    lines = [line for line in sniff.head_lines(text) if line.strip()]
    delimiter = sniff.sniff_delimiter(lines[0], lines[1:])
    names = sniff.parse_header(lines[0], delimiter, path)
    try:
        frame = pl.read_csv(data, infer_schema=False, has_header=True, separator=delimiter)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError):
        return None
    if frame.width != len(names) or frame.height == 0 or _has_blank_rows(frame):
        return None
    return PlainRead(frame=frame, names=names, delimiter=delimiter, layer=layer)
