"""What an incident file is, decided from its bytes and first lines (no file system).

:func:`unpack` peels gzip/bz2/xz layers and a one-member zip by magic bytes and
tells parquet (``PAR1``) from text; :func:`decode_text` follows byte-order marks
and refuses binary content with the right advice; :func:`sniff_delimiter` and
:func:`drop_blank_lines` prepare the text for the CSV reader.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import logging
import lzma
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from isal import isal_zlib

from crimecast.errors import DataFileError

logger = logging.getLogger(__name__)

PARQUET_MAGIC = b"PAR1"
SAMPLE_BYTES = 8192
MAX_LAYERS = 4

COMPRESSED_MAGIC = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}  # format: magic
COMPRESSED_SUFFIXES = {  # suffix: (what it promises, the tool that makes it)
    ".gz": ("gzip-compressed", "gzip"), ".bz2": ("bz2-compressed", "bzip2"),
    ".xz": ("xz-compressed", "xz"), ".zip": ("a zip archive", "zip"),
}
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_DATA_MEMBER = re.compile(r"\.(csv|tsv|txt|parquet)(\.(gz|bz2|xz))?$", re.IGNORECASE)
# Formats crimecast does not read, recognised so the advice can name them.
ARCHIVE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x28\xb5\x2f\xfd", "Zstandard-compressed"),
    (b"\x04\x22\x4d\x18", "LZ4-compressed"),
)
_BINARY: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook or another OLE2 file"),
    (b"%PDF", "a PDF document"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (  # UTF-32 first: its LE mark starts like UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF8, "utf-8"),
)
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SHOWN_DELIMITERS = {",": "','", ";": "';'", "\t": "'\\t'", "|": "'|'"}  # as messages show them


@dataclass(frozen=True)
class Unpacked:
    """A file's content after decompression: parquet bytes or (undecoded) text bytes."""

    data: bytes
    is_parquet: bool
    layers: tuple[str, ...] = ()


def _gunzip(data: bytes) -> bytes:
    """gzip content, one member through ISA-L (about 2.5x zlib); the rest by the stdlib.

    Anything but one intact member (several members, a truncated or corrupt
    stream) goes to :func:`gzip.decompress`, so errors read as they always did.
    """
    try:
        member = isal_zlib.decompressobj(31)
        out = member.decompress(data)
        if member.eof and not member.unused_data.strip(b"\x00"):
            return out
    except isal_zlib.error:  # type: ignore[misc]  # an Exception; the stub says otherwise
        pass
    return gzip.decompress(data)


