"""A model registered by a real ``run_pipeline`` and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from crimecast.config import ServingConfig, Settings
from crimecast.data.output import write_incidents, write_provenance
from crimecast.pipeline.run import RunSummary, run_pipeline
from crimecast.registry.store import ModelRegistry
from crimecast.serving.app import create_app
from crimecast.serving.bundle import ModelBundle, load_bundle
from crimecast.serving.server import load_served
from crimecast.serving.state import Loaded
from crimecast.synthetic.generate import generate_incidents

TOKEN = "test-token-0123456789abcdef"


@dataclass(frozen=True)
class ServedRun:
    """A finished pipeline run whose model version holds the champion alias."""

    summary: RunSummary
    runs: Path
    data_file: Path
    settings: Settings


def serving_settings(runs: Path) -> Settings:
    """8-hour shifts over LAPD areas: small, fast, and multi-bin windows make sense."""
    settings = Settings().with_overrides("features", time_bin="8h", spatial_unit="area")
    return settings.with_overrides("pipeline", runs_dir=str(runs), f1_threshold=0.0)


@pytest.fixture(scope="session")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> ServedRun:
    data = tmp_path_factory.mktemp("serving-data") / "synthetic.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 9, 30), seed=5), data)
    write_provenance(data, {"synthetic": True, "seed": 5})
    runs = tmp_path_factory.mktemp("serving-runs")
    settings = serving_settings(runs)
    summary = run_pipeline(settings, [str(data)], schema="lapd", bootstrap_resamples=10)
    version = summary.registration["version"]
    assert version is not None, summary.gate
    ModelRegistry(state_dir=runs / ".mlflow").promote(int(version))
    return ServedRun(summary=summary, runs=runs, data_file=data, settings=settings)


@pytest.fixture(scope="session")
def bundle(served_run: ServedRun) -> ModelBundle:
    return load_bundle("models:/crimecast-hotspots@champion",
                       state_dir=served_run.runs / ".mlflow", runs_dir=served_run.runs)


@pytest.fixture(scope="session")
def loaded(bundle: ModelBundle, served_run: ServedRun) -> Loaded:
    return load_served([bundle], [], served_run.settings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server() -> Callable[..., LiveServer]:
    """Start ``create_app(...)`` on a free loopback port (stopped by the test's ``with``)."""

    def start(config: ServingConfig | None = None, **kwargs: Any) -> LiveServer:
        return LiveServer(create_app(config or ServingConfig(), **kwargs))

    return start


@pytest.fixture(scope="session")
def shared_server(loaded: Loaded) -> Iterator[LiveServer]:
    """One server for the read-only HTTP tests (the champion, the run's data store)."""
    with LiveServer(create_app(ServingConfig(), loaded=loaded)) as server:
        yield server


@pytest.fixture(scope="session")
def grid_bundle(served_run: ServedRun) -> ModelBundle:
    """A second model on the same data: 3 km grid cells by day (served from its run folder)."""
    settings = served_run.settings.with_overrides(
        "features", spatial_unit="grid", cell_size=3000.0, time_bin="1d")
    summary = run_pipeline(settings, [str(served_run.data_file)], schema="lapd",
                           bootstrap_resamples=10)
    return load_bundle(summary.run_id, runs_dir=served_run.runs)


@pytest.fixture(scope="session")
def challenger_bundle(served_run: ServedRun) -> ModelBundle:
    """A challenger on the same data and panel: the same LightGBM with another seed (it
    subsamples rows and columns, so another model), registered as a new version that holds
    the alias ``challenger``."""
    settings = served_run.settings.with_overrides("models", random_state=7)
    summary = run_pipeline(settings, [str(served_run.data_file)], schema="lapd",
                           bootstrap_resamples=10)
    version = summary.registration["version"]
    assert version is not None, summary.gate
    ModelRegistry(state_dir=served_run.runs / ".mlflow").promote(int(version), "challenger")
    return load_bundle("models:/crimecast-hotspots@challenger",
                       state_dir=served_run.runs / ".mlflow", runs_dir=served_run.runs)


@pytest.fixture(scope="session")
def dueling(loaded: Loaded, challenger_bundle: ModelBundle) -> Loaded:
    """The champion and its challenger on one data store."""
    return replace(loaded, challenger=challenger_bundle)
