"""The panel in time blocks equals the dense panel, on every executor (issue #12)."""

from __future__ import annotations

import datetime as dt
import json
import os

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimecast.config import FeatureConfig
from crimecast.errors import ConfigError
from crimecast.executor import DaskExecutor, LocalExecutor
from crimecast.features.asof import PanelGrid
from crimecast.features.blocks import BYTES_PER_CELL, plan_blocks
from crimecast.features.build import build_features
from tests.features.test_leakage import (
    CONFIGS,
    SPAN_HOURS,
    START,
    UNITS,
    event_rows,
    make_events,
)

END = START + dt.timedelta(hours=SPAN_HOURS)


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=event_rows, block_bins=st.integers(4, 60))
def test_blocked_panel_equals_the_dense_panel(name: str, rows: list, block_bins: int) -> None:
    config = CONFIGS[name]
    events = make_events(rows)
    dense = build_features(events, UNITS, config, start=START, end=END)
    blocked = build_features(events, UNITS, config, start=START, end=END, block_bins=block_bins)
    assert blocked.meta["panel"]["blocks"] > 1 or dense.frame.select("_b").n_unique() <= \
        block_bins
    # Features, labels, keys: identical; rows come block after block.
    assert blocked.frame.sort("_u", "_b").equals(dense.frame)


def test_blocks_follow_the_memory_budget() -> None:
    panel = PanelGrid(n_units=1000, first_bin=10, n_bins=500)
    one = plan_blocks(panel, warmup=50, memory_mb=1000)
    assert [(b.lo, b.hi, b.grid_first) for b in one] == [(10, 509, 10)]
    budget_mb = 1000 * 150 * BYTES_PER_CELL / 1024 / 1024  # 150 bins with warm-up
    several = plan_blocks(panel, warmup=50, memory_mb=budget_mb)
    assert [(b.lo, b.hi, b.grid_first) for b in several][:2] == [(10, 109, 10), (110, 209, 60)]
    assert several[-1].hi == 509 and sum(b.hi - b.lo + 1 for b in several) == 500
    halves = plan_blocks(panel, warmup=50, memory_mb=budget_mb, workers=2)
    assert len(halves) > len(several)  # two blocks in memory at once


def test_a_single_bin_that_does_not_fit_is_the_one_refusal() -> None:
    panel = PanelGrid(n_units=100_000, first_bin=0, n_bins=10)
    with pytest.raises(ConfigError) as caught:
        plan_blocks(panel, warmup=99, memory_mb=100)
    assert str(caught.value) == (
        "one time bin of 100,000 units needs about 3,815 MB with its 99-bin warm-up, more than "
        "the block memory budget of 100 MB. Pass a larger --cell-size, or raise "
        "features.block_memory_mb in config/feature_config.yaml.")


@pytest.fixture(scope="module")
def month_events() -> pl.DataFrame:
    rows = [(h * 0.9 % SPAN_HOURS, (h % 7) / 2 - 1.5, (h % 5) / 2 - 1, h % 3, "property")
            for h in range(300)]
    return make_events(rows)


def test_a_process_pool_and_a_dask_cluster_build_the_same_panel(
        month_events: pl.DataFrame) -> None:
    config = FeatureConfig(time_bin="8h", weather="none", label="topk")
    serial = build_features(month_events, UNITS, config, start=START, end=END, block_bins=5)
    pool = build_features(month_events, UNITS, config, start=START, end=END, block_bins=5,
                          executor=LocalExecutor(2))
    assert pool.frame.equals(serial.frame)
    environment = dict(os.environ)
    dask = DaskExecutor(workers=2)  # a real two-worker LocalCluster
    try:
        assert dask.workers == 2
        # Dask sets OMP_NUM_THREADS=1 & co. for its workers; this process keeps its own.
        assert dict(os.environ) == environment
        on_dask = build_features(month_events, UNITS, config, start=START, end=END,
                                 block_bins=5, executor=dask)
    finally:
        dask.close()
    assert on_dask.frame.equals(serial.frame)


def test_backtest_origins_give_identical_predictions_on_every_executor(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Eight origins of a daily backtest: serial, a 2-process pool and a 2-worker Dask
    LocalCluster give the same predictions and report."""
    from crimecast.config import ModelsConfig, PipelineConfig
    from crimecast.features.unit_table import unit_table
    from crimecast.pipeline.backtest import run_backtest

    rows = [((h * 7.3) % (24 * 60), (h % 9) / 2.5 - 1.8, (h % 7) / 2 - 1.5, h % 2,
             ("property", "violent", "other")[h % 3]) for h in range(1500)]
    start = START
    events = make_events(rows)
    config = FeatureConfig(time_bin="1d", weather="none", label="topk")
    built = build_features(events, UNITS, config, start=start,
                           end=start + dt.timedelta(days=59))
    pipeline = PipelineConfig(model_type="lightgbm")
    origins = (start + dt.timedelta(days=50), start + dt.timedelta(days=57))

    def backtest(executor: object) -> object:
        return run_backtest(built.frame, events, UNITS, unit_table(UNITS), origins, 1, pipeline,
                            config, ModelsConfig(), n_resamples=50,
                            executor=executor)  # type: ignore[arg-type]

    serial = backtest(None)
    pool = backtest(LocalExecutor(2))
    dask = DaskExecutor(workers=2)
    try:
        on_dask = backtest(dask)
    finally:
        dask.close()
    assert len(serial.report["origins"]) == 8  # type: ignore[attr-defined]
    assert pool.predictions.equals(on_dask.predictions)  # type: ignore[attr-defined]
    # NaN intervals (bins without events) compare equal only as text.
    assert json.dumps(pool.report, sort_keys=True) == json.dumps(  # type: ignore[attr-defined]
        on_dask.report, sort_keys=True)  # type: ignore[attr-defined]
    # In this process LightGBM may use every core; the scores agree to rounding.
    assert serial.predictions.select("origin", "unit_id", "bin_start", "model").equals(  # type: ignore[attr-defined]
        pool.predictions.select("origin", "unit_id", "bin_start", "model"))  # type: ignore[attr-defined]


def test_the_features_job_streams_blocks_to_parquet_parts(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from crimecast.config import CleaningConfig
    from crimecast.data.output import write_incidents
    from crimecast.features.job import run_features, stream_features
    from crimecast.synthetic.generate import generate_incidents

    folder = tmp_path_factory.mktemp("stream")
    data = folder / "lapd.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 3, 31), seed=11), data)
    config = FeatureConfig(time_bin="8h", weather="none", block_memory_mb=1.5)
    meta = stream_features([str(data)], "lapd", CleaningConfig(), config, folder / "out")
    parts = sorted((folder / "out" / "features.parquet").glob("part-*.parquet"))
    assert meta["panel"]["blocks"] == len(parts) > 1
    streamed = pl.scan_parquet(folder / "out" / "features.parquet" / "*.parquet").collect()
    whole = run_features([str(data)], "lapd", CleaningConfig(), config).features
    expected = whole.frame.drop("_u", "_b")
    assert streamed.sort("unit_id", "bin_start").equals(expected.sort("unit_id", "bin_start"))
    assert meta["panel"]["rows"] == whole.meta["panel"]["rows"]
    assert meta["label"]["positive_rate"] == pytest.approx(whole.meta["label"]["positive_rate"])
