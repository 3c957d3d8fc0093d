"""Forecast a window of bins as of a moment, with the training code path.

``/hotspots`` and ``crimecast predict`` ask: as of ``at``, which units will be
hotspots over the next ``horizon`` (say the 8 hours of a shift)? The model was
trained on one time bin (say 1 h) issued ``h`` bins ahead. The window's first
bin is the bin holding ``at`` (moved ``h - 1`` bins on for a model with a longer
lead); the forecast is issued at ``issued_at``, the start of the issue bin,
and only events that occurred **and** (delay-aware) were reported before it
are read. Each bin of the window gets exactly the row that
:func:`~crimecast.features.build.build_features` builds for that bin with a
horizon of ``h + j`` (tests check the equality): every windowed count as of
``issued_at``, the calendar (and weather) of the bin itself.

Per unit the window gets ``score`` (mean hotspot probability over its bins),
``peak_score``, ``flagged_bins`` (bins at or above the model's decision
threshold) and ``expected_count``: the mean count of the same hours in the four
previous weeks (or longer periods for multi-week windows), from events known
at ``issued_at``: the historical-average baseline, generalised to the window.

Every forecast says what it rests on: ``data_through`` (when the latest event known
at ``issued_at`` occurred) and ``events_known`` (how many events were known then).
A window with no known event before it is refused (there is nothing to forecast
from), and so is one that starts more than ``stale_after_days`` after
``data_through`` unless the caller allows a stale forecast; both are
:class:`~crimecast.errors.ServingError` with status 409.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.errors import ConfigError, ServingError
from crimecast.features.asof import PanelGrid
from crimecast.features.build import AUTO_Z_WINDOW, build_features, per_bin_context
from crimecast.features.calendar import WEATHER_COLUMNS
from crimecast.features.catalog import history_days
from crimecast.features.context import Horizon
from crimecast.features.timebins import TimeBinning
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.store import EventStore

logger = logging.getLogger(__name__)

_HORIZON = re.compile(r"^(\d{1,4})(h|d|w)$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 168}
EXPECTED_PERIODS = 4
EARLIEST = dt.datetime(1900, 1, 1)
ALL_STORE = dt.timedelta(days=365 * 200)  # "all history": wider than any data store
MIN_AT = dt.datetime(1970, 1, 1)
MAX_AT = dt.datetime(2100, 1, 1)
CLI_OVERRIDE = "--allow-stale"  # how a caller allows a stale window, named in the 409
HTTP_OVERRIDE = "allow_stale=true"


@dataclass(frozen=True, eq=False)
class Forecast:
    """One forecast window: every unit ranked by score (rank 1 = highest)."""

    at: dt.datetime
    issued_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    horizon: str
    bins: int
    ranked: pl.DataFrame
    weather_available: bool
    events_used: int
    seconds: float
    data_through: dt.datetime | None = None
    events_known: int = 0


def parse_at(text: str) -> dt.datetime:
    """Parse ``at`` (ISO 8601, the data's local clock, no offset)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"at must be an ISO 8601 date-time such as 2024-10-01T14:00; got "
                          f"'{text}'. Pass --at 2024-10-01T14:00.") from None
    if moment.tzinfo is not None:
        raise ConfigError(f"at must be a local time without a UTC offset (the data's own "
                          f"clock); got '{text}'. Pass {moment.replace(tzinfo=None).isoformat()}"
                          " in local time.")
    if not MIN_AT <= moment < MAX_AT:
        raise ConfigError(f"at must be between {MIN_AT:%Y-%m-%d} and {MAX_AT:%Y-%m-%d}; got "
                          f"'{text}'. Pass a date-time near the data.")
    return moment


