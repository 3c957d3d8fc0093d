"""The gate (the original design's ConditionStep), with its reasons recorded.

A model is registered only if its F1 reaches ``f1_threshold`` **and** it beats
the best baseline on the primary metric: PR-AUC for ``zscore`` labels, PAI@1%
for ``topk`` labels. A failed gate is a normal outcome, not an error.
"""

from __future__ import annotations

from typing import Any

PRIMARY_METRIC = {"zscore": ("binary_classification_metrics", "pr_auc"),
                  "topk": ("hotspot_metrics", "pai@1%")}


def _value(block: dict[str, Any], family: str, metric: str) -> float | None:
    entry = block.get(family, {}).get(metric)
    value = entry.get("value") if isinstance(entry, dict) else None
    return None if value is None else float(value)


def decide_gate(evaluation: dict[str, Any], f1_threshold: float) -> dict[str, Any]:
    """Return ``{"passed", "reasons", ...}`` for an ``evaluation.json`` payload."""
    label = evaluation.get("data", {}).get("label", "zscore")
    family, metric = PRIMARY_METRIC.get(label, PRIMARY_METRIC["zscore"])
    f1 = _value(evaluation, "binary_classification_metrics", "f1")
    model_value = _value(evaluation, family, metric)
    baselines = {
        name: _value(block, family, metric)
        for name, block in evaluation.get("baselines", {}).items()
    }
    scored = {k: v for k, v in baselines.items() if v is not None}
    best = max(scored, key=lambda k: scored[k]) if scored else None
    best_value = scored.get(best) if best else None
    reasons = []
    f1_ok = f1 is not None and f1 >= f1_threshold
    reasons.append(
        f"F1 {f1:.4f} {'>=' if f1_ok else '<'} threshold {f1_threshold}" if f1 is not None
        else "F1 is undefined on the test set")
    beats = model_value is not None and (best_value is None or model_value > best_value)
    if best is None:
        reasons.append(f"no baseline has a {metric}; the baseline comparison is vacuous")
    elif model_value is None:
        reasons.append(f"the model's {metric} is undefined")
    else:
        reasons.append(
            f"{metric} {model_value:.4f} {'>' if beats else '<='} best baseline {best} "
            f"{best_value:.4f}")
    return {
        "passed": bool(f1_ok and beats),
        "f1": f1,
        "f1_threshold": f1_threshold,
        "primary_metric": metric,
        "model_value": model_value,
        "best_baseline": best,
        "baseline_value": best_value,
        "baselines": baselines,
        "reasons": reasons,
    }
