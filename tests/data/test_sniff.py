"""Files that are not plain comma-separated UTF-8: containers, encodings, delimiters, line ends.

Each problem is reproduced with a small file; the reader either reads it like the
plain CSV or stops with one DataFileError that names the file and the right fix.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import logging
import lzma
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from crimecast.data.load import load_incidents, read_raw_csv
from crimecast.data.sniff import drop_blank_lines, sniff_delimiter
from crimecast.errors import DataFileError
from tests.conftest import lapd_csv, lapd_row

ROWS = [lapd_row(DR_NO=str(240100001 + i), **{"Crm Cd Desc": "THEFT, PETTY"}) for i in range(3)]
TEXT = lapd_csv(ROWS)


def _plain(tmp_path: Path) -> pl.DataFrame:
    path = tmp_path / "plain.csv"
    path.write_text(TEXT)
    return read_raw_csv(str(path)).frame.drop("_source_file")


def _error(path: Path, encoding: str = "utf-8") -> str:
    with pytest.raises(DataFileError) as err:
        load_incidents([str(path)], encoding=encoding)
    return str(err.value)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- compression and archives ----------------------------------------------------


@pytest.mark.parametrize(("name", "pack"), [
    ("a.csv.bz2", bz2.compress),
    ("a.csv.xz", lzma.compress),
    ("a.csv.gz", lambda data: gzip.compress(gzip.compress(data))),  # a gzip inside a gzip
    ("a.zip", lambda data: _zip({"incidents.csv": data})),
    ("a.csv", lambda data: gzip.compress(data)),  # content wins over the suffix
])
def test_compressed_files_read_like_plain(
    tmp_path: Path, name: str, pack: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / name
    path.write_bytes(pack(TEXT.encode()))
    assert read_raw_csv(str(path)).frame.drop("_source_file").equals(_plain(tmp_path))


def test_corrupt_bz2_names_the_format(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.bz2"
    path.write_bytes(bz2.compress(TEXT.encode() * 20)[:-40])
    message = _error(path)
    assert message.startswith(f"data file '{path}' is a truncated or corrupt bz2 archive (")
    assert message.endswith("). Re-download or re-compress the file.")


def test_bz2_suffix_without_bz2(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv.bz2"
    path.write_text(TEXT)
    assert _error(path) == (
        f"data file '{path}' ends in .bz2 but is not bz2-compressed. "
        "Rename it without .bz2 or compress it with bzip2."
    )


def test_compressed_too_many_times(tmp_path: Path) -> None:
    path = tmp_path / "deep.csv.gz"
    data = TEXT.encode()
    for _ in range(5):
        data = gzip.compress(data)
    path.write_bytes(data)
    assert _error(path) == (
        f"data file '{path}' is compressed more than 4 times over (gzip > gzip > gzip > gzip > "
        "...). Decompress it and pass the CSV to --data."
    )


def test_zip_with_several_members(tmp_path: Path) -> None:
    path = tmp_path / "two.zip"
    path.write_bytes(_zip({"a.csv": TEXT.encode(), "b.csv": TEXT.encode(), "dir/": b""}))
    assert _error(path) == (
        f"data file '{path}' is a zip archive with 2 members (a.csv, b.csv); "
        "unzip it and pass the CSV to --data."
    )


def test_zip_with_one_member_that_is_not_data(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_bytes(_zip({"notes.doc": b"hello"}))
    assert _error(path) == (
        f"data file '{path}' is a zip archive with 1 member (notes.doc); "
        "unzip it and pass the CSV to --data."
    )


def test_empty_zip(tmp_path: Path) -> None:
    path = tmp_path / "empty.zip"
    path.write_bytes(_zip({}))
    assert _error(path) == (
        f"data file '{path}' is an empty zip archive. Pass a CSV or parquet file to --data."
    )


def test_fake_zip_is_not_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "fake.csv"
    path.write_bytes(b"PK\x03\x04" + b"garbage" * 30)
    assert _error(path) == (
        f"data file '{path}' is not a valid zip archive (File is not a zip file). "
        "Re-download it, or unzip it and pass the CSV to --data."
    )


def test_excel_workbook(tmp_path: Path) -> None:
    path = tmp_path / "crimes.xlsx"
    path.write_bytes(_zip({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}))
    assert _error(path) == (
        f"data file '{path}' is an Excel workbook, not a CSV. "
        "Save it as CSV from Excel and pass that file to --data."
    )


def test_unsupported_archive(tmp_path: Path) -> None:
    path = tmp_path / "crimes.7z"
    path.write_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(range(40)))
    assert _error(path) == (
        f"data file '{path}' is a 7-Zip archive, which crimecast does not unpack. Extract it "
        "and pass the CSV to --data (gzip, bz2, xz and zip files are read directly)."
    )


# --- encodings and binary content ------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_binary_content_is_refused_whatever_the_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\x01\x02\x03\x00\xff\xfe\x10" * 50)
    assert _error(path, encoding) == (
        f"data file '{path}' looks binary, not a CSV (NUL byte at offset 3; it starts with "
        "01 02 03 00 ff fe 10 01). Pass a CSV or parquet file to --data."
    )


def test_known_binary_format_is_named(tmp_path: Path) -> None:
    path = tmp_path / "crimes.csv"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    assert _error(path) == (
        f"data file '{path}' looks binary, not a CSV (it starts like a PDF document). "
        "Pass a CSV or parquet file to --data."
    )


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_decoded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, codec: str
) -> None:
    path = tmp_path / "wide.csv"
    bom = {"utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    path.write_bytes(bom + TEXT.encode(codec))
    with caplog.at_level(logging.INFO, logger="crimecast.data.load"):
        assert read_raw_csv(str(path)).frame.drop("_source_file").equals(_plain(tmp_path))
    named = {"utf-16": "UTF-16-LE", "utf-16-be": "UTF-16-BE", "utf-32": "UTF-32-LE"}
    if codec in named:
        assert f"read {path}: {named[codec]} text" in caplog.text


def test_utf16_mark_contradicting_encoding(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(TEXT.encode("utf-16"))
    assert _error(path, "latin-1") == (
        f"data file '{path}' starts with a UTF-16 byte-order mark, which contradicts "
        "--encoding latin-1. Pass --encoding utf-16."
    )


@pytest.mark.parametrize(("codec", "share"), [
    ("utf-16-le", "every other byte is"), ("utf-16-be", "every other byte is"),
    ("utf-32-le", "three in four bytes are"),
])
def test_wide_text_without_a_mark_gets_the_codec(tmp_path: Path, codec: str, share: str) -> None:
    path = tmp_path / "wide.csv"
    path.write_bytes(TEXT.encode(codec))
    assert _error(path) == (
        f"data file '{path}' looks like {codec[:6].upper()} text without a byte-order mark "
        f"({share} NUL). Pass --encoding {codec}."
    )
    assert read_raw_csv(str(path), encoding=codec).frame.drop("_source_file").equals(
        _plain(tmp_path))


def test_utf8_mark_with_single_byte_encoding_is_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sig.csv"
    path.write_bytes(codecs.BOM_UTF8 + TEXT.encode())
    with caplog.at_level(logging.WARNING):
        frame = read_raw_csv(str(path), encoding="latin-1").frame
    assert frame.columns[0] == "DR_NO"
    assert "starts with a UTF-8 byte-order mark but is read as latin-1" in caplog.text


# --- delimiters --------------------------------------------------------------------


@pytest.mark.parametrize(("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_other_delimiters_are_sniffed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, delimiter: str, name: str
) -> None:
    path = tmp_path / "other.csv"
    path.write_text(TEXT.replace(",", delimiter).replace(f"THEFT{delimiter} PETTY", "THEFT, PETTY"))
    with caplog.at_level(logging.INFO, logger="crimecast.data.load"):
        frame = read_raw_csv(str(path)).frame.drop("_source_file")
    assert frame.equals(_plain(tmp_path))
    assert f"read {path}: {name}-delimited" in caplog.text


def test_ragged_row_names_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("incident_id;occurred_at;lat;lon\n1;2024-01-01;34;-118\n2;2024-01-01;34\n"
                    "3;2024-01-01;34;-118;x\n")
    assert _error(path) == (
        f"data file '{path}' is not a well-formed CSV: data row 3 has 5 fields but the header "
        "has 4 (fields separated by ';'). Fix that row (quote fields that contain semicolons) "
        "and retry."
    )


def test_sniff_prefers_the_comma() -> None:
    header = "incident_id,occurred_at,lat,lon,crime_type"
    assert sniff_delimiter(header, ["1,2024-01-01,34,-118,THEFT; PETTY"]) == ","
    assert sniff_delimiter("a;b,c;d", ["1;2,5;3", "1;2;3"]) == ";"
    assert sniff_delimiter("a;b;c", []) == ";"
    assert sniff_delimiter("onecolumn", ["x"]) == ","
    assert sniff_delimiter("a,b,c", ["1,2", "1,2,3,4"]) == ","  # ragged, still comma


# --- line ends and blank lines -----------------------------------------------------


def test_old_mac_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(TEXT.replace("\n", "\r").encode())
    assert read_raw_csv(str(path)).frame.drop("_source_file").equals(_plain(tmp_path))


def test_stray_carriage_return_never_escapes_as_csv_error(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"a,b\rc,d\n1,2\n")
    assert _error(path) == (
        f"data file '{path}' has a malformed header line (a carriage return (\\r) inside an "
        "unquoted field). Fix the first line."
    )
    path.write_bytes(b"a,b\r\n1,2\r\n3\r4,5,6\r\n")
    assert _error(path) == (
        f"data file '{path}' is not a well-formed CSV: a carriage return (\\r) inside an "
        "unquoted field at line 3 (fields separated by ','). Fix that row (quote fields that "
        "contain commas) and retry."
    )


def test_drop_blank_lines_keeps_quoted_and_delimiter_only_lines() -> None:
    text = 'a,b\n\n1,"x\n\ny"\n ,\n,\n \t\n2,z\n\n'
    assert drop_blank_lines(text, ",") == ('a,b\n1,"x\n\ny"\n ,\n,\n2,z\n', 3)
    assert drop_blank_lines("a\tb\n\t\n1\t2\n", "\t") == ("a\tb\n\t\n1\t2\n", 0)
    assert drop_blank_lines("a,b\n1,2\n", ",") == ("a,b\n1,2\n", 0)
    assert drop_blank_lines("\n\na,b\r\n\r\n1,2\r\n", ",") == ("a,b\r\n1,2\r\n", 3)


# --- through the CLI: one line, exit code 2, no traceback ---------------------------


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("fake.zip", b"PK\x03\x04" + b"x" * 50, "is not a valid zip archive"),
    ("blob.csv", b"\x00\x01" * 100, "looks binary, not a CSV"),
    ("wide.csv", TEXT.encode("utf-16-le"), "Pass --encoding utf-16-le."),
    ("mixed.csv", b"a,b\rc,d\n1,2\n", "has a malformed header line"),
])
def test_cli_reports_bad_files_in_one_line(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    from typer.testing import CliRunner

    from crimecast.cli import app

    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["clean", "--data", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: data file '{path}' ")
    assert fragment in " ".join(result.output.split()) and "Traceback" not in result.output
