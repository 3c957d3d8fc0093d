"""The card's risk rating (derived from measured performance), uses and caveats."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from crimecast.cards.inputs import (
    CardInputs,
    _f,
    beats,
    best_baseline,
    clip,
    f1_spread,
    is_synthetic,
    metric_value,
    primary_metric,
    sources,
)
from crimecast.cards.svg import finite

logger = logging.getLogger(__name__)

F1_GAP_HIGH = 0.25
F1_MEDIUM = 0.5
PR_AUC_CI_WIDTH_MEDIUM = 0.1
RISK_RULE = (
    f"Rule: High if the promotion gate failed, the model does not beat the best baseline on "
    f"the primary metric, or the per-area F1 gap exceeds {F1_GAP_HIGH:g}; Unknown if F1 is "
    f"undefined; Medium if F1 is below {F1_MEDIUM:g}, the PR-AUC confidence interval is wider "
    f"than {PR_AUC_CI_WIDTH_MEDIUM:g} (or missing), or the data are synthetic; Low otherwise."
)
PURPOSE = (
    "Forecast which places (spatial units) and time bins are most likely to see reported "
    "crime concentrate, so that limited patrol attention and prevention resources can be "
    "planned ahead. The model scores places and times, never people."
)
INTENDED_USES = (
    "Allocating patrol attention and resources, and prevention programmes (lighting, "
    "outreach, environmental design, victim services), to places and times. Output is a "
    "ranking of places per time bin for human planners to review with local knowledge."
)
OUT_OF_SCOPE_SUMMARY = (
    "Places only, never persons; not for enforcement decisions about individuals."
)
OUT_OF_SCOPE = (
    f"{OUT_OF_SCOPE_SUMMARY} Out of scope: any decision about an individual person; "
    "enforcement decisions about individuals (stops, searches, arrests, charging, bail, "
    "sentencing, parole); use as evidence or as grounds for suspicion; predicting who will "
    "commit or suffer crime; automatic deployment without human review."
)


@dataclass(frozen=True)
class RiskAssessment:
    """A risk rating, the conditions behind it, and the sentence that explains it."""

    rating: str
    reasons: tuple[str, ...]
    explanation: str


def assess_risk(inputs: CardInputs) -> RiskAssessment:
    """Rate the model's risk from its measured performance.

    The rule, checked in this order (the first tier with a condition wins):

    * **High**: the promotion gate failed; or the model does not beat the best
      baseline on the primary metric (lower is better for ``brier`` and
      ``log_loss``; an undefined model value does not beat); or the per-area F1
      gap exceeds 0.25.
    * **Unknown**: F1 is undefined (null) on the test set.
    * **Medium**: F1 is below 0.5; or the PR-AUC confidence interval is wider
      than 0.1 or missing; or the data are synthetic; or there is no baseline
      value to compare against.
    * **Low**: none of the above.

    The explanation names every condition that fired with its numbers (for Low,
    the checks that passed), then states the rule.
    """
    evaluation, gate = inputs.evaluation, inputs.gate
    binary = evaluation.get("binary_classification_metrics") or {}
    metric = primary_metric(inputs)
    found: dict[str, list[str]] = {"High": [], "Unknown": [], "Medium": [], "Low": []}
    why = "; ".join(str(r) for r in gate.get("reasons") or []) or "no reason recorded"
    found["Low" if gate.get("passed") else "High"].append(
        "the promotion gate passed" if gate.get("passed") else f"the promotion gate failed ({why})")
    model = finite(gate["model_value"] if "model_value" in gate else metric_value(binary, metric))
    name, base = gate.get("best_baseline"), finite(gate.get("baseline_value"))
    if base is None:
        name, base = best_baseline(evaluation, metric)
    if base is None:
        found["Medium"].append(f"there is no baseline {metric} to compare against")
    elif model is None or not beats(model, base, metric):
        shown = "is undefined, so it" if model is None else f"{_f(model)}"
        found["High"].append(f"the model's {metric} {shown} does not beat the best baseline "
                             f"{name} ({_f(base)})")
    else:
        found["Low"].append(f"the model's {metric} {_f(model)} beats the best baseline {name} "
                            f"({_f(base)})")
    spread = f1_spread(evaluation)
    gap = finite(spread.get("gap"))
    if gap is not None and gap > F1_GAP_HIGH:
        found["High"].append(
            f"the per-area F1 gap {_f(gap)} (best {spread.get('best_region')} "
            f"{_f(finite(spread.get('max')) or 0.0)}, worst {spread.get('worst_region')} "
            f"{_f(finite(spread.get('min')) or 0.0)}) exceeds {F1_GAP_HIGH:g}")
    elif gap is not None:
        found["Low"].append(f"the per-area F1 gap {_f(gap)} is within {F1_GAP_HIGH:g}")
    f1 = finite(metric_value(binary, "f1"))
    if f1 is None:
        found["Unknown"].append("F1 is undefined on the test set")
    else:
        found["Medium" if f1 < F1_MEDIUM else "Low"].append(
            f"F1 {_f(f1)} is {'below' if f1 < F1_MEDIUM else 'at least'} {F1_MEDIUM:g}")
    pr_auc = binary.get("pr_auc") or {}
    low, top = finite(pr_auc.get("ci_low")), finite(pr_auc.get("ci_high"))
    if low is None or top is None:
        found["Medium"].append("the PR-AUC has no confidence interval")
    elif top - low > PR_AUC_CI_WIDTH_MEDIUM:
        found["Medium"].append(f"the PR-AUC confidence interval [{_f(low)}, {_f(top)}] is "
                               f"{_f(top - low)} wide, more than {PR_AUC_CI_WIDTH_MEDIUM:g}")
    else:
        found["Low"].append(f"the PR-AUC confidence interval width {_f(top - low)} is within "
                            f"{PR_AUC_CI_WIDTH_MEDIUM:g}")
    found["Medium" if is_synthetic(inputs) else "Low"].append(
        "the data are synthetic, not real LAPD records" if is_synthetic(inputs)
        else "the data are real LAPD records, not synthetic")
    rating = next(tier for tier in ("High", "Unknown", "Medium", "Low") if found[tier]
                  or tier == "Low")
    reasons = found["Low"] if rating == "Low" else [
        r for tier in ("High", "Unknown", "Medium") for r in found[tier]]
    explanation = clip(f"{rating}: {'; '.join(reasons)}. {RISK_RULE}", 2048)
    logger.info("model card risk rating %s (%d conditions)", rating, len(reasons))
    return RiskAssessment(rating, tuple(reasons), explanation)


def caveats(inputs: CardInputs) -> list[str]:
    """Caveats and recommendations, one sentence group per item, with the run's numbers."""
    items = [
        "Reported crime is not all crime: under-reporting varies by place, crime type and "
        "community, so forecasts show where crime is reported and recorded, not where it "
        "happens.",
    ]
    excluded = "; ".join(f"{name} ({count:,})" for name, count in
                         sorted(inputs.excluded_crime_types.items(), key=lambda kv: -kv[1]))
    if inputs.enforcement_exclusion_enabled:
        items.append(
            "Feedback loop: if patrols follow the forecasts, more patrols discover more "
            "crime, which raises the next forecasts for the same places. Crime types "
            "discovered mostly by police activity are excluded to damp this: "
            + (excluded or "none of them occurred in the data") + ".")
    else:
        items.append(
            "Feedback loop NOT mitigated: the exclusion of enforcement-driven crime types was "
            "turned off for this run, so forecasts partly follow past police activity.")
    spread = f1_spread(inputs.evaluation)
    if finite(spread.get("gap")) is not None:
        items.append(
            f"Performance differs by area: F1 is {_f(finite(spread.get('max')) or 0.0)} in "
            f"{spread.get('best_region')} (best) and {_f(finite(spread.get('min')) or 0.0)} "
            f"in {spread.get('worst_region')} (worst), a gap of {_f(finite(spread['gap']) or 0)}.")
    estimated = finite(inputs.provenance.get("estimated_time_share"))
    if estimated:
        period = inputs.training.get("time_bin", "short")
        items.append(
            f"Estimated times: {estimated:.0%} of the crimes have an estimated time of day "
            f"(entered on the hour), so forecasts for {period} periods are less certain than "
            "their numbers suggest; 8-hour shifts and days are less affected.")
    if is_synthetic(inputs):
        items.append("SYNTHETIC DATA: these results come from generated data ("
                     + (", ".join(sources(inputs)) or "synthetic generator")
                     + "), not real LAPD records, and say nothing about real-world accuracy.")
    items.append("Recommendations: review forecasts with local knowledge and community "
                 "input; monitor per-area performance and patrol levels; retrain and re-issue "
                 "this card when data or policing practice changes.")
    return items

