"""Load the calibration tables shipped for the synthetic incident generator.

The tables under ``crimecast/resources/generator/`` are derived once from real
LAPD aggregates by ``scripts/build_generator_tables.py`` (sources and derivations
in ``SOURCES.md`` beside them). They are loaded once per process and exposed as
plain numpy arrays.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
import polars as pl

from crimecast.data.areas import LAPD_AREAS

logger = logging.getLogger(__name__)

N_AREAS = len(LAPD_AREAS)
EPOCH = dt.date(1970, 1, 1)


def _read_bytes(name: str) -> bytes:
    return (files("crimecast") / "resources" / "generator" / name).read_bytes()


def _csv(name: str) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(_read_bytes(name)))


def _nearest(values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Index into sorted ``values`` of the element nearest to each target."""
    pos = np.clip(np.searchsorted(values, targets), 1, len(values) - 1)
    left_closer = (targets - values[pos - 1]) <= (values[pos] - targets)
    return np.where(left_closer, pos - 1, pos)


def cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-normalised cumulative distribution over the last axis (last entry exactly 1)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=-1, keepdims=True)
    cum = np.cumsum(w / np.where(total > 0, total, 1.0), axis=-1)
    cum[..., -1] = 1.0
    return cum


@dataclass(frozen=True)
class GeneratorTables:
    """Every calibration table, as arrays. Area axes hold codes 1..21 at index 0..20."""

    monthly_years: np.ndarray  # (Y,) years with all 12 months known
    monthly: np.ndarray  # (Y, 12) real citywide monthly totals
    month_profile: np.ndarray  # (12,) month-of-year profile, mean 1 (2010-2019)
    share_years: np.ndarray  # (S,)
    area_share: np.ndarray  # (S, 21) area shares per year, rows sum to 1
    mix_years: np.ndarray  # (M,)
    mix_codes: np.ndarray  # (K,) crime codes
    mix_cum: np.ndarray  # (M, 21, K) cumulative crime-code mix per year and area
    area_hour: np.ndarray  # (21, 24) hour-of-day probabilities per area
    dow_hour_ratio: np.ndarray  # (7, 24) P(hour | weekday) / P(hour); Monday = 0
    dow_factor: np.ndarray  # (7,) relative daily volume by weekday, mean 1
    hour_citywide: np.ndarray  # (24,) citywide hour-of-day probabilities (2020-2024)
    temp_day: np.ndarray  # (T,) days since 1970-01-01, sorted
    temp_c: np.ndarray  # (T,) daily mean temperature °C
    minute_cum: np.ndarray  # (24, 60) cumulative minute distribution per hour
    point_lat: np.ndarray  # (P,) real points sorted by area, hour
    point_lon: np.ndarray
    cell_start: np.ndarray  # (21, 24) first point of each area x hour cell
    cell_count: np.ndarray  # (21, 24)
    area_start: np.ndarray  # (21,)
    area_count: np.ndarray  # (21,)
    district_rd: np.ndarray  # (D,) reporting district numbers
    district_area: np.ndarray  # (D,)
    district_lat: np.ndarray
    district_lon: np.ndarray
    code_desc: dict[int, str]
    code_part: dict[int, int]
    premise_codes: np.ndarray  # (C,) crime codes with a premise distribution
    premise_cd: np.ndarray  # (R,) premise codes
    premise_desc: list[str]  # (R,)
    premise_cum: np.ndarray  # (C + 1, R) last row: all codes pooled

    def monthly_target(self, years: np.ndarray, months: np.ndarray) -> np.ndarray:
        """Real monthly citywide totals; outside the table, the month profile times
        the nearest year's mean monthly level."""
        years = np.asarray(years)
        months = np.asarray(months)
        idx = _nearest(self.monthly_years, years)
        known = self.monthly_years[idx] == years
        level = self.monthly[idx].mean(axis=1) * self.month_profile[months - 1]
        return np.where(known, self.monthly[idx, months - 1], level)

    def shares_for(self, years: np.ndarray) -> np.ndarray:
        """Area shares (rows of 21) for each year, nearest known year outside the table."""
        return self.area_share[_nearest(self.share_years, np.asarray(years))]

    def mix_index(self, years: np.ndarray) -> np.ndarray:
        """Index into ``mix_cum`` of the nearest year with a crime-code mix."""
        return _nearest(self.mix_years, np.asarray(years))


def _monthly() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = _csv("monthly_totals.csv").sort("year", "month")
    complete = frame.group_by("year").agg(pl.len()).filter(pl.col("len") == 12)["year"]
    frame = frame.filter(pl.col("year").is_in(complete.implode()))
    years = frame["year"].unique().sort().to_numpy()
    monthly = frame["crimes"].to_numpy().astype(np.float64).reshape(len(years), 12)
    pre_covid = monthly[(years >= 2010) & (years <= 2019)]
    profile = (pre_covid / pre_covid.mean(axis=1, keepdims=True)).mean(axis=0)
    return years, monthly, profile / profile.mean()


def _area_shares() -> tuple[np.ndarray, np.ndarray]:
    frame = _csv("area_year.csv")
    years = frame["year"].unique().sort().to_numpy()
    counts = np.zeros((len(years), N_AREAS))
    yi = np.searchsorted(years, frame["year"].to_numpy())
    np.add.at(counts, (yi, frame["area"].to_numpy() - 1), frame["count"].to_numpy())
    return years, counts / counts.sum(axis=1, keepdims=True)


