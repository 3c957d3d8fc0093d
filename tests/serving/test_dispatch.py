"""Dispatch integration (#14): KML layers, the forecast webhook and per-shift file names."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crimecast import __version__
from crimecast.errors import ConfigError, ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.dispatch import (
    KML_FIELDS,
    KML_NS,
    PostResult,
    body_key,
    check_post_url,
    forecast_key,
    forecast_kml,
    post_forecast,
    shift_file_name,
    shift_file_stem,
)
from crimecast.serving.forecast import Forecast, compute_forecast, parse_at
from crimecast.serving.geojson import UnitShapes, hotspots_geojson
from crimecast.serving.state import Loaded, hotspot_meaning

from .conftest import ServedRun

K = f"{{{KML_NS}}}"
LA_BOX = (-119.0, 33.3, -117.6, 34.9)  # lon/lat box around Los Angeles County


@dataclass(frozen=True)
class Shift:
    bundle: ModelBundle
    forecast: Forecast
    shapes: UnitShapes


def _shift(loaded: Loaded, bundle: ModelBundle, at: str, horizon: str) -> Shift:
    assert loaded.store is not None and bundle.unit_table is not None
    forecast = compute_forecast(bundle, loaded.store, loaded.weather, parse_at(at), horizon, 7,
                                14.0)
    return Shift(bundle, forecast, UnitShapes.from_table(bundle.unit_table))


@pytest.fixture(scope="module")
def area_shift(loaded: Loaded, bundle: ModelBundle) -> Shift:
    return _shift(loaded, bundle, "2023-08-01T06:00", "1d")


@pytest.fixture(scope="module")
def grid_shift(loaded: Loaded, grid_bundle: ModelBundle) -> Shift:
    return _shift(loaded, grid_bundle, "2023-08-01T00:00", "1d")


# ----------------------------------------------------------------------------- KML


def _data(element: ET.Element) -> dict[str, str]:
    return {d.get("name", ""): d.findtext(f"{K}value") or ""
            for d in element.findall(f"{K}ExtendedData/{K}Data")}


def _rings(placemark: ET.Element) -> list[list[tuple[float, float]]]:
    rings = []
    for coords in placemark.iter(f"{K}coordinates"):
        points = [p.split(",") for p in (coords.text or "").split()]
        rings.append([(float(lon), float(lat)) for lon, lat in points])
    return rings


def _as_geojson_text(value: Any) -> str:
    return "" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def _check_kml(shift: Shift, top: int) -> ET.Element:
    """The KML parses, is KML 2.2 and says what the GeoJSON of the same forecast says."""
    raw = forecast_kml(shift.forecast, shift.shapes, shift.bundle, top)
    assert raw.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<kml xmlns=\"" +
                          KML_NS.encode() + b'">')
    root = ET.fromstring(raw)
    assert root.tag == f"{K}kml"
    document = root.find(f"{K}Document")
    assert document is not None
    geojson = json.loads(hotspots_geojson(shift.forecast, shift.shapes, shift.bundle, top))
    placemarks = document.findall(f"{K}Placemark")
    assert len(placemarks) == top == len(geojson["features"])
    meaning = hotspot_meaning(shift.bundle.feature_config)
    for n, (placemark, feature) in enumerate(zip(placemarks, geojson["features"],
                                                 strict=True), start=1):
        props = feature["properties"]
        assert props["rank"] == n
        assert placemark.findtext(f"{K}name") == f"#{n} {props['place']}"
        assert placemark.findtext(f"{K}styleUrl") == "#hotspot"
        data = _data(placemark)
        assert list(data) == list(KML_FIELDS)
        assert data == {k: _as_geojson_text(props[k]) for k in KML_FIELDS}
        assert int(data["rank"]) == n and float(data["score"]) == props["score"]
        assert float(data["expected_count"]) == props["expected_count"]
        words = placemark.findtext(f"{K}description") or ""
        assert words.startswith(f"Expected crimes in this {shift.forecast.horizon} window: "
                                f"{props['expected_count']:.1f}.\nChance of being {meaning}: "
                                f"{100 * props['score']:.0f}%")
        # Rings: lon,lat, closed, in Los Angeles, and the GeoJSON's own vertices.
        geometry = feature["geometry"]
        polygons = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                    else geometry["coordinates"])
        rings = _rings(placemark)
        assert rings == [[(round(x, 6), round(y, 6)) for x, y in ring] for rings in polygons
                         for ring in rings]
        for ring in rings:
            assert len(ring) >= 4 and ring[0] == ring[-1]
            assert all(LA_BOX[0] < lon < LA_BOX[2] and LA_BOX[1] < lat < LA_BOX[3]
                       for lon, lat in ring)
        multi = placemark.find(f"{K}MultiGeometry")
        assert (multi is not None) == (geometry["type"] == "MultiPolygon")
    return document


def test_an_area_forecast_as_kml_matches_its_geojson(area_shift: Shift) -> None:
    document = _check_kml(area_shift, 6)
    forecast, bundle = area_shift.forecast, area_shift.bundle
    words = document.findtext(f"{K}description") or ""
    assert words.startswith("Crime hotspot forecast for 2023-08-01 06:00 to 2023-08-02 06:00 "
                            "(1d), issued 2023-08-01 06:00: the top 6 of 21 places.\n")
    assert f"Model {bundle.describe()}; crime types: all." in words
    assert bundle.version is not None and f"version {bundle.version} (run {bundle.run_id})" \
        in words
    assert forecast.data_through is not None
    assert f"Data through {forecast.data_through:%Y-%m-%d %H:%M} (" in words
    assert "Places, never people" in words
    collection = _data(document)
    assert collection["window_start"] == "2023-08-01T06:00"
    assert collection["window_end"] == "2023-08-02T06:00"
    assert collection["run_id"] == bundle.run_id
    assert collection["model_version"] == str(bundle.version)
    assert collection["top"] == "6" and collection["unit"] == "area"
    fill = document.findtext(f"{K}Style/{K}PolyStyle/{K}color") or ""
    assert len(fill) == 8 and 0 < int(fill[:2], 16) < 255  # aabbggrr, semi-transparent


def test_a_grid_forecast_as_kml_matches_its_geojson(grid_shift: Shift) -> None:
    document = _check_kml(grid_shift, 4)
    names = [p.findtext(f"{K}name") or "" for p in document.findall(f"{K}Placemark")]
    assert all(" · " in n for n in names)  # generated ids get a place name, not g3000_...
    assert _data(document)["unit"] == "grid"


def test_special_characters_are_escaped_and_multipolygons_kept(area_shift: Shift) -> None:
    top = area_shift.forecast.ranked["unit_id"][0]
    odd = 'Tom & Jerry\'s <"Corner"> · Ñuñoa\x01'
    square = [[-118.30, 34.00], [-118.29, 34.00], [-118.29, 34.01], [-118.30, 34.01]]
    hole = [[-118.296, 34.004], [-118.294, 34.004], [-118.295, 34.006], [-118.296, 34.004]]
    far = [[-118.20, 34.05], [-118.19, 34.05], [-118.19, 34.06], [-118.20, 34.05]]
    shapes = dataclasses.replace(
        area_shift.shapes, place={**area_shift.shapes.place, top: odd},
        geometry={**area_shift.shapes.geometry, top: json.dumps(
            {"type": "MultiPolygon", "coordinates": [[square, hole], [far]]})})
    raw = forecast_kml(area_shift.forecast, shapes, area_shift.bundle, 2)
    assert "#1 Tom &amp; Jerry's &lt;\"Corner\"&gt; · Ñuñoa\ufffd</name>".encode() in raw
    first = ET.fromstring(raw).find(f"{K}Document/{K}Placemark")
    assert first is not None
    assert first.findtext(f"{K}name") == "#1 Tom & Jerry's <\"Corner\"> · Ñuñoa\ufffd"
    assert _data(first)["place"] == "Tom & Jerry's <\"Corner\"> · Ñuñoa\ufffd"
    polygons = first.findall(f"{K}MultiGeometry/{K}Polygon")
    assert len(polygons) == 2
    assert len(polygons[0].findall(f"{K}innerBoundaryIs")) == 1
    rings = _rings(first)
    assert rings[0][0] == rings[0][-1] == (-118.3, 34.0) and len(rings[0]) == 5  # closed
    assert rings[1] == [tuple(p) for p in hole] and rings[2] == [tuple(p) for p in far]


# ------------------------------------------------------------------- file names


def test_a_shifts_files_share_one_stem(area_shift: Shift) -> None:
    late = dataclasses.replace(area_shift.forecast,
                               window_start=dt.datetime(2024, 3, 31, 22), horizon=" 8H")
    assert shift_file_stem(late) == "hotspots_2024-03-31T2200_8h"
    assert shift_file_stem(area_shift.forecast) == "hotspots_2023-08-01T0600_1d"
    assert [shift_file_name(late, f) for f in ("geojson", "csv", "KML")] == [
        "hotspots_2024-03-31T2200_8h.geojson", "hotspots_2024-03-31T2200_8h.csv",
        "hotspots_2024-03-31T2200_8h.kml"]
    with pytest.raises(ConfigError) as err:
        shift_file_name(late, "shp")
    assert str(err.value) == "format must be geojson, csv or kml; got 'shp'. Pass --format kml."


def test_the_idempotency_key_names_the_window_and_the_model_run(
        area_shift: Shift, loaded: Loaded) -> None:
    key = forecast_key(area_shift.forecast, area_shift.bundle)
    again = _shift(loaded, area_shift.bundle, "2023-08-01T06:00", "1d")
    assert forecast_key(again.forecast, again.bundle) == key
    assert key.startswith("crimecast-") and len(key) == 42
    other = dataclasses.replace(area_shift.forecast, window_start=dt.datetime(2023, 8, 2, 6))
    assert forecast_key(other, area_shift.bundle) != key
    retrained = dataclasses.replace(area_shift.bundle, run_id="0" * 32)
    assert forecast_key(area_shift.forecast, retrained) != key


# ---------------------------------------------------------------------- webhook


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(http.server.ThreadingHTTPServer):
    answers: list[Answer]
    received: list[Received]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that timed out leaves a broken pipe behind."""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(Received(self.path, dict(self.headers.items()), body))
        answer = self.server.answers.pop(0) if self.server.answers else Answer()
        time.sleep(answer.sleep)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")


