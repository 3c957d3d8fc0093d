"""The event-indexed engine: features and labels at requested rows equal the dense panel's,
and future events never change them (issue #12)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import FeatureConfig
from crimecast.features.build import FeatureSet, build_features, build_rows, panel_inputs
from crimecast.features.units import UnitSet
from tests.features.test_leakage import (
    CONFIGS,
    SPAN_HOURS,
    START,
    UNITS,
    event_rows,
    future_changes,
    make_events,
)

END = START + dt.timedelta(hours=SPAN_HOURS)


def rows_engine(events: pl.DataFrame, units: UnitSet, config: FeatureConfig) -> FeatureSet:
    """Every row of the panel, asked for one by one from the event-indexed engine."""
    inputs = panel_inputs(events, units, config, start=START, end=END)
    panel = inputs.panel
    unit = np.repeat(np.arange(panel.n_units, dtype=np.int64), panel.n_bins)
    bin_ = np.tile(np.arange(panel.first_bin, panel.last_bin + 1, dtype=np.int64),
                   panel.n_units)
    return FeatureSet(frame=build_rows(inputs, unit, bin_))


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=event_rows, data=st.data())
def test_requested_rows_equal_the_dense_panel(name: str, rows: list, data: st.DataObject
                                              ) -> None:
    config = CONFIGS[name]
    events = make_events(rows)
    dense = build_features(events, UNITS, config, start=START, end=END).frame
    picks = data.draw(st.lists(st.integers(0, dense.height - 1), min_size=1, max_size=300))
    wanted = dense[picks]
    inputs = panel_inputs(events, UNITS, config, start=START, end=END)
    got = build_rows(inputs, wanted["_u"].to_numpy(), wanted["_b"].to_numpy())
    # Every feature, label and key, bit for bit, in the order asked.
    assert got.equals(wanted)


def test_every_row_of_the_panel_equals_the_dense_panel() -> None:
    rows = [(h * 1.7 % SPAN_HOURS, (h % 9) / 2.5 - 1.6, (h % 7) / 2 - 1.5, (0, 1, 5)[h % 3],
             ("violent", "property", "other")[h % 3]) for h in range(120)]
    events = make_events(rows)
    for config in CONFIGS.values():
        dense = build_features(events, UNITS, config, start=START, end=END).frame
        assert rows_engine(events, UNITS, config).frame.equals(dense)


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_future_events_never_change_past_rows(name: str, data: st.DataObject) -> None:
    assert future_changes(rows_engine, name, data) == []
