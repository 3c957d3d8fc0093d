"""Area and district ids: normalised and looked up once per distinct id (issue #15)."""

from __future__ import annotations

import numpy as np
import polars as pl

from crimecast.features.unit_ids import id_keys, lookup_ids, lookup_keys

RAW = ["08", "8", " 12 ", "", None, "000", "163", "0163", "N. Hollywood"]


def test_id_keys_normalise_each_value() -> None:
    assert id_keys(RAW, "area").to_list() == ["8", "8", "12", None, None, "0", "163", "163",
                                             "N. Hollywood"]
    assert id_keys(RAW, "district").to_list() == ["0008", "0008", "0012", None, None, "0000",
                                                 "0163", "0163", "N. Hollywood"]
    assert id_keys([1.0, None, 8.0], "area").to_list() == ["1", None, "8"]
    assert id_keys(pl.Series(RAW * 50), "area", rows=np.array([1, 4, 8])).to_list() == [
        "8", None, "N. Hollywood"]


def test_lookups_give_minus_one_for_unknown_and_missing_ids() -> None:
    index = {"8": 0, "12": 1, "N. Hollywood": 2}
    expected = [0, 0, 1, -1, -1, -1, -1, -1, 2]
    assert lookup_ids(RAW, "area", len(RAW), index).tolist() == expected
    assert lookup_keys(id_keys(RAW, "area"), index).tolist() == expected
    assert lookup_ids(pl.Series([None, None], dtype=pl.String), "area", 2, index).tolist() \
        == [-1, -1]
