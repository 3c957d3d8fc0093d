"""The gate (the original design's ConditionStep), with its reasons recorded.

The learned model is registered only if it **beats the best naive forecaster on
the validation fold** by the primary metric (PAI@1% for top-k and count labels,
PR-AUC for z-score, or ``--gate-metric``); with ``--gate-metric f1`` it must
also reach ``f1_threshold`` on the test period, as in the original design. The
best naive forecaster is the one that wins on validation, never on test. A
failed gate is a normal outcome, not an error; with ``--register-best`` the
champion (the best validated forecaster, naive or not) is registered instead.
"""

from __future__ import annotations

from typing import Any

from crimecast.evaluation.selection import metric_family


def _value(block: dict[str, Any], family: str, metric: str) -> float | None:
    entry = block.get(family, {}).get(metric)
    value = entry.get("value") if isinstance(entry, dict) else None
    return None if value is None else float(value)


def decide_gate(evaluation: dict[str, Any], f1_threshold: float) -> dict[str, Any]:
    """Return ``{"passed", "reasons", ...}`` for an ``evaluation.json`` payload."""
    ranking = evaluation["forecasters"]
    metric = ranking["metric"]
    learned, naive = ranking["learned"], ranking["best_naive"]
    validation = ranking["validation"]
    model_value, naive_value = validation.get(learned), validation.get(naive)
    reasons = []
    beats = model_value is not None and (naive_value is None or model_value > naive_value)
    if naive is None or naive_value is None:
        reasons.append(f"no naive forecaster has a validation {metric}; the comparison is "
                       "vacuous")
    elif model_value is None:
        reasons.append(f"the learned model's validation {metric} is undefined")
    else:
        reasons.append(
            f"validation {metric}: {learned} {model_value:.4f} "
            f"{'>' if beats else '<='} best naive {naive} {naive_value:.4f}")
    f1 = _value(evaluation, "binary_classification_metrics", "f1")
    f1_ok = True
    if metric == "f1":
        f1_ok = f1 is not None and f1 >= f1_threshold
        reasons.append(f"F1 {f1:.4f} {'>=' if f1_ok else '<'} threshold {f1_threshold}"
                       if f1 is not None else "F1 is undefined on the test set")
    family = metric_family(metric)
    return {
        "passed": bool(beats and f1_ok),
        "f1": f1,
        "f1_threshold": f1_threshold,
        "primary_metric": metric,
        "model": learned,
        "model_value": model_value,
        "best_baseline": naive,
        "baseline_value": naive_value,
        "baselines": {k: v for k, v in validation.items() if k != learned},
        "test": {"model_value": _value(evaluation, family, metric),
                 "baseline_value": _value(evaluation.get("baselines", {}).get(naive) or {},
                                          family, metric)},
        "champion": ranking["champion"],
        "champion_line": ranking["champion_line"],
        "reasons": reasons,
    }
