"""Render the model card as one self-contained HTML page that reads well on a phone.

The page has no scripts and loads nothing: styles are inline, charts are inline
SVG (:mod:`crimecast.cards.svg`), and a Content-Security-Policy meta tag
forbids fetching anything at all. Every piece of text that comes from the card
or its inputs is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crimecast.cards.inputs import (
    LOWER_IS_BETTER,
    UNREGISTERED,
    CardInputs,
    f1_spread,
    is_synthetic,
    metric_value,
    primary_metric,
    show,
    sources,
)
from crimecast.cards.plots import area_curves_img
from crimecast.cards.risk import INTENDED_USES, OUT_OF_SCOPE, OUT_OF_SCOPE_SUMMARY, caveats
from crimecast.cards.svg import PALETTE, Series, bar_chart, esc, finite, line_chart

logger = logging.getLogger(__name__)

NOT_RANKED_PREFIX = "area_share"
TOP_FEATURES = 20
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 1rem; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
  background: #ffffff; }
h1 { font-size: 1.6rem; margin: 0.2rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; border-bottom: 2px solid #dddddd; padding-bottom: 0.2rem;
  margin-top: 2rem; }
.banner { background: #b00020; color: #ffffff; font-weight: 700; font-size: 1.15rem;
  padding: 0.8rem 1rem; border-radius: 6px; margin: 1rem 0; }
.badge { display: inline-block; padding: 0.15rem 0.6rem; border-radius: 999px;
  font-weight: 700; color: #ffffff; }
.risk-High, .gate-failed { background: #b00020; }
.risk-Medium { background: #a15c00; }
.risk-Low, .gate-passed { background: #1b7a3a; }
.risk-Unknown { background: #555555; }
.scope { border-left: 6px solid #b00020; background: #fff4f4; padding: 0.6rem 1rem; }
.scope strong { font-size: 1.05rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 0.3rem 0.5rem; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #e3f4e8; font-weight: 700; }
.sd { color: #666666; font-weight: 400; font-size: 0.8rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
  gap: 1rem; }
figure { margin: 0; border: 1px solid #e5e5e5; border-radius: 6px; padding: 0.4rem; }
figcaption { font-size: 0.85rem; color: #444444; }
svg.chart { width: 100%; height: auto; display: block; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.8rem;
  background: #f6f6f6; padding: 0.6rem; }
@media (max-width: 600px) {
  body { padding: 0.6rem; font-size: 0.95rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: 0.4rem; }
}
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool] = ()
           ) -> str:
    """A scrollable table; ``rows`` cells are already-escaped HTML."""
    numeric = list(numeric) + [False] * (len(headers) - len(numeric))
    head = "".join(f'<th{" class=num" if n else ""}>{esc(h)}</th>'
                   for h, n in zip(headers, numeric, strict=False))
    body = "".join("<tr>" + "".join(
        cell if cell.startswith("<td") else f'<td{" class=num" if n else ""}>{cell}</td>'
        for cell, n in zip(row, numeric, strict=False)) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _facts(pairs: Iterable[tuple[str, Any]], ids: Mapping[str, str] | None = None) -> str:
    """A definition list of label/value pairs (both escaped); ``ids`` names the value
    elements a later step fills in (the registry's version)."""
    named = ids or {}
    items = "".join(f"<dt>{esc(k)}</dt><dd"
                    + (f' id="{named[k]}"' if k in named else "") + f">{esc(v)}</dd>"
                    for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


_VERSION_ID = "model-version"


def with_version(page: str, version: int | str) -> str:
    """The card page showing the registry's ``version``: a card is written before its model
    is registered, so whoever loads a registered model fills it in."""
    # The phrase stands only where the version goes: the facts and the embedded JSON card.
    return page.replace(esc(UNREGISTERED), esc(str(version)))


def _text(value: Any) -> str:
    """A value for a table cell or a fact: lists joined, numbers shortened."""
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return show(value) if finite(value) is not None else str(value)


def _overview(card: Mapping[str, Any], inputs: CardInputs) -> str:
    """Title, identity and description of the model."""
    overview = card.get("model_overview", {})
    return (f"<header><p>Model card</p><h1>{esc(inputs.model_name)}</h1>" + _facts([
        ("Problem", overview.get("problem_type", "")),
        ("Algorithm", inputs.model_type),
        ("Version", inputs.model_version or UNREGISTERED),
        ("Run", inputs.run_id),
        ("Created", inputs.created_at),
        ("Owner", overview.get("model_owner", "")),
        ("Description", overview.get("model_description", "")),
    ], ids={"Version": _VERSION_ID}) + "</header>")


def _risk(card: Mapping[str, Any]) -> str:
    """The risk rating badge and its explanation."""
    uses = card.get("intended_uses", {})
    rating = str(uses.get("risk_rating", "Unknown"))
    return (f'<section id="risk"><h2>Risk rating</h2><p><span class="badge risk-{esc(rating)}">'
            f"{esc(rating)}</span></p><p>{esc(uses.get('explanations_for_risk_rating', ''))}"
            "</p></section>")


def _gate(inputs: CardInputs) -> str:
    """The promotion gate's decision, numbers and reasons."""
    gate = inputs.gate
    state = "passed" if gate.get("passed") else "failed"
    reasons = "".join(f"<li>{esc(r)}</li>" for r in gate.get("reasons") or [])
    metric = gate.get("primary_metric", primary_metric(inputs))
    return (f'<section id="gate"><h2>Promotion gate</h2><p><span class="badge gate-{state}">'
            f"Gate {state.upper()}</span></p>" + _facts([
                ("F1", f"{_text(gate.get('f1'))} (threshold {_text(gate.get('f1_threshold'))})"),
                (f"Model {metric}", _text(gate.get("model_value"))),
                (f"Best baseline {metric}",
                 f"{_text(gate.get('baseline_value'))} ({gate.get('best_baseline')})"),
            ]) + (f"<ul>{reasons}</ul>" if reasons else "") + "</section>")


def _cell(metric: Any, best: bool) -> str:
    """One comparison cell: the value, its sd, highlighted when it is the best."""
    value = metric_value({"m": metric}, "m")
    sd = finite(metric.get("standard_deviation")) if isinstance(metric, Mapping) else None
    extra = f' <span class="sd">± {sd:.2g}</span>' if sd is not None else ""
    mark = ' class="num best" title="best"' if best else ' class="num"'
    return f"<td{mark}>{esc(_text(value))}{extra}</td>"


def _comparison(inputs: CardInputs) -> str:
    """Model against every baseline on every classification and hotspot metric."""
    evaluation = inputs.evaluation
    baselines = evaluation.get("baselines") or {}
    columns = [("model", evaluation), *baselines.items()]
    rows = []
    for family in ("binary_classification_metrics", "hotspot_metrics"):
        for name, metric in (evaluation.get(family) or {}).items():
            if not isinstance(metric, Mapping):
                continue
            metrics = [((result or {}).get(family) or {}).get(name) for _, result in columns]
            values = [finite(metric_value({"m": m}, "m")) for m in metrics]
            known = [v for v in values if v is not None]
            target = None if name.startswith(NOT_RANKED_PREFIX) or len(known) < 2 else (
                min(known) if name in LOWER_IS_BETTER else max(known))
            rows.append([esc(name), *(_cell(m, target is not None and v == target)
                                      for m, v in zip(metrics, values, strict=True))])
    rows.append(["decision threshold", *(esc(_text((r or {}).get("decision_threshold")))
                                         for _, r in columns)])
    lower = ", ".join(sorted(LOWER_IS_BETTER))
    return ('<section id="comparison"><h2>Model against the strongest other forecasters</h2>'
            f"<p>Test-set values ± standard deviation. The best value in each row is "
            f"highlighted (lower is better for {esc(lower)}; area share is not ranked).</p>"
            + _table(["metric", *(name for name, _ in columns)], rows,
                     [False] + [True] * len(columns)) + "</section>")


def _ranking(inputs: CardInputs) -> str:
    """Every forecaster ranked on validation, the test value beside, and the champion."""
    ranking = inputs.evaluation.get("forecasters") or {}
    rows = [[esc(str(r["rank"])), esc(r["forecaster"]), esc(r["kind"]), esc(_text(r["value"])),
             esc(_text((ranking.get("test") or {}).get(r["forecaster"])))]
            for r in ranking.get("validation_ranking") or []]
    if not rows:
        return ""
    metric = esc(ranking.get("metric", ""))
    return ('<section id="ranking"><h2>Forecasters ranked on validation</h2>'
            f"<p>{esc(ranking.get('champion_line', ''))} The champion is chosen on the "
            "validation fold; the test values are reported, never used to choose.</p>"
            + _table(["rank", "forecaster", "kind", f"validation {metric}", f"test {metric}"],
                     rows, [True, False, False, True, True]) + "</section>")


def _upper(values: Iterable[Any]) -> float:
    """A tidy upper axis limit (a tenth above the largest value, at most 1)."""
    top = max((v for v in (finite(x) for x in values) if v is not None), default=1.0)
    return min(1.0, max(0.1, (int(top * 10) + 1) / 10))


def _charts(inputs: CardInputs) -> str:
    """PR curves, reliability plot, per-area F1 and PAI@5% bars, feature importance."""
    curves = inputs.curves or {}
    pr = curves.get("pr_curve") or {}
    series = [Series("model", pr.get("recall") or [], pr.get("precision") or [])]
    for index, (name, curve) in enumerate((curves.get("baseline_pr_curves") or {}).items()):
        series.append(Series(f"baseline: {name}", (curve or {}).get("recall") or [],
                             (curve or {}).get("precision") or [],
                             color=PALETTE[(index + 1) % len(PALETTE)], dashed=True))
    rate = finite((inputs.evaluation.get("data") or {}).get("positive_rate_test"))
    if rate is not None:
        series.append(Series("no skill (test positive rate)", [0.0, 1.0], [rate, rate],
                             color="#888888", dashed=True))
    cal = curves.get("calibration") or {}
    xs, ys = cal.get("mean_predicted") or [], cal.get("fraction_positive") or []
    top = _upper([*xs, *ys])
    regions = (inputs.evaluation.get("per_area") or {}).get("regions") or {}
    names = [str(r) for r in regions]
    worst = str(f1_spread(inputs.evaluation).get("worst_region"))
    f1s = [metric_value((i or {}).get("binary_classification_metrics"), "f1")
           for i in regions.values()]
    pais = [metric_value((i or {}).get("hotspot_metrics"), "pai@5%") for i in regions.values()]
    ranked = sorted(inputs.feature_importance.items(), key=lambda kv: -abs(kv[1]))
    charts = [
        ("Precision against recall on the test period; dashed lines are baselines.",
         line_chart(series, title="Precision-recall curve", x_label="recall",
                    y_label="precision")),
        ("Observed share of hotspots against the mean predicted probability, per bin; "
         "points on the dashed diagonal are perfectly calibrated.",
         line_chart([Series("model", xs, ys, markers=True)], title="Calibration (reliability)",
                    x_label="mean predicted probability", y_label="observed fraction positive",
                    x_range=(0.0, top), y_range=(0.0, top), diagonal=True)),
        ("F1 by area, best first; the worst area is orange.",
         bar_chart(names, f1s, title="F1 by area", x_label="F1",
                   highlight={worst: PALETTE[1]})),
        (("Predictive accuracy index at 5% of places (hit rate divided by area share), "
          "best first; 1 means no better than chance.") if any(finite(v) is not None
                                                              for v in pais) else
         ("PAI@5% by area has no values: an area must hold enough places for 5% of it to "
          "be flagged (with --spatial-unit area each division is one place); a grid model "
          "gives every area a value."),
         bar_chart(names, pais, title="PAI@5% by area", x_label="PAI@5%", color=PALETTE[2])),
        (f"Top {min(TOP_FEATURES, len(ranked))} of {len(ranked)} features by importance.",
         bar_chart([k for k, _ in ranked], [v for _, v in ranked], title="Feature importance",
                   x_label="importance", max_bars=TOP_FEATURES, color=PALETTE[3])),
    ]
    figures = "".join(f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"
                      for caption, svg in charts)
    return f'<section id="charts"><h2>Charts</h2><div class="charts">{figures}</div></section>'


def _area_curves(inputs: CardInputs) -> str:
    """Every forecaster's hit rate and PAI against the share of the area flagged."""
    curves = inputs.curves.get("hotspot_curves") if inputs.curves else None
    head = ('<section id="area-curves"><h2>Hit rate and PAI against the share of area '
            "flagged</h2>")
    if not curves:
        return head + ("<p>Not drawn for this run: its evaluation kept no curves (a run "
                       "from an older crimecast).</p></section>")
    ranking = inputs.evaluation.get("forecasters") or {}
    highlight = [str(n) for n in (ranking.get("learned") or inputs.model_type, ranking.get(
        "best_naive"), "sepp", "ensemble") if n in curves]
    return (head + f"<p>Test period, every forecaster ({len(curves)}; the named ones in "
            "colour). A curve above another catches more crime in the same area; PAI 1 is "
            f"chance.</p>{area_curves_img(curves, highlight)}</section>")


def _per_area(inputs: CardInputs) -> str:
    """Rows, positives, F1 and PAI@5% for every area."""
    regions = (inputs.evaluation.get("per_area") or {}).get("regions") or {}
    rows = [[esc(name), esc(_text((info or {}).get("rows"))),
             esc(_text((info or {}).get("positives"))),
             esc(_text(metric_value((info or {}).get("binary_classification_metrics"), "f1"))),
             esc(_text(metric_value((info or {}).get("hotspot_metrics"), "pai@5%")))]
            for name, info in regions.items()]
    missing = sum(1 for row in rows if row[4] == "n/a")
    why = (f"<p>PAI@5% is n/a for {missing} of {len(rows)} areas: an area must hold enough "
           "places for 5% of it to be flagged (with --spatial-unit area each division is "
           "one place); grid cells give every area a value.</p>" if missing else "")
    return ('<section id="per-area"><h2>Performance by area</h2>'
            + _table(["area", "rows", "positives", "F1", "PAI@5%"], rows,
                     [False, True, True, True, True]) + why + "</section>")


def _uses(card: Mapping[str, Any]) -> str:
    """Intended and out-of-scope uses, the scope statement first."""
    out = OUT_OF_SCOPE.removeprefix(OUT_OF_SCOPE_SUMMARY).strip()
    ethics = card.get("additional_information", {}).get("ethical_considerations", "")
    return ('<section id="uses"><h2>Intended use</h2>'
            f'<div class="scope"><strong>{esc(OUT_OF_SCOPE_SUMMARY)}</strong>'
            f"<p>{esc(out)}</p></div><p>{esc(INTENDED_USES)}</p>"
            f"<h3>Ethical considerations</h3><p>{esc(ethics)}</p>"
            '<p id="patrol-loop"><b>Patrol-loop check.</b> <code>crimecast monitor --data '
            "NEW.csv --out DIR</code> writes <code>DIR/monitor.html</code>; its section "
            "“Patrol-loop check” (<code>monitor.html#feedback</code>) reports whether "
            "recorded crime rose more at flagged places than at similar unflagged ones.</p>"
            "</section>")


def _caveats(inputs: CardInputs) -> str:
    """Caveats and recommendations, then the excluded crime types with counts."""
    items = "".join(f"<li>{esc(c)}</li>" for c in caveats(inputs))
    state = "enabled" if inputs.enforcement_exclusion_enabled else "DISABLED"
    rows = [[esc(name), esc(f"{count:,}")] for name, count in
            sorted(inputs.excluded_crime_types.items(), key=lambda kv: -kv[1])]
    return (f'<section id="caveats"><h2>Caveats and recommendations</h2><ul>{items}</ul>'
            f'<h3 id="excluded">Excluded enforcement-driven crime types ({state})</h3>'
            + (_table(["crime type", "incidents excluded"], rows, [False, True]) if rows
               else "<p>None excluded.</p>") + "</section>")


def _training(inputs: CardInputs) -> str:
    """Training window, split and label facts, then the hyper-parameters."""
    facts = [(str(k), _text(v)) for k, v in inputs.training.items()]
    facts += [("features", f"{len(inputs.feature_names)}: {', '.join(inputs.feature_names)}"),
              ("SMOTE", "on" if inputs.use_smote else "off")]
    params = [[esc(k), esc(_text(v))] for k, v in sorted(inputs.hyper_parameters.items())]
    return ('<section id="training"><h2>Training</h2>' + _facts(facts)
            + "<h3>Hyper-parameters (as fitted, defaults included)</h3>"
            + _table(["name", "value"], params)
            + "</section>")


def _provenance(inputs: CardInputs) -> str:
    """Where the data came from, hashes and code version; says synthetic when it is."""
    data_kind = "synthetic (generated, not real LAPD records)" if is_synthetic(inputs) else (
        "real LAPD records")
    facts = [("data", data_kind), ("sources", ", ".join(sources(inputs)) or "n/a")]
    facts += [(str(k), _text(v)) for k, v in inputs.provenance.items()
              if k not in ("sources", "data_sources", "synthetic")]
    return '<section id="provenance"><h2>Data provenance</h2>' + _facts(facts) + "</section>"


def render_model_card_html(card: Mapping[str, Any], inputs: CardInputs) -> str:
    """Render ``card`` (from :func:`~crimecast.cards.card.build_model_card`) as HTML.

    The page is self-contained (no scripts, no external styles, fonts or
    images), has a viewport meta tag and responsive CSS, shows a SYNTHETIC DATA
    banner when the data are synthetic, and ends with the card's JSON.
    """
    banner = ('<div class="banner" id="synthetic-banner" role="alert">SYNTHETIC DATA: every '
              "number on this page comes from generated data, not real LAPD records, and says "
              "nothing about real-world performance.</div>") if is_synthetic(inputs) else ""
    body = "".join([
        _overview(card, inputs), banner, _risk(card), _gate(inputs), _ranking(inputs),
        _comparison(inputs),
        _charts(inputs), _area_curves(inputs), _per_area(inputs), _uses(card),
        _caveats(inputs), _training(inputs),
        _provenance(inputs),
        '<section id="card-json"><h2>Card JSON</h2><details><summary>Show the model card '
        f"JSON</summary><pre>{esc(json.dumps(card, indent=2, default=str))}</pre></details>"
        "</section>",
    ])
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        f"<title>Model card: {esc(inputs.model_name)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )
    logger.info("rendered model card HTML for %s (%d characters)", inputs.model_name, len(page))
    return page
