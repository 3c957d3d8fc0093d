"""The original AWS SageMaker design's processing step, reproduced in pandas (issue #15).

A baseline for ``benchmarks/bench_original.py``, written the way that design's processing
script was: the whole file read with ``pandas.read_csv``, the rows cleaned (missing or
zero coordinates dropped, dates parsed, ``DATE OCC`` + ``TIME OCC`` combined into a
timestamp), features computed on incident rows with ``groupby(...).transform`` and lambda
time rollings, and the rows then de-duplicated into one row per AREA and hour bucket
(every area-hour with at least one incident) with the hourly count and the labels.
Usage::

    python benchmarks/original_design_pandas.py INPUT.csv.gz OUT.parquet

It is deliberately faithful, not corrected: the design is leaky. Its rolling counts
include the current incident and the rest of its hour (a row kept by ``drop_duplicates``
sees the whole hour it is labelling), and its frequency encodings, per-area means and
label statistics (the area's mean hourly count, the top-decile threshold) use the whole
data, test period included. crimecast's panel avoids all of these; this script exists
only to compare cost with what the design did. Only pandas and numpy (pyarrow to write
the parquet file).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

DATE_FORMAT = "%m/%d/%Y %I:%M:%S %p"
WINDOWS = {"count_24h": "24h", "count_7d": "7D", "count_30d": "30D"}
TOP_QUANTILE = 0.9


def load_and_clean(path: str) -> pd.DataFrame:
    """Read the LAPD export, drop unusable rows and build the ``datetime`` column."""
    df = pd.read_csv(path)
    df = df.dropna(subset=["LAT", "LON", "DATE OCC", "TIME OCC", "AREA"])
    df = df[(df["LAT"] != 0) & (df["LON"] != 0)].copy()
    df = df.drop_duplicates(subset="DR_NO")
    df["DATE OCC"] = pd.to_datetime(df["DATE OCC"], format=DATE_FORMAT)
    df["Date Rptd"] = pd.to_datetime(df["Date Rptd"], format=DATE_FORMAT)
    time_occ = df["TIME OCC"].astype(int)
    df["datetime"] = (
        df["DATE OCC"]
        + pd.to_timedelta(time_occ // 100, unit="h")
        + pd.to_timedelta(time_occ % 100, unit="m")
    )
    df["report_delay_days"] = (df["Date Rptd"] - df["DATE OCC"]).dt.days
    return df.sort_values("datetime").reset_index(drop=True)


def add_incident_features(df: pd.DataFrame) -> pd.DataFrame:
    """Calendar, frequency-encoding, per-area and rolling-count features on incident rows."""
    df["hour"] = df["datetime"].dt.hour
    df["day_of_week"] = df["datetime"].dt.dayofweek
    df["month"] = df["datetime"].dt.month
    df["is_weekend"] = (df["day_of_week"] >= 5).astype(int)
    df["hour_sin"] = np.sin(2 * np.pi * df["hour"] / 24)
    df["hour_cos"] = np.cos(2 * np.pi * df["hour"] / 24)
    df["crime_type_freq"] = df["Crm Cd Desc"].map(df["Crm Cd Desc"].value_counts(normalize=True))
    df["premis_freq"] = df["Premis Desc"].map(df["Premis Desc"].value_counts(normalize=True))
    df["area_mean_lat"] = df.groupby("AREA")["LAT"].transform("mean")
    df["area_mean_lon"] = df.groupby("AREA")["LON"].transform("mean")
    df["area_crime_type_share"] = df.groupby(["AREA", "Crm Cd"])["DR_NO"].transform(
        "count") / df.groupby("AREA")["DR_NO"].transform("count")
    df = df.set_index("datetime")
    for column, window in WINDOWS.items():
        df[column] = df.groupby("AREA")["DR_NO"].transform(
            lambda s, w=window: s.rolling(w).count())
    df["hour_bucket"] = df.index.floor("h")
    df["hourly_count"] = df.groupby(["AREA", "hour_bucket"])["DR_NO"].transform("count")
    return df.reset_index()


def to_area_hours(df: pd.DataFrame) -> pd.DataFrame:
    """One row per AREA and hour bucket, with the lagged count and the labels."""
    columns = ["AREA", "AREA NAME", "hour_bucket", "hour", "day_of_week", "month",
               "is_weekend", "hour_sin", "hour_cos", "crime_type_freq", "premis_freq",
               "area_mean_lat", "area_mean_lon", "area_crime_type_share",
               "report_delay_days", *WINDOWS, "hourly_count"]
    area_hours = df.drop_duplicates(subset=["AREA", "hour_bucket"], keep="last")[columns]
    area_hours = area_hours.sort_values(["AREA", "hour_bucket"]).reset_index(drop=True)
    area_hours["hour"] = area_hours["hour_bucket"].dt.hour
    by_area = area_hours.groupby("AREA")["hourly_count"]
    area_hours["lag_1_count"] = by_area.shift(1).fillna(0)
    area_hours["area_mean_count"] = by_area.transform("mean")
    area_hours["area_std_count"] = by_area.transform("std").fillna(0)
    area_hours["hotspot"] = (
        area_hours["hourly_count"] > area_hours["area_mean_count"]).astype(int)
    threshold = area_hours["hourly_count"].quantile(TOP_QUANTILE)
    area_hours["hotspot_top_decile"] = (area_hours["hourly_count"] >= threshold).astype(int)
    return area_hours


def main(argv: list[str]) -> int:
    """Process ``argv[0]`` (an LAPD CSV) into the area-hour parquet file ``argv[1]``."""
    if len(argv) != 2:
        print(__doc__.split("Usage::")[-1].split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    began = time.perf_counter()
    df = load_and_clean(argv[0])
    incidents = len(df)
    area_hours = to_area_hours(add_incident_features(df))
    area_hours.to_parquet(argv[1], index=False)
    print(f"wrote {len(area_hours):,} area-hour rows from {incidents:,} incidents to "
          f"{argv[1]} in {time.perf_counter() - began:.1f} s; "
          f"hotspot rate {area_hours['hotspot'].mean():.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