def parse_horizon(text: str, binning: TimeBinning, max_days: int) -> int:
    """Number of model bins in ``text`` (``8h``, ``1d``, ``1w``)."""
    match = _HORIZON.match(text.strip().lower())
    if match is None:
        raise ConfigError(f"horizon must be a number and a unit (h, d or w), such as 8h; got "
                          f"'{text}'. Pass --horizon 8h.")
    hours = int(match.group(1)) * _UNIT_HOURS[match.group(2)]
    if hours == 0 or hours % binning.hours:
        raise ConfigError(f"horizon must be a positive multiple of the model's {binning.every} "
                          f"bins; got '{text}'. Pass --horizon {binning.every}.")
    if hours > max_days * 24:
        raise ConfigError(f"horizon must be at most {max_days} days; got '{text}'. Pass a "
                          "shorter --horizon.")
    return hours // binning.hours


def _lookback(bundle: ModelBundle, z_window: int) -> dt.timedelta:
    days = history_days(bundle.features, Horizon.of(bundle.feature_config, z_window))
    if math.isinf(days):  # an all-history feature reads the whole store
        return ALL_STORE
    # Room for the warm-up bins and the expected-count periods.
    return dt.timedelta(days=math.ceil(days) + 2) + EXPECTED_PERIODS * dt.timedelta(days=7)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="minutes")


def check_history(bundle: ModelBundle, store: EventStore, at: dt.datetime,
                  stale_after_days: float | None, allow_stale: bool = False,
                  override: str = CLI_OVERRIDE) -> tuple[int, dt.datetime | None]:
    """``(events_known, data_through)`` at the issue time of ``at``'s window; raises a
    409 :class:`ServingError` when no event is known by then, or when the window starts
    more than ``stale_after_days`` after the latest known event (unless ``allow_stale``;
    ``override`` names how the caller allows it)."""
    cfg = bundle.feature_config
    binning = TimeBinning(cfg.time_bin, cfg.shift_start_hour)
    issue = binning.index_of(at)
    start = binning.start_of(issue + cfg.horizon - 1)
    known, through = store.known_at(binning.start_of(issue), cfg.delay_aware)
    if through is None:
        first = store.first_known(cfg.delay_aware)
        if first is None:
            raise ServingError("the data store holds no events, so there is no history to "
                               "forecast from. Load incidents with --data FILE.", status=409)
        raise ServingError(f"the window starting {_iso(start)} begins before the first known "
                           f"event ({_iso(first)}), so there is no history to forecast from "
                           f"({override} does not change that). Choose a window after "
                           f"{_iso(first)}.", status=409)
    days = (start - through) / dt.timedelta(days=1)
    if stale_after_days is not None and not allow_stale and days > stale_after_days:
        raise ServingError(f"the window starting {_iso(start)} begins {days:.1f} days "
                           f"after the last known event ({_iso(through)}), more than "
                           f"serving.stale_after_days ({stale_after_days:g}), so its forecast "
                           "would rest on stale data. Load newer events with --data, choose a "
                           f"window near the data, or pass {override} to forecast anyway.",
                           status=409)
    return known, through


