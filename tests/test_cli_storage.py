"""Every command that writes fails in one line (exit 2) on a full, limited or read-only disk,
and leaves no temporary or half-written file (issue #11)."""

from __future__ import annotations

import datetime as dt
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from crimecast.data.output import write_incidents
from crimecast.synthetic.generate import generate_incidents
from tests.disks import one_line_error, read_only_disk, small_disk

LIMIT = 64 * 1024  # bytes: RLIMIT_FSIZE makes larger writes fail with EFBIG (ulimit -f)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("storage") / "lapd_2023_01.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 1, 31), seed=2), path)
    return path


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _crimecast(*args: str, limit: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crimecast.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False,
                          preexec_fn=_limited if limit else None,
                          env={**os.environ, "COLUMNS": "300"})


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name] if folder.exists() else []


@pytest.mark.parametrize("command", ["clean", "features", "generate"])
def test_a_file_size_limit_is_one_line_and_leaves_no_temporary(
        command: str, month: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = {"clean": ["clean", "--data", str(month), "--out", str(out)],
            "features": ["features", "--data", str(month), "--out", str(out), "--time-bin",
                         "1d"],
            "generate": ["generate", "--start", "2023-01-01", "--end", "2023-03-31", "--out",
                         str(out / "synthetic.csv")]}[command]
    line = one_line_error(_crimecast(*args, limit=True))
    assert line.startswith(f"error: cannot write '{out}")
    assert line.endswith(": File too large. Raise the file-size limit (ulimit -f) or write "
                         "elsewhere.")
    assert _temporaries(out) == []


def test_a_full_disk_under_clean_is_one_line(month: Path, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "48k") as disk:
        line = one_line_error(_crimecast("clean", "--data", str(month), "--out", str(disk / "c")))
        assert line.startswith(f"error: cannot write '{disk / 'c'}")
        assert line.endswith(": No space left on device. Free space on that disk or write "
                             "elsewhere.")
        assert _temporaries(disk) == []


def test_a_read_only_output_folder_is_one_line(month: Path, tmp_path: Path) -> None:
    with read_only_disk(tmp_path / "ro", prepare=False) as disk:
        line = one_line_error(_crimecast("clean", "--data", str(month), "--out", str(disk / "c")))
        assert line == (f"error: cannot write '{disk / 'c' / 'clean.parquet'}': Read-only file "
                        "system. Write to a writable folder instead.")
