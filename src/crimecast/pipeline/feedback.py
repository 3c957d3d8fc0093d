"""The patrol-loop check: does recorded crime rise where the forecast sent patrols?

A forecast that sends patrols to a place can raise *recorded* crime there (more
officers see and record more), and the next forecast then flags the place again:
the feedback loop of Lum & Isaac (2016, "To predict and serve?", *Significance*
13(5)) and Ensign et al. (2018, "Runaway feedback loops in predictive policing",
FAT* 2018). The check compares, per flagged place, the events recorded in the
``weeks`` after it was first flagged with the ``weeks`` before, against unflagged
places of the same prior-count band over the same weeks (places that were equally
busy before, so regression to the mean affects both sides alike):

    excess = (after − before)_flagged − mean (after − before)_similar unflagged

A positive mean excess whose 95% bootstrap interval (over flagged places) lies above
zero is reported as a possible feedback effect. It is a warning to look, not proof:
a flagged place may also have truly become busier.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from crimecast.evaluation.drift import mean_with_interval
from crimecast.evaluation.metrics import json_float

BANDS = 5


def feedback_check(flags: pl.DataFrame, events: pl.DataFrame, units: list[str],
                   end: dt.datetime, weeks: int = 2) -> dict[str, Any]:
    """``flags``: ``unit_id, flagged_at`` (each place's first flag); ``events``:
    ``unit_id, occurred_at``; ``units``: every place; ``end``: the data's end. Places
    flagged less than ``weeks`` before ``end`` are not judged yet."""
    span = dt.timedelta(weeks=weeks)
    first = flags.group_by("unit_id").agg(pl.col("flagged_at").min()).filter(
        pl.col("flagged_at") + span <= end).sort("unit_id")
    if first.height == 0:
        return {"weeks": weeks, "places": 0, "verdict": "not enough time after the first "
                "flags to judge", "excess": None, "rows": []}
    all_units = pl.DataFrame({"unit_id": units})
    flagged = set(first["unit_id"].to_list())
    rows: list[dict[str, Any]] = []
    for (at,), group in first.partition_by("flagged_at", as_dict=True).items():
        counts = all_units.join(_window_counts(events, at - 26 * span, at, "prior"),
                                on="unit_id", how="left").join(
            _window_counts(events, at - span, at, "before"), on="unit_id", how="left").join(
            _window_counts(events, at, at + span, "after"), on="unit_id", how="left"
        ).fill_null(0)
        ranks = counts["prior"].rank("ordinal").to_numpy()
        counts = counts.with_columns(band=pl.Series((ranks - 1) * BANDS // len(ranks)))
        controls = counts.filter(~pl.col("unit_id").is_in(list(flagged))).group_by("band").agg(
            control_change=(pl.col("after") - pl.col("before")).cast(pl.Float64).mean(),
            controls=pl.len())
        chosen = counts.join(group.select("unit_id"), on="unit_id").join(
            controls, on="band", how="left")
        for row in chosen.iter_rows(named=True):
            change = row["after"] - row["before"]
            control = row["control_change"]
            rows.append({"unit_id": row["unit_id"], "flagged_at": at.isoformat(),
                         "before": row["before"], "after": row["after"],
                         "similar_unflagged_change": json_float(control),
                         "controls": row["controls"] or 0,
                         "excess": json_float(change - control) if control is not None
                         else None})
    excess = mean_with_interval([r["excess"] for r in rows])
    rising = excess["ci_low"] is not None and excess["ci_low"] > 0
    verdict = ("possible feedback: recorded crime rose more at flagged places than at "
               "similar unflagged ones" if rising else
               "no sign of a feedback effect: flagged places did not rise more than similar "
               "unflagged ones")
    rows.sort(key=lambda r: -(r["excess"] if r["excess"] is not None else -np.inf))
    return {"weeks": weeks, "places": len(rows), "excess": excess, "verdict": verdict,
            "possible_feedback": rising, "rows": rows[:50]}


def _window_counts(events: pl.DataFrame, start: dt.datetime, end: dt.datetime, name: str
                   ) -> pl.DataFrame:
    return events.filter(pl.col("occurred_at").is_between(start, end, closed="left")).group_by(
        "unit_id").agg(pl.len().cast(pl.Int64).alias(name))