def compute_forecast(bundle: ModelBundle, store: EventStore, weather: pl.DataFrame | None,
                     at: dt.datetime, horizon: str, max_days: int = 7,
                     stale_after_days: float | None = None,
                     allow_stale: bool = False) -> Forecast:
    """Score every unit over the window of ``horizon`` starting at ``at`` (see module doc).

    Refused (409) with no history before the window, or a stale one (see
    :func:`check_history`; ``stale_after_days=None`` skips the staleness rule)."""
    began = time.perf_counter()
    if bundle.units is None:
        raise ConfigError("the model has no unit table (units.parquet), so it cannot map "
                          "forecasts to places. Serve a model written by crimecast run.")
    cfg = bundle.feature_config
    binning = TimeBinning(cfg.time_bin, cfg.shift_start_hour)
    k = parse_horizon(horizon, binning, max_days)
    known, through = check_history(bundle, store, at, stale_after_days, allow_stale)
    target0 = binning.index_of(at) + cfg.horizon - 1
    issue = target0 - (cfg.horizon - 1)
    issued_at = binning.start_of(issue)
    z_window = cfg.z_window or AUTO_Z_WINDOW[cfg.time_bin]
    # Settled z-score statistics need z_window + settle bins of panel before the row.
    warmup = z_window + 1 + binning.bins_for(dt.timedelta(days=cfg.settle_days))
    # Whole weeks covering the lead and the window, so every past window ends by issue time.
    period = dt.timedelta(days=7 * max(1, math.ceil((k + cfg.horizon - 1) * binning.hours
                                                    / 168)))
    since = max(issued_at - max(_lookback(bundle, z_window) + warmup * binning.step,
                                EXPECTED_PERIODS * period), EARLIEST)
    events = store.known_before(issued_at, since, cfg.delay_aware)
    built = build_features(events, bundle.units, cfg, weather=weather,
                           start=binning.start_of(issue - warmup),
                           end=binning.start_of(target0))
    first = built.frame.filter(pl.col("bin_start") == binning.start_of(target0))
    rows = [first]
    if k > 1:
        context = _context(binning, cfg.weather, bundle, weather, target0, k)
        keep = [c for c in first.columns if c not in context[0].columns or c == "bin_start"]
        rows += [first.select(keep).drop("bin_start").join(ctx, how="cross")
                 .select(first.columns) for ctx in context[1:]]
    window = pl.concat(rows)
    window = window.with_columns(prob=pl.Series(bundle.model.predict_proba(window),
                                                dtype=pl.Float64))
    ranked = _rank(window, bundle, _expected_counts(events, bundle, binning, target0, k,
                                                    period))
    weather_ok = weather is not None and cfg.weather != "none" and _has_weather(window,
                                                                                bundle)
    seconds = time.perf_counter() - began
    logger.info("forecast %s + %s (%d bins, %d units) from %d events in %.2f s", at, horizon,
                k, len(bundle.units), events.height, seconds)
    return Forecast(at=at, issued_at=issued_at, window_start=binning.start_of(target0),
                    window_end=binning.start_of(target0 + k), horizon=horizon, bins=k,
                    ranked=ranked, weather_available=weather_ok, events_used=events.height,
                    seconds=seconds, data_through=through, events_known=known)


def _has_weather(window: pl.DataFrame, bundle: ModelBundle) -> bool:
    """True when the model uses weather and every bin of the window got a value from the
    series: a day the series lacks leaves the features missing (NaN in the built panel,
    null in the per-bin context), as in training gaps."""
    used = [c for c in WEATHER_COLUMNS.values() if c in bundle.features and c in window.columns]
    if not used:
        return False
    present = pl.any_horizontal(pl.col(c).is_finite().fill_null(False) for c in used)
    return bool(window.select(present.all()).item())


def _context(binning: TimeBinning, mode: str, bundle: ModelBundle,
             weather: pl.DataFrame | None, target0: int, k: int) -> list[pl.DataFrame]:
    """Calendar/weather of each window bin, as the training build computes it for a row
    issued ``cfg.horizon + j - 1`` bins before the bin (only lagged weather cares)."""
    cfg = bundle.feature_config
    n = len(bundle.units or ())
    if mode != "lagged":
        frame = per_bin_context(PanelGrid(n, target0, k), binning, cfg, weather,
                                cfg.horizon - 1)
        return [frame.slice(j, 1).drop("_b") for j in range(k)]
    return [per_bin_context(PanelGrid(n, target0 + j, 1), binning, cfg, weather,
                            cfg.horizon - 1 + j).drop("_b") for j in range(k)]


def _expected_counts(events: pl.DataFrame, bundle: ModelBundle, binning: TimeBinning,
                     target0: int, k: int, period: dt.timedelta) -> np.ndarray:
    """Mean count per unit in the same window ``1..EXPECTED_PERIODS`` periods back."""
    units = bundle.units
    assert units is not None
    start = binning.start_of(target0)
    length = k * binning.step
    occurred = events["occurred_at"]
    mask = np.zeros(events.height, dtype=bool)
    for m in range(1, EXPECTED_PERIODS + 1):
        lo = start - m * period
        mask |= ((occurred >= lo) & (occurred < lo + length)).to_numpy()
    chosen = events.filter(pl.Series(mask))
    area = chosen["area_id"].to_numpy() if "area_id" in chosen.columns else None
    district = chosen["district_id"].to_numpy() if "district_id" in chosen.columns else None
    idx = units.assign(chosen["lat"].to_numpy(), chosen["lon"].to_numpy(), area_id=area,
                       district_id=district)
    counts = np.bincount(idx[idx >= 0], minlength=len(units)).astype(np.float64)
    return counts / EXPECTED_PERIODS