def _decompress(data: bytes, fmt: str, path: str) -> bytes:
    try:
        if fmt == "gzip":
            return _gunzip(data)
        if fmt == "bz2":
            return bz2.decompress(data)
        return lzma.decompress(data)
    except (EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise DataFileError(
            f"data file '{path}' is a truncated or corrupt {fmt} archive ({exc}). "
            "Re-download or re-compress the file."
        ) from exc


def _unzip(data: bytes, path: str) -> tuple[bytes, str]:
    """Return the single data member of a zip archive and its name."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataFileError(
            f"data file '{path}' is not a valid zip archive ({exc}). "
            "Re-download it, or unzip it and pass the CSV to --data."
        ) from exc
    with archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()
                 and not info.filename.startswith(("__MACOSX/", ".")) and "/." not in info.filename]
        if "xl/workbook.xml" in names:
            raise DataFileError(
                f"data file '{path}' is an Excel workbook, not a CSV. "
                "Save it as CSV from Excel and pass that file to --data."
            )
        if not names:
            raise DataFileError(
                f"data file '{path}' is an empty zip archive. Pass a CSV or parquet file to --data."
            )
        if len(names) > 1 or not _DATA_MEMBER.search(names[0]):
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            noun = "member" if len(names) == 1 else "members"
            raise DataFileError(
                f"data file '{path}' is a zip archive with {len(names)} {noun} ({shown}); "
                "unzip it and pass the CSV to --data."
            )
        try:
            return archive.read(names[0]), names[0]
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                zlib.error, lzma.LZMAError) as exc:
            raise DataFileError(
                f"data file '{path}': cannot extract '{names[0]}' from the zip archive ({exc}). "
                "Unzip it and pass the CSV to --data."
            ) from exc


def unpack(data: bytes, path: str) -> Unpacked:
    """Decompress ``data`` by its magic bytes until it is parquet or (possibly) text.

    gzip, bz2 and xz are decompressed, repeatedly if a layer holds another
    (a gzip inside a gzip); a zip archive must hold exactly one CSV or parquet
    member. A suffix that promises compression the content lacks is an error.
    """
    layers: list[str] = []
    while True:
        fmt = next((f for f, magic in COMPRESSED_MAGIC.items() if data.startswith(magic)), None)
        if fmt is None and data.startswith(ZIP_MAGIC):
            fmt = "zip"
        if fmt is None:
            break
        if len(layers) == MAX_LAYERS:
            raise DataFileError(
                f"data file '{path}' is compressed more than {MAX_LAYERS} times over "
                f"({' > '.join(layers)} > ...). Decompress it and pass the CSV to --data."
            )
        if fmt == "zip":
            data, member = _unzip(data, path)
            layers.append(f"zip member '{member}'")
        else:
            data = _decompress(data, fmt, path)
            layers.append(fmt)
    for magic, name in ARCHIVE_MAGIC:
        if data.startswith(magic):
            raise DataFileError(
                f"data file '{path}' is {name}, which crimecast does not unpack. Extract it and "
                "pass the CSV to --data (gzip, bz2, xz and zip files are read directly)."
            )
    suffix = PurePosixPath(path).suffix.lower()
    if not layers and suffix in COMPRESSED_SUFFIXES:
        what, tool = COMPRESSED_SUFFIXES[suffix]
        raise DataFileError(
            f"data file '{path}' ends in {suffix} but is not {what}. "
            f"Rename it without {suffix} or compress it with {tool}."
        )
    is_parquet = data.startswith(PARQUET_MAGIC)
    if not is_parquet and path.lower().endswith(".parquet"):
        raise DataFileError(
            f"data file '{path}' ends in .parquet but does not start with the parquet magic "
            "bytes PAR1. Re-write the parquet file, or rename it to .csv if it is a CSV."
        )
    return Unpacked(data=data, is_parquet=is_parquet, layers=tuple(layers))


def _wide_text_guess(sample: bytes) -> str | None:
    """Name the UTF-16/32 variant of BOM-less text: mostly-NUL lanes beside a text lane."""
    for width in (4, 2):
        usable = len(sample) - len(sample) % width
        if usable < 2 * width:
            continue
        lanes = [sample[i:usable:width] for i in range(width)]
        for order, text_at in (("le", 0), ("be", width - 1)):
            text = lanes[text_at]
            printable = sum(b >= 0x20 or b in (9, 10, 13) for b in text) >= 0.9 * len(text)
            if printable and all(lane.count(0) >= 0.6 * len(lane)
                                 for i, lane in enumerate(lanes) if i != text_at):
                return f"utf-{8 * width}-{order}"
    return None


def refuse_binary(data: bytes, path: str) -> None:
    """Raise when the first bytes are not text in a single-byte or UTF-8 encoding."""
    sample = data[:SAMPLE_BYTES]
    for magic, name in _BINARY:
        if sample.startswith(magic):
            raise DataFileError(
                f"data file '{path}' looks binary, not a CSV (it starts like {name}). "
                "Pass a CSV or parquet file to --data."
            )
    nul = sample.find(b"\x00")
    if nul < 0:
        return
    wide = _wide_text_guess(sample)
    if wide is not None:
        every = "every other byte is" if wide.startswith("utf-16") else "three in four bytes are"
        raise DataFileError(
            f"data file '{path}' looks like {wide[:6].upper()} text without a byte-order mark "
            f"({every} NUL). Pass --encoding {wide}."
        )
    raise DataFileError(
        f"data file '{path}' looks binary, not a CSV (NUL byte at offset {nul}; it starts "
        f"with {sample[:8].hex(' ')}). Pass a CSV or parquet file to --data."
    )


def decode_text(data: bytes, path: str, encoding: str = "utf-8") -> tuple[str, str]:
    """Decode file bytes strictly; return the text and the codec actually used.

    A UTF-16/32 byte-order mark is followed when ``encoding`` is the default
    ``utf-8`` or of the same family, and refused when it contradicts ``encoding``;
    a UTF-8 mark is dropped (with a warning when ``encoding`` is a single-byte
    codec). Content with NUL bytes is refused as binary or, when the NULs
    alternate with ASCII, as UTF-16/32 without a mark, naming the codec to pass.
    """
    try:
        codec = codecs.lookup(encoding).name
    except LookupError as exc:
        raise DataFileError(
            f"unknown encoding '{encoding}' for data file '{path}'. Pass --encoding utf-8 "
            "or another Python codec name such as latin-1."
        ) from exc
    wide = codec.startswith(("utf-16", "utf-32"))
    bom = next(((mark, name) for mark, name in _BOMS if data.startswith(mark)), None)
    if bom is not None:
        mark, name = bom
        family = name[:6]
        if (name == "utf-8" and wide) or (
            name != "utf-8" and codec not in ("utf-8", "utf-8-sig", family, name)
        ):
            raise DataFileError(
                f"data file '{path}' starts with a {family.upper()} byte-order mark, which "
                f"contradicts --encoding {encoding}. Pass --encoding {family}."
            )
        data = data[len(mark):]
        if name != "utf-8" or codec == "utf-8-sig":
            codec = name
        elif codec != "utf-8":
            logger.warning("data file '%s' starts with a UTF-8 byte-order mark but is read as "
                           "%s as --encoding says; pass --encoding utf-8 if its text looks "
                           "wrong", path, encoding)
    if not codec.startswith(("utf-16", "utf-32")):
        refuse_binary(data, path)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        if codec.startswith(("utf-16", "utf-32")):
            raise DataFileError(
                f"data file '{path}' is not valid {codec}: {exc.reason} at byte {exc.start}. "
                "Re-save the file as UTF-8 or pass the --encoding it was saved with."
            ) from exc
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(
            f"data file '{path}' is not valid {encoding}: byte 0x{data[exc.start]:02x} at "
            f"line {line}. Re-save the file as UTF-8 or pass --encoding latin-1."
        ) from exc
    return text.removeprefix("\ufeff"), codec


def csv_error_text(error: csv.Error) -> str:
    """The csv module's complaint in words that fit crimecast's advice."""
    if "new-line character" in str(error):
        return "a carriage return (\\r) inside an unquoted field"
    return str(error)


def parse_header(line: str, delimiter: str, path: str) -> list[str]:
    """Split a header line into fields; a malformed line is a DataFileError."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataFileError(
            f"data file '{path}' has a malformed header line ({csv_error_text(exc)}). "
            "Fix the first line."
        ) from exc


