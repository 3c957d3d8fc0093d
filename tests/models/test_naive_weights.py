"""Naive forecasters calibrate on a training design with its Horvitz-Thompson weights."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crimecast.features.design import WEIGHT
from crimecast.models.naive import ColumnForecaster


def test_a_weighted_design_calibrates_like_the_rows_it_stands_for() -> None:
    rng = np.random.default_rng(7)
    counts = rng.poisson(0.3, 4000).astype(np.float64)
    labels = (rng.random(4000) < 0.02 + 0.2 * (counts > 0)).astype(np.int8)
    full = pl.DataFrame({"prior_counts_52w": counts})
    # Every positive row kept, one negative row in four kept with weight 4.
    keep = (labels == 1) | (np.arange(4000) % 4 == 0)
    weight = np.where(labels == 1, 1.0, 4.0)[keep]
    design = full.filter(pl.Series(keep)).with_columns(pl.Series(WEIGHT, weight))
    # The same rows replicated by their weights: what the weights say they stand for.
    replicated = design.select(pl.all().repeat_by(pl.col(WEIGHT).cast(pl.UInt32))
                               .explode()).drop(WEIGHT)
    y_design, y_replicated = labels[keep], np.repeat(labels[keep], weight.astype(int))
    weighted = ColumnForecaster("prior_counts_52w").fit(design, y_design)
    expanded = ColumnForecaster("prior_counts_52w").fit(replicated, y_replicated)
    unweighted = ColumnForecaster("prior_counts_52w").fit(design.drop(WEIGHT), y_design)
    assert (weighted.coef_, weighted.intercept_) == pytest.approx(
        (expanded.coef_, expanded.intercept_), rel=1e-4, abs=1e-4)
    assert unweighted.intercept_ > weighted.intercept_ + 0.5  # dropping weights inflates
    assert weighted.predict_proba(full).mean() == pytest.approx(labels.mean(), abs=0.01)
