"""LightGBM's own Dask estimators train the learned model on Parquet parts, tested on a
real two-worker LocalCluster (issue #12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from crimecast.errors import ConfigError
from crimecast.features.design import WEIGHT
from crimecast.models.distributed import fit_lightgbm_dask
from crimecast.models.estimators import HotspotModel
from crimecast.models.storage import load_model, save_model

FEATURES = ["prior_counts_52w", "prior_counts_4w", "kde_52w_1x"]


def _parts(folder: Path, weighted: bool) -> list[str]:
    rng = np.random.default_rng(4)
    paths = []
    for part in range(4):
        n = 3000
        long = rng.gamma(1.0, 2.0, n)
        frame = pl.DataFrame({
            "prior_counts_52w": long, "prior_counts_4w": rng.poisson(long / 12),
            "kde_52w_1x": long + rng.normal(0, 0.5, n),
        }).with_columns(pl.col(FEATURES).cast(pl.Float32))
        count = rng.poisson(long / 10)
        frame = frame.with_columns(target_count=pl.Series(count, dtype=pl.Int32),
                                   target_hotspot=pl.Series((count >= 2).astype(np.int8)))
        if weighted:
            frame = frame.with_columns(pl.Series(WEIGHT, np.where(count > 0, 1.0, 3.0)))
        path = folder / f"part-{part:05d}.parquet"
        frame.write_parquet(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    # crimecast's own Dask executor: a two-worker LocalCluster that leaves this process's
    # environment as it found it (Dask sets OMP_NUM_THREADS=1 for its workers).
    from crimecast.executor import DaskExecutor

    executor = DaskExecutor(workers=2)
    try:
        yield executor.client
    finally:
        executor.close()


@pytest.mark.parametrize("objective", ["poisson", "binary"])
def test_lightgbm_trains_on_dask_workers_and_ranks_like_one_machine(
        tmp_path: Path, client: object, objective: str) -> None:
    parts = _parts(tmp_path, weighted=objective == "poisson")
    params = {"n_estimators": 60, "min_child_samples": 50}
    model = fit_lightgbm_dask(parts, FEATURES, objective, params, 7, client)
    rows = pl.concat([pl.read_parquet(p) for p in parts])
    local = HotspotModel("lightgbm", FEATURES, params, "none", 7, objective).fit(
        rows, rows["target_hotspot"].to_numpy(), counts=rows["target_count"].to_numpy(),
        sample_weight=rows[WEIGHT].to_numpy() if WEIGHT in rows.columns else None)
    score = model.score(rows)
    assert spearmanr(score, local.score(rows)).statistic > 0.95
    prob = model.predict_proba(rows)
    assert ((prob >= 0) & (prob <= 1)).all()
    # It is an ordinary model: saved, loaded and scored like any other.
    save_model(model, tmp_path / "model")
    again = load_model(tmp_path / "model")
    assert np.allclose(again.score(rows), score)


def test_an_unsupported_objective_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        fit_lightgbm_dask([], FEATURES, "lambdarank", {}, 7, None)
    assert str(caught.value) == ("distributed training supports objective poisson or binary; "
                                 "got 'lambdarank'. Pass --objective poisson.")
