"""Event-unit pairs built per block give the panel-wide values bit for bit (issue #12: the
memory of 10M-event panels)."""

from __future__ import annotations

import datetime as dt
from unittest.mock import patch

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import FeatureConfig
from crimecast.features.build import build_features, build_rows, panel_inputs
from crimecast.features.context import pairs_panel_wide
from crimecast.features.design import WEIGHT, build_design, chunk_span_bins, design_rows
from tests.features.test_leakage import (
    CONFIGS,
    SPAN_HOURS,
    START,
    UNITS,
    event_rows,
    make_events,
)

END = START + dt.timedelta(hours=SPAN_HOURS)
# A decay of a day and a half: a 12-day panel crosses several epochs (decay module doc).
FAST = {"background_per_day": 0.0, "theta": 0.3, "omega_per_day": 30.0, "sigma_m": 400.0}
LOCAL_CONFIGS = {
    **CONFIGS,
    "8h-fast-decay": FeatureConfig(time_bin="8h", weather="none", sepp=FAST),
    "1h-fast-decay-delay-aware": FeatureConfig(time_bin="1h", weather="none", sepp=FAST,
                                               delay_aware=True, horizon=3),
}


def per_block() -> object:
    """Every panel builds its event pairs per block (as a 10M-event panel does)."""
    return patch("crimecast.features.context.PANEL_PAIRS", 0)


@pytest.mark.parametrize("name", list(LOCAL_CONFIGS))
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=event_rows, block_bins=st.integers(4, 60), data=st.data())
def test_pairs_built_per_block_give_the_panel_wide_values(
        name: str, rows: list, block_bins: int, data: st.DataObject) -> None:
    config = LOCAL_CONFIGS[name]
    events = make_events(rows)
    dense = build_features(events, UNITS, config, start=START, end=END).frame
    picks = data.draw(st.lists(st.integers(0, dense.height - 1), min_size=1, max_size=200))
    with per_block():
        inputs = panel_inputs(events, UNITS, config, start=START, end=END)
        assert not pairs_panel_wide(inputs.events.height or 1, UNITS, 1.0)
        blocked = build_features(events, UNITS, config, start=START, end=END,
                                 block_bins=block_bins).frame
        rows_got = build_rows(inputs, dense[picks]["_u"].to_numpy(),
                              dense[picks]["_b"].to_numpy())
    assert not any(key.startswith(("sepp_index_", "near_repeat_pairs"))
                   for key in inputs.shared)
    assert blocked.sort("_u", "_b").equals(dense)
    assert rows_got.equals(dense[picks])


def test_a_design_built_per_block_spans_short_chunks_and_equals_the_panel_wide_one() -> None:
    rows = [(h * 1.3 % SPAN_HOURS, (h % 9) / 2.5 - 1.6, (h % 7) / 2 - 1.5, (0, 1, 5)[h % 3],
             ("violent", "property", "other")[h % 3]) for h in range(300)]
    events = make_events(rows)
    config = LOCAL_CONFIGS["8h-fast-decay"]
    inputs = panel_inputs(events, UNITS, config, start=START, end=END)
    design = design_rows(inputs, max_rows=600, seed=4)
    wide = pl.concat(build_design(inputs, design))
    assert chunk_span_bins(inputs) is None
    with per_block(), patch("crimecast.features.design.SPAN_DAYS", 2):
        local_inputs = panel_inputs(events, UNITS, config, start=START, end=END)
        assert chunk_span_bins(local_inputs) == 6
        frames = pl.concat(build_design(local_inputs, design))
    assert frames.equals(wide)
    assert frames[WEIGHT].sum() == pytest.approx(design.panel_rows)


def test_event_rows_beyond_half_the_design_are_sampled_with_their_weight() -> None:
    rows = [(h * 0.37 % SPAN_HOURS, (h % 9) / 2.5 - 1.6, (h % 7) / 2 - 1.5, 0, "property")
            for h in range(900)]
    inputs = panel_inputs(make_events(rows), UNITS, CONFIGS["1d-topk"], start=START, end=END)
    full = design_rows(inputs, max_rows=10**9, seed=1)
    design = design_rows(inputs, max_rows=200, seed=1)
    assert design.event_rows > 100 and design.sampled_events == 100
    assert design.sampled_empty == 100 and design.unit.size == 200
    event_weight, empty_weight = (design.event_rows / 100, design.empty_rows / 100)
    assert set(np.round(design.weight, 9)) == {round(event_weight, 9), round(empty_weight, 9)}
    # Horvitz-Thompson: the weights add up to the panel's rows; the rows are distinct cells.
    assert design.weight.sum() == pytest.approx(full.unit.size)
    cells = design.bin * inputs.panel.n_units + design.unit
    assert np.unique(cells).size == cells.size and (np.diff(cells) > 0).all()
    assert design.describe()["sampled_event_rows"] == 100
