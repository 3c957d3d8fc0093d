"""Benchmark: `crimecast run` end to end on about 1M generated records (area x hour).

Also times one training fit per model type on the same panel's training rows.
Usage: python benchmarks/bench_pipeline.py [runs]   (each run uses a fresh runs folder,
so nothing is served from the cache; the CSV is generated once beforehand).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from crimecast.config import Settings
from crimecast.data.output import write_incidents
from crimecast.features.meta import feature_columns
from crimecast.models.estimators import ESTIMATORS, HotspotModel
from crimecast.models.split import label_gap, time_split
from crimecast.models.train import bin_position, labelled_rows
from crimecast.synthetic.generate import generate_incidents

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def main() -> None:
    """Run the pipeline RUNS times, then time each model type once."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "lapd_2020_2024.csv"
        write_incidents(generate_incidents(dt.date(2020, 1, 1), dt.date(2024, 12, 31), 7), data)
        walls, steps = [], []
        for i in range(RUNS):
            runs = Path(tmp) / f"runs{i}"
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "crimecast.cli", "run", "--data", str(data),
                            "--schema", "lapd", "--runs-dir", str(runs)], check=True,
                           capture_output=True)
            walls.append(time.perf_counter() - began)
            manifest = json.loads(next(runs.glob("*/manifest.json")).read_text())
            steps.append({k: v["seconds"] for k, v in manifest["steps"].items()})
        median = statistics.median(walls)
        print(f"crimecast run, 1M records, area x 1h, lightgbm: median {median:.1f} s over "
              f"{RUNS} runs (min {min(walls):.1f}, max {max(walls):.1f})")
        for step in steps[0]:
            print(f"  {step}: median {statistics.median(s[step] for s in steps):.2f} s")
        panel = pl.read_parquet(next((Path(tmp) / "runs0").glob("*/process/features.parquet")))
    settings = Settings()
    rows = labelled_rows(panel)
    bins = rows["bin_start"].unique(maintain_order=True).to_list()
    features = feature_columns(rows)
    split = time_split(len(bins), 0.8, label_gap(settings.features))
    train = rows.filter(pl.Series(bin_position(rows, bins) < split.train_end))
    labels = train["target_hotspot"].to_numpy()
    print(f"training rows: {train.height:,}, features: {len(features)}")
    for model_type in ESTIMATORS:
        began = time.perf_counter()
        HotspotModel(model_type, features).fit(train, labels)
        print(f"  {model_type}: {time.perf_counter() - began:.1f} s (one fit, default params)")


if __name__ == "__main__":
    main()