def _crime_mix() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = _csv("crime_mix.csv")
    years = frame["year"].unique().sort().to_numpy()
    codes = frame["crm_cd"].unique().sort().to_numpy()
    counts = np.zeros((len(years), N_AREAS, len(codes)))
    np.add.at(
        counts,
        (
            np.searchsorted(years, frame["year"].to_numpy()),
            frame["area"].to_numpy() - 1,
            np.searchsorted(codes, frame["crm_cd"].to_numpy()),
        ),
        frame["count"].to_numpy(),
    )
    return years, codes, cumulative(counts)


def _grid(frame: pl.DataFrame, row: str, rows: int, row_offset: int) -> np.ndarray:
    grid = np.zeros((rows, 24))
    grid[frame[row].to_numpy() - row_offset, frame["hour"].to_numpy()] = frame["count"].to_numpy()
    return grid


def _points() -> dict[str, np.ndarray]:
    frame = pl.read_parquet(io.BytesIO(_read_bytes("points.parquet"))).sort(
        "area", "hour", maintain_order=True
    )
    area = frame["area"].to_numpy().astype(np.int64) - 1
    hour = frame["hour"].to_numpy().astype(np.int64)
    cell = area * 24 + hour
    cell_count = np.bincount(cell, minlength=N_AREAS * 24)
    cell_start = np.concatenate([[0], np.cumsum(cell_count)[:-1]])
    area_count = np.bincount(area, minlength=N_AREAS)
    return {
        "point_lat": frame["lat_e4"].to_numpy() / 1e4,
        "point_lon": frame["lon_e4"].to_numpy() / 1e4,
        "cell_start": cell_start.reshape(N_AREAS, 24),
        "cell_count": cell_count.reshape(N_AREAS, 24),
        "area_start": np.concatenate([[0], np.cumsum(area_count)[:-1]]),
        "area_count": area_count,
    }


def _premises() -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    frame = _csv("premises.csv").with_columns(pl.col("premis_desc").fill_null(""))
    codes = frame["crm_cd"].unique().sort().to_numpy()
    prem = frame.group_by("premis_cd").agg(pl.col("premis_desc").first()).sort("premis_cd")
    prem_cd = prem["premis_cd"].to_numpy()
    counts = np.zeros((len(codes) + 1, len(prem_cd)))
    ci = np.searchsorted(codes, frame["crm_cd"].to_numpy())
    pi = np.searchsorted(prem_cd, frame["premis_cd"].to_numpy())
    np.add.at(counts, (ci, pi), frame["count"].to_numpy())
    counts[-1] = counts[:-1].sum(axis=0)
    return codes, prem_cd, prem["premis_desc"].to_list(), cumulative(counts)


def _code_table() -> tuple[dict[int, str], dict[int, int]]:
    raw = (files("crimecast") / "resources" / "lapd_crime_codes.csv").read_bytes()
    frame = pl.read_csv(io.BytesIO(raw))
    codes = frame["crime_code"].to_list()
    return dict(zip(codes, frame["crime_desc"].to_list(), strict=True)), dict(
        zip(codes, frame["part"].to_list(), strict=True)
    )


@functools.lru_cache(maxsize=1)
def load_tables() -> GeneratorTables:
    """Load (once per process) every shipped generator table."""
    monthly_years, monthly, profile = _monthly()
    share_years, shares = _area_shares()
    mix_years, mix_codes, mix_cum = _crime_mix()
    area_hour = _grid(_csv("area_hour.csv"), "area", N_AREAS, 1)
    dow_hour = _grid(_csv("dow_hour.csv"), "dow", 7, 0)
    hour_marginal = dow_hour.sum(axis=0) / dow_hour.sum()
    dow_hour_ratio = (dow_hour / dow_hour.sum(axis=1, keepdims=True)) / hour_marginal
    dow_total = dow_hour.sum(axis=1)
    temps = _csv("daily_temperature.csv").with_columns(pl.col("date").str.to_date())
    minutes = _csv("time_minutes.csv")
    minute_counts = np.zeros((24, 60))
    minute_counts[minutes["hour"].to_numpy(), minutes["minute"].to_numpy()] = minutes[
        "count"
    ].to_numpy()
    districts = _csv("districts.csv").sort("area", "rpt_dist")
    code_desc, code_part = _code_table()
    premise_codes, premise_cd, premise_desc, premise_cum = _premises()
    tables = GeneratorTables(
        monthly_years=monthly_years,
        monthly=monthly,
        month_profile=profile,
        share_years=share_years,
        area_share=shares,
        mix_years=mix_years,
        mix_codes=mix_codes,
        mix_cum=mix_cum,
        area_hour=area_hour / area_hour.sum(axis=1, keepdims=True),
        dow_hour_ratio=dow_hour_ratio,
        dow_factor=dow_total / dow_total.mean(),
        hour_citywide=hour_marginal,
        temp_day=temps["date"].cast(pl.Int32).to_numpy().astype(np.int64),
        temp_c=temps["temp_c"].to_numpy(),
        minute_cum=cumulative(minute_counts + 1e-9),
        **_points(),
        district_rd=districts["rpt_dist"].to_numpy(),
        district_area=districts["area"].to_numpy(),
        district_lat=districts["lat"].to_numpy(),
        district_lon=districts["lon"].to_numpy(),
        code_desc=code_desc,
        code_part=code_part,
        premise_codes=premise_codes,
        premise_cd=premise_cd,
        premise_desc=premise_desc,
        premise_cum=premise_cum,
    )
    logger.debug("loaded generator tables: %d points", tables.point_lat.size)
    return tables
