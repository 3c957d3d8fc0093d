"""Area and district ids of events, normalised and looked up once per distinct id.

An id column holds one value per event but names only a few places, so each distinct
id is normalised (:func:`id_keys`) and looked up (:func:`lookup_ids`) once, and the
events read the result by position: one hash pass over the column, not one string
operation per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

IdValues = np.ndarray | pl.Series | Sequence[Any]


def id_series(values: IdValues, kind: str, n: int | None) -> pl.Series:
    """``values`` as a Series (floats as integers), its length checked against ``n``."""
    s = values if isinstance(values, pl.Series) else pl.Series("id", values, nan_to_null=True)
    if n is not None and s.len() != n:
        raise ValueError(f"{kind}_id has {s.len()} values but lat has {n}; they must match")
    return s.cast(pl.Int64, strict=False) if s.dtype.is_float() else s


def distinct_codes(s: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct non-null values of ``s`` as strings (sorted) and each value's position
    among them (their count for a null): one hash pass, however long ``s`` is."""
    s = s.cast(pl.String)
    distinct = s.drop_nulls().unique().sort()
    position = s.cast(pl.Enum(distinct)).to_physical().fill_null(distinct.len())
    return distinct, position.to_numpy().astype(np.int64)


def id_keys(values: IdValues, kind: str, n: int | None = None,
             rows: np.ndarray | None = None) -> pl.Series:
    """Normalised id strings (of ``rows`` only, when given), null when missing: digit ids
    lose leading zeros for areas (``"08"`` -> ``"8"``) and are zero-padded to 4 for districts
    (``"163"`` -> ``"0163"``). Each distinct id is normalised once (one id per event, but
    few places)."""
    distinct, codes = distinct_codes(id_series(values, kind, n))
    keys = pl.concat([_normalised(distinct, kind), pl.Series([None], dtype=pl.String)])
    return keys.gather(codes if rows is None else codes[rows])


def _normalised(s: pl.Series, kind: str) -> pl.Series:
    """:func:`id_keys` of every value of ``s`` (strings)."""
    s = s.str.strip_chars()
    trimmed = s.str.strip_chars_start("0")
    num = pl.when(trimmed == "").then(pl.lit("0")).otherwise(trimmed)
    num = num.str.zfill(4) if kind == "district" else num
    digits = s.str.contains(r"^\d+$")
    return pl.select(pl.when(s == "").then(None).when(digits).then(num).otherwise(s)).to_series()


def _looked_up(keys: pl.Series, codes: np.ndarray, index: dict[str, int]) -> np.ndarray:
    """``index[keys[code]]`` of each code (int64), -1 for a null or unknown key and for the
    code one past the keys (a null value, see :func:`distinct_codes`)."""
    table = np.array([index.get(k, -1) for k in keys.to_list()] + [-1], dtype=np.int64)
    return table[codes]


def lookup_keys(keys: pl.Series, index: dict[str, int]) -> np.ndarray:
    """``index[key]`` of each normalised key (int64), -1 for a null or unknown key."""
    return _looked_up(*distinct_codes(keys), index)


def lookup_ids(values: IdValues, kind: str, n: int, index: dict[str, int]) -> np.ndarray:
    """``lookup_keys(id_keys(values, kind, n), index)`` without normalising every value."""
    distinct, codes = distinct_codes(id_series(values, kind, n))
    return _looked_up(_normalised(distinct, kind), codes, index)
