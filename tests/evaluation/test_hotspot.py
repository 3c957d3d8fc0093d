"""Hit rate, PAI and PEI* against hand arithmetic, a naive reference and invariants."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.errors import DataError
from crimecast.evaluation.hotspot import (
    hotspot_metrics,
    hotspot_metrics_by,
    hotspot_per_bin,
    metric_keys,
)

B1, B2, B3 = (dt.datetime(2024, 3, d) for d in (1, 2, 3))
AREAS = pl.DataFrame({"unit_id": ["a", "b", "c", "d"], "area_km2": [1.0, 2.0, 3.0, 4.0]})
SHARES = (0.1, 0.3, 0.5)  # budgets of 1, 3 and 5 km² out of 10


def _rows(bin_start: dt.datetime, scores: list[float], counts: list[int]) -> list[dict[str, Any]]:
    return [
        {"unit_id": u, "bin_start": bin_start, "score": s, "actual_count": c}
        for u, s, c in zip("abcd", scores, counts, strict=True)
    ]


# Bin 1: scores a .9, b .5, c .5 (tie: b ranks before c by unit_id), d .1;
#        counts a 1, b 3, c 0, d 2 (6 events). Oracle order by count: b 3, d 2, a 1, c 0.
# Bin 2: no events: excluded from every average.
# Bin 3: scores d .8, c .6, b .4, a .2; counts c 2, d 2 (4 events). Oracle: c, d (tie by id).
FRAME = pl.DataFrame(
    _rows(B1, [0.9, 0.5, 0.5, 0.1], [1, 3, 0, 2])
    + _rows(B2, [0.3, 0.2, 0.1, 0.0], [0, 0, 0, 0])
    + _rows(B3, [0.2, 0.4, 0.6, 0.8], [0, 0, 2, 2])
)

# A unit is selected while the area *before* it is below the budget.
# Bin 1, 10% (1 km²): a (0 before) -> a=.1, h=1/6, PAI=5/3; oracle b -> 3; PEI*=1/3.
#        30% (3 km²): a, b (1 before) -> a=.3, h=4/6, PAI=20/9; oracle b, d (2<3) -> 5; 4/5.
#        50% (5 km²): a, b, c (3<5) -> a=.6, h=4/6, PAI=10/9; oracle b, d -> 5 (a: 6 before).
# Bin 3, 10%: d -> a=.4, h=2/4, PAI=5/4; oracle c -> 2; PEI*=1.
#        30%: d only (c has 4 before) -> a=.4, h=1/2, PAI=5/4; oracle c only (d: 3 before) -> 1.
#        50%: d, c (4<5) -> a=.7, h=1, PAI=10/7; oracle c, d -> 4; PEI*=1.
EXPECTED_PER_BIN = {
    B1: {"hit_rate@10%": 1 / 6, "pai@10%": 5 / 3, "pei_star@10%": 1 / 3, "area_share@10%": 0.1,
         "hit_rate@30%": 4 / 6, "pai@30%": 20 / 9, "pei_star@30%": 4 / 5, "area_share@30%": 0.3,
         "hit_rate@50%": 4 / 6, "pai@50%": 10 / 9, "pei_star@50%": 4 / 5, "area_share@50%": 0.6},
    B3: {"hit_rate@10%": 1 / 2, "pai@10%": 5 / 4, "pei_star@10%": 1.0, "area_share@10%": 0.4,
         "hit_rate@30%": 1 / 2, "pai@30%": 5 / 4, "pei_star@30%": 1.0, "area_share@30%": 0.4,
         "hit_rate@50%": 1.0, "pai@50%": 10 / 7, "pei_star@50%": 1.0, "area_share@50%": 0.7},
}


def test_per_bin_values_equal_the_hand_computed_ones() -> None:
    per_bin = hotspot_per_bin(FRAME, AREAS, SHARES)
    assert per_bin["bin_start"].to_list() == [B1, B2, B3]
    assert per_bin["events"].to_list() == [6, 0, 4]
    rows = {row["bin_start"]: row for row in per_bin.iter_rows(named=True)}
    for bin_start, expected in EXPECTED_PER_BIN.items():
        for key, value in expected.items():
            assert rows[bin_start][key] == pytest.approx(value), (bin_start, key)
    assert all(rows[B2][key] is None for key in metric_keys(SHARES))


def test_summary_is_the_mean_and_spread_over_bins_with_events() -> None:
    result = hotspot_metrics(FRAME, AREAS, SHARES)
    assert list(result) == [*metric_keys(SHARES), "bins_evaluated", "bins_without_events"]
    assert result["bins_evaluated"] == 2 and result["bins_without_events"] == 1
    # Two evaluated bins: mean = (x1 + x3) / 2, population sd = |x1 - x3| / 2.
    for key in metric_keys(SHARES):
        x1, x3 = EXPECTED_PER_BIN[B1][key], EXPECTED_PER_BIN[B3][key]
        assert result[key]["value"] == pytest.approx((x1 + x3) / 2), key
        assert result[key]["standard_deviation"] == pytest.approx(abs(x1 - x3) / 2), key
    assert result["pai@10%"]["value"] == pytest.approx(35 / 24)  # (5/3 + 5/4) / 2
    assert result["pei_star@30%"]["value"] == pytest.approx(0.9)  # (4/5 + 1) / 2


def test_the_tie_is_broken_by_unit_id_whatever_the_row_order() -> None:
    shuffled = FRAME.sample(fraction=1.0, shuffle=True, seed=11)
    assert hotspot_metrics(shuffled, AREAS, SHARES) == hotspot_metrics(FRAME, AREAS, SHARES)
    # Renaming b to e moves it behind c in the tie: bin 1 at 30% then selects a, c
    # (1 event of 6) instead of a, b (4 of 6).
    renamed = FRAME.with_columns(pl.col("unit_id").replace({"b": "e"}))
    areas = AREAS.with_columns(pl.col("unit_id").replace({"b": "e"}))
    per_bin = hotspot_per_bin(renamed, areas, SHARES)
    assert per_bin.filter(pl.col("bin_start") == B1)["hit_rate@30%"].item() == pytest.approx(1 / 6)


def test_default_shares_overshoot_with_coarse_units() -> None:
    # 1% of 10 km² is 0.1 km²: the first unit alone overshoots it (1 km² -> 10%).
    result = hotspot_metrics(FRAME.filter(pl.col("bin_start") == B1), AREAS)
    assert result["area_share@1%"]["value"] == pytest.approx(0.1)
    assert result["hit_rate@1%"]["value"] == pytest.approx(1 / 6)
    assert result["pai@10%"]["value"] == pytest.approx(5 / 3)
    assert set(result) == {*metric_keys((0.01, 0.05, 0.10)), "bins_evaluated",
                           "bins_without_events"}


def test_units_without_predictions_still_count_in_the_study_area() -> None:
    areas = pl.concat([AREAS, pl.DataFrame({"unit_id": ["z"], "area_km2": [10.0]})])
    per_bin = hotspot_per_bin(FRAME.filter(pl.col("bin_start") == B1), areas, (0.05,))
    # Study area 20 km², budget 1 km²: a alone, a = 1/20, h = 1/6, PAI = 20/6.
    assert per_bin["area_share@5%"].item() == pytest.approx(0.05)
    assert per_bin["pai@5%"].item() == pytest.approx(20 / 6)


def test_groups_rank_within_their_own_units_and_area() -> None:
    regions = {"a": "north", "b": "north", "c": "south", "d": "south"}
    frame = FRAME.with_columns(region=pl.col("unit_id").replace_strict(regions))
    result = hotspot_metrics_by(frame, AREAS, "region", (0.5,))
    assert list(result) == ["north", "south"]
    # North: a (1 km²) + b (2 km²), budget 1.5. Bin 1: a (0 before), b (1 < 1.5) ->
    # a = 1, h = 4/4, PAI = 1. The oracle takes b (3 events), then a has 2 km² before
    # it: 3 events, so PEI* = 4/3 — with unequal units the greedy oracle can lose.
    # Bins 2 and 3 have no north events.
    north = result["north"]
    assert north["bins_evaluated"] == 1 and north["bins_without_events"] == 2
    assert north["pai@50%"]["value"] == pytest.approx(1.0)
    assert north["pei_star@50%"]["value"] == pytest.approx(4 / 3)
    # South: c (3 km²) + d (4 km²), budget 3.5. Bin 1: c (.5) then d (.1, 3 before)
    # -> h = 2/2, a = 1, PAI 1; oracle d -> 2: PEI* 1.
    # Bin 3: d (.8) then c (4 before >= 3.5): h = 2/4, a = 4/7, PAI = 7/8; the oracle
    # takes c (tie at 2 events, c before d) then d (3 before < 3.5) -> 4: PEI* 1/2.
    south = result["south"]
    assert south["bins_evaluated"] == 2
    assert south["pai@50%"]["value"] == pytest.approx((1 + 7 / 8) / 2)
    assert south["pei_star@50%"]["value"] == pytest.approx((1 + 1 / 2) / 2)
    assert south["area_share@50%"]["value"] == pytest.approx((1 + 4 / 7) / 2)


@pytest.mark.parametrize(
    ("frame", "areas", "message"),
    [
        (FRAME, AREAS.filter(pl.col("unit_id") != "d"),
         "1 unit(s) of the predictions have no area in unit_areas, e.g. ['d']"),
        (pl.concat([FRAME, FRAME.head(1)]), AREAS, "must appear once; got duplicate rows"),
        (FRAME.with_columns(model=pl.Series(["m1", "m2"] * 6)), AREAS,
         "hotspot measures take one model's rows; got models ['m1', 'm2']"),
        (FRAME.with_columns(actual_count=pl.col("actual_count") - 1), AREAS,
         "actual_count must be a non-negative event count"),
        (FRAME.drop("score"), AREAS, "lacks column(s) ['score']"),
        (FRAME, AREAS.with_columns(area_km2=pl.lit(0.0)), "area_km2 must be a positive number"),
        (FRAME, pl.concat([AREAS, AREAS.head(1)]), "lists unit(s) ['a'] more than once"),
    ],
)
def test_bad_inputs_are_refused(frame: pl.DataFrame, areas: pl.DataFrame, message: str) -> None:
    with pytest.raises(DataError) as caught:
        hotspot_metrics(frame, areas)
    assert message in str(caught.value)


def test_shares_must_be_fractions() -> None:
    with pytest.raises(DataError, match=r"shares must be fractions of the study area in \(0, 1\]"):
        hotspot_metrics(FRAME, AREAS, (0.0, 0.5))


# --- properties ---------------------------------------------------------------------

PROPERTY_SHARES = (0.1, 0.25, 0.5, 1.0)


@st.composite
def panels(draw: st.DrawFn, equal_areas: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    n_units = draw(st.integers(2, 7))
    n_bins = draw(st.integers(1, 4))
    units = [f"u{i}" for i in range(n_units)]
    area = st.just(0.25) if equal_areas else st.sampled_from([0.25, 0.5, 1.0, 3.0])
    areas = pl.DataFrame({"unit_id": units, "area_km2": [draw(area) for _ in units]})
    rows = [
        {"unit_id": u, "bin_start": dt.datetime(2024, 1, 1) + dt.timedelta(days=b),
         "score": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
         "actual_count": draw(st.integers(0, 4))}
        for b in range(n_bins) for u in units
    ]
    return pl.DataFrame(rows), areas


def _reference(frame: pl.DataFrame, areas: pl.DataFrame, share: float) -> dict[Any, dict]:
    """The definition, one bin and one unit at a time."""
    area = dict(areas.iter_rows())
    total = sum(area.values())
    result: dict[Any, dict] = {}
    for (bin_start,), part in frame.partition_by("bin_start", as_dict=True).items():
        rows = part.to_dicts()
        events = sum(r["actual_count"] for r in rows)

        def select(key: str, rows: list[dict] = rows) -> tuple[int, float]:
            captured, used = 0, 0.0
            for r in sorted(rows, key=lambda r: (-r[key], r["unit_id"])):
                if used >= share * total - 1e-9 * total:
                    break
                captured += r["actual_count"]
                used += area[r["unit_id"]]
            return captured, used

        (model, used), (oracle, _) = select("score"), select("actual_count")
        if events:
            result[bin_start] = {"hit": model / events, "a": used / total,
                                 "pai": model / events / (used / total), "pei": model / oracle}
    return result


@settings(max_examples=80, deadline=None)
@given(panels(equal_areas=False))
def test_matches_the_one_bin_at_a_time_definition(panel: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    frame, areas = panel
    per_bin = hotspot_per_bin(frame, areas, PROPERTY_SHARES)
    for share, label in zip(PROPERTY_SHARES, ("10%", "25%", "50%", "100%"), strict=True):
        expected = _reference(frame, areas, share)
        got = {r["bin_start"]: r for r in per_bin.iter_rows(named=True) if r["events"] > 0}
        assert set(got) == set(expected)
        for bin_start, values in expected.items():
            row = got[bin_start]
            assert row[f"hit_rate@{label}"] == pytest.approx(values["hit"])
            assert row[f"area_share@{label}"] == pytest.approx(values["a"])
            assert row[f"pai@{label}"] == pytest.approx(values["pai"])
            assert row[f"pei_star@{label}"] == pytest.approx(values["pei"])


@settings(max_examples=80, deadline=None)
@given(panels(equal_areas=False))
def test_invariants_for_any_unit_areas(panel: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    frame, areas = panel
    # The oracle's own ranking captures exactly what the oracle does.
    oracle = frame.with_columns(score=pl.col("actual_count").cast(pl.Float64))
    per_bin = hotspot_per_bin(oracle, areas, PROPERTY_SHARES).filter(pl.col("events") > 0)
    for label in ("10%", "25%", "50%", "100%"):
        assert per_bin[f"pei_star@{label}"].to_list() == [1.0] * per_bin.height

    per_bin = hotspot_per_bin(frame, areas, PROPERTY_SHARES).filter(pl.col("events") > 0)
    largest = areas["area_km2"].max() / areas["area_km2"].sum()
    previous = [0.0] * per_bin.height
    for share, label in zip(PROPERTY_SHARES, ("10%", "25%", "50%", "100%"), strict=True):
        hits = per_bin[f"hit_rate@{label}"].to_list()
        assert all(0.0 <= h <= 1.0 for h in hits)
        assert all(h >= p for h, p in zip(hits, previous, strict=True))  # monotone in share
        previous = hits
        # The selection reaches the budget and overshoots it by less than one unit.
        for a in per_bin[f"area_share@{label}"].to_list():
            assert share - 1e-9 <= a < share + largest
    assert per_bin["hit_rate@100%"].to_list() == [1.0] * per_bin.height


@settings(max_examples=80, deadline=None)
@given(panels(equal_areas=True))
def test_pei_star_is_a_fraction_with_equal_units(panel: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    frame, areas = panel
    result = hotspot_metrics(frame, areas, PROPERTY_SHARES)
    per_bin = hotspot_per_bin(frame, areas, PROPERTY_SHARES).filter(pl.col("events") > 0)
    for label in ("10%", "25%", "50%", "100%"):
        assert all(0.0 <= v <= 1.0 for v in per_bin[f"pei_star@{label}"].to_list())
        value = result[f"pei_star@{label}"]["value"]
        assert value is None or 0.0 <= value <= 1.0
    assert result["bins_evaluated"] + result["bins_without_events"] == frame[
        "bin_start"].n_unique()
    for key in metric_keys(PROPERTY_SHARES):
        value = result[key]["value"]
        assert value is None or math.isfinite(value)


def test_missing_scores_rank_last_and_empty_frames_give_none() -> None:
    frame = pl.DataFrame({"unit_id": ["a", "b"], "bin_start": [B1, B1],
                          "score": [float("nan"), 0.1], "actual_count": [5, 1]})
    areas = pl.DataFrame({"unit_id": ["a", "b"], "area_km2": [1.0, 1.0]})
    # Budget 1 km²: b (score .1) is chosen before a (NaN) -> h = 1/6; oracle a -> 5.
    result = hotspot_metrics(frame, areas, (0.5,))
    assert result["hit_rate@50%"]["value"] == pytest.approx(1 / 6)
    assert result["pei_star@50%"]["value"] == pytest.approx(1 / 5)
    empty = hotspot_metrics(frame.head(0), areas, (0.5,))
    assert empty["pai@50%"] == {"value": None, "standard_deviation": None}
    assert (empty["bins_evaluated"], empty["bins_without_events"]) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), equal=st.booleans(), by_region=st.booleans(),
       shares=st.sampled_from([(0.01, 0.05, 0.1), (0.02, 0.2), (0.3,)]))
def test_ranking_only_the_leading_rows_changes_nothing(seed: int, equal: bool, by_region: bool,
                                                      shares: tuple[float, ...]) -> None:
    import numpy as np

    from crimecast.evaluation import hotspot

    rng = np.random.default_rng(seed)
    n_units, n_bins = int(rng.integers(20, 120)), int(rng.integers(1, 5))
    units = [f"u{i:03d}" for i in range(n_units)]
    areas = pl.DataFrame({"unit_id": units, "area_km2": np.full(n_units, 0.25) if equal
                          else rng.choice([0.1, 0.25, 0.7, 2.0], n_units)})
    score = rng.choice([0.0, 0.5, 1.0, 2.0, np.nan], n_units * n_bins) if rng.random() < 0.5 \
        else rng.random(n_units * n_bins)  # heavy ties and missing scores, or none
    frame = pl.DataFrame({
        "unit_id": units * n_bins,
        "bin_start": [dt.datetime(2024, 1, 1) + dt.timedelta(hours=b)
                      for b in range(n_bins) for _ in units],
        "score": score, "actual_count": rng.poisson(0.4, n_units * n_bins),
        "region": [f"r{i % 3}" for i in range(n_units)] * n_bins,
    })
    by = "region" if by_region else None
    fast = hotspot_per_bin(frame, areas, shares, by=by)
    original = hotspot._leading
    try:
        hotspot._leading = lambda rows, rank_column, limits: rows  # rank every row
        slow = hotspot_per_bin(frame, areas, shares, by=by)
    finally:
        hotspot._leading = original
    assert fast.equals(slow)
