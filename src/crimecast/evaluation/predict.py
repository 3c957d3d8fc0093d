"""Turn a test panel and fitted models into the long predictions frame evaluation reads."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from crimecast.models.naive import Forecaster

PREDICTION_COLUMNS = ("model", "unit_id", "region", "bin_start", "y_true", "prob", "score",
                      "actual_count")


def prediction_keys(rows: pl.DataFrame) -> pl.DataFrame:
    """The columns of :func:`predictions_frame` every forecaster of ``rows`` shares."""
    return rows.select(
        "unit_id", "region", "bin_start",
        pl.col("target_hotspot").cast(pl.Int8).alias("y_true"),
        pl.col("target_count").cast(pl.Int64).alias("actual_count"),
    )


def scored_keys(rows: pl.DataFrame, keys: pl.DataFrame, model: Forecaster) -> pl.DataFrame:
    """``keys`` (:func:`prediction_keys` of ``rows``) with ``model``'s ``prob`` and
    ``score`` of each row: a part of :func:`predictions_frame` without its model column."""
    prob = model.predict_proba(rows)
    score = model.score(rows)
    return keys.with_columns(prob=pl.Series(prob, dtype=pl.Float64),
                             score=pl.Series(score, dtype=pl.Float64))


def named_part(scored: pl.DataFrame, name: str) -> pl.DataFrame:
    """:func:`scored_keys`' rows as forecaster ``name``'s rows of :func:`predictions_frame`."""
    return scored.with_columns(model=pl.lit(name)).select(PREDICTION_COLUMNS)


def prediction_part(rows: pl.DataFrame, keys: pl.DataFrame, name: str,
                    model: Forecaster) -> pl.DataFrame:
    """Forecaster ``name``'s rows of :func:`predictions_frame`; ``keys`` is
    :func:`prediction_keys` of ``rows``."""
    return named_part(scored_keys(rows, keys, model), name)


def prediction_parts(
    rows: pl.DataFrame, models: Mapping[str, Forecaster]
) -> dict[str, pl.DataFrame]:
    """:func:`predictions_frame`'s rows of each model, ``{name: frame}`` (every part holds
    the same units and bins in the same order)."""
    keys = prediction_keys(rows)
    return {name: prediction_part(rows, keys, name, model) for name, model in models.items()}


def predictions_frame(
    rows: pl.DataFrame, models: Mapping[str, Forecaster]
) -> pl.DataFrame:
    """One row per (model, unit, bin): label, probability, ranking score and actual count.

    Every forecaster ranks by its own score: a probability, an expected count, a
    rank score, a prior count.
    """
    return pl.concat(list(prediction_parts(rows, models).values()))
