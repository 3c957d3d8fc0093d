"""Reliability fixes found by a hostile tester, over real HTTP (uvicorn on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from crimecast.serving.bundle import ModelBundle
from crimecast.serving.state import Loaded

from .conftest import TOKEN, LiveServer, ServedRun
from .test_http import feature_rows


def test_dataframe_split_with_object_rows_is_422_not_a_wrong_score(
        shared_server: LiveServer, served_run: ServedRun, bundle: ModelBundle) -> None:
    rows = feature_rows(served_run, bundle, 2)
    shuffled = list(reversed(bundle.features))
    url = f"{shared_server.url}/invocations"
    answer = httpx.post(url, json={"dataframe_split": {"columns": shuffled, "data": rows}})
    assert answer.status_code == 422
    assert answer.json() == {"detail": "dataframe_split rows must be arrays in the order of "
                                       "'columns'; row 1 is an object. Send objects as "
                                       "dataframe_records."}
    right = httpx.post(url, json={"dataframe_records": rows}).json()["predictions"]
    arrays = httpx.post(url, json={"dataframe_split": {
        "columns": shuffled, "data": [[r[f] for f in shuffled] for r in rows]}})
    assert arrays.status_code == 200
    assert arrays.json()["predictions"] == right


@pytest.mark.parametrize("value", [1e39, -1e39, 1e300])
def test_values_beyond_float32_are_422_in_json_and_csv(
        shared_server: LiveServer, served_run: ServedRun, bundle: ModelBundle,
        value: float) -> None:
    row = feature_rows(served_run, bundle, 1)[0]
    name = bundle.features[0]
    detail = (f"row 1, feature '{name}' is {value:g}, outside the float32 range the model "
              "computes in (magnitude at most 3.40282e+38). Send a smaller value.")
    url = f"{shared_server.url}/invocations"
    answer = httpx.post(url, json={"instances": [{**row, name: value}]})
    assert (answer.status_code, answer.json()) == (422, {"detail": detail})
    values = ["" if row[f] is None else repr(row[f]) for f in bundle.features]
    values[0] = repr(value)
    answer = httpx.post(url, content=",".join(values), headers={"Content-Type": "text/csv"})
    assert (answer.status_code, answer.json()) == (422, {"detail": detail})
    answer = httpx.post(url, content='{"instances": [{"' + name + '": Infinity}]}',
                        headers={"Content-Type": "application/json"})
    assert answer.status_code == 422  # a literal Infinity stays refused


def test_head_ping_answers_200_with_the_get_headers_and_no_body(
        shared_server: LiveServer) -> None:
    get = httpx.get(f"{shared_server.url}/ping")
    head = httpx.head(f"{shared_server.url}/ping")
    assert (get.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(live_server: Callable[..., LiveServer],
                                               loaded: Loaded, scheme: str) -> None:
    with live_server(loaded=loaded, token=TOKEN) as server:
        good = httpx.get(f"{server.url}/model", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert good.status_code == 200
        for header in (f"{scheme} {TOKEN}x", f"{scheme}{TOKEN}", f"Basic {TOKEN}", TOKEN,
                       f"{scheme} {TOKEN.upper()}"):
            bad = httpx.get(f"{server.url}/model", headers={"Authorization": header})
            assert bad.status_code == 401, header


def test_ping_without_a_valid_token_reveals_nothing(live_server: Callable[..., LiveServer],
                                                    loaded: Loaded, bundle: ModelBundle) -> None:
    with live_server(loaded=loaded, token=TOKEN) as server:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            answer = httpx.get(f"{server.url}/ping", headers=headers)
            assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
            assert bundle.run_id is not None and bundle.run_id not in answer.text
        full = httpx.get(f"{server.url}/ping", headers={"Authorization": f"bearer {TOKEN}"})
        assert full.status_code == 200
        assert full.json() == {"status": "ok", **bundle.audit()}
    with live_server(loaded=loaded) as server:  # no token configured: nothing to hide
        assert httpx.get(f"{server.url}/ping").json()["run_id"] == bundle.run_id


def test_ping_hides_the_load_error_without_a_valid_token(
        live_server: Callable[..., LiveServer]) -> None:
    def broken() -> Loaded:
        raise ValueError("cannot open /secret/path/model.json")

    with live_server(loader=broken, token=TOKEN) as server:
        server.server.config.app.app.state.crimecast.wait(10)
        answer = httpx.get(f"{server.url}/ping")
        assert (answer.status_code, answer.json()) == (503, {"status": "failed"})
        full = httpx.get(f"{server.url}/ping", headers={"Authorization": f"Bearer {TOKEN}"})
        assert full.json() == {"status": "failed",
                               "detail": "ValueError: cannot open /secret/path/model.json"}
