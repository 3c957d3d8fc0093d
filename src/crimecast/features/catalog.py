"""The feature catalogue: names, groups, meaning, and the original design's names.

The original SageMaker design's features keep their meaning under names that fit
every time bin (``count_last_bin`` rather than ``crime_rate_last_1h``); the
``original`` field records which original feature each one replaces, and
``features_meta.json`` carries it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column."""

    name: str
    group: str
    description: str
    original: str | None = None


CATALOG: tuple[FeatureSpec, ...] = (
    FeatureSpec("hour_sin", "temporal", "sine of the bin's start hour", "hour (cyclical)"),
    FeatureSpec("hour_cos", "temporal", "cosine of the bin's start hour", "hour (cyclical)"),
    FeatureSpec("dow_sin", "temporal", "sine of the day of week (Monday 0)",
                "day_of_week (cyclical)"),
    FeatureSpec("dow_cos", "temporal", "cosine of the day of week", "day_of_week (cyclical)"),
    FeatureSpec("month_sin", "temporal", "sine of the month", "month (cyclical)"),
    FeatureSpec("month_cos", "temporal", "cosine of the month", "month (cyclical)"),
    FeatureSpec("year", "temporal", "calendar year of the bin start", "year"),
    FeatureSpec("is_holiday", "temporal",
                "1 if the bin touches a US federal holiday (holidays library)", "is_holiday"),
    FeatureSpec("is_weekend", "temporal", "1 if the bin starts on Saturday or Sunday",
                "is_weekend"),
    FeatureSpec("is_weekend_or_holiday", "temporal", "weekend or holiday",
                "is_weekend_or_holiday"),
    FeatureSpec("population", "spatial", "residents of the unit (static)"),
    FeatureSpec("crime_rate_hourly", "rates",
                "events per hour per 1,000 residents over the trailing 7 days",
                "hourly_crime_rate"),
    FeatureSpec("crime_rate_daily", "rates",
                "events per day per 1,000 residents over the trailing 28 days",
                "daily_crime_rate"),
    FeatureSpec("crime_rate_monthly", "rates",
                "events per 30 days per 1,000 residents over the trailing 90 days",
                "monthly_crime_rate"),
    FeatureSpec("crime_rate_yearly", "rates",
                "events per 1,000 residents over the trailing 365 days", "yearly_crime_rate"),
    FeatureSpec("count_last_bin", "lags", "events in the last bin"),
    FeatureSpec("rate_last_bin", "lags", "events in the last bin per 1,000 residents",
                "crime_rate_last_1h"),
    FeatureSpec("rate_last_3_mean", "lags", "mean per-bin rate over the last 3 bins",
                "crime_rate_last_3h_avg"),
    FeatureSpec("rate_last_6_sum", "lags", "summed rate over the last 6 bins",
                "crime_rate_last_6h_sum"),
    FeatureSpec("count_last_3_mean", "lags", "mean events per bin over the last 3 bins"),
    FeatureSpec("count_last_6_sum", "lags", "events in the last 6 bins"),
    FeatureSpec("rate_same_bin_yesterday", "lags",
                "rate in the same bin 24 hours earlier (bins shorter than a day)",
                "crime_rate_yesterday_same_hour"),
    FeatureSpec("count_same_bin_last_week", "lags",
                "events in the same bin 7 days earlier (bins shorter than a week)"),
    FeatureSpec("was_hotspot_last_bin", "lags",
                "1 if the last bin's known count reached the z-score hotspot threshold of the "
                "unit's settled history", "was_hourly_hotspot_last_hour"),
    FeatureSpec("was_daily_hotspot_yesterday", "lags",
                "1 if yesterday's known count reached the daily hotspot threshold",
                "was_daily_hotspot_yesterday"),
    FeatureSpec("was_hotspot_last_year_same_day", "lags",
                "1 if the same weekday 52 weeks earlier was a daily hotspot (settled data)",
                "was_hotspot_last_year_same_day"),
    FeatureSpec("neighbour_count_last_day", "spatial",
                "events in adjacent units over the trailing 24 hours"),
    FeatureSpec("kde_intensity_7d", "spatial",
                "Gaussian-kernel smoothed trailing 7-day counts of nearby units"),
    FeatureSpec("near_repeat_48h_400m", "spatial",
                "events in the last 48 hours within 400 m of the unit"),
    FeatureSpec("violent_count_30d", "crime_mix", "violent events over the trailing 30 days"),
    FeatureSpec("property_count_30d", "crime_mix", "property events over the trailing 30 days"),
    FeatureSpec("violent_share_30d", "crime_mix", "violent share of the trailing 30 days"),
    FeatureSpec("property_share_30d", "crime_mix", "property share of the trailing 30 days"),
    FeatureSpec("count_last_28d", "baseline",
                "events over the trailing 28 days (the prior-counts baseline's score)"),
    FeatureSpec("hist_avg_same_slot", "baseline",
                "mean events in the same hour-of-week (or weekday) slot over the last 4 weeks "
                "(the historical-average baseline's score)"),
    FeatureSpec("kde_intensity_28d", "baseline",
                "Gaussian-kernel smoothed trailing 28-day counts (the KDE baseline's score)"),
    FeatureSpec("temp_c", "weather", "daily mean temperature (°C)", "temperature"),
    FeatureSpec("tmax_c", "weather", "daily maximum temperature (°C)"),
    FeatureSpec("wind_ms", "weather", "daily mean wind speed (m/s)", "wind_speed"),
    FeatureSpec("prcp_mm", "weather", "daily precipitation (mm)"),
)
SPECS: dict[str, FeatureSpec] = {spec.name: spec for spec in CATALOG}

