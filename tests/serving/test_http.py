"""The server over real HTTP: a uvicorn server on 127.0.0.1 driven with httpx."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable

import httpx
import numpy as np
import polars as pl
import pytest

from crimecast.config import ServingConfig
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.state import Loaded

from .conftest import TOKEN, LiveServer, ServedRun

AT = "2023-08-01T06:00"


def feature_rows(served_run: ServedRun, bundle: ModelBundle, n: int = 3) -> list[dict]:
    frame = pl.read_parquet(served_run.summary.run_dir / "process" / "features.parquet")
    rows = frame.select(bundle.features).tail(n).to_dicts()
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in rows]


def test_ping_is_503_while_loading_then_200(live_server: Callable[..., LiveServer],
                                             loaded: Loaded) -> None:
    release = threading.Event()

    def slow_loader() -> Loaded:
        release.wait(10)
        return loaded

    with live_server(loader=slow_loader) as server:
        first = httpx.get(f"{server.url}/ping")
        assert first.status_code == 503
        assert first.json() == {"status": "loading", "detail": None}
        blocked = httpx.post(f"{server.url}/invocations", json={"instances": []})
        assert blocked.status_code == 503
        assert blocked.json()["detail"] == "the model is still loading; retry in a few seconds."
        release.set()
        server.server.config.app.app.state.crimecast.wait(10)
        ready = httpx.get(f"{server.url}/ping")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"


def test_ping_reports_a_failed_load(live_server: Callable[..., LiveServer]) -> None:
    def broken() -> Loaded:
        raise ValueError("disk on fire")

    with live_server(loader=broken) as server:
        server.server.config.app.app.state.crimecast.wait(10)
        answer = httpx.get(f"{server.url}/ping")
        assert answer.status_code == 503
        assert answer.json() == {"status": "failed", "detail": "ValueError: disk on fire"}


def test_invocations_json_scores_match_the_model(shared_server: LiveServer,
                                                 served_run: ServedRun,
                                                 bundle: ModelBundle) -> None:
    rows = feature_rows(served_run, bundle)
    answer = httpx.post(f"{shared_server.url}/invocations", json={"instances": rows})
    assert answer.status_code == 200
    body = answer.json()
    expected = bundle.model.predict_proba(pl.DataFrame(rows, schema={
        f: pl.Float64 for f in bundle.features}))
    assert [p["score"] for p in body["predictions"]] == pytest.approx(expected, abs=1e-6)
    assert [p["hotspot"] for p in body["predictions"]] == [bool(s >= bundle.threshold)
                                                          for s in expected]
    assert body["model_version"] == bundle.version
    assert body["run_id"] == bundle.run_id
    assert answer.headers["x-crimecast-run-id"] == bundle.run_id


def test_invocations_accepts_every_json_shape_and_csv(shared_server: LiveServer,
                                                      served_run: ServedRun,
                                                      bundle: ModelBundle) -> None:
    rows = feature_rows(served_run, bundle)
    lists = [[r[f] for f in bundle.features] for r in rows]
    shuffled = list(reversed(bundle.features))
    bodies = [
        {"instances": rows}, {"inputs": rows}, {"dataframe_records": rows}, rows,
        {"instances": lists},
        {"dataframe_split": {"columns": shuffled, "data": [[r[f] for f in shuffled]
                                                           for r in rows]}},
    ]
    scores = []
    for body in bodies:
        answer = httpx.post(f"{shared_server.url}/invocations", json=body)
        assert answer.status_code == 200, answer.text
        scores.append([p["score"] for p in answer.json()["predictions"]])
    csv_text = "\n".join(",".join("" if v is None else repr(v) for v in row) for row in lists)
    header = ",".join(bundle.features) + "\n"
    for text in (csv_text, header + csv_text):
        answer = httpx.post(f"{shared_server.url}/invocations", content=text,
                            headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        lines = answer.text.strip().split("\n")
        scores.append([float(line.split(",")[0]) for line in lines])
    for got in scores[1:]:
        assert got == pytest.approx(scores[0], abs=1e-5)


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"instances": []}, 400, "the payload has no rows; send at least one row of features."),
    ({"foo": 1}, 422, "the JSON body must hold rows under 'instances', 'inputs', "
                      "'dataframe_records' or 'dataframe_split', or be a list; got keys "
                      "['foo']."),
    ([[1, 2]], 422, "row 1 has 2 values; the model expects {n} (GET /model lists them in "
                    "order)."),
    ({"instances": "x"}, 422, "the rows must be a JSON array; got str."),
    ({"instances": [7]}, 422, "row 1 must be an object or an array; got int."),
])
def test_invocations_rejects_bad_json_with_a_named_problem(
        shared_server: LiveServer, bundle: ModelBundle, body: object, status: int,
        detail: str) -> None:
    answer = httpx.post(f"{shared_server.url}/invocations", json=body)
    assert answer.status_code == status
    assert answer.json() == {"detail": detail.format(n=len(bundle.features))}


def test_invocations_names_missing_wrong_type_and_nan_features(
        shared_server: LiveServer, served_run: ServedRun, bundle: ModelBundle) -> None:
    row = feature_rows(served_run, bundle, 1)[0]
    strict = next(f for f in bundle.features if f not in bundle.nullable)
    nullable = sorted(bundle.nullable)
    missing = {k: v for k, v in row.items() if k != strict}
    cases = [
        ({"instances": [missing]}, f"row 1 lacks feature(s) ['{strict}']; send every model "
                                   "feature (GET /model lists them)."),
        ({"instances": [{**row, strict: "high"}]},
         f"row 1, feature '{strict}': expected a number; got string \"high\"."),
        ({"instances": [{**row, strict: True}]},
         f"row 1, feature '{strict}': expected a number; got boolean true."),
        ({"instances": [{**row, strict: None}]},
         f"row 1, feature '{strict}' is missing (null or NaN), but the model was trained "
         "without missing values for it. Send a number."),
        ({"instances": [{**row, "officer_name": 1}]},
         "row 1 has unknown feature(s) ['officer_name']; send only the model's features "
         "(GET /model lists them)."),
    ]
    for body, detail in cases:
        answer = httpx.post(f"{shared_server.url}/invocations", json=body)
        assert answer.status_code == 422
        assert answer.json() == {"detail": detail}
    if nullable:  # a feature that had gaps in training may be null
        answer = httpx.post(f"{shared_server.url}/invocations",
                            json={"instances": [{**row, nullable[0]: None}]})
        assert answer.status_code == 200
    values = [str(row[f]) if row[f] is not None else "" for f in bundle.features]
    values[bundle.features.index(strict)] = "NaN"
    answer = httpx.post(f"{shared_server.url}/invocations", content=",".join(values),
                        headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"row 1, feature '{strict}' is missing")
    values[bundle.features.index(strict)] = "inf"
    answer = httpx.post(f"{shared_server.url}/invocations", content=",".join(values),
                        headers={"Content-Type": "text/csv"})
    assert answer.json() == {"detail": f"row 1, feature '{strict}' is inf; values must be "
                                       "finite numbers."}


def test_invocations_content_negotiation_and_limits(
        live_server: Callable[..., LiveServer], loaded: Loaded, served_run: ServedRun,
        bundle: ModelBundle) -> None:
    config = ServingConfig(max_rows=5, max_body_bytes=16384)
    row = feature_rows(served_run, bundle, 1)[0]
    with live_server(config, loaded=loaded) as server:
        url = f"{server.url}/invocations"
        answer = httpx.post(url, content="1,2", headers={"Content-Type": "text/plain"})
        assert answer.status_code == 415
        assert answer.json() == {"detail": "Content-Type must be application/json or "
                                           "text/csv; got 'text/plain'. Send Content-Type: "
                                           "text/csv."}
        answer = httpx.post(url, json={"instances": [row]}, headers={"Accept": "image/png"})
        assert answer.status_code == 406
        assert answer.json() == {"detail": "Accept must allow application/json or text/csv; "
                                           "got 'image/png'. Send Accept: application/json."}
        answer = httpx.post(url, json={"instances": [row] * 6})
        assert answer.status_code == 413
        assert answer.json() == {"detail": "the payload has 6 rows, more than the limit of 5. "
                                           "Split it into smaller requests."}
        answer = httpx.post(url, content=b"1," * 9000, headers={"Content-Type": "text/csv"})
        assert answer.status_code == 413
        assert answer.json() == {"detail": "the request body is larger than the limit of "
                                           "16,384 bytes. Split it into smaller requests."}

        def chunks() -> object:
            for _ in range(10):
                yield b"1," * 1000

        answer = httpx.post(url, content=chunks(), headers={"Content-Type": "text/csv"})
        assert answer.status_code == 413
        answer = httpx.post(url, content=b"{not json", headers={"Content-Type":
                                                                "application/json"})
        assert answer.status_code == 400
        assert answer.json()["detail"].startswith("the body is not valid JSON")


def test_token_is_required_everywhere_but_ping_and_the_map_shell(
        live_server: Callable[..., LiveServer], loaded: Loaded, served_run: ServedRun,
        bundle: ModelBundle) -> None:
    row = feature_rows(served_run, bundle, 1)[0]
    with live_server(loaded=loaded, token=TOKEN) as server:
        for method, path in (("POST", "/invocations"), ("GET", "/hotspots"),
                             ("GET", "/model"), ("GET", "/boundaries")):
            answer = httpx.request(method, f"{server.url}{path}", json={"instances": [row]})
            assert answer.status_code == 401, path
            assert answer.json() == {"detail": "missing or wrong bearer token. Send the header "
                                               "Authorization: Bearer <token>."}
            assert answer.headers["www-authenticate"] == 'Bearer realm="crimecast"'
        wrong = httpx.get(f"{server.url}/model", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{server.url}/model", headers=good).status_code == 200
        assert httpx.post(f"{server.url}/invocations", json={"instances": [row]},
                          headers=good).status_code == 200
        assert httpx.get(f"{server.url}/ping").status_code == 200
        # Pages and the API description hold no data: open, like the vendored libraries.
        for path in ("/map", "/docs", "/openapi.json", "/vendor/leaflet/leaflet.js",
                     "/vendor/swagger-ui-dist/swagger-ui.css"):
            assert httpx.get(f"{server.url}{path}").status_code == 200, path
        assert httpx.get(f"{server.url}/vendor/../model").status_code in (401, 404)


def test_the_root_redirects_to_the_map_and_docs_load_nothing_from_elsewhere(
        shared_server: LiveServer) -> None:
    root = httpx.get(f"{shared_server.url}/")
    assert root.status_code == 307 and root.headers["location"] == "/map"
    docs = httpx.get(f"{shared_server.url}/docs")
    assert docs.status_code == 200
    links = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)', docs.text)
    assert links and all(link.startswith("/") for link in links), links
    for link in links:
        assert httpx.get(f"{shared_server.url}{link}").status_code == 200, link


def test_hotspots_geojson_ranks_units_with_audit_fields(shared_server: LiveServer,
                                                        bundle: ModelBundle) -> None:
    answer = httpx.get(f"{shared_server.url}/hotspots",
                       params={"at": AT, "horizon": "1d", "top": 5, "unit": "area"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/geo+json"
    doc = answer.json()
    assert doc["type"] == "FeatureCollection"
    props = doc["properties"]
    assert (props["window_start"], props["window_end"], props["bins"]) == (
        "2023-08-01T06:00", "2023-08-02T06:00", 3)
    assert props["issued_at"] == "2023-08-01T06:00"
    assert props["model_version"] == bundle.version and props["run_id"] == bundle.run_id
    features = doc["features"]
    assert [f["properties"]["rank"] for f in features] == [1, 2, 3, 4, 5]
    scores = [f["properties"]["score"] for f in features]
    assert scores == sorted(scores, reverse=True)
    for feature in features:
        p = feature["properties"]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert p["model_version"] == bundle.version and p["run_id"] == bundle.run_id
        assert p["expected_count"] >= 0 and 0 <= p["score"] <= 1
        assert p["hotspot"] == (p["flagged_bins"] > 0)
    again = httpx.get(f"{shared_server.url}/hotspots",
                      params={"at": "2023-08-01T09:30", "horizon": "1d", "top": 5})
    assert again.json()["features"] == features  # the same shift: the same window


@pytest.mark.parametrize(("params", "detail"), [
    ({"horizon": "5x"}, "horizon must be a number and a unit (h, d or w), such as 8h; got "
                        "'5x'. Pass --horizon 8h."),
    ({"horizon": "4h"}, "horizon must be a positive multiple of the model's 8h bins; got "
                        "'4h'. Pass --horizon 8h."),
    ({"horizon": "30d"}, "horizon must be at most 7 days; got '30d'. Pass a shorter --horizon."),
    ({"at": "yesterday"}, "at must be an ISO 8601 date-time such as 2024-10-01T14:00; got "
                          "'yesterday'. Pass --at 2024-10-01T14:00."),
    ({"at": "2023-08-01T06:00+02:00"}, "at must be a local time without a UTC offset (the "
                                       "data's own clock); got '2023-08-01T06:00+02:00'. "
                                       "Pass 2023-08-01T06:00:00 in local time."),
    ({"unit": "grid"}, "unit must be one of the served spatial units ['area']; got 'grid'. "
                       "Start the server with another --model trained with --spatial-unit "
                       "grid."),
])
def test_hotspots_rejects_bad_queries(shared_server: LiveServer, params: dict,
                                      detail: str) -> None:
    answer = httpx.get(f"{shared_server.url}/hotspots", params=params)
    assert answer.status_code == 422
    assert answer.json() == {"detail": detail}


def test_hotspots_without_a_data_store_is_503(live_server: Callable[..., LiveServer],
                                              bundle: ModelBundle) -> None:
    with live_server(loaded=Loaded(bundle=bundle)) as server:
        answer = httpx.get(f"{server.url}/hotspots", params={"at": AT})
        assert answer.status_code == 503
        assert answer.json()["detail"].startswith("the server has no data store")
        assert httpx.post(f"{server.url}/invocations", json={"instances": []}).status_code \
            == 400


def test_model_summary_and_card(shared_server: LiveServer, bundle: ModelBundle,
                                served_run: ServedRun) -> None:
    summary = httpx.get(f"{shared_server.url}/model").json()
    evaluation = served_run.summary.evaluation
    assert summary["model_version"] == bundle.version
    assert summary["features"] == bundle.features
    assert summary["metrics"]["f1"] == evaluation["binary_classification_metrics"]["f1"]["value"]
    assert summary["spatial_unit"] == "area" and summary["time_bin"] == "8h"
    assert summary["horizons"] == ["8h", "1d", "7d"]
    assert summary["synthetic_data"] is True
    assert set(summary["metrics_by_area"]) <= {str(v) for v in bundle.units.region}
    assert summary["risk_rating"] in ("Low", "Medium", "High")
    # The served model says where it stands among the forecasters ranked on validation.
    ranking = evaluation["forecasters"]
    assert summary["champion_line"] == ranking["champion_line"]
    assert [r["forecaster"] for r in summary["validation_ranking"]] == [
        r["forecaster"] for r in ranking["validation_ranking"]]
    card = httpx.get(f"{shared_server.url}/model/card")
    assert card.status_code == 200 and "<html" in card.text.lower()
    # Written before registration, the card shows the version the registry gave the model.
    assert f'<dd id="model-version">{bundle.version}</dd>' in card.text
    assert "not registered when this card was written" not in card.text
    assert summary["hotspot_meaning"].startswith("unusually busy for that place")
    outlines = httpx.get(f"{shared_server.url}/boundaries").json()
    assert len(outlines["features"]) == len(set(bundle.units.region))
    spec = httpx.get(f"{shared_server.url}/openapi.json").json()
    assert {"/ping", "/invocations", "/hotspots", "/map", "/model"} <= set(spec["paths"])


def test_map_page_loads_only_this_servers_files_unless_tiles_are_set(
        shared_server: LiveServer) -> None:
    from crimecast.serving.map_page import map_html

    offline = map_html("none")
    assert 'name="viewport"' in offline
    # The SYNTHETIC DATA badge and the one-option places menu stay hidden when hidden (a CSS
    # display rule used to override the attribute).
    assert "[hidden] { display: none !important; }" in offline
    assert re.findall(r'(?:src|href)="([^"]*)"', offline) == [
        "/vendor/leaflet/leaflet.css", "#", "#", "/vendor/leaflet/leaflet.js"]
    for needle in ("http://", "https://", "//cdn", "@import"):
        assert needle not in offline, needle
    # The default serves OpenStreetMap's tiles with their attribution; nothing else is remote.
    page = httpx.get(f"{shared_server.url}/map").text
    remote = set(re.findall(r"https?://[^\s\"']+", page))
    assert remote == {"https://tile.openstreetmap.org/{z}/{x}/{y}.png"}
    assert "\\u00a9 OpenStreetMap contributors" in page  # JSON-escaped ©
    for asset in ("/vendor/leaflet/leaflet.css", "/vendor/leaflet/leaflet.js",
                  "/vendor/leaflet/images/layers.png"):
        assert httpx.get(f"{shared_server.url}{asset}").status_code == 200, asset


def test_tiles_must_be_a_template_or_none() -> None:
    from crimecast.config import ServingConfig

    assert ServingConfig(tiles="/tiles/{z}/{x}/{y}.png").tiles == "/tiles/{z}/{x}/{y}.png"
    with pytest.raises(ValueError, match="must be 'none' or a tile URL template"):
        ServingConfig(tiles="https://example.org/tiles.png")


def test_scores_are_deterministic_across_row_order(shared_server: LiveServer,
                                                   served_run: ServedRun,
                                                   bundle: ModelBundle) -> None:
    rows = feature_rows(served_run, bundle, 8)
    forward = httpx.post(f"{shared_server.url}/invocations", json=rows).json()
    backward = httpx.post(f"{shared_server.url}/invocations", json=rows[::-1]).json()
    assert [p["score"] for p in forward["predictions"]] == \
        [p["score"] for p in backward["predictions"]][::-1]
    assert json.dumps(forward["threshold"]) == json.dumps(bundle.threshold)
    assert np.isfinite([p["score"] for p in forward["predictions"]]).all()
