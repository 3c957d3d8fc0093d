"""Step 5, CreateModelCard: the model card as JSON in the SageMaker Model Card schema.

The card's top-level sections are those of the Amazon SageMaker Model Card
content schema (``model_overview``, ``intended_uses``, ``business_details``,
``training_details``, ``evaluation_details``, ``additional_information``), with
the schema's length limits applied to free text. Every metric in
``evaluation_details[0].metric_groups`` is copied verbatim from
``evaluation.json``: no rounding, no recomputation. Two deliberate departures
from the schema: a metric whose value is ``null`` in ``evaluation.json`` stays
``null`` (the schema wants a number), and ``model_version`` is left out of
``model_overview`` when it is not a number (its raw value is always in
``custom_details``).

The risk rating is derived from performance by :func:`assess_risk`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from crimecast.cards.inputs import (
    UNREGISTERED,
    CardInputs,
    _as_list,
    clip,
    is_synthetic,
    metric_value,
    primary_metric,
    show,
    sources,
)
from crimecast.cards.risk import (
    INTENDED_USES,
    OUT_OF_SCOPE,
    OUT_OF_SCOPE_SUMMARY,
    PURPOSE,
    RISK_RULE,
    assess_risk,
    caveats,
)
from crimecast.cards.svg import clean_points, finite, thin

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "Binary classification: crime hotspot forecasting per place and time bin"
PERSON_TOKENS = frozenset({"vict", "victim", "suspect", "descent", "race", "ethnicity", "sex",
                           "gender", "age", "person", "name"})
MODEL_CREATOR = "crimecast pipeline"
MODEL_OWNER = "crimecast maintainers"


def _metric(name: str, metric: Any) -> dict[str, Any] | None:
    """One ``metric_data`` entry with the value copied verbatim; None for non-metrics."""
    if isinstance(metric, Mapping):
        if "value" not in metric:
            return None
        value, notes = metric["value"], []
        sd, low, high = (finite(metric.get(k)) for k in ("standard_deviation", "ci_low",
                                                          "ci_high"))
        if sd is not None:
            notes.append(f"sd {sd:.4g}")
        if low is not None and high is not None:
            notes.append(f"CI [{low:.4g}, {high:.4g}]")
    elif metric is None or isinstance(metric, int | float | str):
        value, notes = metric, []
    else:
        return None
    if value is None:
        notes.append("undefined on the test set (null in evaluation.json)")
    kind = ("boolean" if isinstance(value, bool) else "string" if isinstance(value, str)
            else "number")
    entry: dict[str, Any] = {"name": clip(name, 255), "type": kind, "value": value}
    if notes:
        entry["notes"] = "; ".join(notes)
    return entry


def _family(family: Mapping[str, Any] | None, prefix: str = "") -> list[dict[str, Any]]:
    """``metric_data`` entries for every metric of one family, in the family's order."""
    entries = (_metric(prefix + name, metric) for name, metric in (family or {}).items())
    return [entry for entry in entries if entry is not None]


def _curve(name: str, xs: Any, ys: Any, x_axis: str, y_axis: str) -> dict[str, Any] | None:
    """A ``linear_graph`` metric from paired lists (at most 200 points), None if empty."""
    points = thin(clean_points(list(xs or []), list(ys or [])))
    if not points:
        return None
    return {"name": name, "type": "linear_graph", "value": [[x, y] for x, y in points],
            "x_axis_name": x_axis, "y_axis_name": y_axis}


