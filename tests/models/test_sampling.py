"""Training on every row with an event plus a weighted sample of the empty rows (issue #12)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from crimecast.config import PipelineConfig
from crimecast.models.sampling import WEIGHT, sample_training_rows
from crimecast.models.train import fit_learned


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """A sparse panel: 200 units x 500 bins, ~3% of rows with events, one informative
    feature (the unit's long-run rate) and a noise feature."""
    rng = np.random.default_rng(7)
    units, bins = 200, 500
    rate = rng.gamma(0.3, 0.1, size=units)
    unit = np.repeat(np.arange(units), bins)
    counts = rng.poisson(np.repeat(rate, bins))
    return pl.DataFrame({
        "unit_id": unit.astype(str), "bin_start": np.tile(np.arange(bins), units),
        "prior_counts_52w": np.repeat(rate * 52, bins).astype(np.float32) +
        rng.normal(0, 0.05, units * bins).astype(np.float32),
        "hour_sin": rng.normal(size=units * bins).astype(np.float32),
        "target_count": counts.astype(np.int32),
        "target_hotspot": (counts >= 1).astype(np.int8),
    }).sort("bin_start", "unit_id")


def test_small_panels_are_not_sampled(panel: pl.DataFrame) -> None:
    out = sample_training_rows(panel, panel.height, seed=0)
    assert out.drop(WEIGHT).equals(panel) and (out[WEIGHT] == 1.0).all()


def test_weighted_sample_represents_the_full_panel(panel: pl.DataFrame) -> None:
    sample = sample_training_rows(panel, 20_000, seed=3)
    w = sample[WEIGHT].to_numpy()
    events = panel.filter(pl.col("target_count") > 0)
    # Every row with an event is kept, with weight 1; the rest is a sample of empty rows.
    assert sample.filter(pl.col("target_count") > 0).drop(WEIGHT).equals(events)
    assert sample.height == 20_000
    assert set(np.round(w[sample["target_count"].to_numpy() == 0], 9)) == {
        round((panel.height - events.height) / (20_000 - events.height), 9)}
    # Exact: the number of rows, events and positive labels (zero on empty rows).
    assert w.sum() == pytest.approx(panel.height, rel=1e-12)
    for column in ("target_count", "target_hotspot"):
        assert (w * sample[column].to_numpy()).sum() == pytest.approx(
            panel[column].sum(), rel=1e-12)
    # Unbiased, within sampling error: the weighted means of the features.
    for column in ("prior_counts_52w", "hour_sin"):
        full = panel[column].to_numpy().astype(np.float64)
        estimate = np.average(sample[column].to_numpy(), weights=w)
        standard_error = full.std() * np.sqrt(1 / 20_000)
        assert abs(estimate - full.mean()) < 4 * standard_error
    assert sample["bin_start"].is_sorted()  # still ordered by bin


def test_a_model_trained_on_the_sample_predicts_the_full_panel_rate(
        panel: pl.DataFrame) -> None:
    pipeline = PipelineConfig(model_type="lightgbm", max_train_rows=20_000)
    features = ["prior_counts_52w", "hour_sin"]
    weighted = fit_learned(panel, features, pipeline, "poisson", {}, 0)
    mean_count = panel["target_count"].mean()
    assert weighted.score(panel).mean() == pytest.approx(mean_count, rel=0.1)
    # Without the weights the empty rows are under-represented and the rate inflates.
    unweighted = sample_training_rows(panel, 20_000, seed=0).with_columns(
        pl.lit(1.0).alias(WEIGHT))
    naive = fit_learned(unweighted, features, pipeline.model_copy(
        update={"max_train_rows": 10**9}), "poisson", {}, 0)
    assert naive.score(panel).mean() > 2 * mean_count