@pytest.fixture
def receiver() -> Iterator[_Server]:
    """A real HTTP receiver on 127.0.0.1; set ``answers`` before posting (then 200s)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.answers, server.received = [], []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hook"


BODY = b'{"type":"FeatureCollection","features":[]}'


def _post(url: str, body: bytes, **kwargs: Any) -> PostResult:
    """A post with a small backoff, so the retry tests stay fast."""
    return post_forecast(url, body, **{"backoff_s": 0.01, "timeout_s": 2.0, **kwargs})


def test_a_post_delivers_the_body_with_its_headers(receiver: _Server) -> None:
    result = _post(_url(receiver), BODY, idempotency_key="crimecast-abc",
                   headers={"Authorization": "Bearer t0ken"})
    assert result == PostResult(_url(receiver), 200, 1, result.seconds)
    assert 0 < result.seconds < 2
    [got] = receiver.received
    assert got.path == "/hook" and got.body == BODY
    assert got.headers["Content-Type"] == "application/geo+json"
    assert got.headers["Idempotency-Key"] == "crimecast-abc"
    assert got.headers["User-Agent"] == f"crimecast/{__version__}"
    assert got.headers["Authorization"] == "Bearer t0ken"


def test_5xx_answers_are_retried_with_the_same_key(receiver: _Server) -> None:
    receiver.answers = [Answer(503), Answer(503)]
    result = _post(_url(receiver), BODY)
    assert (result.status, result.attempts) == (200, 3)
    assert result.seconds >= 0.03  # backoff 0.01 s, then 0.02 s
    assert [r.headers["Idempotency-Key"] for r in receiver.received] == [body_key(BODY)] * 3
    assert [r.body for r in receiver.received] == [BODY] * 3


def test_429_waits_as_long_as_retry_after_says_up_to_a_cap(receiver: _Server) -> None:
    receiver.answers = [Answer(429, {"Retry-After": "1"})]
    result = _post(_url(receiver), BODY)
    assert (result.status, result.attempts) == (200, 2)
    assert 1.0 <= result.seconds < 3
    receiver.answers = [Answer(429, {"Retry-After": "3600"}),
                        Answer(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})]
    began = time.monotonic()
    result = _post(_url(receiver), BODY, max_wait_s=0.1)
    assert (result.status, result.attempts) == (200, 3)
    assert time.monotonic() - began < 1.5


def test_a_4xx_is_not_retried(receiver: _Server) -> None:
    receiver.answers = [Answer(400)]
    with pytest.raises(ServingError) as err:
        _post(_url(receiver), BODY)
    assert str(err.value) == (
        f"post to '{_url(receiver)}' failed after 1 attempt: HTTP 400 Bad Request, not "
        "retried (the receiver refused the request). Check the URL and what the receiver "
        "accepts, then run again.")
    assert err.value.status == 502
    assert len(receiver.received) == 1


def test_a_redirect_is_not_followed(receiver: _Server) -> None:
    receiver.answers = [Answer(301, {"Location": "/v2/hook"})]
    with pytest.raises(ServingError) as err:
        _post(_url(receiver), BODY)
    moved = _url(receiver).replace("/hook", "/v2/hook")
    assert str(err.value) == (
        f"post to '{_url(receiver)}' failed after 1 attempt: HTTP 301 Moved Permanently, a "
        f"redirect to '{moved}' (a POST is not redirected). Pass --post {moved}.")
    assert len(receiver.received) == 1


def test_persistent_5xx_fails_after_every_retry(receiver: _Server) -> None:
    receiver.answers = [Answer(500)] * 3
    with pytest.raises(ServingError) as err:
        _post(_url(receiver), BODY, retries=2)
    assert str(err.value) == (
        f"post to '{_url(receiver)}' failed after 3 attempts: HTTP 500 Internal Server Error. "
        "Check that the receiver is up and reachable, then run again.")


def test_a_receiver_slower_than_the_timeout_fails_after_the_retries(
        receiver: _Server) -> None:
    receiver.answers = [Answer(sleep=0.6), Answer(sleep=0.6)]
    began = time.monotonic()
    with pytest.raises(ServingError) as err:
        _post(_url(receiver), BODY, timeout_s=0.2, retries=1)
    assert str(err.value) == (
        f"post to '{_url(receiver)}' failed after 2 attempts: no answer within 0.2 s. Check "
        "that the receiver is up and reachable, then run again.")
    assert time.monotonic() - began < 1.5
    assert len(receiver.received) == 2


def test_a_closed_port_fails_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    with pytest.raises(ServingError) as err:
        _post(url, BODY, retries=2)
    assert str(err.value) == (
        f"post to '{url}' failed after 3 attempts: the connection was refused. Check that "
        "the receiver is up and reachable, then run again.")


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://x", "post must be an http:// or https:// URL; got 'ftp://x'. Pass --post "
                "https://cad.example.gov/hotspots."),
    ("cad.example.gov/hotspots", "post must be an http:// or https:// URL; got "
     "'cad.example.gov/hotspots'. Pass --post https://cad.example.gov/hotspots."),
    ("http://[::1", "post must be an http:// or https:// URL; got 'http://[::1'. Pass --post "
                    "https://cad.example.gov/hotspots."),
    ("https:///hotspots", "post must name a host after the scheme; got 'https:///hotspots'. "
                          "Pass --post https://cad.example.gov/hotspots."),
    ("https://cad:0/x", "post must have a port from 1 to 65535, if any; got "
                        "'https://cad:0/x'. Pass --post https://cad.example.gov/hotspots."),
    ("https://cad:http/x", "post must have a port from 1 to 65535, if any; got "
                           "'https://cad:http/x'. Pass --post https://cad.example.gov/hotspots."),
    ("https://cad.gov/a b", "post must be a URL without spaces or control characters (write "
                            "a space as %20); got 'https://cad.gov/a b'. Pass --post "
                            "https://cad.example.gov/hotspots."),
    ("https://me:s3cret@cad.gov/x", "post must not carry a user name or password (they would "
                                    "be logged); got 'https://me:***@cad.gov/x'. Pass --post "
                                    "https://cad.example.gov/hotspots and give the receiver's "
                                    "token as a header."),
])
def test_a_bad_url_is_refused_before_sending(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        post_forecast(url, BODY)
    assert str(err.value) == message


def test_a_url_is_trimmed() -> None:
    assert check_post_url("  https://cad.example.gov:8443/hotspots?x=1\n") == \
        "https://cad.example.gov:8443/hotspots?x=1"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"timeout_s": 0}, "timeout_s must be a positive number of seconds; got 0. Pass "
                       "timeout_s=10."),
    ({"retries": -1}, "retries must be a whole number from 0 to 10; got -1. Pass retries=3."),
    ({"retries": 2.5}, "retries must be a whole number from 0 to 10; got 2.5. Pass retries=3."),
    ({"backoff_s": float("nan")}, "backoff_s must be a number of seconds, 0 or more; got nan. "
                                  "Pass backoff_s=0.5."),
])
def test_bad_numbers_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        post_forecast("https://cad.example.gov/hotspots", BODY, **kwargs)
    assert str(err.value) == message


def test_a_forecast_geojson_posts_end_to_end(receiver: _Server, area_shift: Shift) -> None:
    """What ``crimecast predict --post`` will send: the shift's GeoJSON, keyed by window."""
    body = hotspots_geojson(area_shift.forecast, area_shift.shapes, area_shift.bundle, 3)
    key = forecast_key(area_shift.forecast, area_shift.bundle)
    result = post_forecast(_url(receiver), body, idempotency_key=key)
    assert result.attempts == 1
    [got] = receiver.received
    sent = json.loads(got.body)
    assert sent["properties"]["window_start"] == "2023-08-01T06:00"
    assert [f["properties"]["rank"] for f in sent["features"]] == [1, 2, 3]
    assert got.headers["Idempotency-Key"] == key


