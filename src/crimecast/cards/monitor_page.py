"""``monitor.html``: is the deployed champion still working? One self-contained page.

The decision and the rules that fired, realised PAI and hit rate per week beside the
card's test value and the best naive forecaster, events per week, the area and
crime-category mix, reporting delays and estimated times over time, the features that
drifted, and the patrol-loop check. Pure: it reads the ``monitor.json`` payload.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crimecast.cards.plots import PALETTE, as_img, new_figure, no_data, page, section, table


def _weeks(report: Mapping[str, Any]) -> np.ndarray:
    start = dt.datetime.fromisoformat(report["periods"]["monitor_start"])
    return np.array([start + dt.timedelta(weeks=k) for k in range(int(report["periods"]
                                                                       ["weeks"]))],
                    dtype="datetime64[s]")


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _performance(report: Mapping[str, Any]) -> str:
    performance, weeks = report["performance"], _weeks(report)
    figure = new_figure(9.0, 3.2, ncols=2)
    for axes, measure in zip(figure.axes, ("pai@1%", "hit_rate@1%"), strict=True):
        for colour, role in zip(PALETTE, ("champion", "best_naive"), strict=False):
            values = performance[role]["weekly"][measure]
            axes.plot(weeks[:len(values)], [float("nan") if v is None else v for v in values],
                      marker="o", color=colour,
                      label=f"{role.replace('_', ' ')} ({performance[role]['forecaster']})")
        tested = report["card"].get(measure)
        if tested is not None:
            axes.axhline(tested, color="#777777", linestyle="--", label="card (test period)")
        axes.set_title(measure.replace("_", " ").replace("@", " at "))
        axes.tick_params(axis="x", labelrotation=30)
    figure.axes[0].legend(fontsize=8)
    rows = [[role.replace("_", " "), performance[role]["forecaster"],
             *(f"{_fmt(w[m]['value'])} ({_fmt(w[m]['ci_low'])}–{_fmt(w[m]['ci_high'])})"
               for m in ("pai@1%", "hit_rate@1%", "pai@5%", "hit_rate@5%"))]
            for role in ("champion", "best_naive")
            for w in [performance[role]["window"]]]
    rows.append(["card (test period)", "", *(_fmt(report["card"].get(m)) for m in
                                             ("pai@1%", "hit_rate@1%", "pai@5%", "hit_rate@5%"))])
    return section(
        "Realised accuracy",
        "How much of each week's recorded crime the places the model flagged would have "
        "caught (hit rate) and how that compares with the area flagged (PAI; 1 is chance), "
        "for the champion and the best simple rule on the same weeks; the dashed line is the "
        "card's test value. The table is the recent window, with 95% intervals.",
        as_img(figure, "realised PAI and hit rate per week")
        + table(["", "forecaster", "PAI@1%", "hit rate@1%", "PAI@5%", "hit rate@5%"], rows))


def _series(report: Mapping[str, Any], keys: Sequence[tuple[str, str]], title: str,
            reference: Mapping[str, Any] | None = None) -> str:
    weekly, weeks = report["events"]["weekly"], _weeks(report)
    figure = new_figure(9.0, 2.8, ncols=len(keys))
    for axes, (key, label), colour in zip(figure.axes, keys, PALETTE, strict=False):
        axes.plot(weeks[:len(weekly)], [float("nan") if w[key] is None else w[key]
                                        for w in weekly], marker="o", color=colour)
        if reference is not None and reference.get(key) is not None:
            axes.axhline(reference[key], color="#777777", linestyle="--")
        axes.set_title(label)
        axes.tick_params(axis="x", labelrotation=30)
    return as_img(figure, title)


def _data_drift(report: Mapping[str, Any]) -> str:
    events = report["events"]
    reference, window = events["reference"], events["window"]
    limit = report["thresholds"]["psi_mix"]
    volume = _series(report, [("events", "events reported per week"),
                              ("median_delay_days", "median reporting delay (days)"),
                              ("estimated_share", "share of estimated times")],
                     "events, delays and estimated times per week",
                     {"events": reference["weekly_events"],
                      "median_delay_days": reference["median_delay_days"],
                      "estimated_share": reference["estimated_share"]})
    mix = _series(report, [("area_psi", f"area mix PSI (retrain above {limit:g})"),
                           ("category_psi", f"crime-category mix PSI (above {limit:g})")],
                  "area and category mix stability per week")
    rows = [[label, _fmt(reference.get(key), 3), _fmt(window.get(key), 3)]
            for key, label in (("weekly_events", "events reported per week"),
                               ("median_delay_days", "median reporting delay (days)"),
                               ("estimated_share", "share of estimated times"))]
    rows += [[label, "", _fmt(window.get(key), 3)] for key, label in (
        ("area_psi", "area mix PSI"), ("category_psi", "crime-category mix PSI"),
        ("delay_psi", "reporting delay PSI"))]
    return section(
        "Has the data moved?",
        "Events counted by the week they were reported (an extract always lacks some of its "
        "last weeks' crimes, which are reported later). Dashed lines: the reference weeks at "
        "the end of the training data. PSI, the population stability index: below 0.1 "
        "stable, 0.1–0.25 a moderate shift, above 0.25 a large one.",
        volume + mix + table(["measure", "reference weeks", "recent window"], rows))


def _features(report: Mapping[str, Any]) -> str:
    psi = {k: v for k, v in report["feature_psi"].items() if v is not None}
    if not psi:
        return section("Feature drift", "", no_data("No event-derived feature to compare."))
    ranked = sorted(psi.items(), key=lambda kv: -kv[1])[:15]
    figure = new_figure(8.0, 0.3 * len(ranked) + 1.0)
    axes = figure.axes[0]
    limit = report["thresholds"]["psi_feature"]
    axes.barh([k for k, _ in ranked][::-1], [v for _, v in ranked][::-1],
              color=[PALETTE[1] if limit is not None and v > limit else PALETTE[0]
                     for _, v in ranked][::-1])
    axes.axvline(0.25 if limit is None else limit, color="#777777", linestyle="--")
    axes.set_xlabel("population stability index, reference weeks against the recent window")
    rule = (f"orange: above {limit:g}, which advises retraining" if limit is not None else
            "not a retraining rule here (monitoring.psi_feature is off): a feature's "
            "distribution also moves with the season and with how much history its window "
            "has; the dashed line marks 0.25, a large shift")
    return section("Feature drift",
                   f"The {len(ranked)} most shifted of {len(psi)} event-derived features "
                   f"({rule}). Calendar and weather features are left out: they move with "
                   "the season by design.",
                   as_img(figure, "feature drift"))


def _feedback(report: Mapping[str, Any]) -> str:
    check = report.get("feedback") or {}
    excess = check.get("excess") or {}
    rows = [[r["unit_id"], r["flagged_at"][:16], r["before"], r["after"],
             _fmt(r["similar_unflagged_change"]), _fmt(r["excess"])]
            for r in (check.get("rows") or [])[:15]]
    words = (f"Flags from {check.get('flags_from', 'n/a')}. For each flagged place: crimes "
             f"recorded in the {check.get('weeks')} weeks before and after it was first "
             "flagged, against the change at unflagged places that were equally busy before. "
             "Patrols sent by a forecast can raise recorded crime where they go (Lum & Isaac "
             "2016; Ensign et al. 2018), which the next forecast would read as more crime.")
    verdict = (f'<p class="note"><b>{html.escape(str(check.get("verdict", "n/a")))}</b>: mean '
               f"excess {_fmt(excess.get('value'))} crimes per place (95% interval "
               f"{_fmt(excess.get('ci_low'))} to {_fmt(excess.get('ci_high'))}, "
               f"{check.get('places', 0)} places).</p>")
    body = verdict + (table(["place", "first flagged", "before", "after",
                             "similar places' change", "excess"], rows) if rows else "")
    return ('<div id="feedback">' + section("Patrol-loop check", words, body) + "</div>")


def monitor_html(report: Mapping[str, Any]) -> str:
    """The whole ``monitor.html`` page of a ``monitor.json`` payload."""
    champion, periods = report["champion"], report["periods"]
    decision = report["decision"]
    colour = "#b00020" if decision == "retrain" else "#1b7f3b"
    fired = "".join(f"<li>{html.escape(rule)}</li>" for rule in report["rules_fired"])
    version = (f"version {champion['model_version']}" if champion.get("model_version")
               is not None else "unregistered")
    head = (f"<h1>Monitoring: {html.escape(champion['model_name'])} {version}</h1>"
            f"<p>Champion {html.escape(str(champion['forecaster']))} (run "
            f"{html.escape(str(champion['crimecast_run_id']))}), {champion['spatial_unit']} × "
            f"{champion['time_bin']}, crime types {html.escape(champion['crime_types'])}; "
            f"trained on data through {periods['data_through'][:16]}. Monitored: "
            f"{periods['weeks']} weeks from {periods['monitor_start'][:10]}; recent window "
            f"from {periods['window_start'][:10]} to {periods['monitor_end'][:10]}.</p>"
            f'<p style="font-size:1.3rem">Decision: <b style="color:{colour}">{decision}</b></p>'
            + (f"<ul>{fired}</ul>" if fired else "<p>No rule fired.</p>"))
    body = head + _performance(report) + _data_drift(report) + _features(report) + \
        _feedback(report)
    return page(f"crimecast monitoring: {decision}", body)
