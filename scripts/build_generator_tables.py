"""Build the compact calibration tables that the synthetic incident generator ships.

One-off script: it reads the real data under ``../shared/data`` (relative to the
repository root) and writes small derived tables into
``src/crimecast/resources/generator/``. The product never reads ``shared/data``
at run time; it loads only these tables.

Usage::

    .venv/bin/python scripts/build_generator_tables.py [--shared PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import shapely

from crimecast.data.areas import LAPD_AREAS, area_id_for_name

logger = logging.getLogger("build_generator_tables")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "src" / "crimecast" / "resources" / "generator"

# Standard-schema files (and the West LA variant) that hold real incident rows.
INCIDENT_FILES = (
    "lapd_2020_first10k.csv.gz",
    "lapd_2020_sample_13areas.csv.gz",
    "lapd_2022_sample1k.csv",
    "lapd_2024_02_citywide.csv.gz",
    "lapd_2024_03_citywide.csv.gz",
    "lapd_west_la_2020_2021.csv.gz",
)


def _area_code(name: str) -> int:
    code = area_id_for_name(name)
    if code is None:
        raise ValueError(f"unknown LAPD division name {name!r}")
    return code


def build_monthly(shared: Path) -> pl.DataFrame:
    """Citywide monthly totals: 2010–2019 from the CSV, 2020–2024 from the JSON."""
    old = pl.read_csv(shared / "lapd_aggregates" / "citywide_monthly_2010_2023.csv").select(
        pl.col("Year").cast(pl.Int32).alias("year"),
        pl.col("Month").cast(pl.Int32).alias("month"),
        pl.col("MonthlyCrimeCount").cast(pl.Int64).alias("crimes"),
    )
    recent_rows = json.loads(
        (shared / "lapd_aggregates" / "citywide_monthly_2020_2024.json").read_text()
    )
    recent = pl.DataFrame(
        {
            "year": [r["year"] for r in recent_rows],
            "month": [r["month"] for r in recent_rows],
            "crimes": [r["crimes"] for r in recent_rows],
        },
        schema={"year": pl.Int32, "month": pl.Int32, "crimes": pl.Int64},
    )
    return pl.concat([old.filter(pl.col("year") < 2020), recent]).sort("year", "month")


def _read_area_crimecode(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.select(
        pl.col("DATE OCC").cast(pl.Int32).alias("year"),
        pl.col("AREA").cast(pl.Int32).alias("area"),
        pl.col("Crm Cd").cast(pl.Int32).alias("crm_cd"),
        pl.col("DR_NO").cast(pl.Int64).alias("count"),
    )


def build_area_year(shared: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-area yearly totals 2010–2024 and the per-area crime-code mix 2020–2022.

    2010–2022 come from the area × crime-code counts, 2023 from the division-year
    totals, and 2024 is the 2020–2024 division total minus 2020–2023.
    """
    agg = shared / "lapd_aggregates"
    mix_old = _read_area_crimecode(agg / "area_crimecode_year_2010_2019.csv")
    mix = _read_area_crimecode(agg / "area_crimecode_year_2020_2022.csv")
    by_code = pl.concat([mix_old, mix]).group_by("year", "area").agg(pl.col("count").sum())
    div_year = pl.read_csv(agg / "division_year_2010_2023.csv")
    y2023 = div_year.filter(pl.col("Year") == 2023).select(
        pl.lit(2023, pl.Int32).alias("year"),
        pl.col("District").map_elements(_area_code, return_dtype=pl.Int32).alias("area"),
        pl.col("TotalCrimes").cast(pl.Int64).alias("count"),
    )
    total = json.loads((agg / "division_2020_2024.json").read_text())
    total_by_area = {_area_code(r["name"]): int(r["crimes"]) for r in total}
    known = pl.concat([by_code, y2023]).filter(pl.col("year") >= 2020)
    known_by_area = dict(known.group_by("area").agg(pl.col("count").sum()).iter_rows())
    y2024 = pl.DataFrame(
        {
            "year": [2024] * 21,
            "area": list(LAPD_AREAS),
            "count": [total_by_area[a] - known_by_area[a] for a in LAPD_AREAS],
        },
        schema={"year": pl.Int32, "area": pl.Int32, "count": pl.Int64},
    )
    if (y2024["count"] <= 0).any():
        raise ValueError("derived 2024 area totals must be positive")
    area_year = pl.concat([by_code, y2023, y2024]).sort("year", "area")
    mix_out = mix.group_by("year", "area", "crm_cd").agg(pl.col("count").sum())
    return area_year, mix_out.sort("year", "area", "crm_cd")


