"""``crimecast monitor``: is the deployed champion still working, and has the data moved?

For the champion's training run (its folder under the runs directory) and the data
as it is now, on the weeks **after the champion's training data ended**:

* **realised performance**: the champion and the best naive forecaster (the one chosen
  on validation when the champion was trained, never on the monitored weeks) rank every
  unit of every monitored bin, exactly as evaluation does; hit rate and PAI at 1% and 5%
  per bin, averaged per week and over the recent window with bootstrap intervals over
  bins, beside the card's test values;
* **data drift** of the recent window against the reference weeks (the last weeks of
  the training data): events per week, the area mix and crime-category mix (PSI),
  the reporting delay, the share of estimated times, and a PSI per model feature;
* a **decision**, ``ok`` or ``retrain``, with every rule that fired
  (``monitoring`` in ``config/config.yaml``).

Features are built by the same engine as training, from events known before each bin
(the leakage rules hold: the monitored labels are never features).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from crimecast.config import FeatureConfig, MonitoringConfig
from crimecast.errors import DataError
from crimecast.evaluation.drift import (
    mean_with_interval,
    mix_stability_index,
    population_stability_index,
)
from crimecast.evaluation.hotspot import hotspot_per_bin
from crimecast.evaluation.metrics import json_float
from crimecast.evaluation.predict import predictions_frame
from crimecast.features.build import build_features
from crimecast.features.catalog import CATALOG
from crimecast.features.job import weather_for
from crimecast.features.timebins import TimeBinning
from crimecast.models.storage import load_model
from crimecast.models.train import labelled_rows
from crimecast.pipeline.champion import ChampionRun

logger = logging.getLogger(__name__)

MEASURES = ("hit_rate@1%", "pai@1%", "hit_rate@5%", "pai@5%")
WEEK = dt.timedelta(days=7)
DELAY_DAYS = ((pl.col("reported_at") - pl.col("occurred_at")).dt.total_seconds() / 86_400
              ).alias("delay_days")


@dataclass(frozen=True)
class MonitorPeriods:
    """The reference weeks (end of training) and the monitored weeks (after it)."""

    data_through: dt.datetime
    reference_start: dt.datetime
    monitor_start: dt.datetime
    weeks: int
    window_weeks: int

    @property
    def monitor_end(self) -> dt.datetime:
        """End of the last complete monitored week."""
        return self.monitor_start + self.weeks * WEEK

    @property
    def window_start(self) -> dt.datetime:
        """Start of the recent window (the last ``window_weeks`` complete weeks)."""
        return self.monitor_end - min(self.window_weeks, self.weeks) * WEEK


def plan_periods(data_through: dt.datetime, new_through: dt.datetime,
                 config: MonitoringConfig, binning: TimeBinning) -> MonitorPeriods:
    """Monitored weeks start at the first bin after the training data's last and end
    with the last complete week the new data covers."""
    start = binning.start_of(binning.index_of(data_through) + 1)
    # the new data covers the whole bin of its last event
    weeks = int((binning.start_of(binning.index_of(new_through) + 1) - start) // WEEK)
    if weeks < 1:
        raise DataError(f"the new data must cover at least one whole week after the "
                        f"champion's training data (through {data_through:%Y-%m-%d %H:%M}); "
                        f"it ends {new_through:%Y-%m-%d %H:%M}. Pass --data with newer "
                        "incidents.")
    return MonitorPeriods(data_through=data_through,
                          reference_start=start - config.reference_weeks * WEEK,
                          monitor_start=start, weeks=weeks, window_weeks=config.window_weeks)


def week_of(column: str, start: dt.datetime) -> pl.Expr:
    """The monitored week (0, 1, …) of a timestamp column; negative before ``start``."""
    return ((pl.col(column) - pl.lit(start)).dt.total_seconds() // WEEK.total_seconds()
            ).cast(pl.Int64).alias("week")


def realised_performance(predictions: pl.DataFrame, unit_areas: pl.DataFrame,
                         periods: MonitorPeriods, names: dict[str, str]) -> dict[str, Any]:
    """Per forecaster (``names``: role → forecaster): hit rate and PAI at 1% and 5% per
    week and over the recent window (mean over bins with a bootstrap interval), and the
    best naive forecaster's PAI@1% minus the champion's, paired by bin."""
    result: dict[str, Any] = {}
    per_role: dict[str, pl.DataFrame] = {}
    for role, name in names.items():
        per_bin = hotspot_per_bin(predictions.filter(pl.col("model") == name), unit_areas,
                                  (0.01, 0.05)).with_columns(week_of("bin_start",
                                                                     periods.monitor_start))
        per_role[role] = per_bin
        weekly = (per_bin.group_by("week").agg(pl.col(m).mean() for m in MEASURES)
                  .sort("week"))
        window = per_bin.filter(pl.col("bin_start") >= periods.window_start)
        result[role] = {
            "forecaster": name,
            "weekly": {m: [json_float(v) for v in weekly[m]] for m in MEASURES},
            "window": {m: mean_with_interval(window[m].to_list()) for m in MEASURES},
            "all_weeks": {m: mean_with_interval(per_bin[m].to_list()) for m in MEASURES},
        }
    paired = per_role["best_naive"].select("bin_start", naive="pai@1%").join(
        per_role["champion"].select("bin_start", champion="pai@1%"), on="bin_start").filter(
        pl.col("bin_start") >= periods.window_start)
    result["naive_minus_champion"] = {"pai@1%": mean_with_interval(
        (paired["naive"] - paired["champion"]).to_list())}
    return result


def _reported_in(events: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    return events.filter(pl.col("reported_at").is_between(start, end, closed="left"))


def _counts(frame: pl.DataFrame, column: str) -> dict[str, float]:
    counts = frame.group_by(column).len()
    return {str(k): float(v) for k, v in zip(counts[column], counts["len"], strict=True)}


def _summary(frame: pl.DataFrame, weeks: float) -> dict[str, Any]:
    delays = frame.select(DELAY_DAYS)["delay_days"]
    empty = frame.height == 0
    return {"events": frame.height, "weekly_events": frame.height / weeks,
            "median_delay_days": None if empty else json_float(float(delays.median())),  # type: ignore[arg-type]
            "estimated_share": None if empty else json_float(
                float(frame["time_is_estimated"].mean())),  # type: ignore[arg-type]
            "area_counts": _counts(frame, "area_name"),
            "category_counts": _counts(frame, "crime_category")}


def _mix(reference: dict[str, Any], part: dict[str, Any]) -> dict[str, float | None]:
    return {"area_psi": mix_stability_index(reference["area_counts"], part["area_counts"]),
            "category_psi": mix_stability_index(reference["category_counts"],
                                                part["category_counts"])}


def event_drift(events: pl.DataFrame, periods: MonitorPeriods) -> dict[str, Any]:
    """Events per week, area and category mix, reporting delay and estimated times of the
    reference weeks against each monitored week and the recent window.

    Periods hold the events **reported** in them: every extract holds all reports up to
    its date, while the events that occurred in its last weeks are still partly unreported,
    so counting by occurrence would see a fall at the end of every extract."""
    reference_weeks = (periods.monitor_start - periods.reference_start) / WEEK
    window_weeks = (periods.monitor_end - periods.window_start) / WEEK
    reference = _summary(_reported_in(events, periods.reference_start, periods.monitor_start),
                         reference_weeks)
    window_events = _reported_in(events, periods.window_start, periods.monitor_end)
    window = _summary(window_events, window_weeks)
    window.update(_mix(reference, window))
    reference_delays = _reported_in(events, periods.reference_start, periods.monitor_start
                                    ).select(DELAY_DAYS)["delay_days"].to_numpy()
    window["delay_psi"] = population_stability_index(
        reference_delays, window_events.select(DELAY_DAYS)["delay_days"].to_numpy())
    weekly = []
    for week in range(periods.weeks):
        start = periods.monitor_start + week * WEEK
        part = _summary(_reported_in(events, start, start + WEEK), 1.0)
        weekly.append({"week": week, "start": start.isoformat(), **_mix(reference, part),
                       **{k: part[k] for k in ("events", "median_delay_days",
                                               "estimated_share")}})
    return {"reference": reference, "window": window, "weekly": weekly}


def feature_drift(rows: pl.DataFrame, features: list[str], periods: MonitorPeriods
                  ) -> dict[str, float | None]:
    """PSI of every event-derived model feature: panel rows of the reference weeks against
    the window's. Calendar, weather and unit features are left out: they move with the
    season by design, not because the data drifted."""
    derived = {f.name for f in CATALOG if f.source == "asof"}
    reference = rows.filter(pl.col("bin_start") < periods.monitor_start)
    window = rows.filter(pl.col("bin_start") >= periods.window_start)
    return {name: population_stability_index(reference[name].cast(pl.Float64).to_numpy(),
                                             window[name].cast(pl.Float64).to_numpy())
            for name in features if name in rows.columns and name in derived}


def decide(performance: dict[str, Any], events: dict[str, Any], features: dict[str, Any],
           card: dict[str, Any], config: MonitoringConfig) -> dict[str, Any]:
    """``ok`` or ``retrain`` and every rule that fired (thresholds: ``config``). The two
    performance rules fire only when the whole 95% interval is past the threshold."""
    fired: list[str] = []
    champion = performance["champion"]["window"]["pai@1%"]
    gap = performance["naive_minus_champion"]["pai@1%"]
    tested = card.get("pai@1%")
    high = champion["ci_high"] if champion["ci_high"] is not None else champion["value"]
    if high is not None and tested and high < (1 - config.pai_drop) * tested:
        fired.append(f"realised PAI@1% {champion['value']:.2f} (95% interval up to "
                     f"{high:.2f}) is below {1 - config.pai_drop:.0%} of the card's test "
                     f"PAI@1% {tested:.2f}")
    low = gap["ci_low"] if gap["ci_low"] is not None else gap["value"]
    if low is not None and champion["value"] and low > config.naive_margin * champion["value"]:
        naive = performance["best_naive"]["window"]["pai@1%"]["value"]
        fired.append(f"the best naive forecaster's realised PAI@1% {naive:.2f} beats the "
                     f"champion's {champion['value']:.2f} by more than {config.naive_margin:.0%}"
                     " (95% interval of the paired difference)")
    limit = config.psi_feature
    drifted = {k: v for k, v in features.items() if None not in (v, limit) and v > limit}
    if drifted:
        worst = max(drifted, key=lambda k: drifted[k])
        fired.append(f"{len(drifted)} feature(s) drifted (PSI > {config.psi_feature:g}), most "
                     f"{worst} (PSI {drifted[worst]:.2f})")
    reference, window = events["reference"], events["window"]
    if window["events"] >= config.min_events:
        for key, words in (("area_psi", "area mix"), ("category_psi", "crime-category mix")):
            if window[key] is not None and window[key] > config.psi_mix:
                fired.append(f"the {words} moved: PSI {window[key]:.3f} > {config.psi_mix:g}")
    if reference["weekly_events"] and abs(window["weekly_events"] / reference["weekly_events"]
                                          - 1) > config.volume_change:
        fired.append(f"events reported per week {window['weekly_events']:,.0f} against "
                     f"{reference['weekly_events']:,.0f} in the reference weeks (more than "
                     f"{config.volume_change:.0%} apart)")
    for key, limit, words in (("median_delay_days", config.delay_change_days,
                               "median reporting delay (days)"),
                              ("estimated_share", config.estimated_change,
                               "share of estimated times")):
        if reference[key] is not None and window[key] is not None and \
                abs(window[key] - reference[key]) > limit:
            fired.append(f"the {words} moved from {reference[key]:.2f} to {window[key]:.2f}")
    return {"decision": "retrain" if fired else "ok", "rules_fired": fired,
            "thresholds": config.model_dump()}


def monitor_run(run: ChampionRun, events: pl.DataFrame, config: MonitoringConfig
                ) -> tuple[dict[str, Any], pl.DataFrame]:
    """The monitoring report of ``run`` on ``events`` (the training events followed by the
    newer ones) and the monitored predictions (champion and best naive, every unit)."""
    feature_config = FeatureConfig.model_validate(run.meta["feature_config"])
    binning = TimeBinning(feature_config.time_bin, feature_config.shift_start_hour)
    table = run.unit_table()
    units = run.units()
    periods = plan_periods(run.data_through, events["occurred_at"].max(),  # type: ignore[arg-type]
                           config, binning)
    built = build_features(events, units, feature_config,
                           weather=weather_for(events, feature_config),
                           start=periods.reference_start,
                           end=periods.monitor_end - binning.step)
    rows = labelled_rows(built.frame)
    monitored = rows.filter(pl.col("bin_start") >= periods.monitor_start)
    if monitored.height == 0:
        raise DataError("no labelled panel rows after the champion's training data; pass "
                        "--data that covers a later period.")
    names = {"champion": run.deployed, "best_naive": run.best_naive}
    models = {name: load_model(path) for name, path in run.model_paths().items()}
    predictions = predictions_frame(monitored, models)
    unit_areas = table.select("unit_id", "area_km2")
    performance = realised_performance(predictions, unit_areas, periods, names)
    card = {m: (run.evaluation.get("hotspot_metrics", {}).get(m) or {}).get("value")
            for m in MEASURES}
    drift = event_drift(events, periods)
    features = feature_drift(rows, run.features, periods)
    decision = decide(performance, drift, features, card, config)
    report = {
        "champion": run.describe(),
        "periods": {k: (v.isoformat() if isinstance(v, dt.datetime) else v)
                    for k, v in {**periods.__dict__, "monitor_end": periods.monitor_end,
                                 "window_start": periods.window_start}.items()},
        "card": card,
        "performance": performance,
        "events": drift,
        "feature_psi": features,
        **decision,
    }
    return report, predictions