def metric_groups(inputs: CardInputs) -> list[dict[str, Any]]:
    """The evaluation's metric groups: model families, one per baseline, per area, curves."""
    evaluation = inputs.evaluation
    model = _family(evaluation.get("binary_classification_metrics"))
    if "decision_threshold" in evaluation:
        model.append({"name": "decision_threshold", "type": "number",
                      "value": evaluation["decision_threshold"],
                      "notes": "probability threshold for the threshold-dependent metrics"})
    hotspot = _family(evaluation.get("hotspot_metrics"))
    groups = [{"name": "binary_classification_metrics", "metric_data": model},
              {"name": "hotspot_metrics", "metric_data": hotspot}]
    for name, result in (evaluation.get("baselines") or {}).items():
        result = result or {}
        data = _family(result.get("binary_classification_metrics"))
        data += _family(result.get("hotspot_metrics"))
        data += _family({k: v for k, v in result.items() if k == "decision_threshold"})
        groups.append({"name": clip(f"baseline: {name}", 63), "metric_data": data})
    per_area = evaluation.get("per_area") or {}
    regional: list[dict[str, Any]] = []
    for region, info in (per_area.get("regions") or {}).items():
        info = info or {}
        prefix = f"{region} / "
        regional += _family({k: info[k] for k in ("rows", "positives") if k in info}, prefix)
        regional += _family(info.get("binary_classification_metrics"), prefix)
        regional += _family(info.get("hotspot_metrics"), prefix)
    groups.append({"name": "per_area", "metric_data": regional})
    spread = [entry for metric, stats in (per_area.get("disparity") or {}).items()
              for entry in _family(stats, f"{metric} / ")]
    groups.append({"name": "per_area_disparity", "metric_data": spread})
    curves = inputs.curves or {}
    pr, cal = curves.get("pr_curve") or {}, curves.get("calibration") or {}
    graphs = [_curve("pr_curve", pr.get("recall"), pr.get("precision"), "recall", "precision"),
              _curve("calibration", cal.get("mean_predicted"), cal.get("fraction_positive"),
                     "mean predicted probability", "observed fraction positive")]
    for name, curve in (curves.get("baseline_pr_curves") or {}).items():
        graphs.append(_curve(f"pr_curve / {name}", (curve or {}).get("recall"),
                             (curve or {}).get("precision"), "recall", "precision"))
    if any(graphs):
        groups.append({"name": "curves", "metric_data": [g for g in graphs if g]})
    return groups


