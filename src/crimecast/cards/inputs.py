"""Model card inputs and the small helpers the card, the risk rule and the page share."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crimecast.cards.svg import finite

logger = logging.getLogger(__name__)

LOWER_IS_BETTER = frozenset({"brier", "log_loss"})

# What a card says of its version: it is written before the registry assigns one (the
# serving bundle fills the version in: crimecast.cards.html.with_version).
UNREGISTERED = "not registered when this card was written"


@dataclass(frozen=True)
class CardInputs:
    """Everything the card is built from; ``evaluation`` is the parsed ``evaluation.json``."""

    evaluation: dict[str, Any]
    model_name: str
    model_type: str
    model_version: str | None
    run_id: str
    created_at: str
    hyper_parameters: dict[str, Any]
    use_smote: bool
    feature_names: list[str]
    training: dict[str, Any]
    gate: dict[str, Any]
    excluded_crime_types: dict[str, int]
    enforcement_exclusion_enabled: bool
    provenance: dict[str, Any]
    feature_importance: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    model_artifacts: list[str] = field(default_factory=list)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in an ellipsis) to fit a schema limit."""
    if len(text) <= limit:
        return text
    logger.warning("model card text cut from %d to %d characters", len(text), limit)
    return text[: limit - 1] + "…"


def _f(value: float) -> str:
    """A number for prose: three decimals."""
    return f"{value:.3f}"


def show(value: Any) -> str:
    """Any value for prose: finite numbers to four significant digits, None as n/a."""
    number = finite(value)
    if value is None:
        return "n/a"
    if number is None:
        return str(value)
    if number == int(number) and abs(number) < 1e15:  # counts: 11,740, never 1.174e+04
        return f"{int(number):,}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def _as_list(value: Any) -> list[str]:
    """A scalar, list or missing value as a list of strings."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def is_synthetic(inputs: CardInputs) -> bool:
    """Whether the provenance or the evaluation says the data are synthetic."""
    data = inputs.evaluation.get("data") or {}
    return bool(inputs.provenance.get("synthetic")) or bool(data.get("synthetic"))


def primary_metric(inputs: CardInputs) -> str:
    """The primary metric: the gate's, else the evaluation's, else ``pr_auc``."""
    data = inputs.evaluation.get("data") or {}
    return str(inputs.gate.get("primary_metric") or data.get("primary_metric") or "pr_auc")


def metric_value(family: Mapping[str, Any] | None, name: str) -> Any:
    """``family[name]["value"]`` (or a bare number), None when absent."""
    metric = (family or {}).get(name)
    return metric.get("value") if isinstance(metric, Mapping) else metric


def beats(model: float, baseline: float, metric: str) -> bool:
    """Whether ``model`` is strictly better than ``baseline`` on ``metric``."""
    return model < baseline if metric in LOWER_IS_BETTER else model > baseline


def best_baseline(evaluation: Mapping[str, Any], metric: str) -> tuple[str | None, float | None]:
    """The baseline with the best value of ``metric`` and that value (None, None if none)."""
    best: tuple[str | None, float | None] = (None, None)
    for name, result in (evaluation.get("baselines") or {}).items():
        value = finite(metric_value((result or {}).get("binary_classification_metrics"), metric))
        if value is not None and (best[1] is None or beats(value, best[1], metric)):
            best = (name, value)
    return best


def f1_spread(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """``per_area.disparity.f1`` (max, min, gap, best_region, worst_region), or {}."""
    return dict(((evaluation.get("per_area") or {}).get("disparity") or {}).get("f1") or {})


def sources(inputs: CardInputs) -> list[str]:
    """The data sources named in the provenance (``sources`` or ``data_sources``)."""
    return _as_list(inputs.provenance.get("sources", inputs.provenance.get("data_sources")))

