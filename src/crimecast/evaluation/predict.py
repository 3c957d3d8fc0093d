"""Turn a test panel and fitted models into the long predictions frame evaluation reads."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from crimecast.models.naive import Forecaster

PREDICTION_COLUMNS = ("model", "unit_id", "region", "bin_start", "y_true", "prob", "score",
                      "actual_count")


def prediction_parts(
    rows: pl.DataFrame, models: Mapping[str, Forecaster]
) -> dict[str, pl.DataFrame]:
    """:func:`predictions_frame`'s rows of each model, ``{name: frame}`` (every part holds
    the same units and bins in the same order)."""
    keys = rows.select(
        "unit_id", "region", "bin_start",
        pl.col("target_hotspot").cast(pl.Int8).alias("y_true"),
        pl.col("target_count").cast(pl.Int64).alias("actual_count"),
    )
    parts = {}
    for name, model in models.items():
        prob = model.predict_proba(rows)
        score = model.score(rows)
        parts[name] = keys.with_columns(
            model=pl.lit(name), prob=pl.Series(prob, dtype=pl.Float64),
            score=pl.Series(score, dtype=pl.Float64)).select(PREDICTION_COLUMNS)
    return parts


def predictions_frame(
    rows: pl.DataFrame, models: Mapping[str, Forecaster]
) -> pl.DataFrame:
    """One row per (model, unit, bin): label, probability, ranking score and actual count.

    Every forecaster ranks by its own score: a probability, an expected count, a
    rank score, a prior count.
    """
    return pl.concat(list(prediction_parts(rows, models).values()))
