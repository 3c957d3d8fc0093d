"""Fitting the learned forecaster: its objective, imbalance handling and training rows.

:func:`fit_learned` is the one place a learned model is fitted, for a pipeline
run, its validation fold and every backtest origin alike
(:mod:`crimecast.pipeline.training` calls it), so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig, ModelsConfig, PipelineConfig
from crimecast.errors import ConfigError
from crimecast.models.estimators import HotspotModel
from crimecast.models.sampling import WEIGHT, sample_training_rows

LABEL = "target_hotspot"
COUNT = "target_count"


def labelled_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows with a hotspot label, sorted by time then unit."""
    if LABEL not in frame.columns:
        raise ConfigError(
            "the pipeline trains hotspot forecasters but the panel has no hotspot label "
            "(label 'count'). Pass --label zscore or --label topk."
        )
    return frame.filter(pl.col(LABEL).is_not_null()).sort("bin_start", "unit_id")


def bin_position(frame: pl.DataFrame, bins: list[Any]) -> np.ndarray:
    """Position of each row's bin in the ordered list of bins."""
    lookup = pl.DataFrame({"bin_start": bins, "_pos": np.arange(len(bins))},
                          schema_overrides={"bin_start": frame.schema["bin_start"]})
    return frame.join(lookup, on="bin_start", how="left", maintain_order="left")["_pos"].to_numpy()


def resolve_objective(pipeline: PipelineConfig, features: FeatureConfig) -> str:
    """``auto``: Poisson for top-k and count labels (PAI ranks by expected count), binary
    for the z-score label and whenever SMOTE or class weights are asked for."""
    if pipeline.objective != "auto":
        return pipeline.objective
    if pipeline.use_smote or pipeline.class_weight or features.label == "zscore":
        return "binary"
    return "poisson"


def imbalance_of(pipeline: PipelineConfig) -> str:
    """``smote``, ``class_weight`` or ``none`` from the pipeline flags."""
    if pipeline.use_smote:
        return "smote"
    return "class_weight" if pipeline.class_weight else "none"


def model_params(models: ModelsConfig, model_type: str) -> dict[str, Any]:
    """The configured hyper-parameters of ``model_type`` (``models.yaml``)."""
    spec = models.models.get(model_type)
    return dict(spec.params) if spec else {}


def group_sizes(rows: pl.DataFrame) -> np.ndarray:
    """Rows per bin, in row order (rows sorted by bin): the rank objective's groups."""
    return rows.group_by("bin_start", maintain_order=True).len()["len"].to_numpy()


def fit_learned(
    rows: pl.DataFrame, features: list[str], pipeline: PipelineConfig, objective: str,
    params: dict[str, Any], random_state: int,
) -> HotspotModel:
    """Fit ``pipeline.model_type`` with ``objective`` on labelled rows sorted by bin."""
    model = HotspotModel(pipeline.model_type, features, params, imbalance_of(pipeline),
                         random_state, objective)
    given = rows
    if objective != "lambdarank":  # ranking groups need every row of a bin
        rows = sample_training_rows(rows, pipeline.max_train_rows, random_state)
    weight = rows[WEIGHT].to_numpy() if WEIGHT in rows.columns else None
    model.fit(rows, rows[LABEL].to_numpy(), counts=rows[COUNT].to_numpy(),
              groups=group_sizes(rows) if objective == "lambdarank" else None,
              sample_weight=None if weight is None or (weight == 1).all() else weight)
    if rows.height == given.height:  # nothing sampled: the same rows, in the same order
        model.remember_as(rows, given)
    else:  # nobody scores the sampled copy again: do not keep it alive
        model.forget()
    return model
