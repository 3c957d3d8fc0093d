"""Leak-freedom, proved by property: changing the future never changes past features.

For random event sets and a random cutoff ``t`` (a bin boundary), adding,
removing or moving any event with ``occurred_at >= t`` (or ``reported_at >= t``
when delay-aware) must leave every feature of every row with ``bin_start <= t``
exactly unchanged. Targets may change; features may not. A deliberately leaky
feature (the whole calendar day's count) must make the same check fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import FeatureConfig
from crimecast.data.schema import CANONICAL_SCHEMA, conform
from crimecast.features.build import FeatureSet, build_features
from crimecast.features.meta import feature_columns
from crimecast.features.units import UnitSet, build_units

START = dt.datetime(2023, 3, 1)
SPAN_HOURS = 24 * 12
ORIGIN = (34.05, -118.25)
CATEGORIES = ("violent", "property", "other")

Builder = Callable[[pl.DataFrame, UnitSet, FeatureConfig], FeatureSet]


def make_events(rows: list[tuple[float, float, float, int, str]]) -> pl.DataFrame:
    """(hours after START, km east, km north, report delay in days, category) -> canonical."""
    occurred = [START + dt.timedelta(hours=h) for h, *_ in rows]
    reported = [
        dt.datetime.combine((o + dt.timedelta(days=d)).date(), dt.time())
        for o, (_, _, _, d, _) in zip(occurred, rows, strict=True)
    ]
    frame = pl.DataFrame(
        {
            "incident_id": [str(i) for i in range(len(rows))],
            "occurred_at": occurred,
            "reported_at": reported,
            "lat": [ORIGIN[0] + north / 111.0 for _, _, north, _, _ in rows],
            "lon": [ORIGIN[1] + east / 92.0 for _, east, _, _, _ in rows],
            "crime_category": [c for *_, c in rows],
        },
        schema_overrides={"occurred_at": pl.Datetime("us"), "reported_at": pl.Datetime("us")},
    )
    return conform(frame, CANONICAL_SCHEMA)


def fixed_units(cell_size: float = 500.0) -> UnitSet:
    """A 4 km x 4 km grid that stays the same whatever the events are."""
    xs, ys = np.meshgrid(np.linspace(-1.9, 1.9, 9), np.linspace(-1.9, 1.9, 9))
    lat = ORIGIN[0] + ys.ravel() / 111.0
    lon = ORIGIN[1] + xs.ravel() / 92.0
    return build_units("grid", lat, lon, cell_size=cell_size,
                       history_mask=np.ones(lat.size, dtype=bool))


def honest(events: pl.DataFrame, units: UnitSet, config: FeatureConfig) -> FeatureSet:
    return build_features(events, units, config, start=START,
                          end=START + dt.timedelta(hours=SPAN_HOURS))


def blocked(events: pl.DataFrame, units: UnitSet, config: FeatureConfig) -> FeatureSet:
    """The same panel built in time blocks of 40 bins (the engine for large panels)."""
    return build_features(events, units, config, start=START,
                          end=START + dt.timedelta(hours=SPAN_HOURS), block_bins=40)


def leaky(events: pl.DataFrame, units: UnitSet, config: FeatureConfig) -> FeatureSet:
    """The published design's mistake: a 'daily rate' that includes the rest of the day."""
    built = honest(events, units, config)
    day_total = pl.col("target_count").sum().over("unit_id", pl.col("bin_start").dt.date())
    # Registered under a catalogue name so feature_columns() picks it up.
    frame = built.frame.with_columns(crime_rate_daily=day_total.cast(pl.Float32))
    return replace(built, frame=frame)


event_rows = st.lists(
    st.tuples(
        st.floats(0, SPAN_HOURS - 0.01),
        st.floats(-1.9, 1.9),
        st.floats(-1.9, 1.9),
        st.sampled_from([0, 0, 0, 1, 2, 5, 20]),
        st.sampled_from(CATEGORIES),
    ),
    min_size=1,
    max_size=40,
)