def build_hour_profiles(shared: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-division hour-of-day counts pooled over 2020–2023, and hour × weekday counts."""
    hours = [f"Hour_{h}" for h in range(24)]
    frame = pl.read_csv(shared / "lapd_aggregates" / "division_hour_year_2010_2023.csv")
    frame = frame.filter((pl.col("Year") >= 2020) & (pl.col("District") != "All Districts"))
    long = frame.select(
        pl.col("District").map_elements(_area_code, return_dtype=pl.Int32).alias("area"), *hours
    ).unpivot(index="area", variable_name="hour", value_name="count")
    area_hour = (
        long.with_columns(pl.col("hour").str.replace("Hour_", "").cast(pl.Int32))
        .group_by("area", "hour")
        .agg(pl.col("count").sum().cast(pl.Int64))
        .sort("area", "hour")
    )
    rows = json.loads((shared / "lapd_aggregates" / "hour_dow_2020_2024.json").read_text())
    # Checked against the daily counts: dow 0 is Monday.
    dow_hour = pl.DataFrame(
        {
            "dow": [r["dow"] for r in rows],
            "hour": [r["hour"] for r in rows],
            "count": [r["crimes"] for r in rows],
        },
        schema={"dow": pl.Int32, "hour": pl.Int32, "count": pl.Int64},
    ).sort("dow", "hour")
    return area_hour, dow_hour


def build_daily_temperature(shared: Path) -> pl.DataFrame:
    """Daily mean temperature (°C) for Los Angeles, 2010–2024."""
    weather = shared / "weather"
    early = pl.read_csv(weather / "la_daily_2010_2018.csv").select(
        pl.col("date").str.to_date(),
        ((pl.col("tmax") + pl.col("tmin")) / 2).alias("temp_c"),
    )
    ghcnd = pl.read_csv(weather / "la_ghcnd_2019_lax_usc.csv", infer_schema_length=10_000)
    mid = ghcnd.filter(pl.col("STATION") == "USW00093134").select(
        pl.col("DATE").str.to_date().alias("date"),
        (((pl.col("TMAX") + pl.col("TMIN")) / 2 - 32) * 5 / 9).alias("temp_c"),
    )
    rows = json.loads((weather / "la_daily_2020_2024.json").read_text())
    late = pl.DataFrame({"date": [r["date"] for r in rows], "temp_f": [r["temp"] for r in rows]})
    late = late.select(
        pl.col("date").str.to_date(), ((pl.col("temp_f") - 32) * 5 / 9).alias("temp_c")
    )
    out = pl.concat([early, mid, late]).with_columns(pl.col("temp_c").round(1))
    return out.unique("date", keep="first").sort("date")


def build_points(shared: Path) -> pl.DataFrame:
    """Real incident points by hour, assigned to divisions by point-in-polygon."""
    data = json.loads(
        (shared / "lapd_aggregates" / "sampled_points_by_hour_2020_2024.json").read_text()
    )
    lat_l: list[float] = []
    lon_l: list[float] = []
    hour_l: list[int] = []
    for hour_of_day, points in enumerate(data["hours"]):
        for point_lat, point_lon in points:
            lat_l.append(point_lat)
            lon_l.append(point_lon)
            hour_l.append(hour_of_day)
    lat = np.round(np.asarray(lat_l), 4)
    lon = np.round(np.asarray(lon_l), 4)
    hour = np.asarray(hour_l, dtype=np.int32)
    geo = json.loads((shared / "geo" / "lapd_divisions.geojson").read_text())
    area = np.zeros(lat.size, dtype=np.int32)
    for feature in geo["features"]:
        polygon = shapely.geometry.shape(feature["geometry"])
        shapely.prepare(polygon)
        inside = shapely.contains_xy(polygon, lon, lat)
        area[inside & (area == 0)] = int(feature["properties"]["PREC"])
    logger.info(
        "points: %d total, %d outside every division (dropped)", lat.size, (area == 0).sum()
    )
    keep = area > 0
    return pl.DataFrame(
        {
            "area": area[keep].astype(np.int8),
            "hour": hour[keep].astype(np.int8),
            "lat_e4": np.rint(lat[keep] * 1e4).astype(np.int32),
            "lon_e4": np.rint(lon[keep] * 1e4).astype(np.int32),
        }
    ).sort("area", "hour", "lat_e4", "lon_e4")


def read_incidents(shared: Path) -> pl.DataFrame:
    """The real incident rows, reduced to the columns the tables need."""
    frames = []
    for name in INCIDENT_FILES:
        raw = pl.read_csv(shared / "lapd" / name, infer_schema=False)
        frames.append(
            raw.select(
                pl.col("AREA").cast(pl.Int32).alias("area"),
                pl.col("Rpt Dist No").cast(pl.Int32).alias("rpt_dist"),
                pl.col("TIME OCC").cast(pl.Int32).alias("time_occ"),
                pl.col("Crm Cd").cast(pl.Int32).alias("crm_cd"),
                pl.col("Premis Cd").cast(pl.Int32, strict=False).alias("premis_cd"),
                pl.col("Premis Desc").alias("premis_desc"),
                pl.col("LAT").cast(pl.Float64).alias("lat"),
                pl.col("LON").cast(pl.Float64).alias("lon"),
            )
        )
    return pl.concat(frames)


def build_districts(incidents: pl.DataFrame) -> pl.DataFrame:
    """Median location of each reporting district (RD) with its area."""
    located = incidents.filter((pl.col("lat") != 0) & (pl.col("lon") != 0))
    return (
        located.group_by("rpt_dist")
        .agg(
            pl.col("area").mode().first().alias("area"),
            pl.col("lat").median().round(4).alias("lat"),
            pl.col("lon").median().round(4).alias("lon"),
            pl.len().cast(pl.Int64).alias("n"),
        )
        .sort("area", "rpt_dist")
    )


def build_minutes(incidents: pl.DataFrame) -> pl.DataFrame:
    """Counts of TIME OCC by hour and minute (captures rounding and the 12:00 spike)."""
    return (
        incidents.select(
            (pl.col("time_occ") // 100).alias("hour"), (pl.col("time_occ") % 100).alias("minute")
        )
        .filter((pl.col("hour") < 24) & (pl.col("minute") < 60))
        .group_by("hour", "minute")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort("hour", "minute")
    )


def build_premises(incidents: pl.DataFrame) -> pl.DataFrame:
    """Counts of premise by crime code, with each premise's most common description."""
    rows = incidents.filter(pl.col("premis_cd").is_not_null())
    desc = (
        rows.filter(pl.col("premis_desc").is_not_null())
        .group_by("premis_cd")
        .agg(pl.col("premis_desc").mode().sort().first())
    )
    counts = rows.group_by("crm_cd", "premis_cd").agg(pl.len().cast(pl.Int64).alias("count"))
    return (
        counts.join(desc, on="premis_cd", how="left")
        .with_columns(pl.col("premis_desc").fill_null(""))
        .sort("crm_cd", "premis_cd")
    )


def main() -> None:
    """Read shared/data and write every generator table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shared: Path = args.shared
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    area_year, mix = build_area_year(shared)
    area_hour, dow_hour = build_hour_profiles(shared)
    incidents = read_incidents(shared)
    tables = {
        "monthly_totals.csv": build_monthly(shared),
        "area_year.csv": area_year,
        "crime_mix.csv": mix,
        "area_hour.csv": area_hour,
        "dow_hour.csv": dow_hour,
        "daily_temperature.csv": build_daily_temperature(shared),
        "districts.csv": build_districts(incidents),
        "time_minutes.csv": build_minutes(incidents),
        "premises.csv": build_premises(incidents),
    }
    for name, frame in tables.items():
        frame.write_csv(out / name)
        logger.info("%-24s %6d rows", name, frame.height)
    points = build_points(shared)
    points.write_parquet(out / "points.parquet", compression="zstd", compression_level=19)
    logger.info("%-24s %6d rows", "points.parquet", points.height)
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    logger.info("total size %.2f MB", total / 1e6)


if __name__ == "__main__":
    main()
