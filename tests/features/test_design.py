"""The training design: every row with an event plus a weighted sample of the empty rows,
built by the event-indexed engine without the panel (issue #12)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from crimecast.config import FeatureConfig
from crimecast.executor import LocalExecutor
from crimecast.features.build import PANEL_KEYS, build_features, panel_inputs, warm
from crimecast.features.design import WEIGHT, build_design, design_rows
from crimecast.features.history import NEAR_KEY
from tests.features.test_leakage import SPAN_HOURS, START, UNITS, make_events

END = START + dt.timedelta(hours=SPAN_HOURS)
CONFIG = FeatureConfig(time_bin="1h", label="topk", weather="none")


def _events() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    rows = [(float(h), float(x), float(y), int(d), str(c)) for h, x, y, d, c in zip(
        rng.uniform(0, SPAN_HOURS - 0.01, 400), rng.normal(0, 0.6, 400).clip(-1.9, 1.9),
        rng.normal(0, 0.6, 400).clip(-1.9, 1.9), rng.choice([0, 0, 1, 3], 400),
        rng.choice(["violent", "property", "other"], 400), strict=True)]
    return make_events(rows)


def test_the_design_is_the_panel_at_its_rows_with_horvitz_thompson_weights() -> None:
    events = _events()
    panel = build_features(events, UNITS, CONFIG, start=START, end=END).frame
    inputs = panel_inputs(events, UNITS, CONFIG, start=START, end=END)
    design = design_rows(inputs, max_rows=4000, seed=3)
    frame = pl.concat(build_design(inputs, design, chunk_rows=1500))
    keyed = panel.join(frame.select("_u", "_b", WEIGHT), on=["_u", "_b"], how="inner")
    # Every event row is in, each once; rows sorted by bin then unit.
    has_event = panel.filter(pl.col("target_count") > 0)
    assert frame.filter(pl.col("target_count") > 0).height == has_event.height
    assert frame.select("_b", "_u").equals(frame.select("_b", "_u").sort("_b", "_u"))
    # The same features and labels as the dense panel at those rows.
    assert frame.drop(WEIGHT).sort("_u", "_b").equals(keyed.drop(WEIGHT).sort("_u", "_b"))
    empty = panel.height - has_event.height
    assert design.sampled_empty == 4000 - has_event.height
    weight = frame[WEIGHT].to_numpy()
    assert set(np.round(weight, 9)) == {1.0, round(empty / design.sampled_empty, 9)}
    # Weighted sums: exact for the row count and for sums that are zero on empty rows.
    assert weight.sum() == np.float64(panel.height) or abs(weight.sum() - panel.height) < 1e-6
    for column in ("target_count", "target_hotspot"):
        assert (frame[column].fill_null(0).to_numpy() * weight).sum() == \
            panel[column].fill_null(0).sum()
    # And close for a feature's mean over the whole panel (an unbiased estimate).
    for column in ("prior_counts_4w", "kde_4w_1x", "neighbour_count_4w"):
        full = panel[column].fill_null(0).mean()
        estimate = (frame[column].fill_null(0).to_numpy() * weight).sum() / weight.sum()
        assert abs(estimate - full) <= 0.05 * full, (column, estimate, full)


def test_a_pool_builds_the_same_design_from_the_warmed_panel_work() -> None:
    events = _events()
    inputs = panel_inputs(events, UNITS, CONFIG, start=START, end=END)
    design = design_rows(inputs, max_rows=4000, seed=3)
    serial = pl.concat(build_design(inputs, design, chunk_rows=1500))
    pooled = panel_inputs(events, UNITS, CONFIG, start=START, end=END)
    warm(pooled)  # the per-panel pairs and index, once, for the workers
    panel_work = {key for key in pooled.shared if str(key).startswith(PANEL_KEYS)}
    assert NEAR_KEY in panel_work and any(key.startswith("sepp_index_") for key in panel_work)
    assert pl.concat(build_design(pooled, design, LocalExecutor(2), chunk_rows=1500)).equals(
        serial)


def test_a_small_panel_is_its_own_design() -> None:
    events = _events()
    inputs = panel_inputs(events, UNITS, CONFIG, start=START, end=END)
    design = design_rows(inputs, max_rows=10**9, seed=3)
    assert design.unit.size == design.panel_rows == inputs.panel.n_units * inputs.panel.n_bins
    assert (design.weight == 1.0).all()


def test_the_design_is_seeded() -> None:
    inputs = panel_inputs(_events(), UNITS, CONFIG, start=START, end=END)
    one, two = design_rows(inputs, 3000, seed=1), design_rows(inputs, 3000, seed=1)
    other = design_rows(inputs, 3000, seed=2)
    assert (one.unit == two.unit).all() and (one.bin == two.bin).all()
    assert not ((one.unit == other.unit).all() and (one.bin == other.bin).all())


def test_the_features_command_writes_the_design_of_a_large_panel(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    from typer.testing import CliRunner

    from crimecast.cli.main import app
    from crimecast.data.output import write_incidents
    from crimecast.synthetic.generate import generate_incidents

    folder = tmp_path_factory.mktemp("design")
    data = folder / "lapd.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 3, 31), seed=11), data)
    config = folder / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", config)
    settings = config / "feature_config.yaml"  # a design much smaller than the panel
    settings.write_text(settings.read_text().replace("design_rows: 2000000",
                                                     "design_rows: 60000"))
    args = ["features", "--data", str(data), "--out", str(folder / "out"), "--spatial-unit",
            "grid", "--cell-size", "1000", "--time-bin", "8h", "--weather", "none",
            "--label", "topk", "--rows", "sampled", "--executor", "local",
            "--config", str(config)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    meta = json.loads((folder / "out" / "features_meta.json").read_text())
    design = meta["design"]
    frame = pl.scan_parquet(folder / "out" / "features.parquet").collect()
    assert frame.height == meta["panel"]["rows"] == design["sampled_event_rows"] + \
        design["sampled_empty_rows"]
    assert design["sampled_empty_rows"] < design["empty_rows"]
    # More rows with an event than half the design: they are sampled too, weighted E/m.
    assert design["sampled_event_rows"] == 30_000 < design["event_rows"]
    assert design["event_weight"] == pytest.approx(design["event_rows"] / 30_000)
    assert frame[WEIGHT].sum() == pytest.approx(design["panel_rows"])
    # The label's rate is the panel's (weighted), not the design's event-heavy share.
    labelled = frame.filter(pl.col("target_hotspot").is_not_null())
    rate = (labelled["target_hotspot"] * labelled[WEIGHT]).sum() / labelled[WEIGHT].sum()
    assert meta["label"]["positive_rate"] == pytest.approx(rate)
    assert "the training design:" in " ".join(done.output.split())
    # All of it, and sorted by bin: what training reads.
    assert frame.select("bin_start").equals(frame.select("bin_start").sort("bin_start"))
