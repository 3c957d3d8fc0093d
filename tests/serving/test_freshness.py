"""Forecasts say what they rest on, and refuse windows with no or stale history.

``data_through`` (the latest event known at issue time) and ``events_known`` ride
on every forecast; a window before the first known event is a 409 whatever the
caller says, one more than ``serving.stale_after_days`` after the latest is a 409
unless ``allow_stale=true``. ``weather_available`` is true only when every bin of
the window got its weather from the embedded series (which ends 2024-12-30).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
import polars as pl
import pytest

from crimecast.config import ServingConfig
from crimecast.errors import ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import compute_forecast
from crimecast.serving.state import Loaded
from crimecast.serving.store import EventStore

from .conftest import LiveServer

AT = "2023-08-01T06:00"


def known(store: EventStore, moment: dt.datetime) -> pl.DataFrame:
    """The events known before ``moment`` (the served model is delay-aware)."""
    return store.events.filter(pl.col("occurred_at") < moment,
                               pl.col("reported_at").fill_null(pl.col("occurred_at")) < moment)


def stale_detail(start: str, last: dt.datetime, fix: str = "allow_stale=true") -> str:
    days = (dt.datetime.fromisoformat(start) - last) / dt.timedelta(days=1)
    return (f"the window starting {start} begins {days:.1f} days after the last known event "
            f"({last:%Y-%m-%dT%H:%M}), more than serving.stale_after_days (14), so its "
            "forecast would rest on stale data. Load newer events with --data, choose a "
            f"window near the data, or pass {fix} to forecast anyway.")


def first_detail(start: str, store: EventStore, fix: str = "allow_stale=true") -> str:
    first = store.events.select(pl.max_horizontal(
        "occurred_at", pl.col("reported_at").fill_null(pl.col("occurred_at"))).min()).item()
    return (f"the window starting {start} begins before the first known event "
            f"({first:%Y-%m-%dT%H:%M}), so there is no history to forecast from ({fix} does "
            f"not change that). Choose a window after {first:%Y-%m-%dT%H:%M}.")


def test_every_forecast_carries_data_through_and_events_known(
        shared_server: LiveServer, loaded: Loaded) -> None:
    store = loaded.store
    assert store is not None
    answer = httpx.get(f"{shared_server.url}/hotspots", params={"at": AT, "top": 3})
    assert answer.status_code == 200
    doc = answer.json()
    before = known(store, dt.datetime.fromisoformat(AT))
    through = f"{before['occurred_at'].max():%Y-%m-%dT%H:%M}"
    assert (doc["properties"]["data_through"], doc["properties"]["events_known"]) == (
        through, before.height)
    assert store.events.height > before.height  # the store holds later events: not counted
    for feature in doc["features"]:
        assert feature["properties"]["data_through"] == through
        assert feature["properties"]["events_known"] == before.height


@pytest.mark.parametrize(("at", "start"), [("2030-06-01T00:00", "2030-05-31T22:00"),
                                           ("2099-12-31T23:00", "2099-12-31T22:00"),
                                           ("2023-10-16T06:00", "2023-10-16T06:00")])
def test_a_window_far_after_the_data_is_409_unless_allowed(
        shared_server: LiveServer, loaded: Loaded, at: str, start: str) -> None:
    store = loaded.store
    assert store is not None and store.last is not None
    url = f"{shared_server.url}/hotspots"
    refused = httpx.get(url, params={"at": at})
    assert refused.status_code == 409
    assert refused.json() == {"detail": stale_detail(start, store.last)}
    allowed = httpx.get(url, params={"at": at, "allow_stale": "true", "top": 2})
    assert allowed.status_code == 200
    props = allowed.json()["properties"]
    before = known(store, dt.datetime.fromisoformat(start))  # late reports may come later
    assert props["data_through"] == f"{store.last:%Y-%m-%dT%H:%M}"
    assert props["events_known"] == before.height
    assert before.height == store.events.height or start.startswith("2023")
    # The window is now cached: without allow_stale it is still refused.
    again = httpx.get(url, params={"at": at, "top": 2})
    assert (again.status_code, again.json()) == (409, {"detail": stale_detail(start,
                                                                             store.last)})


def test_the_stale_limit_comes_from_the_config(live_server: Callable[..., LiveServer],
                                               loaded: Loaded) -> None:
    store = loaded.store
    assert store is not None and store.last is not None
    at = f"{store.last + dt.timedelta(days=3):%Y-%m-%dT%H:%M}"
    with live_server(ServingConfig(stale_after_days=2), loaded=loaded) as server:
        assert httpx.get(f"{server.url}/hotspots", params={"at": at}).status_code == 409
    with live_server(ServingConfig(stale_after_days=14), loaded=loaded) as server:
        assert httpx.get(f"{server.url}/hotspots", params={"at": at}).status_code == 200


@pytest.mark.parametrize(("at", "start"), [("1970-01-01T00:00", "1969-12-31T22:00"),
                                           ("2009-06-01T12:00", "2009-06-01T06:00"),
                                           ("2023-01-01T00:00", "2022-12-31T22:00")])
def test_a_window_before_the_first_event_is_409_even_when_stale_is_allowed(
        shared_server: LiveServer, loaded: Loaded, at: str, start: str) -> None:
    store = loaded.store
    assert store is not None
    for extra in ({}, {"allow_stale": "true"}):
        answer = httpx.get(f"{shared_server.url}/hotspots", params={"at": at, **extra})
        assert (answer.status_code, answer.json()) == (409, {"detail": first_detail(start,
                                                                                   store)})


def test_the_default_window_is_not_stale(shared_server: LiveServer) -> None:
    answer = httpx.get(f"{shared_server.url}/hotspots")
    assert answer.status_code == 200, answer.text


def test_an_empty_store_has_no_history(loaded: Loaded, bundle: ModelBundle) -> None:
    assert loaded.store is not None
    empty = EventStore(events=loaded.store.events.clear(), sources=("x",), rows_in=0,
                       rows_quarantined=0)
    with pytest.raises(ServingError) as err:
        compute_forecast(bundle, empty, loaded.weather, dt.datetime(2023, 8, 1, 6), "8h")
    assert (str(err.value), err.value.status) == (
        "the data store holds no events, so there is no history to forecast from. Load "
        "incidents with --data FILE.", 409)


@pytest.mark.parametrize(("at", "available"), [
    ("2023-08-01T06:00", True), ("2024-12-30T06:00", True), ("2024-12-31T06:00", False),
    ("2024-12-30T14:00", False),  # 1-day window: its last bin starts 2024-12-31
    ("2025-06-01T06:00", False)])
def test_weather_available_only_when_the_series_covers_the_window(
        shared_server: LiveServer, bundle: ModelBundle, at: str, available: bool) -> None:
    assert "temp_c" in bundle.features and bundle.feature_config.weather == "same_bin"
    answer = httpx.get(f"{shared_server.url}/hotspots",
                       params={"at": at, "horizon": "1d", "allow_stale": "true", "top": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["weather_available"] is available


@pytest.mark.parametrize(("weeks", "available"), [(-730, False), (-261, True)])
def test_weather_available_is_false_before_the_series_starts(
        loaded: Loaded, bundle: ModelBundle, weeks: int, available: bool) -> None:
    """The same events moved to 2009 (before the series' 2010-01-01) or 2018 (inside)."""
    assert loaded.store is not None
    shift = dt.timedelta(weeks=weeks)
    events = loaded.store.events.with_columns(pl.col("occurred_at") + shift,
                                              pl.col("reported_at") + shift)
    moved = EventStore(events=events, sources=("moved",), rows_in=0, rows_quarantined=0)
    at = dt.datetime(2023, 8, 1, 6) + shift
    assert at.year == (2009 if weeks == -730 else 2018)
    forecast = compute_forecast(bundle, moved, loaded.weather, at, "8h")
    assert forecast.weather_available is available
    assert forecast.events_known == known(moved, at).height
