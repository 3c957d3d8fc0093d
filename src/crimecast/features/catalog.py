"""Every feature, declared once: name, window, look-back, computation, meaning, original name.

A :class:`Feature` is the single place a feature is defined. The panel builder
runs each declaration's ``compute``; ``features_meta.json``, the catalogue in
the README, the history a forecast needs (:func:`history_days`) and the naive
forecasters (:mod:`crimecast.models.naive`) are all derived from
:data:`CATALOG`. Adding a feature means adding one declaration here; a test fails
when a built column has no declaration or a declaration never builds a column.

``compute`` returns a (units × bins) matrix at *issue rows* (what was known
before the bin started; the builder shifts it by the horizon), or ``None`` when
the feature does not apply to the configuration (same-bin-yesterday for daily
bins). Declarations with ``source`` other than ``asof`` are filled by the
calendar, the weather join or the unit table.

The original SageMaker design's features keep their meaning under names that fit
every time bin (``count_last_bin`` rather than ``crime_rate_last_1h``);
``original`` records which original feature each one replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crimecast.features import history
from crimecast.features.context import ALL_HISTORY, WEEK_WINDOWS, FeatureContext, Horizon
from crimecast.features.excitation import sepp_intensity

Compute = Callable[[FeatureContext], np.ndarray | None]
Lookback = Callable[[Horizon], float]


@dataclass(frozen=True)
class Feature:
    """One feature column, declared once (see the module docstring)."""

    name: str
    group: str
    description: str
    window: str
    lookback: Lookback
    compute: Compute | None = None
    original: str | None = None
    source: str = "asof"  # asof | calendar | weather | unit


def days(n: float) -> Lookback:
    """A fixed look-back of ``n`` days."""
    return lambda h: n


def bins(n: float, plus_days: float = 0.0) -> Lookback:
    """A look-back of ``n`` bins (plus ``plus_days``)."""
    return lambda h: n * h.bin_days + plus_days


NONE: Lookback = days(0.0)


def _per_1000(counts: np.ndarray, ctx: FeatureContext) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (counts * ctx.per_unit(1000.0 / ctx.units.population)).astype(np.float32)
    rate[~np.isfinite(rate)] = np.nan
    return rate


def _rate(window_days: int, per: float) -> Compute:
    return lambda c: _per_1000(c.trailing(c.bins(window_days)) / per, c)


def _below(hours: int, make: Compute) -> Compute:
    """Only for bins shorter than ``hours`` (a same-bin lag needs a finer bin)."""
    return lambda c: make(c) if c.binning.hours < hours else None


def _share(category: str) -> Compute:
    def compute(c: FeatureContext) -> np.ndarray:
        total, counts = c.trailing(c.bins(30)), c.trailing(c.bins(30), category)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, counts / total, 0.0)
    return compute


def _same_slot(c: FeatureContext) -> np.ndarray:
    if c.binning.hours >= 168:
        return c.trailing(4) / 4
    week = c.bins(7)
    return np.asarray(sum(c.lag(k * week) for k in range(1, 5))) / 4


def _same_season_last_year(c: FeatureContext) -> np.ndarray:
    """Events 50–54 weeks before the issue time: the same 4 weeks of last year."""
    return c.trailing(c.bins(7 * 54)) - c.trailing(c.bins(7 * 50))


def _weeks_lookback(window: str, snapshot_days: int = 0) -> Lookback:
    n = WEEK_WINDOWS[window]
    return days(ALL_HISTORY if n is None else 7 * n + snapshot_days)


def _window_text(window: str) -> str:
    return "all history" if window == "all" else f"{window[:-1]} weeks"


def prior_counts(window: str) -> Feature:
    """The prior-counts feature (and naive forecaster) over a :data:`WEEK_WINDOWS` window."""
    return Feature(f"prior_counts_{window}", "long_memory",
                   f"events known before the issue time over the trailing {_window_text(window)}",
                   _window_text(window), _weeks_lookback(window), lambda c: c.weeks(window))


KDE_WINDOWS = ("4w", "13w", "52w", "all")
KDE_MULTIPLES = (1, 2, 4)


def _snapshot_days(window: str) -> int:
    """Days between KDE snapshots: daily for the 4-week window, weekly for longer ones (a
    week moves a 13-week or longer window by little; see crimecast.features.kde)."""
    return 1 if window == "4w" else 7


def kde(window: str, multiple: int) -> Feature:
    """A kernel-smoothed prior count (and naive forecaster) at ``multiple`` × the bandwidth."""
    return Feature(f"kde_{window}_{multiple}x", "long_memory",
                   f"Gaussian-kernel smoothed prior counts over the {_window_text(window)} "
                   f"before the issue {'day' if _snapshot_days(window) == 1 else 'week'}'s "
                   f"start, bandwidth {multiple} x the base bandwidth",
                   _window_text(window), _weeks_lookback(window, _snapshot_days(window)),
                   lambda c: c.kde(c.window_bins(window), multiple, _snapshot_days(window)))


def _history_weeks(c: FeatureContext) -> np.ndarray:
    """Weeks between the first event known by the issue time and the issue time."""
    rows = c.issue_rows()
    first_known = int(c.events["avail"].min()) if c.events.height else int(rows.max()) + 1  # type: ignore[arg-type]
    weeks = np.clip(rows - first_known, 0, None) * c.binning.hours / 168
    return c.per_row(weeks.astype(np.float32))


CATALOG: tuple[Feature, ...] = (
    Feature("hour_sin", "temporal", "sine of the bin's start hour", "the bin", NONE,
            original="hour (cyclical)", source="calendar"),
    Feature("hour_cos", "temporal", "cosine of the bin's start hour", "the bin", NONE,
            original="hour (cyclical)", source="calendar"),
    Feature("dow_sin", "temporal", "sine of the day of week (Monday 0)", "the bin", NONE,
            original="day_of_week (cyclical)", source="calendar"),
    Feature("dow_cos", "temporal", "cosine of the day of week", "the bin", NONE,
            original="day_of_week (cyclical)", source="calendar"),
    Feature("month_sin", "temporal", "sine of the month", "the bin", NONE,
            original="month (cyclical)", source="calendar"),
    Feature("month_cos", "temporal", "cosine of the month", "the bin", NONE,
            original="month (cyclical)", source="calendar"),
    Feature("year", "temporal", "calendar year of the bin start", "the bin", NONE,
            original="year", source="calendar"),
    Feature("is_holiday", "temporal",
            "1 if the bin touches a US federal holiday (holidays library)", "the bin", NONE,
            original="is_holiday", source="calendar"),
    Feature("is_weekend", "temporal", "1 if the bin starts on Saturday or Sunday", "the bin",
            NONE, original="is_weekend", source="calendar"),
    Feature("is_weekend_or_holiday", "temporal", "weekend or holiday", "the bin", NONE,
            original="is_weekend_or_holiday", source="calendar"),
    Feature("population", "spatial", "residents of the unit (static)", "static", NONE,
            source="unit"),
    Feature("crime_rate_hourly", "rates",
            "events per hour per 1,000 residents over the trailing 7 days", "7 days", days(7),
            _rate(7, 7 * 24), "hourly_crime_rate"),
    Feature("crime_rate_daily", "rates",
            "events per day per 1,000 residents over the trailing 28 days", "28 days",
            days(28), _rate(28, 28), "daily_crime_rate"),
    Feature("crime_rate_monthly", "rates",
            "events per 30 days per 1,000 residents over the trailing 90 days", "90 days",
            days(90), _rate(90, 3), "monthly_crime_rate"),
    Feature("crime_rate_yearly", "rates",
            "events per 1,000 residents over the trailing 365 days", "365 days", days(365),
            _rate(365, 1), "yearly_crime_rate"),
    Feature("count_last_bin", "lags", "events in the last bin", "1 bin", bins(1),
            lambda c: c.trailing(1)),
    Feature("rate_last_bin", "lags", "events in the last bin per 1,000 residents", "1 bin",
            bins(1), lambda c: _per_1000(c.trailing(1), c), "crime_rate_last_1h"),
    Feature("rate_last_3_mean", "lags", "mean per-bin rate over the last 3 bins", "3 bins",
            bins(3), lambda c: _per_1000(c.trailing(3) / 3, c), "crime_rate_last_3h_avg"),
    Feature("rate_last_6_sum", "lags", "summed rate over the last 6 bins", "6 bins", bins(6),
            lambda c: _per_1000(c.trailing(6), c), "crime_rate_last_6h_sum"),
    Feature("count_last_3_mean", "lags", "mean events per bin over the last 3 bins", "3 bins",
            bins(3), lambda c: c.trailing(3) / 3),
    Feature("count_last_6_sum", "lags", "events in the last 6 bins", "6 bins", bins(6),
            lambda c: c.trailing(6)),
    Feature("rate_same_bin_yesterday", "lags",
            "rate in the same bin 24 hours earlier (bins shorter than a day)", "1 bin",
            bins(1, 1), _below(24, lambda c: _per_1000(c.lag(c.bins(1)), c)),
            "crime_rate_yesterday_same_hour"),
    Feature("count_same_bin_last_week", "lags",
            "events in the same bin 7 days earlier (bins shorter than a week)", "1 bin",
            bins(1, 7), _below(168, lambda c: c.lag(c.bins(7)))),
    Feature("was_hotspot_last_bin", "lags",
            "1 if the last bin's known count reached the z-score hotspot threshold of the "
            "unit's settled history", "1 bin",
            lambda h: h.settle_days + (h.z_window_bins + 1) * h.bin_days,
            history.was_hotspot_last_bin, "was_hourly_hotspot_last_hour"),
    Feature("was_daily_hotspot_yesterday", "lags",
            "1 if yesterday's known count reached the daily hotspot threshold", "1 day",
            lambda h: 2 + h.settle_days + h.daily_window,
            history.was_daily_hotspot_yesterday, "was_daily_hotspot_yesterday"),
    Feature("was_hotspot_last_year_same_day", "lags",
            "1 if the same weekday 52 weeks earlier was a daily hotspot (settled data)",
            "1 day, 52 weeks back", lambda h: 364 + h.daily_window + 1,
            history.was_hotspot_last_year_same_day, "was_hotspot_last_year_same_day"),
    Feature("neighbour_count_last_day", "spatial",
            "events in adjacent units over the trailing 24 hours", "1 day", days(1),
            lambda c: c.neighbours(c.bins(1))),
    Feature("neighbour_count_4w", "spatial", "events in adjacent units over the trailing "
            "4 weeks", "4 weeks", days(28),
            lambda c: c.neighbours(c.window_bins("4w"))),
    Feature("neighbour_count_52w", "spatial", "events in adjacent units over the trailing "
            "52 weeks", "52 weeks", days(364),
            lambda c: c.neighbours(c.window_bins("52w"))),
    Feature("kde_intensity_7d", "spatial",
            "Gaussian-kernel smoothed counts of nearby units over the 7 days before the "
            "issue day's start (00:00)", "7 days", days(8),
            lambda c: c.kde(c.bins(7), 1.0, every_days=1)),
    Feature("near_repeat_48h_400m", "spatial",
            "events in the last 48 hours within 400 m of the unit", "48 hours",
            lambda h: h.near_repeat_hours / 24, history.near_repeat),
    Feature("sepp_intensity", "self_exciting",
            "expected events in the bin under the self-exciting point process: long-window "
            "smoothed background plus exponentially decaying, Gaussian-spread triggering by "
            "every event known at issue time", "all history", days(ALL_HISTORY),
            sepp_intensity),
    Feature("violent_count_30d", "crime_mix", "violent events over the trailing 30 days",
            "30 days", days(30), lambda c: c.trailing(c.bins(30), "violent")),
    Feature("property_count_30d", "crime_mix", "property events over the trailing 30 days",
            "30 days", days(30), lambda c: c.trailing(c.bins(30), "property")),
    Feature("violent_share_30d", "crime_mix", "violent share of the trailing 30 days",
            "30 days", days(30), _share("violent")),
    Feature("property_share_30d", "crime_mix", "property share of the trailing 30 days",
            "30 days", days(30), _share("property")),
    Feature("violent_count_52w", "crime_mix", "violent events over the trailing 52 weeks",
            "52 weeks", days(364), lambda c: c.weeks("52w", "violent")),
    Feature("property_count_52w", "crime_mix", "property events over the trailing 52 weeks",
            "52 weeks", days(364), lambda c: c.weeks("52w", "property")),
    *(prior_counts(w) for w in WEEK_WINDOWS),
    Feature("history_weeks", "long_memory",
            "weeks of history known at issue time (how complete the long windows are)",
            "all history", days(ALL_HISTORY), _history_weeks),
    Feature("count_same_season_last_year", "long_memory",
            "events in the same 4 weeks one year earlier (50 to 54 weeks before issue time)",
            "4 weeks, 1 year back", days(7 * 54), _same_season_last_year),
    Feature("hist_avg_same_slot", "long_memory",
            "mean events in the same hour-of-week (or weekday) slot over the last 4 weeks "
            "(the historical-average forecaster's score)", "4 weeks", bins(1, 28), _same_slot),
    *(kde(w, m) for w in KDE_WINDOWS for m in KDE_MULTIPLES),
    Feature("temp_c", "weather", "daily mean temperature (°C)", "the day",
            lambda h: 1.0 if h.weather == "lagged" else 0.0, original="temperature",
            source="weather"),
    Feature("tmax_c", "weather", "daily maximum temperature (°C)", "the day",
            lambda h: 1.0 if h.weather == "lagged" else 0.0, source="weather"),
    Feature("wind_ms", "weather", "daily mean wind speed (m/s)", "the day",
            lambda h: 1.0 if h.weather == "lagged" else 0.0, original="wind_speed",
            source="weather"),
    Feature("prcp_mm", "weather", "daily precipitation (mm)", "the day",
            lambda h: 1.0 if h.weather == "lagged" else 0.0, source="weather"),
)
SPECS: dict[str, Feature] = {spec.name: spec for spec in CATALOG}

TARGETS: dict[str, str] = {
    "target_count": "events that occurred in the bin (final count)",
    "target_zscore": "z-score of the bin's count against the unit's previous W bins",
    "target_hotspot": "the hotspot label chosen by --label (zscore or topk)",
}
KEYS: tuple[str, ...] = ("unit_id", "bin_start", "region")


def lookback_days(name: str, horizon: Horizon) -> float:
    """How far back (days) feature ``name`` reaches from its bin's start (inf: all history).

    The forecast is issued ``horizon - 1`` bins before the bin, so the look-back
    grows by that lead for every feature that reads past events.
    """
    spec = SPECS[name]
    base = spec.lookback(horizon)
    return base + (horizon.horizon - 1) * horizon.bin_days if base > 0 else 0.0


def history_days(names: list[str], horizon: Horizon) -> float:
    """The history (days before the first forecast bin) the features ``names`` read."""
    return max((lookback_days(n, horizon) for n in names), default=0.0)
