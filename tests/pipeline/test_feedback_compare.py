"""The patrol-loop check and the champion/challenger comparison on hand-built data."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from crimecast.errors import DataError
from crimecast.pipeline.compare import compare_models, recommend
from crimecast.pipeline.feedback import feedback_check

T = dt.datetime(2024, 3, 1)


def events(counts: dict[str, tuple[int, int]], prior: dict[str, int]) -> pl.DataFrame:
    """Per unit: (before, after) events in the week before and after T, and ``prior``
    events spread over the half year before that."""
    rows = []
    for unit, (before, after) in counts.items():
        rows += [(unit, T - dt.timedelta(days=3, minutes=i)) for i in range(before)]
        rows += [(unit, T + dt.timedelta(days=3, minutes=i)) for i in range(after)]
        rows += [(unit, T - dt.timedelta(days=30 + i)) for i in range(prior[unit])]
    return pl.DataFrame(rows, schema={"unit_id": pl.String, "occurred_at": pl.Datetime("us")},
                        orient="row")


def test_feedback_excess_is_the_change_beyond_similar_unflagged_places() -> None:
    units = [f"u{i}" for i in range(10)]
    prior = {u: i for i, u in enumerate(units)}  # bands of two units each
    counts = {u: (2, 2) for u in units}
    counts["u9"] = (2, 8)  # flagged, rose by 6 while its band partner u8 stayed flat
    counts["u7"] = (2, 5)  # flagged, rose by 3; partner u6 rose by 1
    counts["u6"] = (2, 3)
    flags = pl.DataFrame({"unit_id": ["u9", "u7", "u9"], "flagged_at": [T, T, T + dt.timedelta(
        days=2)]})
    check = feedback_check(flags, events(counts, prior), units, T + dt.timedelta(weeks=2), 1)
    got = {r["unit_id"]: r["excess"] for r in check["rows"]}
    assert got == {"u9": 6.0, "u7": 2.0}
    assert check["excess"]["value"] == 4.0 and check["places"] == 2
    assert check["rows"][0]["unit_id"] == "u9"  # biggest excess first


def test_places_flagged_too_recently_are_not_judged() -> None:
    flags = pl.DataFrame({"unit_id": ["u1"], "flagged_at": [T]})
    check = feedback_check(flags, events({"u1": (1, 1)}, {"u1": 0}), ["u1"], T, weeks=1)
    assert check["places"] == 0 and check["excess"] is None


def log_rows(role: str, version: int, windows: list[dt.datetime], ranking: list[str]
             ) -> list[dict]:
    return [{"issued_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "endpoint": "hotspots",
             "request_id": f"{role}-{w:%d}", "role": role, "served": role == "champion",
             "model_version": version, "run_id": f"run{version}", "window_start": w,
             "window_end": w + dt.timedelta(days=1), "unit_id": unit, "rank": rank}
            for w in windows for rank, unit in enumerate(ranking, start=1)]


def test_compare_scores_each_model_on_its_own_top_places() -> None:
    windows = [T + dt.timedelta(days=d) for d in range(6)]
    log = pl.DataFrame(log_rows("champion", 1, windows, ["a", "b"])
                       + log_rows("challenger", 2, windows, ["c", "a", "b"])).lazy()
    # each day: 3 crimes in c, 1 in a; 4 crimes in all
    crimes = pl.DataFrame([(u, w + dt.timedelta(hours=h)) for w in windows
                           for u, h in (("c", 1), ("c", 2), ("c", 3), ("a", 4))],
                          schema={"unit_id": pl.String, "occurred_at": pl.Datetime("us")},
                          orient="row")
    areas = pl.DataFrame({"unit_id": list("abcd"), "area_km2": [1.0, 1.0, 1.0, 1.0]})
    report = compare_models(log, crimes, areas, T + dt.timedelta(days=10), n_resamples=50)
    champion, challenger = report["models"]["champion"], report["models"]["challenger"]
    # k = 2 places each: champion a,b catch 1 of 4 on half the area; challenger c,a catch 4
    assert champion["hit_rate"]["value"] == 0.25 and champion["pai"]["value"] == 0.5
    assert challenger["hit_rate"]["value"] == 1.0 and challenger["pai"]["value"] == 2.0
    assert champion["model_versions"] == [1] and challenger["model_versions"] == [2]
    assert report["windows"] == 6 and report["difference"]["pai"]["value"] == 1.5
    assert report["recommendation"] == "promote"
    # windows whose outcome is not known yet are left out
    with pytest.raises(DataError, match="whose outcome is known yet"):
        compare_models(log, crimes, areas, T, n_resamples=50)


def test_recommendation_words() -> None:
    assert recommend({"value": -1.0, "ci_low": -2.0, "ci_high": -0.5, "n": 9})[0] == \
        "keep the champion"
    assert recommend({"value": 0.1, "ci_low": -0.5, "ci_high": 0.7, "n": 9})[0] == \
        "not decided yet"
    assert recommend({"value": None, "ci_low": None, "ci_high": None, "n": 0})[1] == \
        "only 0 window(s) with crimes: too few to compare"