def _rank(window: pl.DataFrame, bundle: ModelBundle, expected: np.ndarray) -> pl.DataFrame:
    per_unit = window.group_by("unit_id", maintain_order=True).agg(
        score=pl.col("prob").mean(),
        peak_score=pl.col("prob").max(),
        peak_bin_start=pl.col("bin_start").sort_by("prob", descending=True).first(),
        flagged_bins=(pl.col("prob") >= bundle.threshold).sum().cast(pl.Int32),
    )
    table = bundle.unit_table
    assert table is not None
    info = table.select("unit_id", "name", "region", "area_km2").with_columns(
        expected_count=pl.Series(expected))
    return (per_unit.join(info, on="unit_id", how="left")
            .sort(["score", "expected_count", "unit_id"], descending=[True, True, False])
            .with_row_index("rank", offset=1)
            .with_columns(pl.col("rank").cast(pl.Int32)))


class Forecaster:
    """Computes forecasts once per (window start, horizon) and keeps the latest in memory.

    Concurrent requests for the same window wait for one computation.
    """

    def __init__(self, bundle: ModelBundle, store: EventStore | None,
                 weather: pl.DataFrame | None, cache_size: int = 64, max_days: int = 7,
                 stale_after_days: float | None = None) -> None:
        self.bundle = bundle
        self.store = store
        self.weather = weather
        self.cache_size = cache_size
        self.max_days = max_days
        self.stale_after_days = stale_after_days
        self._cache: OrderedDict[tuple[dt.datetime, str], Forecast] = OrderedDict()
        self._locks: dict[tuple[dt.datetime, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def key(self, at: dt.datetime, horizon: str) -> tuple[dt.datetime, str]:
        """The cache key: the start of ``at``'s bin and the normalised horizon."""
        cfg = self.bundle.feature_config
        binning = TimeBinning(cfg.time_bin, cfg.shift_start_hour)
        parse_horizon(horizon, binning, self.max_days)
        return binning.start_of(binning.index_of(at)), horizon.strip().lower()

    def cached(self, at: dt.datetime, horizon: str) -> Forecast | None:
        """The forecast if already computed (no work), else None."""
        key = self.key(at, horizon)
        with self._guard:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def _require_store(self) -> EventStore:
        if self.store is None:
            raise ConfigError("the server has no data store, so it cannot compute features "
                              "for /hotspots. Start it with --data FILE (incident CSV or a "
                              "run's clean.parquet).")
        return self.store

    def check(self, at: dt.datetime, allow_stale: bool = False) -> None:
        """Refuse (409) a window with no history or, unless ``allow_stale``, a stale one:
        call before any cache lookup, so a cached stale window is refused too."""
        check_history(self.bundle, self._require_store(), at, self.stale_after_days,
                      allow_stale, HTTP_OVERRIDE)

    def forecast(self, at: dt.datetime, horizon: str, allow_stale: bool = False) -> Forecast:
        """The forecast for ``at`` and ``horizon`` (computed once, then cached)."""
        store = self._require_store()
        key = self.key(at, horizon)
        self.check(at, allow_stale)
        found = self.cached(at, horizon)
        if found is not None:
            return found
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self.cached(at, horizon)
            if found is not None:
                return found
            result = compute_forecast(self.bundle, store, self.weather, key[0], key[1],
                                      self.max_days)  # checked above, before the cache
            with self._guard:
                self._cache[key] = result
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self._locks.pop(key, None)
            return result