def perturb(
    rows: list[tuple[float, float, float, int, str]], cutoff_h: int, delay_aware: bool,
    draw: st.DrawFn,
) -> list[tuple[float, float, float, int, str]]:
    """Remove, move or add events that are in the future of the cutoff."""

    def is_future(row: tuple[float, float, float, int, str]) -> bool:
        hours, _, _, delay, _ = row
        occurred = START + dt.timedelta(hours=hours)
        reported = dt.datetime.combine((occurred + dt.timedelta(days=delay)).date(), dt.time())
        cutoff = START + dt.timedelta(hours=cutoff_h)
        return occurred >= cutoff or (delay_aware and reported >= cutoff)

    out = []
    for row in rows:
        if not is_future(row):
            out.append(row)
            continue
        action = draw(st.sampled_from(["keep", "drop", "move"]))
        if action == "keep":
            out.append(row)
        elif action == "move":
            moved = (draw(st.floats(cutoff_h, SPAN_HOURS + 48)), draw(st.floats(-1.9, 1.9)),
                     draw(st.floats(-1.9, 1.9)), row[3], row[4])
            out.append(moved)
    for _ in range(draw(st.integers(0, 5))):
        out.append((draw(st.floats(cutoff_h, SPAN_HOURS + 48)), draw(st.floats(-1.9, 1.9)),
                    draw(st.floats(-1.9, 1.9)), draw(st.sampled_from([0, 1, 3])),
                    draw(st.sampled_from(CATEGORIES))))
    return out


def changed_features(
    builder: Builder, rows: list, perturbed: list, cutoff_h: int, config: FeatureConfig,
    units: UnitSet,
) -> list[str]:
    """Names of features that differ on some row with bin_start <= cutoff."""
    cutoff = START + dt.timedelta(hours=cutoff_h)
    before = builder(make_events(rows), units, config).frame
    after = builder(make_events(perturbed), units, config).frame
    names = feature_columns(before)
    keep = pl.col("bin_start") <= cutoff
    a = before.filter(keep).select("unit_id", "bin_start", *names).sort("unit_id", "bin_start")
    b = after.filter(keep).select("unit_id", "bin_start", *names).sort("unit_id", "bin_start")
    assert a.select("unit_id", "bin_start").equals(b.select("unit_id", "bin_start"))
    return [n for n in names if not a[n].equals(b[n], check_names=False)]


CONFIGS = {
    "1h-delay-aware": FeatureConfig(time_bin="1h", delay_aware=True, weather="none"),
    "1h-occurrence": FeatureConfig(time_bin="1h", delay_aware=False, weather="none"),
    "8h-horizon-2": FeatureConfig(time_bin="8h", horizon=2, weather="none"),
    "1d-topk": FeatureConfig(time_bin="1d", label="topk", weather="none"),
}
UNITS = fixed_units()


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_future_events_never_change_past_features(name: str, data: st.DataObject) -> None:
    assert future_changes(honest, name, data) == []


def future_changes(builder: Builder, name: str, data: st.DataObject) -> list[str]:
    """Features a random perturbation of the future changes in the past (the property)."""
    config = CONFIGS[name]
    step = {"1h": 1, "8h": 8, "1d": 24}[config.time_bin]
    rows = data.draw(event_rows)
    cutoff_h = step * data.draw(st.integers(1, SPAN_HOURS // step))
    perturbed = perturb(rows, cutoff_h, config.delay_aware, data.draw)
    return changed_features(builder, rows, perturbed, cutoff_h, config, UNITS)


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_future_events_never_change_past_features_built_in_blocks(
        name: str, data: st.DataObject) -> None:
    assert future_changes(blocked, name, data) == []


def test_leaky_control_fails_the_same_check() -> None:
    config = CONFIGS["1h-delay-aware"]
    rows = [(10.5, 0.1, 0.1, 0, "property"), (30.2, 0.2, 0.1, 0, "violent")]
    # An event later on the cutoff's day, in the same cell as the earlier ones.
    perturbed = [*rows, (33.5, 0.15, 0.1, 0, "property")]
    assert changed_features(honest, rows, perturbed, 30, config, UNITS) == []
    assert changed_features(leaky, rows, perturbed, 30, config, UNITS) == ["crime_rate_daily"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_detects_the_leaky_feature(data: st.DataObject) -> None:
    """Run the property itself against the leaky builder: it must find a violation."""
    config = CONFIGS["1h-delay-aware"]
    rows = [(5.0 + i, 0.1, 0.1, 0, "property") for i in range(3)]
    cutoff_h = data.draw(st.integers(24, SPAN_HOURS - 24))
    same_day_later = (cutoff_h + 0.5, 0.1, 0.1, 0, "property")
    if (START + dt.timedelta(hours=cutoff_h + 0.5)).date() != (
            START + dt.timedelta(hours=cutoff_h)).date():
        return
    changed = changed_features(leaky, rows, [*rows, same_day_later], cutoff_h, config, UNITS)
    assert "crime_rate_daily" in changed
