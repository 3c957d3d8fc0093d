"""Fuzzing the live server: no request, however malformed, gets a 5xx answer.

schemathesis generates requests from the server's own OpenAPI schema; hypothesis
adds arbitrary JSON documents and raw bytes for ``/invocations``.
"""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import LiveServer


@pytest.fixture(scope="module")
def operations(shared_server: LiveServer) -> list[object]:
    schema = schemathesis.openapi.from_url(f"{shared_server.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_the_schema_lists_every_endpoint(operations: list[object]) -> None:
    found = {(op.method.upper(), op.path) for op in operations}  # type: ignore[attr-defined]
    assert found >= {("GET", "/ping"), ("POST", "/invocations"), ("GET", "/hotspots"),
                     ("GET", "/map"), ("GET", "/model"), ("GET", "/boundaries")}


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_generated_request_gets_a_server_error(shared_server: LiveServer,
                                                  operations: list[object],
                                                  data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(operations))
    case = data.draw(operation.as_strategy())  # type: ignore[attr-defined]
    response = case.call(base_url=shared_server.url)
    assert response.status_code < 500, (case.method, case.path, response.text)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=json_values)
def test_arbitrary_json_bodies_get_4xx_or_200(shared_server: LiveServer, doc: object) -> None:
    answer = httpx.post(f"{shared_server.url}/invocations", content=json.dumps(doc),
                        headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text
    assert "detail" in answer.json() or answer.status_code == 200


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=400) | st.text(max_size=400).map(str.encode),
       ctype=st.sampled_from(["text/csv", "application/json", "text/csv; charset=utf-8"]),
       accept=st.sampled_from(["*/*", "text/csv", "application/json", "text/html", ""]))
def test_arbitrary_bytes_get_4xx_or_200(shared_server: LiveServer, body: bytes, ctype: str,
                                        accept: str) -> None:
    answer = httpx.post(f"{shared_server.url}/invocations", content=body,
                        headers={"Content-Type": ctype, "Accept": accept})
    assert answer.status_code < 500, answer.text


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(at=st.text(max_size=25) | st.datetimes().map(lambda d: d.isoformat(timespec="minutes")),
       horizon=st.text(max_size=6) | st.sampled_from(["8h", "1d", "16h", "7d", "0h", "1w"]),
       top=st.integers(-5, 2000).map(str) | st.text(max_size=5))
def test_arbitrary_hotspot_queries_get_4xx_or_200(shared_server: LiveServer, at: str,
                                                  horizon: str, top: str) -> None:
    answer = httpx.get(f"{shared_server.url}/hotspots",
                       params={"at": at, "horizon": horizon, "top": top})
    assert answer.status_code < 500, answer.text
