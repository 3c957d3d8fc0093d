"""Parsing /invocations payloads: round trips (property tests) and exact errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.errors import ServingError
from crimecast.serving.payload import CSV, JSON, RowReader, choose_output, format_scores

FEATURES = ["a", "b", "c"]
reader = RowReader(FEATURES, frozenset({"c"}), max_rows=50)
values = st.floats(allow_nan=False, allow_infinity=False, width=32)
rows = st.lists(st.tuples(values, values, values | st.none()), min_size=1, max_size=50)


def expected(data: list[tuple[float, float, float | None]]) -> np.ndarray:
    return np.asarray([[a, b, math.nan if c is None else c] for a, b, c in data],
                      dtype=np.float32)


@settings(max_examples=80, deadline=None)
@given(data=rows)
def test_csv_json_and_header_forms_read_the_same_matrix(data: list) -> None:
    want = expected(data)
    csv_text = "\n".join(f"{a!r},{b!r},{'' if c is None else repr(c)}" for a, b, c in data)
    objects = [{"c": c, "a": a, "b": b} for a, b, c in data]
    for got in (reader.read_csv(csv_text.encode()),
                reader.read_csv(("c,a,b\n" + "\n".join(
                    f"{'' if c is None else repr(c)},{a!r},{b!r}" for a, b, c in data)).encode()),
                reader.read_json(json.dumps({"instances": objects}).encode()),
                reader.read_json(json.dumps([list(r) for r in data]).encode())):
        np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(scores=st.lists(st.floats(0, 1), min_size=1, max_size=20), threshold=st.floats(0, 1))
def test_formatted_scores_flag_exactly_the_rows_at_or_above_the_threshold(
        scores: list[float], threshold: float) -> None:
    array = np.asarray(scores)
    doc = json.loads(format_scores(array, threshold, JSON, {"run_id": "r"}))
    assert [p["hotspot"] for p in doc["predictions"]] == [s >= threshold for s in scores]
    lines = format_scores(array, threshold, CSV, {}).decode().splitlines()
    assert [int(line.split(",")[1]) for line in lines] == [int(s >= threshold) for s in scores]


@pytest.mark.parametrize(("body", "message"), [
    (b"1,2", "row 1 has 2 values; the model expects 3 (GET /model lists them in order)."),
    (b"1,x,3", "row 1, feature 'b': expected a number; got 'x'."),
    (b",2,3", "row 1, feature 'a' is missing (null or NaN), but the model was trained without "
              "missing values for it. Send a number."),
    (b"a,a,b\n1,2,3", "the columns must name every model feature once; missing ['c'], unknown "
                      "[]. GET /model lists them."),
    (b"\xff\xfe", "the CSV body is not UTF-8 text. Send UTF-8 encoded CSV."),
    (b'1,"2\r', "the CSV body is malformed: unexpected end of data. Send one row per line, "
                 "values separated by commas."),
    (b"1,2,3\r4,5,6\n", None),
    (b"\n\n", "the payload has no rows; send at least one row of features."),
    (("1,2,3\n" * 51).encode(), "the payload has 51 rows, more than the limit of 50. Split it "
                                "into smaller requests."),
])
def test_csv_errors_are_exact(body: bytes, message: str | None) -> None:
    if message is None:  # old Mac line endings are rows too
        assert reader.read_csv(body).shape == (2, 3)
        return
    with pytest.raises(ServingError) as err:
        reader.read_csv(body)
    assert str(err.value) == message


def test_json_numbers_too_large_for_a_float_are_refused() -> None:
    with pytest.raises(ServingError) as err:
        reader.read_json(b'[[1e400, 1, 1]]')
    assert str(err.value) == "row 1, feature 'a' is inf; values must be finite numbers."
    with pytest.raises(ServingError) as err:
        reader.read_json(json.dumps([[10**400, 1, 1]]).encode())
    assert str(err.value) == "row 1, feature 'a' is inf; values must be finite numbers."


@pytest.mark.parametrize(("accept", "kind"), [
    (None, JSON), ("*/*", JSON), ("text/csv", CSV), ("text/csv;q=0.9, application/json", CSV),
    ("application/json; charset=utf-8", JSON), ("text/*", CSV),
])
def test_accept_header_choices(accept: str | None, kind: str) -> None:
    assert choose_output(accept) == kind


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.lists(st.tuples(values, values, values | st.none()), min_size=40,
                     max_size=120))
def test_large_bodies_take_the_vectorised_path_with_identical_results(data: list) -> None:
    big = RowReader(FEATURES, frozenset({"c"}), max_rows=1000)
    csv_text = "\n".join(f"{a!r},{b!r},{'' if c is None else repr(c)}" for a, b, c in data)
    fast = big._fast_csv(csv_text.encode())
    assert fast is not None
    np.testing.assert_array_equal(fast, expected(data))
    np.testing.assert_array_equal(big.read_csv(csv_text.encode()), expected(data))
    objects = [{"a": a, "b": b, "c": c} for a, b, c in data]
    np.testing.assert_array_equal(big._fast_json(objects), expected(data))


def test_large_bodies_with_a_bad_value_still_name_it() -> None:
    big = RowReader(FEATURES, frozenset({"c"}), max_rows=1000)
    lines = ["1.5,2.5,3.5"] * 600 + [",2,3"]
    with pytest.raises(ServingError) as err:
        big.read_csv("\n".join(lines).encode())
    assert str(err.value).startswith("row 601, feature 'a' is missing (null or NaN)")
    rows = [{"a": 1, "b": 2, "c": None}] * 600 + [{"a": True, "b": 2, "c": 3}]
    with pytest.raises(ServingError) as err:
        big.read_json(json.dumps(rows).encode())
    assert str(err.value) == "row 601, feature 'a': expected a number; got boolean true."


def test_dataframe_split_refuses_object_rows() -> None:
    """Object rows are already in model order; reordering them by 'columns' again would
    score the wrong values, so dataframe_split takes arrays only (MLflow's contract)."""
    body = {"dataframe_split": {"columns": ["c", "a", "b"],
                                "data": [[3, 1, 2], {"a": 1, "b": 2, "c": 3}]}}
    with pytest.raises(ServingError) as err:
        reader.read_json(json.dumps(body).encode())
    assert (str(err.value), err.value.status) == (
        "dataframe_split rows must be arrays in the order of 'columns'; row 2 is an object. "
        "Send objects as dataframe_records.", 422)
    for data, kind in (([{"a": 1, "b": 2, "c": 3}], "an object"), ([7], "a number"),
                       (["x"], "a string")):
        with pytest.raises(ServingError) as err:
            reader.read_json(json.dumps({"dataframe_split": {"data": data}}).encode())
        assert str(err.value).startswith(
            f"dataframe_split rows must be arrays in the order of 'columns'; row 1 is {kind}.")
    arrays = {"dataframe_split": {"columns": ["c", "a", "b"], "data": [[3, 1, 2]]}}
    np.testing.assert_array_equal(reader.read_json(json.dumps(arrays).encode()),
                                  np.asarray([[1, 2, 3]], dtype=np.float32))


@pytest.mark.parametrize("value", ["1e39", "-1e39", "1e300", "3.5e38", str(10**39)])
def test_values_beyond_the_float32_range_are_refused_in_json_and_csv(value: str) -> None:
    shown = f"{float(value):g}"
    message = (f"row 2, feature 'b' is {shown}, outside the float32 range the model computes "
               "in (magnitude at most 3.40282e+38). Send a smaller value.")
    bodies = [(reader.read_json, f'[[1, 2, 3], [1, {value}, 3]]'.encode()),
              (reader.read_json, ('{"instances": [{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": '
                                  f'{value}, "c": 3}}]}}').encode()),
              (reader.read_csv, f"1,2,3\n1,{value},3".encode()),
              (reader.read_csv, f"a,b,c\n1,2,3\n1,{value},3".encode())]
    big = RowReader(FEATURES, frozenset({"c"}), max_rows=1000)  # the vectorised paths
    many = ["1.5,2.5,3.5"] * 600
    bodies += [(big.read_csv, "\n".join([many[0], f"1,{value},3", *many]).encode()),
               (big.read_json, json.dumps([[1, 2, 3], [1, float(value), 3], *[[1, 2, 3]] * 600])
                .encode())]
    for read, body in bodies:
        with pytest.raises(ServingError) as err:
            read(body)
        assert (str(err.value), err.value.status) == (message, 422)


def test_the_largest_float32_still_passes() -> None:
    top = float(np.finfo(np.float32).max)
    got = reader.read_json(json.dumps([[top, -top, None]]).encode())
    assert got[0, 0] == np.finfo(np.float32).max and np.isfinite(got[0, :2]).all()