def _custom(value: Any) -> str:
    """A ``custom_details`` value: strings as-is, anything else as compact JSON (≤ 1024)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return clip(text, 1024)


def _version_number(version: str | None) -> int | float | None:
    """``version`` as the number the schema wants, None when it is not one."""
    try:
        number = finite(float(version or ""))
    except ValueError:
        return None
    return int(number) if number is not None and number.is_integer() else number


def _hyper_parameters(inputs: CardInputs) -> list[dict[str, str]]:
    """Hyper-parameters as schema name/value strings, SMOTE included (≤ 100)."""
    params = {**inputs.hyper_parameters, "use_smote": inputs.use_smote}
    return [{"name": clip(str(k), 255), "value": clip(_custom(v) or "null", 255)}
            for k, v in sorted(params.items(), key=lambda kv: str(kv[0]))][:100]


def build_model_card(inputs: CardInputs) -> dict[str, Any]:
    """Build the model card content (SageMaker Model Card schema) for one training run.

    Metric values are copied verbatim from ``inputs.evaluation``; the risk
    rating and its explanation come from :func:`assess_risk`.
    """
    evaluation, training, gate = inputs.evaluation, inputs.training, inputs.gate
    data = evaluation.get("data") or {}
    binary = evaluation.get("binary_classification_metrics") or {}
    metric = primary_metric(inputs)
    risk = assess_risk(inputs)
    synthetic = is_synthetic(inputs)
    synthetic_note = " Trained and evaluated on SYNTHETIC data." if synthetic else ""
    overview: dict[str, Any] = {
        "model_name": inputs.model_name,
        "model_description": clip(
            f"{inputs.model_type} classifier scoring each place (spatial unit "
            f"{training.get('spatial_unit', 'n/a')}) and time bin "
            f"({training.get('time_bin', 'n/a')}) for the chance of being a crime hotspot "
            f"(label: {data.get('label', 'n/a')}). "
            f"Run {inputs.run_id}, created {inputs.created_at}.{synthetic_note}", 1024),
        "problem_type": PROBLEM_TYPE,
        "algorithm_type": inputs.model_type,
        "model_creator": MODEL_CREATOR,
        "model_owner": MODEL_OWNER,
        "model_artifact": [clip(a, 1024) for a in inputs.model_artifacts][:15],
        "inference_environment": {"container_image": []},
    }
    version = _version_number(inputs.model_version)
    if version is not None:
        overview["model_version"] = version
    person = [f for f in inputs.feature_names if PERSON_TOKENS & set(f.lower().split("_"))]
    ethics = (
        "Place-based forecasts still affect people: heavier patrols in forecast places raise "
        "residents' exposure to stops and use of force, mostly in neighbourhoods that are "
        "already heavily policed, and historical records carry past enforcement patterns and "
        "unequal reporting. A forecast that sends patrols somewhere can also raise recorded "
        "crime there, which the next forecast reads as more crime (Lum & Isaac 2016; Ensign "
        "et al. 2018): after deployment, run crimecast monitor, whose patrol-loop check "
        "(monitor.html#feedback) compares flagged places with similar unflagged ones. "
        + (f"WARNING: features that look person-level: {', '.join(person)}. " if person else
           "The model uses no person-level attributes (no victim or suspect age, sex or "
           "descent). ")
        + OUT_OF_SCOPE_SUMMARY)
    training_metrics = [{"name": clip(str(k), 255), "value": v} for k, v in training.items()
                        if finite(v) is not None][:50]
    threshold = show(gate.get("f1_threshold"))
    observation = (
        f"Test set: {show(data.get('rows_test'))} rows, positive rate "
        f"{show(data.get('positive_rate_test'))}. {metric} {show(metric_value(binary, metric))}"
        f", F1 {show(metric_value(binary, 'f1'))} at threshold "
        f"{show(evaluation.get('decision_threshold'))}. Best baseline "
        f"{gate.get('best_baseline')} {metric} {show(gate.get('baseline_value'))}. Promotion "
        f"gate {'passed' if gate.get('passed') else 'failed'}. Risk rating {risk.rating}."
        + synthetic_note)
    card: dict[str, Any] = {
        "model_overview": overview,
        "intended_uses": {
            "purpose_of_model": PURPOSE,
            "intended_uses": clip(f"{INTENDED_USES} {OUT_OF_SCOPE}", 2048),
            "factors_affecting_model_efficiency": clip(
                "Under-reporting and reporting delays that differ by place; the spatial unit "
                f"({training.get('spatial_unit', 'n/a')}) and time bin "
                f"({training.get('time_bin', 'n/a')}); a low base rate (test positive rate "
                f"{show(data.get('positive_rate_test'))}); changes in policing or recording "
                "practice; seasonal and event-driven shifts; differences between areas.", 2048),
            "risk_rating": risk.rating,
            "explanations_for_risk_rating": risk.explanation,
        },
        "business_details": {
            "business_problem": "Direct limited patrol attention and prevention resources to "
                                "the places and times where reported crime concentrates, "
                                "without making decisions about individuals.",
            "business_stakeholders": "Deployment planners, crime-prevention and "
                                     "community-safety programme staff, oversight bodies, "
                                     "and residents of the forecast places.",
            "line_of_business": "Public safety: place-based crime prevention",
        },
        "training_details": {
            "objective_function": {
                "function": {"function": "Maximize", "facet": "F1/PR-AUC", "condition": clip(
                    f"{metric} beats every baseline and F1 >= {threshold}", 63)},
                "notes": clip(
                    f"Selection maximises {metric} on a time-ordered split; promotion also "
                    f"needs F1 >= {threshold} at the decision threshold and {metric} better "
                    f"than every baseline. SMOTE {'on' if inputs.use_smote else 'off'}.", 1024),
            },
            "training_observations": clip(
                f"{len(inputs.feature_names)} features; SMOTE "
                f"{'on' if inputs.use_smote else 'off'}; "
                + "; ".join(f"{k}: {v}" for k, v in training.items()), 1024),
            "training_job_details": {
                "training_arn": None,
                "training_datasets": [clip(s, 1024) for s in sources(inputs)][:15],
                "training_environment": {"container_image": []},
                "training_metrics": training_metrics,
                "hyper_parameters": _hyper_parameters(inputs),
            },
        },
        "evaluation_details": [{
            "name": clip(f"test evaluation {inputs.run_id}", 63),
            "evaluation_observation": clip(observation, 2096),
            "datasets": [clip(s, 1024) for s in _as_list(data.get("sources"))][:10],
            "metadata": {str(k): _custom(v) for k, v in
                         {**data, "decision_threshold": evaluation.get("decision_threshold"),
                          "run_id": inputs.run_id}.items()},
            "metric_groups": metric_groups(inputs),
        }],
        "additional_information": {
            "ethical_considerations": clip(ethics, 2048),
            "caveats_and_recommendations": clip(" ".join(caveats(inputs)), 2048),
            "custom_details": {
                "run_id": _custom(inputs.run_id),
                "created_at": _custom(inputs.created_at),
                "model_version": _custom(inputs.model_version or UNREGISTERED),
                "synthetic": _custom(synthetic),
                "risk_rule": _custom(RISK_RULE),
                "gate": _custom(gate),
                "excluded_crime_types": _custom(inputs.excluded_crime_types),
                "enforcement_exclusion_enabled": _custom(inputs.enforcement_exclusion_enabled),
                "provenance": _custom(inputs.provenance),
            },
        },
    }
    logger.info("built model card for %s run %s: risk %s", inputs.model_name, inputs.run_id,
                risk.rating)
    return card