def _field_counts(lines: list[str], delimiter: str) -> list[int]:
    try:
        return [len(row) for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error:
        return []


def sniff_delimiter(header: str, sample: list[str]) -> str:
    """Choose the field delimiter among ``, ; \\t |`` from the header and a few data lines.

    A candidate must split the header into two or more fields; its fit is the
    share of ``sample`` lines with as many fields as the header. The comma wins
    whenever it qualifies and no other candidate fits strictly better; with no
    candidate at all (a one-column file) the comma is assumed.
    """
    scores: dict[str, tuple[float, int]] = {}
    for candidate in DELIMITERS:
        width = (_field_counts([header], candidate) or [0])[0]
        if width < 2:
            continue
        counts = _field_counts(sample, candidate)
        fit = sum(c == width for c in counts) / len(counts) if counts else 1.0
        scores[candidate] = (fit, width)
    if not scores:
        return ","
    best = max(scores, key=scores.__getitem__)
    if "," in scores and scores[best][0] <= scores[","][0]:
        return ","
    return best


def drop_blank_lines(text: str, delimiter: str) -> tuple[str, int]:
    """Remove blank lines (outside quoted fields) and return the text and how many.

    A blank line holds nothing but spaces, tabs or ``\\r``; a line of only
    delimiters (``,,,,``) is a malformed record and is kept, and so is a blank
    line inside a quoted multi-line field. The final newline of the file is not
    a blank line.
    """
    blank = "[ \r]*" if delimiter == "\t" else "[ \t\r]*"
    is_blank = re.compile(f"{blank}$").match
    last = text[text.rfind("\n") + 1:]
    # A pattern that starts with a literal "\n" is searched fast; the ends are checked apart.
    if not (re.search(f"\n{blank}\n", text) or re.match(f"{blank}\n", text)
            or (last and is_blank(last))):
        return text, 0
    kept: list[str] = []
    skipped = quotes = 0
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if quotes % 2 == 0 and is_blank(line) and (line or index < len(lines) - 1):
            skipped += 1
            continue
        quotes += line.count('"')
        kept.append(line)
    return "\n".join(kept), skipped


def sanitise_header(names: Sequence[str]) -> list[str]:
    """Strip header names, name blank ones ``Unnamed: i`` and suffix repeats ``.1``, ``.2``."""
    out: list[str] = []
    seen: dict[str, int] = {}
    taken = {name.strip() for name in names}
    for index, name in enumerate(names):
        clean = name.strip() or f"Unnamed: {index}"
        if clean in seen:
            base = clean
            while clean in seen or clean in taken:  # never collide with a real 'X.1'
                seen[base] += 1
                clean = f"{base}.{seen[base]}"
        seen.setdefault(clean, 0)
        out.append(clean)
    return out


def duplicate_columns(names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Map each non-blank header name given more than once to its 1-based positions."""
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names, start=1):
        if name.strip():
            positions.setdefault(name.strip(), []).append(index)
    return {name: tuple(at) for name, at in positions.items() if len(at) > 1}


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def locate_csv_problem(text: str, exc: BaseException, delimiter: str) -> str:
    """Name the first row whose field count exceeds the header's, if any."""
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        width = len(next(rows, []))
        for number, row in enumerate(rows, start=1):
            if len(row) > width:
                return f"data row {number} has {len(row)} fields but the header has {width}"
    except csv.Error as error:
        return f"{csv_error_text(error)} at line {rows.line_num}"
    return first_line(exc)


def head_lines(text: str, count: int = 50) -> list[str]:
    """The first ``count`` lines of ``text`` without line ends."""
    lines: list[str] = []
    start = 0
    while start < len(text) and len(lines) < count:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        lines.append(text[start:end].rstrip("\r"))
        start = end + 1
    return lines
