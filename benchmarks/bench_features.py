"""Benchmark: feature panels from about 1M generated records (2020-2024).

1. area x hour with every feature (target: <= 10 s on 2 cores);
2. 250 m grid x day over the LAPD study area.

Cleaning runs once, outside the timed region; each panel is built several times
and the median reported, with the process's peak RSS.
Usage: python benchmarks/bench_features.py [runs] [area|grid ...] (default: both)
"""

from __future__ import annotations

import datetime as dt
import resource
import statistics
import sys
import time

from crimecast.config import CleaningConfig, FeatureConfig
from crimecast.data.boundaries import load_lapd_divisions
from crimecast.data.clean import clean_incidents
from crimecast.data.geo import study_area
from crimecast.data.lapd import parse_lapd
from crimecast.data.load import SOURCE_FILE, SOURCE_ROW
from crimecast.data.weather import load_daily_weather
from crimecast.features.build import build_features
from crimecast.features.job import history_mask
from crimecast.features.units import build_units
from crimecast.synthetic.generate import generate_incidents

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Build both panels RUNS times and print medians."""
    import polars as pl

    raw = generate_incidents(dt.date(2020, 1, 1), dt.date(2024, 12, 31), seed=7)
    raw = raw.with_columns(pl.int_range(1, raw.height + 1).alias(SOURCE_ROW),
                           pl.lit("synthetic").alias(SOURCE_FILE))
    divisions = load_lapd_divisions()
    clean = clean_incidents(parse_lapd(raw), CleaningConfig(), study_area(divisions, 250),
                            today=dt.date(2024, 12, 31)).clean
    weather = load_daily_weather()
    print(f"clean incidents: {clean.height:,}")
    cases = {
        "area": ("area x 1h (zscore)", FeatureConfig(spatial_unit="area", time_bin="1h")),
        "grid": ("grid 250 m x 1d (topk)",
                 FeatureConfig(spatial_unit="grid", cell_size=250, time_bin="1d", label="topk")),
    }
    for label, config in (cases[name] for name in sys.argv[2:] or cases):
        timings, built = [], None
        for _ in range(RUNS):
            built = None  # free the previous panel before building the next
            began = time.perf_counter()
            units = build_units(
                config.spatial_unit, clean["lat"].to_numpy(), clean["lon"].to_numpy(),
                area_id=clean["area_id"].to_numpy(), district_id=clean["district_id"].to_numpy(),
                cell_size=config.cell_size, boundary=divisions,
                history_mask=history_mask(clean, 0.8),
            )
            built = build_features(clean, units, config, weather=weather)
            timings.append(time.perf_counter() - began)
        assert built is not None
        meta = built.meta
        print(f"{label}: {meta['panel']['units']:,} units x {meta['panel']['bins']:,} bins = "
              f"{meta['panel']['rows']:,} rows, {len(meta['features'])} features, "
              f"positive rate {meta['label']['positive_rate']:.2%}")
        print(f"  build (units + panel): median {statistics.median(timings):.2f} s over {RUNS} "
              f"runs (min {min(timings):.2f}, max {max(timings):.2f}); "
              f"peak RSS so far {_peak_mb():.0f} MB")
        del built


if __name__ == "__main__":
    main()
