"""The population stability index and the bootstrap mean, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.evaluation.drift import (
    PSI_FLOOR,
    mean_with_interval,
    mix_stability_index,
    population_stability_index,
)


def test_mix_psi_by_hand() -> None:
    # shares 0.5/0.5 against 0.25/0.75
    want = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert mix_stability_index({"a": 10, "b": 10}, {"a": 5, "b": 15}) == pytest.approx(want)


def test_a_category_missing_on_one_side_counts_at_the_floor() -> None:
    got = mix_stability_index({"a": 1, "b": 1}, {"a": 2})
    want = (1 - 0.5) * math.log(1 / 0.5) + (PSI_FLOOR - 0.5) * math.log(PSI_FLOOR / 0.5)
    assert got == pytest.approx(want)


def test_numeric_psi_uses_the_reference_quantile_buckets() -> None:
    reference = np.arange(1, 11, dtype=float)  # deciles: one value per bucket
    same = population_stability_index(reference, reference)
    assert same == pytest.approx(0.0)
    # everything recent in the top bucket: share 1 there, the floor elsewhere
    shifted = population_stability_index(reference, np.full(10, 100.0))
    want = (1 - 0.1) * math.log(1 / 0.1) + 9 * (PSI_FLOOR - 0.1) * math.log(PSI_FLOOR / 0.1)
    assert shifted == pytest.approx(want)
    assert population_stability_index(reference, np.array([])) is None
    assert population_stability_index(np.array([np.nan]), reference) is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60),
       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60))
def test_psi_is_never_negative_and_zero_against_itself(a: list[float], b: list[float]) -> None:
    assert population_stability_index(np.array(a), np.array(a)) == pytest.approx(0.0, abs=1e-12)
    value = population_stability_index(np.array(a), np.array(b))
    assert value is not None and value >= -1e-12


def test_mean_with_interval() -> None:
    got = mean_with_interval([1.0, 2.0, None, 3.0, float("nan")], n_resamples=100, seed=1)
    assert got["value"] == 2.0 and got["n"] == 3
    assert 1.0 <= got["ci_low"] <= 2.0 <= got["ci_high"] <= 3.0
    assert mean_with_interval([])["value"] is None
