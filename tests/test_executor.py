"""The process pool's shared input: large arrays travel as mapped files, the rest pickled."""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crimecast import executor
from crimecast.executor import LocalExecutor


def _unpacked(packed: bytes) -> Any:
    return executor._ArrayUnpickler(io.BytesIO(packed)).load()


def test_large_arrays_travel_as_files_and_the_rest_inline(tmp_path: Path) -> None:
    big = np.arange(executor._MAPPED_BYTES // 8 + 1, dtype=np.int64)  # just over the size
    small = np.linspace(0.0, 1.0, 100)
    labels = np.array(["a", None, "c"] * 200_000, dtype=object)  # object arrays: pickled
    shared = {"big": big, "again": big, "small": small, "labels": labels, "n": 7}
    got = _unpacked(executor._packed(shared, str(tmp_path)))
    assert sorted(os.listdir(tmp_path)) == ["0.npy"]  # one file, for the one large array
    assert type(got["big"]) is np.ndarray and got["big"].dtype == np.int64
    assert np.array_equal(got["big"], big) and np.array_equal(got["again"], big)
    assert np.array_equal(got["small"], small) and got["n"] == 7
    assert got["labels"].dtype == object and list(got["labels"][:3]) == ["a", None, "c"]
    # Copy-on-write: a worker writing to its copy changes neither the file nor the parent.
    got["big"][0] = -1
    assert big[0] == 0 and np.load(tmp_path / "0.npy", mmap_mode="r")[0] == 0


def test_an_unwritable_folder_falls_back_to_a_pickled_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = np.ones(executor._MAPPED_BYTES, dtype=np.uint8)
    missing = tmp_path / "no-such-folder"
    with caplog.at_level(logging.WARNING, logger="crimecast.executor"):
        got = _unpacked(executor._packed({"big": big}, str(missing)))
    assert np.array_equal(got["big"], big)
    assert "pool workers receive a pickled copy of the shared input" in caplog.text


def _total(shared: dict[str, np.ndarray], item: int) -> float:
    return float(shared["values"][item::3].sum()) + item


def test_pool_workers_read_the_mapped_arrays_and_the_files_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = np.random.default_rng(0).random(400_000)  # 3.2 MB: a mapped file
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folders: list[str] = []
    real = executor._packed
    monkeypatch.setattr(executor, "_packed",
                        lambda shared, folder: folders.append(folder) or real(shared, folder))
    got = LocalExecutor(2).map(_total, [0, 1, 2], shared={"values": values})
    assert len(folders) == 1 and folders[0].startswith(str(tmp_path / "crimecast-shared-"))
    assert got == [_total({"values": values}, item) for item in (0, 1, 2)]
    # The shared files went with the pool (multiprocessing keeps its own pymp-* folder).
    assert list(tmp_path.glob("crimecast-shared-*")) == []
