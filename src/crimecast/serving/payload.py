"""``/invocations`` payloads: parse and validate feature rows, format scores.

The SageMaker inference contract sends rows in the request body as ``text/csv``
(one row per line, values in the model's feature order, an optional header line
naming the features) or ``application/json``. JSON may be ``{"instances": [...]}``
(SageMaker), ``{"inputs": [...]}``, ``{"dataframe_split": {"columns", "data"}}``
or ``{"dataframe_records": [...]}`` (MLflow), or a bare list; each row is an object
keyed by feature name or a list in feature order (``dataframe_split`` rows must be
lists, in the order of its ``columns``). Values must be numbers within the float32
range the model computes in; a missing value (empty CSV field, ``NaN``, JSON
``null``) is accepted only for features that had missing values in training.
Every problem is a :class:`ServingError` naming the row, the feature and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from crimecast.errors import ServingError

JSON = "application/json"
CSV = "text/csv"
_MISSING_TOKENS = {"", "nan", "NaN", "NAN", "null", "NULL", "None"}
_ROW_KEYS = ("instances", "inputs", "dataframe_records")
_PLAIN = (int, float, type(None))  # exact types: bool is an int subclass, and is refused
FAST_CSV_BYTES = 4096  # below this the csv module is as fast as polars
# The model scores float32: a larger magnitude would become +-inf and change the score.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_JSON_KIND = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
              int: "a number", float: "a number", type(None): "null"}


def media_type(header: str | None) -> str:
    """The bare media type of a header value (``text/csv; charset=utf-8`` -> ``text/csv``)."""
    return (header or "").split(";", 1)[0].strip().lower()


def choose_output(accept: str | None) -> str:
    """The response format for an Accept header: JSON unless CSV comes first."""
    if not accept or not accept.strip():
        return JSON
    for part in accept.split(","):
        kind = media_type(part)
        if kind in (JSON, "*/*", "application/*"):
            return JSON
        if kind in (CSV, "text/*"):
            return CSV
    raise ServingError(f"Accept must allow application/json or text/csv; got '{accept}'. "
                       "Send Accept: application/json.", status=406)


class RowReader:
    """Turns payload rows into a float32 matrix in the model's feature order."""

    def __init__(self, features: Sequence[str], nullable: frozenset[str], max_rows: int) -> None:
        self.features = list(features)
        self.position = {name: i for i, name in enumerate(self.features)}
        self.nullable = nullable
        self.max_rows = max_rows
        self._keys = set(self.features)
        self._nullable_mask = np.asarray([f in nullable for f in self.features], dtype=bool)

    def _check_count(self, n: int) -> None:
        if n == 0:
            raise ServingError("the payload has no rows; send at least one row of features.")
        if n > self.max_rows:
            raise ServingError(f"the payload has {n:,} rows, more than the limit of "
                               f"{self.max_rows:,}. Split it into smaller requests.", status=413)

    def _value(self, value: Any, row: int, name: str) -> float:
        if value is None:
            number = math.nan
        elif isinstance(value, bool) or not isinstance(value, int | float):
            kind = "boolean" if isinstance(value, bool) else type(value).__name__
            kind = {"str": "string", "list": "array", "dict": "object"}.get(kind, kind)
            raise ServingError(f"row {row}, feature '{name}': expected a number; got {kind} "
                               f"{json.dumps(value)[:40]}.", status=422)
        else:
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        return self._checked(number, row, name)

    def _checked(self, number: float, row: int, name: str) -> float:
        if math.isnan(number):
            if name not in self.nullable:
                raise ServingError(f"row {row}, feature '{name}' is missing (null or NaN), but "
                                   "the model was trained without missing values for it. "
                                   "Send a number.", status=422)
        elif math.isinf(number):
            raise ServingError(f"row {row}, feature '{name}' is {number}; values must be "
                               "finite numbers.", status=422)
        elif abs(number) > FLOAT32_MAX:
            raise ServingError(f"row {row}, feature '{name}' is {number:g}, outside the "
                               "float32 range the model computes in (magnitude at most "
                               f"{FLOAT32_MAX:g}). Send a smaller value.", status=422)
        return number

    def _text(self, token: str, row: int, name: str) -> float:
        token = token.strip()
        if token in _MISSING_TOKENS:
            return self._checked(math.nan, row, name)
        try:
            return self._checked(float(token), row, name)
        except ValueError:
            raise ServingError(f"row {row}, feature '{name}': expected a number; got "
                               f"'{token[:40]}'.", status=422) from None

    def _from_list(self, values: list[Any], row: int, columns: list[str]) -> list[float]:
        if len(values) != len(columns):
            raise ServingError(f"row {row} has {len(values)} values; the model expects "
                               f"{len(columns)} (GET /model lists them in order).", status=422)
        return [self._value(v, row, c) for v, c in zip(values, columns, strict=True)]

    def _from_object(self, values: dict[str, Any], row: int) -> list[float]:
        missing = [f for f in self.features if f not in values]
        if missing:
            raise ServingError(f"row {row} lacks feature(s) {missing[:10]}; send every model "
                               "feature (GET /model lists them).", status=422)
        unknown = [k for k in values if k not in self.position]
        if unknown:
            raise ServingError(f"row {row} has unknown feature(s) {unknown[:10]}; send only "
                               "the model's features (GET /model lists them).", status=422)
        return [self._value(values[f], row, f) for f in self.features]

    def _order(self, columns: list[str]) -> list[int]:
        missing = [f for f in self.features if f not in columns]
        unknown = [c for c in columns if c not in self.position]
        if missing or unknown or len(set(columns)) != len(columns):
            raise ServingError(f"the columns must name every model feature once; missing "
                               f"{missing[:10]}, unknown {unknown[:10]}. GET /model lists "
                               "them.", status=422)
        return [self.position[c] for c in columns]

    def _fast(self, values: np.ndarray) -> np.ndarray | None:
        """``values`` as float32 when every value is finite or allowed-missing, else None
        (the row-by-row path then finds and names the problem)."""
        missing = np.isnan(values)
        if (np.abs(values) > FLOAT32_MAX).any() or missing[:, ~self._nullable_mask].any():
            return None  # +-inf is beyond the range too
        return values.astype(np.float32)

    def _fast_json(self, rows: list[Any]) -> np.ndarray | None:
        keys = self._keys
        if all(type(r) is dict and r.keys() == keys for r in rows):
            values = [[r[f] for f in self.features] for r in rows]
        elif all(type(r) is list and len(r) == len(self.features) for r in rows):
            values = rows
        else:
            return None
        if not all(type(v) in _PLAIN for row in values for v in row):
            return None
        try:
            return self._fast(np.asarray(values, dtype=np.float64))
        except (OverflowError, ValueError, TypeError):
            return None

    def _fast_csv(self, body: bytes) -> np.ndarray | None:
        try:
            frame = pl.read_csv(io.BytesIO(body), has_header=False, new_columns=self.features,
                                schema_overrides=dict.fromkeys(self.features, pl.Float64),
                                raise_if_empty=True)
        except Exception:  # any irregularity: the row-by-row path names it
            return None
        if frame.width != len(self.features) or frame.height == 0:
            return None
        return self._fast(frame.fill_null(math.nan).to_numpy())

    def _matrix(self, rows: list[list[float]], order: list[int] | None = None) -> np.ndarray:
        matrix = np.asarray(rows, dtype=np.float64)
        if order is not None:
            out = np.empty_like(matrix)
            out[:, order] = matrix
            matrix = out
        return matrix.astype(np.float32)

    def read_json(self, body: bytes) -> np.ndarray:
        """Rows of a JSON payload (see the module docstring for the accepted shapes)."""
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ServingError(f"the body is not valid JSON: {str(exc)[:120]}. Send "
                               '{"instances": [{"feature": value, ...}]}.') from None
        columns = self.features
        if isinstance(doc, dict) and "dataframe_split" in doc:
            split = doc["dataframe_split"]
            if not isinstance(split, dict) or not isinstance(split.get("data"), list):
                raise ServingError('dataframe_split must be {"columns": [...], "data": '
                                   "[[...], ...]}.", status=422)
            columns = split.get("columns", self.features)
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise ServingError("dataframe_split.columns must be a list of feature names.",
                                   status=422)
            self._order(columns)
            rows = split["data"]
            _require_arrays(rows)
        elif isinstance(doc, dict):
            key = next((k for k in _ROW_KEYS if k in doc), None)
            if key is None:
                raise ServingError("the JSON body must hold rows under 'instances', 'inputs', "
                                   "'dataframe_records' or 'dataframe_split', or be a list; "
                                   f"got keys {sorted(doc)[:5]}.", status=422)
            rows = doc[key]
        else:
            rows = doc
        if not isinstance(rows, list):
            raise ServingError(f"the rows must be a JSON array; got {type(rows).__name__}.",
                               status=422)
        self._check_count(len(rows))
        if columns is self.features:
            fast = self._fast_json(rows)
            if fast is not None:
                return fast
        out: list[list[float]] = []
        for i, row in enumerate(rows, start=1):
            if isinstance(row, dict):
                out.append(self._from_object(row, i))
            elif isinstance(row, list):
                out.append(self._from_list(row, i, columns))
            else:
                raise ServingError(f"row {i} must be an object or an array; got "
                                   f"{type(row).__name__}.", status=422)
        order = self._order(columns) if columns is not self.features else None
        return self._matrix(out, order)

    def read_csv(self, body: bytes) -> np.ndarray:
        """Rows of a CSV payload: feature-ordered values, an optional header line."""
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ServingError("the CSV body is not UTF-8 text. Send UTF-8 encoded CSV.") \
                from None
        if "\x00" in text:
            raise ServingError("the CSV body holds NUL bytes. Send plain-text CSV.")
        if len(body) > FAST_CSV_BYTES and not body[:200].lstrip()[:1].isalpha():
            fast = self._fast_csv(body)
            if fast is not None:
                self._check_count(len(fast))
                return fast
        try:
            lines = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True)
                     if r and any(t.strip() for t in r)]
        except csv.Error as exc:
            raise ServingError(f"the CSV body is malformed: {exc}. Send one row per line, "
                               "values separated by commas.") from None
        columns, order = self.features, None
        if lines and lines[0] and lines[0][0].strip() in self.position:
            columns = [t.strip() for t in lines[0]]
            order = self._order(columns)
            lines = lines[1:]
        self._check_count(len(lines))
        out: list[list[float]] = []
        for i, tokens in enumerate(lines, start=1):
            if len(tokens) != len(columns):
                raise ServingError(f"row {i} has {len(tokens)} values; the model expects "
                                   f"{len(columns)} (GET /model lists them in order).",
                                   status=422)
            out.append([self._text(t, i, c) for t, c in zip(tokens, columns, strict=True)])
        return self._matrix(out, order)


def _require_arrays(rows: list[Any]) -> None:
    """``dataframe_split`` rows are arrays in the order of its ``columns`` (MLflow's
    contract); an object row is refused rather than reordered a second time."""
    for i, row in enumerate(rows, start=1):
        if type(row) is not list:
            kind = _JSON_KIND.get(type(row), type(row).__name__)
            hint = " Send objects as dataframe_records." if isinstance(row, dict) else ""
            raise ServingError("dataframe_split rows must be arrays in the order of "
                               f"'columns'; row {i} is {kind}.{hint}", status=422)


def format_scores(scores: np.ndarray, threshold: float, kind: str,
                  audit: dict[str, Any]) -> bytes:
    """Scores as JSON (with the model's identifiers) or CSV lines ``score,hotspot``."""
    flags = scores >= threshold
    if kind == CSV:
        return "".join(f"{s:.6g},{int(f)}\n" for s, f in zip(scores.tolist(), flags.tolist(),
                                                              strict=True)).encode()
    doc = {"predictions": [{"score": round(s, 6), "hotspot": f}
                           for s, f in zip(scores.tolist(), flags.tolist(), strict=True)],
           "threshold": threshold, **audit}
    return json.dumps(doc, separators=(",", ":")).encode()
