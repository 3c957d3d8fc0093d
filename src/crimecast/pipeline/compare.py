"""``crimecast compare``: champion against challenger on the forecasts they actually made.

Reads the forecast log (:mod:`crimecast.serving.forecast_log`) once the outcomes of its
windows are known. Every window that both models forecast (one answering, one in
shadow, or both answering different requests) is scored on the crimes recorded in it:
of the ``k`` places each model listed first (``k``: the shorter of the two lists),
the **hit rate** (their share of the window's crimes) and the **PAI** (hit rate over
their share of the study area). A window counts once however many requests asked for
it. The means get 95% bootstrap intervals over windows, and the paired difference
(challenger − champion) decides the recommendation: ``promote`` when its interval
lies above zero, ``keep the champion`` when below, otherwise ``not decided yet``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from crimecast.errors import DataError
from crimecast.evaluation.drift import mean_with_interval

FORECAST_ENDPOINTS = ("hotspots", "predict", "brief")


def logged_windows(log: pl.LazyFrame, data_end: dt.datetime) -> pl.DataFrame:
    """One ranked list per (role, window), the earliest answer, for windows that ended by
    ``data_end``."""
    rows = log.filter(pl.col("endpoint").is_in(FORECAST_ENDPOINTS)
                      & pl.col("unit_id").is_not_null()
                      & (pl.col("window_end") <= data_end)).collect()
    if rows.height == 0:
        return rows
    first = rows.group_by("role", "window_start", "window_end").agg(
        pl.col("request_id").sort_by("issued_at").first().alias("_first"))
    return rows.join(first, on=["role", "window_start", "window_end"]).filter(
        pl.col("request_id") == pl.col("_first")).drop("_first")


def compare_models(log: pl.LazyFrame, events: pl.DataFrame, unit_areas: pl.DataFrame,
                   data_end: dt.datetime, n_resamples: int = 500) -> dict[str, Any]:
    """The comparison report (module docstring). ``events``: ``unit_id, occurred_at`` of
    the recorded crimes; ``unit_areas``: ``unit_id, area_km2`` of every place."""
    lists = logged_windows(log, data_end)
    roles = set(lists["role"].unique().to_list()) if lists.height else set()
    if not {"champion", "challenger"} <= roles:
        raise DataError("the forecast log holds no window forecast by both the champion and "
                        "a challenger whose outcome is known yet. Serve with --challenger, "
                        "then compare once the windows have passed (--data with newer "
                        "incidents).")
    total_area = float(unit_areas["area_km2"].sum())
    depth = lists.group_by("role", "window_start", "window_end").agg(n=pl.len())
    k = depth.group_by("window_start", "window_end").agg(
        k=pl.col("n").min(), roles=pl.col("role").n_unique()).filter(pl.col("roles") == 2)
    chosen = lists.join(k, on=["window_start", "window_end"]).filter(pl.col("rank") <= pl.col("k"))
    windows = k.select("window_start", "window_end")
    counts = (events.join_where(windows, pl.col("occurred_at") >= pl.col("window_start"),
                                pl.col("occurred_at") < pl.col("window_end"))
              .group_by("window_start", "window_end", "unit_id").agg(crimes=pl.len()))
    totals = counts.group_by("window_start", "window_end").agg(total=pl.col("crimes").sum())
    scored = (chosen.join(counts, on=["window_start", "window_end", "unit_id"], how="left")
              .join(unit_areas, on="unit_id", how="left")
              .group_by("role", "window_start", "window_end")
              .agg(pl.col("crimes").fill_null(0).sum().alias("caught"),
                   pl.col("area_km2").sum().alias("area"),
                   pl.col("model_version").first(), pl.col("run_id").first(),
                   pl.col("k").first())
              .join(totals, on=["window_start", "window_end"], how="left")
              .filter(pl.col("total") > 0)
              .with_columns(hit_rate=pl.col("caught") / pl.col("total"))
              .with_columns(pai=pl.col("hit_rate") / (pl.col("area") / total_area)))
    report: dict[str, Any] = {"windows": scored["window_start"].n_unique(),
                              "windows_without_crime": k.height - scored["window_start"]
                              .n_unique(), "data_end": data_end.isoformat(), "models": {}}
    for role in ("champion", "challenger"):
        part = scored.filter(pl.col("role") == role)
        report["models"][role] = {
            "model_versions": sorted(v for v in part["model_version"].unique().to_list()
                                     if v is not None),
            "run_ids": sorted(v for v in part["run_id"].unique().to_list() if v is not None),
            "places_per_window": _whole(part["k"].median()),
            **{m: mean_with_interval(part[m].to_list(), n_resamples) for m in ("hit_rate",
                                                                                "pai")}}
    paired = scored.filter(pl.col("role") == "challenger").select(
        "window_start", "window_end", pl.col("pai").alias("challenger"),
        pl.col("hit_rate").alias("challenger_hit")).join(
        scored.filter(pl.col("role") == "champion").select(
            "window_start", "window_end", pl.col("pai").alias("champion"),
            pl.col("hit_rate").alias("champion_hit")), on=["window_start", "window_end"])
    difference = mean_with_interval((paired["challenger"] - paired["champion"]).to_list(),
                                    n_resamples)
    report["difference"] = {"pai": difference, "hit_rate": mean_with_interval(
        (paired["challenger_hit"] - paired["champion_hit"]).to_list(), n_resamples)}
    report["recommendation"], report["why"] = recommend(difference)
    return report


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def recommend(difference: dict[str, Any]) -> tuple[str, str]:
    """``promote``, ``keep the champion`` or ``not decided yet`` from the paired PAI
    difference (challenger − champion) and its 95% interval."""
    low, high, n = difference["ci_low"], difference["ci_high"], difference["n"]
    if low is None or high is None:
        return "not decided yet", f"only {n} window(s) with crimes: too few to compare"
    span = f"challenger − champion PAI {difference['value']:+.2f} (95% interval {low:+.2f} to " \
           f"{high:+.2f}, {n} windows)"
    if low > 0:
        return "promote", f"the challenger caught more crime per area flagged: {span}"
    if high < 0:
        return "keep the champion", f"the champion caught more crime per area flagged: {span}"
    return "not decided yet", f"no clear difference yet: {span}; compare again later"
