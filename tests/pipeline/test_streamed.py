"""``crimecast run`` on a streamed panel (``features.rows: sampled``): the training design,
a validation sample of whole bins, and every unit of every test bin scored in blocks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crimecast.config import Settings
from crimecast.data.output import write_incidents
from crimecast.pipeline.run import RunSummary, run_pipeline
from crimecast.pipeline.streamed import BinRows, kept_rows
from crimecast.synthetic.generate import generate_incidents


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 12, 31), seed=3), path)
    return path


def run(data: Path, runs: Path, **features: object) -> tuple[RunSummary, Path]:
    settings = Settings().with_overrides(
        "features", **{"time_bin": "1d", "spatial_unit": "area", **features},
    ).with_overrides("pipeline", runs_dir=str(runs), f1_threshold=0.0, model_type="logistic")
    summary = run_pipeline(settings, [str(data)], schema="lapd", bootstrap_resamples=20)
    return summary, Path(summary.run_dir)


def read(run_dir: Path, path: str) -> dict:
    return json.loads((run_dir / path).read_text())


@pytest.fixture(scope="module")
def in_memory(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run(data_file, tmp_path_factory.mktemp("whole"), rows="all")[1]


def test_a_streamed_run_that_keeps_every_row_equals_the_in_memory_run(
        data_file: Path, tmp_path: Path, in_memory: Path) -> None:
    _, streamed = run(data_file, tmp_path, rows="sampled")
    meta = read(streamed, "process/features_meta.json")
    design = meta["design"]  # a small panel: the design is all of it
    assert design["sampled_empty_rows"] == design["empty_rows"]
    assert meta["streamed"]["validation_sample"]["weight"] == 1.0
    whole, got = read(in_memory, "evaluate/evaluation.json"), read(streamed,
                                                                   "evaluate/evaluation.json")
    assert got["forecasters"]["validation"] == pytest.approx(whole["forecasters"]["validation"])
    assert got["forecasters"]["champion"] == whole["forecasters"]["champion"]
    assert got["hotspot_metrics"] == whole["hotspot_metrics"]
    for metric, value in whole["binary_classification_metrics"].items():
        assert got["binary_classification_metrics"][metric]["value"] == pytest.approx(
            value["value"], abs=1e-3 if metric.endswith("auc") else 1e-6), metric
    # On test, a streamed run scores the forecasters that matter (all are on validation).
    ranking = got["forecasters"]
    assert set(got["baselines"]) == {ranking["best_naive"], ranking["champion"], "sepp",
                                     "ensemble"} - {ranking["learned"]}
    for name, block in got["baselines"].items():
        assert block["hotspot_metrics"] == whole["baselines"][name]["hotspot_metrics"], name
    assert {k: got["data"][k] for k in ("rows_test", "bins_test", "units")} == \
        {k: whole["data"][k] for k in ("rows_test", "bins_test", "units")}
    # The card's hit-rate and PAI curves, from the blocks' per-bin measures.
    curves = read(streamed, "evaluate/curves.json")["hotspot_curves"]
    assert set(curves) == {ranking["learned"], *got["baselines"]}
    for name, curve in curves.items():
        want = read(in_memory, "evaluate/curves.json")["hotspot_curves"][name]
        assert curve["share"] == want["share"]
        assert curve["pai"] == pytest.approx(want["pai"], rel=1e-9), name
    card = (streamed / "card/model_card.html").read_text()
    assert "<img" in card[card.index('id="area-curves"'):card.index('id="per-area"')]
    assert read(streamed, "card/model_card.json")  # the rest of the pipeline ran on it


def test_a_sampled_design_trains_on_weighted_rows_and_scores_every_test_row(
        data_file: Path, tmp_path: Path) -> None:
    summary, streamed = run(data_file, tmp_path, rows="sampled", design_rows=20_000,
                            validation_rows=20_000, spatial_unit="grid", cell_size=2000.0,
                            label="topk")
    meta = read(streamed, "process/features_meta.json")
    design, sample = meta["design"], meta["streamed"]["validation_sample"]
    assert design["sampled_empty_rows"] < design["empty_rows"]
    assert 1 <= sample["bins"] < sample["of"] and sample["weight"] == sample["of"] / sample["bins"]
    parts = pl.read_parquet(streamed / "process" / "features.parquet" / "*.parquet")
    assert parts.height == meta["panel"]["written_rows"] == (
        design["sampled_event_rows"] + design["sampled_empty_rows"] + sample["rows"])
    # Horvitz-Thompson: the design's weights add up to the rows they stand for.
    fit = parts.filter(pl.col("_weight") != sample["weight"])
    assert fit["_weight"].sum() == pytest.approx(design["panel_rows"])
    got = read(streamed, "evaluate/evaluation.json")
    units = meta["panel"]["units"]
    assert got["data"]["rows_test"] == units * got["data"]["bins_test"] == \
        meta["streamed"]["test"]["rows"]
    # predictions.parquet keeps each forecaster's top 1% per bin and every row with an event.
    kept = pl.read_parquet(streamed / "evaluate" / "predictions.parquet")
    ranking = got["forecasters"]
    assert set(kept["model"].unique()) == {ranking["learned"], *got["baselines"]}
    events = kept.filter(pl.col("actual_count") > 0)
    per_model = events.group_by("model").agg(pl.col("actual_count").sum())
    assert per_model["actual_count"].n_unique() == 1 and per_model["actual_count"][0] > 0
    per_bin = kept.group_by("model", "bin_start").len()["len"]
    assert per_bin.min() >= -(-units // 100)
    assert summary.steps["evaluate"]["status"] == "ran"


def test_streamed_chunks_run_in_process_on_one_machine_and_on_dask_elsewhere() -> None:
    from crimecast.executor import SERIAL, LocalExecutor, SerialExecutor, streamed_executor

    assert streamed_executor(None) is SERIAL
    assert streamed_executor(LocalExecutor(2)) is SERIAL
    other = SerialExecutor()
    assert streamed_executor(other) is other  # anything else (a Dask executor) is used as is


def test_the_test_period_is_scored_by_the_forecasters_a_reader_needs() -> None:
    from crimecast.pipeline.streamed import tested_forecasters

    kinds = {"lightgbm": "learned", "prior_counts_52w": "naive", "kde_4w_1x": "naive",
             "historical_average": "naive", "sepp": "sepp", "ensemble": "ensemble"}
    info = {"model_type": "lightgbm", "forecasters": kinds,
            "validation": {"champion": "kde_4w_1x", "best_naive": "prior_counts_52w"}}
    assert tested_forecasters(info, "lightgbm") == [
        "lightgbm", "kde_4w_1x", "prior_counts_52w", "sepp", "ensemble"]
    assert tested_forecasters(info, "historical_average")[:2] == ["lightgbm",
                                                                  "historical_average"]


def _ranked_rows(predictions: pl.DataFrame, top: int) -> pl.DataFrame:
    rank = pl.col("score").rank("ordinal", descending=True).over("model", "bin_start")
    return predictions.filter((rank <= top) | (pl.col("actual_count") > 0))


@settings(max_examples=150, deadline=None)
@given(n_units=st.integers(1, 12), n_bins=st.integers(1, 5), top=st.integers(1, 6),
       levels=st.sampled_from([2, 3, 50]), special=st.sampled_from(["none", "nan", "null",
                                                                      "signed_zero"]),
       seed=st.integers(0, 2**16), shuffle=st.booleans())
def test_kept_rows_are_those_of_the_rank_over_each_bin(
    n_units: int, n_bins: int, top: int, levels: int, special: str, seed: int, shuffle: bool,
) -> None:
    """The partition per bin keeps exactly the rows the ordinal rank keeps, ties (few score
    levels) in row order, and NaN or missing scores take the rank's own path."""
    rng = np.random.default_rng(seed)
    n = n_units * n_bins
    score = rng.integers(0, levels, n).astype(np.float64) - levels // 2
    if special == "nan":
        score[rng.random(n) < 0.2] = np.nan
    if special == "signed_zero":
        score[score == 0] = rng.choice([0.0, -0.0], int((score == 0).sum()))
    start = dt.datetime(2024, 1, 1)
    frame = pl.DataFrame({
        "model": "m",
        "unit_id": [f"unit-with-a-long-identifier-{u}" for u in range(n_units)
                    for _ in range(n_bins)],
        "bin_start": [start + dt.timedelta(hours=8 * b) for _ in range(n_units)
                      for b in range(n_bins)],
        "score": score,
        "actual_count": rng.poisson(0.3, n),
    })
    if special == "null":
        frame = frame.with_columns(score=pl.when(pl.col("score") > 0).then(None)
                                   .otherwise(pl.col("score")))
    if shuffle:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    kept = kept_rows(frame, top, BinRows.of(frame["bin_start"]))
    assert kept.equals(_ranked_rows(frame, top))
    assert kept_rows(frame, top, None).equals(_ranked_rows(frame, top))


def test_kept_text_columns_no_longer_point_into_the_block() -> None:
    """A kept row's unit id is copied out of the block's buffers (string views)."""
    ids = pl.Series("unit_id", [f"a-unit-id-longer-than-twelve-bytes-{i}" for i in range(20_000)])
    frame = pl.DataFrame({"model": "m", "unit_id": ids, "bin_start": dt.datetime(2024, 1, 1),
                          "score": np.arange(20_000, dtype=np.float64), "actual_count": 0})
    kept = kept_rows(frame, 3, BinRows.of(frame["bin_start"]))
    assert kept["unit_id"].to_list() == [ids[19_999], ids[19_998], ids[19_997]][::-1]
    exported = kept["unit_id"].to_arrow(compat_level=pl.CompatLevel.newest())
    held = sum(buffer.size for buffer in exported.buffers() if buffer is not None)
    assert held < 1_000  # the block's ids take 800 kB
