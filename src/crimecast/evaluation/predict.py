"""Turn a test panel and fitted models into the long predictions frame evaluation reads."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from crimecast.models.naive import Forecaster

PREDICTION_COLUMNS = ("model", "unit_id", "region", "bin_start", "y_true", "prob", "score",
                      "actual_count")


def predictions_frame(
    rows: pl.DataFrame, models: Mapping[str, Forecaster]
) -> pl.DataFrame:
    """One row per (model, unit, bin): label, probability, ranking score and actual count.

    Every forecaster ranks by its own score: a probability, an expected count, a
    rank score, a prior count.
    """
    keys = rows.select(
        "unit_id", "region", "bin_start",
        pl.col("target_hotspot").cast(pl.Int8).alias("y_true"),
        pl.col("target_count").cast(pl.Int64).alias("actual_count"),
    )
    parts = []
    for name, model in models.items():
        prob = model.predict_proba(rows)
        score = model.score(rows)
        parts.append(keys.with_columns(
            model=pl.lit(name), prob=pl.Series(prob, dtype=pl.Float64),
            score=pl.Series(score, dtype=pl.Float64)))
    return pl.concat(parts).select(PREDICTION_COLUMNS)
