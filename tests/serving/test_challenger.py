"""Champion and challenger over real HTTP: the split, forced variants, shadow scores in the
forecast log, and ``serve --challenger`` refusing a model that forecasts differently."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cli import app as cli_app
from crimecast.config import ServingConfig
from crimecast.errors import ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast_log import ForecastLog, read_forecast_log
from crimecast.serving.server import challenger_reference
from crimecast.serving.state import Loaded
from crimecast.serving.variants import check_challenger, reads_champion_rows

from .conftest import LiveServer, ServedRun
from .test_http import feature_rows

AT = "2023-08-01T06:00"
HOT = {"at": AT, "horizon": "8h", "top": 5}
runner = CliRunner()


def logged(server: LiveServer) -> pl.DataFrame:
    """Everything the server logged, read once it has stopped (its answers' background
    tasks have run, its recorder and log are closed)."""
    state = server.server.config.app.app.state
    assert state.recorder.wait_idle(20)
    assert state.recorder.log.flush()
    return read_forecast_log(state.recorder.log.directory).collect()


def rows_of(frame: pl.DataFrame, request_id: str, served: bool) -> pl.DataFrame:
    return frame.filter(pl.col("request_id") == request_id,
                        pl.col("served") == served).sort("rank")


def scores_of(bundle: ModelBundle, rows: list[dict]) -> np.ndarray:
    return np.asarray(bundle.model.predict_proba(pl.DataFrame(rows, schema={
        f: pl.Float64 for f in bundle.features})))


class Gated:
    """A model whose scoring waits until ``gate`` opens (to see who waits for whom)."""

    def __init__(self, model: Any, gate: threading.Event) -> None:
        self.model = model
        self.gate = gate

    def predict_proba(self, matrix: Any) -> np.ndarray:
        assert self.gate.wait(20), "the gate never opened"
        return np.asarray(self.model.predict_proba(matrix))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def test_the_challenger_is_another_model_of_the_same_panel(
        bundle: ModelBundle, challenger_bundle: ModelBundle, served_run: ServedRun) -> None:
    assert challenger_bundle.version is not None and bundle.version is not None
    assert challenger_bundle.version != bundle.version
    assert challenger_bundle.run_id != bundle.run_id
    assert challenger_bundle.features == bundle.features
    rows = feature_rows(served_run, bundle, 20)
    assert not np.allclose(scores_of(bundle, rows), scores_of(challenger_bundle, rows))
    check_challenger(bundle, challenger_bundle)  # accepted


def test_shadow_logs_the_champion_served_and_the_challenger_in_shadow(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    rows = feature_rows(served_run, bundle, 3)
    with live_server(loaded=dueling, forecast_log=ForecastLog(tmp_path)) as server:
        inv = httpx.post(f"{server.url}/invocations", json={"instances": rows})
        hot = httpx.get(f"{server.url}/hotspots", params=HOT)
        # What the challenger would have answered, asked for explicitly.
        theirs = httpx.get(f"{server.url}/hotspots", params=HOT,
                           headers={"X-Crimecast-Variant": "challenger"})
    frame = logged(server)  # after the server stopped: every answer logged
    for answer in (inv, hot):
        assert answer.status_code == 200
        assert answer.headers["x-crimecast-variant"] == "champion"
        assert answer.headers["x-crimecast-model-version"] == str(bundle.version)
        assert answer.headers["x-crimecast-run-id"] == bundle.run_id
    assert inv.json()["model_version"] == bundle.version

    served = rows_of(frame, inv.headers["x-crimecast-request-id"], True)
    shadow = rows_of(frame, inv.headers["x-crimecast-request-id"], False)
    assert served["role"].to_list() == ["champion"] * 3
    assert served["model_version"].to_list() == [bundle.version] * 3
    assert served["rank"].to_list() == [0, 1, 2]
    assert served["score"].to_list() == pytest.approx(
        [p["score"] for p in inv.json()["predictions"]], abs=1e-6)
    assert served["endpoint"].unique().to_list() == ["invocations"]
    assert served["unit_id"].is_null().all() and served["horizon"].is_null().all()
    assert shadow["role"].to_list() == ["challenger"] * 3
    assert shadow["model_version"].to_list() == [challenger_bundle.version] * 3
    assert shadow["run_id"].to_list() == [challenger_bundle.run_id] * 3
    assert shadow["score"].to_list() == pytest.approx(scores_of(challenger_bundle, rows),
                                                      abs=1e-6)

    request = hot.headers["x-crimecast-request-id"]
    places = [f["properties"] for f in hot.json()["features"]]
    served = rows_of(frame, request, True)
    assert served["unit_id"].to_list() == [p["unit_id"] for p in places]
    assert served["rank"].to_list() == [1, 2, 3, 4, 5]
    assert served["score"].to_list() == pytest.approx([p["score"] for p in places], abs=1e-6)
    assert served["expected_count"].to_list() == pytest.approx(
        [p["expected_count"] for p in places], abs=1e-3)
    assert served["window_start"][0].isoformat(timespec="minutes") == places[0]["window_start"]
    assert served["data_through"][0].isoformat(timespec="minutes") == places[0]["data_through"]
    assert served["horizon"].unique().to_list() == ["8h"]
    assert served["spatial_unit"].unique().to_list() == ["area"]
    shadow = rows_of(frame, request, False)
    assert shadow["role"].unique().to_list() == ["challenger"]
    assert shadow["unit_id"].to_list() == [f["properties"]["unit_id"]
                                           for f in theirs.json()["features"]]
    assert theirs.headers["x-crimecast-model-version"] == str(challenger_bundle.version)
    assert theirs.json()["properties"]["model_version"] == challenger_bundle.version


def test_a_full_share_sends_every_answer_to_the_challenger(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    rows = feature_rows(served_run, bundle, 2)
    config = ServingConfig(challenger_share=1.0)
    with live_server(config, loaded=dueling, forecast_log=ForecastLog(tmp_path)) as server:
        inv = httpx.post(f"{server.url}/invocations", json={"instances": rows})
        hot = httpx.get(f"{server.url}/hotspots", params=HOT)
    frame = logged(server)  # after the server stopped: every answer logged
    for answer in (inv, hot):
        assert answer.headers["x-crimecast-variant"] == "challenger"
        assert answer.headers["x-crimecast-model-version"] == str(challenger_bundle.version)
        assert answer.headers["x-crimecast-run-id"] == challenger_bundle.run_id
    assert inv.json()["model_version"] == challenger_bundle.version
    assert [p["score"] for p in inv.json()["predictions"]] == pytest.approx(
        scores_of(challenger_bundle, rows), abs=1e-6)
    assert hot.json()["properties"]["run_id"] == challenger_bundle.run_id
    by_role = frame.group_by("endpoint", "role", "served", "model_version").len().sort(
        "endpoint", "role")
    assert by_role.rows() == [
        ("hotspots", "challenger", True, challenger_bundle.version, 5),
        ("hotspots", "champion", False, bundle.version, 5),
        ("invocations", "challenger", True, challenger_bundle.version, 2),
        ("invocations", "champion", False, bundle.version, 2)]


def test_a_header_forces_the_variant_and_a_bad_one_is_a_400(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle) -> None:
    rows = {"instances": feature_rows(served_run, bundle, 1)}
    with live_server(ServingConfig(challenger_share=1.0), loaded=dueling) as server:
        url = server.url
        forced = httpx.post(f"{url}/invocations", json=rows,
                            headers={"X-Crimecast-Variant": "Champion"})
        assert forced.headers["x-crimecast-variant"] == "champion"
        assert forced.json()["model_version"] == bundle.version
        amazon = httpx.get(f"{url}/hotspots", params=HOT,
                           headers={"X-Amzn-SageMaker-Target-Variant": "champion"})
        assert amazon.headers["x-crimecast-variant"] == "champion"
        assert amazon.json()["properties"]["model_version"] == bundle.version
        # The map shows the champion, whatever the split.
        mapped = httpx.get(f"{url}/hotspots", params=HOT, headers={"Referer": f"{url}/map"})
        assert mapped.headers["x-crimecast-variant"] == "champion"
        unforced = httpx.get(f"{url}/hotspots", params=HOT)
        assert unforced.headers["x-crimecast-variant"] == "challenger"
        assert "x-crimecast-request-id" not in unforced.headers  # no log: no request id
        for path, call in (("/invocations", lambda h: httpx.post(f"{url}/invocations",
                                                                 json=rows, headers=h)),
                           ("/hotspots", lambda h: httpx.get(f"{url}/hotspots", params=HOT,
                                                             headers=h))):
            bad = call({"X-Crimecast-Variant": "blue"})
            assert bad.status_code == 400, path
            assert bad.json() == {"detail": "X-Crimecast-Variant must be champion or "
                                            "challenger; got 'blue'. Send X-Crimecast-Variant: "
                                            "champion, or leave the header out."}
            # SageMaker's own header is advisory: SageMaker routes its variants itself.
            routed = call({"X-Amzn-SageMaker-Target-Variant": "AllTraffic"})
            assert routed.status_code == 200, path
            assert routed.headers["x-crimecast-variant"] == "challenger"  # the split's choice


def test_asking_for_a_challenger_no_model_serves_is_a_400(
        shared_server: LiveServer) -> None:
    answer = httpx.get(f"{shared_server.url}/hotspots", params=HOT,
                       headers={"X-Crimecast-Variant": "challenger"})
    assert answer.status_code == 400
    assert answer.json() == {"detail": "X-Crimecast-Variant asks for the challenger, but this "
                                       "server serves none here. Start it with crimecast serve "
                                       "--challenger REF, or send X-Crimecast-Variant: "
                                       "champion."}
    plain = httpx.get(f"{shared_server.url}/hotspots", params=HOT)
    assert plain.headers["x-crimecast-variant"] == "champion"
    # A one-model container behind SageMaker's challenger variant answers with its model.
    routed = httpx.get(f"{shared_server.url}/hotspots", params=HOT,
                       headers={"X-Amzn-SageMaker-Target-Variant": "challenger"})
    assert routed.status_code == 200 and routed.headers["x-crimecast-variant"] == "champion"


def test_the_split_is_reproducible_from_its_seed(
        live_server: Callable[..., LiveServer], dueling: Loaded) -> None:
    config = ServingConfig(challenger_share=0.3, challenger_seed=11)
    draws = random.Random(11)
    expected = ["challenger" if draws.random() < 0.3 else "champion" for _ in range(30)]
    for _ in range(2):
        with live_server(config, loaded=dueling) as server, httpx.Client() as client:
            got = [client.get(f"{server.url}/hotspots", params=HOT)
                   .headers["x-crimecast-variant"] for _ in range(30)]
        assert got == expected
    assert 3 <= expected.count("challenger") <= 15


def test_model_reports_the_challenger_and_the_split(
        live_server: Callable[..., LiveServer], dueling: Loaded, bundle: ModelBundle,
        challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    config = ServingConfig(challenger_share=0.25, challenger_seed=4)
    with live_server(config, loaded=dueling, forecast_log=ForecastLog(tmp_path)) as server:
        summary = httpx.get(f"{server.url}/model").json()
    assert summary["model_version"] == bundle.version  # the map's model: the champion
    assert summary["challenger"]["model_version"] == challenger_bundle.version
    assert summary["challenger"]["run_id"] == challenger_bundle.run_id
    assert summary["challenger"]["model_type"] == challenger_bundle.model.model_type
    assert summary["traffic"] == {"challenger_share": 0.25, "shadow": True, "seed": 4,
                                  "variant_header": "X-Crimecast-Variant",
                                  "variants": ["champion", "challenger"],
                                  "forecast_log": True}


def test_without_a_challenger_answers_are_unchanged_and_logged(
        live_server: Callable[..., LiveServer], loaded: Loaded, shared_server: LiveServer,
        served_run: ServedRun, bundle: ModelBundle, tmp_path: Path) -> None:
    rows = {"instances": feature_rows(served_run, bundle, 3)}
    with live_server(loaded=loaded, forecast_log=ForecastLog(tmp_path)) as server:
        answers = [(httpx.post(f"{url}/invocations", json=rows),
                    httpx.get(f"{url}/hotspots", params=HOT))
                   for url in (server.url, shared_server.url)]
    frame = logged(server)  # after the server stopped: every answer logged
    (logged_inv, logged_hot), (plain_inv, plain_hot) = answers
    assert logged_inv.content == plain_inv.content
    assert logged_hot.content == plain_hot.content
    assert logged_hot.headers["x-crimecast-variant"] == "champion"
    assert logged_hot.headers["x-crimecast-model-version"] == str(bundle.version)
    assert frame["served"].all() and frame["role"].unique().to_list() == ["champion"]
    assert frame.group_by("endpoint").len().sort("endpoint").rows() == [
        ("hotspots", 5), ("invocations", 3)]


def test_the_log_holds_every_answer_of_concurrent_requests(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    version = {"champion": bundle.version, "challenger": challenger_bundle.version}
    one = {"instances": feature_rows(served_run, bundle, 1)}
    many = {"instances": feature_rows(served_run, bundle, 300)}  # logged as one frame
    config = ServingConfig(challenger_share=0.5)
    log = ForecastLog(tmp_path, flush_seconds=0.1, batch_rows=200)
    with live_server(config, loaded=dueling, forecast_log=log) as server:
        url = server.url

        def call(i: int) -> httpx.Response:
            if i % 3 == 0:
                return httpx.get(f"{url}/hotspots", params=HOT)
            return httpx.post(f"{url}/invocations", json=many if i % 10 == 1 else one)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(60)))
    frame = logged(server)  # after the server stopped: every answer logged
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["x-crimecast-variant"] for a in answers} == {"champion", "challenger"}
    expected = 0
    for answer in answers:
        n = (5 if answer.request.url.path == "/hotspots"
             else len(answer.json()["predictions"]))
        expected += 2 * n
        mine = frame.filter(pl.col("request_id") == answer.headers["x-crimecast-request-id"])
        role = answer.headers["x-crimecast-variant"]
        other = "champion" if role == "challenger" else "challenger"
        assert mine.group_by("role", "served", "model_version").len().sort("role").rows() == \
            sorted([(role, True, version[role], n), (other, False, version[other], n)])
    assert frame.height == expected


def test_the_response_does_not_wait_for_the_shadow(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    gate = threading.Event()
    slow = replace(dueling, challenger=replace(challenger_bundle,
                                               model=Gated(challenger_bundle.model, gate)))
    rows = {"instances": feature_rows(served_run, bundle, 2)}
    with live_server(loaded=slow, forecast_log=ForecastLog(tmp_path)) as server:
        # The shadow is stuck until the gate opens: the caller still gets its answer.
        answer = httpx.post(f"{server.url}/invocations", json=rows, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["x-crimecast-variant"] == "champion"
        gate.set()
    frame = logged(server)  # after the server stopped: every answer logged
    assert frame.filter(~pl.col("served"))["role"].to_list() == ["challenger"] * 2


def test_a_challenger_that_forecasts_differently_is_refused(
        bundle: ModelBundle, grid_bundle: ModelBundle) -> None:
    with pytest.raises(ServingError) as err:
        check_challenger(bundle, grid_bundle)
    assert str(err.value) == (
        "the challenger must forecast the champion's spatial unit; the champion's is 'area', "
        "the challenger's 'grid'. Pass --challenger with a model trained like the champion "
        "(crimecast run --spatial-unit area --time-bin 8h).")

    class Reordered:
        def __init__(self, model: Any) -> None:
            self.model = model
            self.feature_names = list(reversed(model.feature_names))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.model, name)

    reordered = replace(bundle, model=Reordered(bundle.model))
    check_challenger(bundle, reordered)  # another forecaster: accepted, /hotspots only
    assert not reads_champion_rows(bundle, reordered)
    assert reads_champion_rows(bundle, bundle)


def test_a_challenger_with_other_features_answers_hotspots_but_not_invocations(
        live_server: Callable[..., LiveServer], dueling: Loaded, served_run: ServedRun,
        bundle: ModelBundle, challenger_bundle: ModelBundle, tmp_path: Path) -> None:
    class Reordered:
        def __init__(self, model: Any) -> None:
            self.model = model
            self.feature_names = list(reversed(model.feature_names))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.model, name)

    other = replace(dueling, challenger=replace(challenger_bundle,
                                                model=Reordered(challenger_bundle.model)))
    rows = feature_rows(served_run, bundle, 2)
    with live_server(ServingConfig(challenger_share=1.0), loaded=other,
                     forecast_log=ForecastLog(tmp_path)) as server:
        inv = httpx.post(f"{server.url}/invocations", json={"instances": rows})
        forced = httpx.post(f"{server.url}/invocations", json={"instances": rows},
                            headers={"X-Crimecast-Variant": "challenger"})
        hot = httpx.get(f"{server.url}/hotspots", params=HOT)
    frame = logged(server)  # after the server stopped: every answer logged
    assert inv.status_code == 200 and inv.headers["x-crimecast-variant"] == "champion"
    assert forced.status_code == 409
    assert forced.json()["detail"] == (
        "the challenger reads other features than the champion, so it cannot score "
        "/invocations rows (they come in the champion's feature order); got "
        "X-Crimecast-Variant: challenger. Ask /hotspots, or send X-Crimecast-Variant: "
        "champion.")
    assert hot.headers["x-crimecast-variant"] == "challenger"  # the whole share answers
    invocations = frame.filter(pl.col("endpoint") == "invocations")
    assert invocations["role"].unique().to_list() == ["champion"]  # no shadow of rows
    assert set(frame.filter(pl.col("endpoint") == "hotspots")["role"]) == {"champion",
                                                                          "challenger"}


def test_challenger_references(tmp_path: Path) -> None:
    name = "crimecast-hotspots"
    assert challenger_reference("challenger", name) == "models:/crimecast-hotspots@challenger"
    assert challenger_reference(" 7 ", name) == "models:/crimecast-hotspots/7"
    assert challenger_reference("models:/other@blue", name) == "models:/other@blue"
    assert challenger_reference("0" * 32, name) == "0" * 32
    (tmp_path / "shadowrun" / "train" / "model").mkdir(parents=True)
    assert challenger_reference("shadowrun", name, tmp_path) == "shadowrun"
    assert challenger_reference("20241001T000000Z-ab12cd", name) == "20241001T000000Z-ab12cd"


def test_serve_refuses_a_bad_challenger_before_the_port_opens(
        served_run: ServedRun, challenger_bundle: ModelBundle, grid_bundle: ModelBundle) -> None:
    runs = str(served_run.runs)
    missing = runner.invoke(cli_app, ["serve", "--runs-dir", runs, "--challenger", "blue"])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        "error: --challenger blue (models:/crimecast-hotspots@blue) cannot be loaded: no "
        "version of 'crimecast-hotspots' has the alias 'blue'. Run crimecast models promote "
        "VERSION first."]
    wrong = runner.invoke(cli_app, ["serve", "--runs-dir", runs, "--challenger",
                                    grid_bundle.crimecast_run_id or ""])
    assert wrong.exit_code == 2
    assert wrong.output.strip().splitlines() == [
        "error: the challenger must forecast the champion's spatial unit; the champion's is "
        "'area', the challenger's 'grid'. Pass --challenger with a model trained like the "
        "champion (crimecast run --spatial-unit area --time-bin 8h)."]
    alone = runner.invoke(cli_app, ["serve", "--runs-dir", runs, "--challenger-share", "0.5"])
    assert alone.exit_code == 2
    assert alone.output.strip().splitlines() == [
        "error: --challenger-share needs a challenger; got --challenger-share 0.5 without "
        "--challenger. Pass --challenger REF."]