def test_predict_writes_a_shifts_three_files_and_posts_its_geojson(
        served_run: ServedRun, receiver: _Server, tmp_path: Path) -> None:
    from .test_cli import crimecast

    receiver.answers = [Answer(503)]  # one transient failure, then 200
    done = crimecast("predict", "--runs-dir", str(served_run.runs), "--at", "2023-08-01T06:00",
                     "--horizon", "1d", "--top", "4", "--format", "all", "--out",
                     str(tmp_path / "shifts"), "--post", _url(receiver),
                     "--forecast-log", "none", env={"NO_PROXY": "*"})
    assert done.returncode == 0, done.stderr
    stem = "hotspots_2023-08-01T0600_1d"
    assert sorted(p.name for p in (tmp_path / "shifts").iterdir()) == [
        f"{stem}.csv", f"{stem}.geojson", f"{stem}.kml"]
    geojson = (tmp_path / "shifts" / f"{stem}.geojson").read_bytes()
    placemarks = ET.fromstring((tmp_path / "shifts" / f"{stem}.kml").read_bytes()).iter(
        f"{{{KML_NS}}}Placemark")
    assert len(list(placemarks)) == 4
    assert [r.body for r in receiver.received] == [geojson, geojson]
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
    assert f"posted to {_url(receiver)}: HTTP 200 after 2 attempt(s)" in done.stderr
    bad = crimecast("predict", "--runs-dir", str(served_run.runs), "--at", "2023-08-01T06:00",
                    "--format", "all")
    assert bad.returncode == 2
    assert ("out must be a folder with --format all (the GeoJSON, CSV and KML of the shift "
            "are written side by side); got none. Pass --out shifts/.") in bad.stderr
    url = crimecast("predict", "--runs-dir", str(served_run.runs), "--at", "2023-08-01T06:00",
                    "--post", "ftp://x")
    assert url.returncode == 2
    assert ("post must be an http:// or https:// URL; got 'ftp://x'. Pass --post "
            "https://cad.example.gov/hotspots.") in url.stderr
