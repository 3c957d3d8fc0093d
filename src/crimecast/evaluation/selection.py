"""Ranking forecasters by one metric, and choosing the champion on validation.

Every forecaster (learned, ensemble, SEPP, naive) is scored on the same rows by
the *primary metric*: PAI at 1% of the area for top-k and count labels (the
ranking PAI measures is what the field reports), PR-AUC for the z-score label,
or what ``--gate-metric`` says. The champion is the forecaster with the best
value on the **validation** fold; the test period never picks anything. Ties
go to the simpler forecaster (naive, then SEPP, then learned, then ensemble).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from crimecast.evaluation.hotspot import hotspot_metrics
from crimecast.evaluation.metrics import classification_metric

CLASSIFICATION = frozenset({"pr_auc", "roc_auc", "f1", "precision", "recall", "accuracy"})
SIMPLICITY = {"naive": 0, "sepp": 1, "learned": 2, "ensemble": 3}


def primary_metric(label: str, configured: str = "auto") -> str:
    """The metric that ranks forecasters: configured, else PAI@1% or PR-AUC by label."""
    if configured != "auto":
        return configured
    return "pr_auc" if label == "zscore" else "pai@1%"


def metric_family(metric: str) -> str:
    """The ``evaluation.json`` block that holds ``metric``."""
    return "binary_classification_metrics" if metric in CLASSIFICATION else "hotspot_metrics"


def score_rows(rows: pl.DataFrame, score: np.ndarray, prob: np.ndarray) -> pl.DataFrame:
    """The frame the metrics read: keys, label, count, and one forecaster's score."""
    return rows.select(
        "unit_id", "bin_start",
        pl.col("target_hotspot").cast(pl.Int8).alias("y_true"),
        pl.col("target_count").cast(pl.Int64).alias("actual_count"),
    ).with_columns(score=pl.Series(score, dtype=pl.Float64),
                   prob=pl.Series(prob, dtype=pl.Float64))


def metric_value(scored: pl.DataFrame, unit_areas: pl.DataFrame, metric: str,
                 threshold: float = 0.5) -> float | None:
    """``metric`` of one forecaster's scored rows (see :func:`score_rows`)."""
    if metric_family(metric) == "hotspot_metrics":
        entry = hotspot_metrics(scored, unit_areas).get(metric)
        value = entry.get("value") if isinstance(entry, dict) else None
    else:
        labelled = scored.filter(pl.col("y_true").is_not_null())
        if labelled.height == 0:
            return None
        value = classification_metric(labelled["y_true"].to_numpy(),
                                      labelled["prob"].to_numpy(), threshold, metric)
    return None if value is None or not math.isfinite(value) else float(value)


def rank(values: Mapping[str, float | None], kinds: Mapping[str, str]) -> list[str]:
    """Forecaster names, best first (undefined values last; ties: the simpler first)."""
    def key(name: str) -> tuple[float, int, str]:
        value = values.get(name)
        return (-(value if value is not None else -math.inf),
                SIMPLICITY.get(kinds.get(name, "learned"), 9), name)
    return sorted(values, key=key)


def ranking_table(values: Mapping[str, float | None], kinds: Mapping[str, str],
                  metric: str) -> list[dict[str, Any]]:
    """``[{rank, forecaster, kind, metric value}]`` best first."""
    return [{"rank": i + 1, "forecaster": name, "kind": kinds.get(name, "learned"),
             "metric": metric, "value": values.get(name)}
            for i, name in enumerate(rank(values, kinds))]


def best_of(values: Mapping[str, float | None], kinds: Mapping[str, str],
            kind: str) -> str | None:
    """The best forecaster of one kind (e.g. the best naive), or None."""
    names = [n for n in rank(values, kinds) if kinds.get(n) == kind
             and values.get(n) is not None]
    return names[0] if names else None


def champion_line(champion: str, kinds: Mapping[str, str], learned: str,
                  values: Mapping[str, float | None], metric: str) -> str:
    """One plain sentence: which forecaster is champion, and why."""
    value = values.get(champion)
    shown = "n/a" if value is None else f"{value:.4f}"
    kind = kinds.get(champion)
    if kind == "naive":
        return (f"A naive forecaster wins: {champion} has the best validation {metric} "
                f"({shown}); the learned model {learned} does not beat it.")
    if kind == "sepp":
        return (f"The self-exciting point process wins: sepp has the best validation {metric} "
                f"({shown}), ahead of the learned model {learned}.")
    who = (f"ensemble of {learned} and the best naive forecaster" if kind == "ensemble"
           else f"learned model {learned}")
    return f"The {who} wins: the best validation {metric} ({shown})."