TARGETS: dict[str, str] = {
    "target_count": "events that occurred in the bin (final count)",
    "target_zscore": "z-score of the bin's count against the unit's previous W bins",
    "target_hotspot": "the hotspot label chosen by --label (zscore or topk)",
}
KEYS: tuple[str, ...] = ("unit_id", "bin_start", "region")


def lookback_days(
    name: str, *, bin_hours: int, z_window_bins: int, settle_days: int, daily_window: int = 28,
    horizon: int = 1, weather: str = "same_bin", near_repeat_hours: int = 48,
) -> float:
    """How far back (days) a feature reaches from the start of the bin it describes.

    The evaluation split needs a gap at least this long between training and test
    rows, so no test feature window reaches back into training labels.
    """
    bin_days = bin_hours / 24
    fixed = {
        "count_last_bin": bin_days, "rate_last_bin": bin_days,
        "count_last_3_mean": 3 * bin_days, "rate_last_3_mean": 3 * bin_days,
        "count_last_6_sum": 6 * bin_days, "rate_last_6_sum": 6 * bin_days,
        "rate_same_bin_yesterday": 1 + bin_days, "count_same_bin_last_week": 7 + bin_days,
        "crime_rate_hourly": 7, "crime_rate_daily": 28, "crime_rate_monthly": 90,
        "crime_rate_yearly": 365, "neighbour_count_last_day": 1, "kde_intensity_7d": 7,
        "near_repeat_48h_400m": near_repeat_hours / 24,
        "violent_count_30d": 30, "property_count_30d": 30, "violent_share_30d": 30,
        "property_share_30d": 30, "count_last_28d": 28, "hist_avg_same_slot": 28 + bin_days,
        "kde_intensity_28d": 28,
        "was_hotspot_last_bin": settle_days + (z_window_bins + 1) * bin_days,
        "was_daily_hotspot_yesterday": 2 + settle_days + daily_window,
        "was_hotspot_last_year_same_day": 364 + daily_window + 1,
    }
    if name in fixed:
        return fixed[name] + (horizon - 1) * bin_days
    if SPECS[name].group == "weather" and weather == "lagged":
        return 1 + (horizon - 1) * bin_days
    return 0.0
