"""The server's data store: cleaned incidents that ``/hotspots`` computes features from.

It is read once at start-up, from raw incident files (cleaned with the same
code and rules as training, the quarantine counted and logged) or from a
``clean.parquet`` a run wrote.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from crimecast.config import CleaningConfig
from crimecast.data.crime_codes import select_crime_types
from crimecast.errors import DataFileError

logger = logging.getLogger(__name__)

REQUIRED = ("occurred_at", "lat", "lon")


@dataclass(frozen=True, eq=False)
class EventStore:
    """Cleaned incidents sorted by occurrence time."""

    events: pl.DataFrame
    sources: tuple[str, ...]
    rows_in: int
    rows_quarantined: int

    @property
    def first(self) -> dt.datetime | None:
        """Earliest occurrence (None when empty)."""
        value = self.events["occurred_at"].min() if self.events.height else None
        return value if isinstance(value, dt.datetime) else None

    @property
    def last(self) -> dt.datetime | None:
        """Latest occurrence (None when empty)."""
        value = self.events["occurred_at"].max() if self.events.height else None
        return value if isinstance(value, dt.datetime) else None

    def known_before(self, moment: dt.datetime, since: dt.datetime,
                     delay_aware: bool) -> pl.DataFrame:
        """Events that occurred in ``[since, moment)`` and, when ``delay_aware``, were
        reported before ``moment``: what anyone could have known at ``moment``."""
        frame = self.events.filter(pl.col("occurred_at") >= since,
                                   pl.col("occurred_at") < moment)
        if delay_aware and "reported_at" in frame.columns:
            frame = frame.filter(pl.col("reported_at").fill_null(pl.col("occurred_at")) < moment)
        return frame

    @cached_property
    def _by_occurrence(self) -> tuple[np.ndarray, np.ndarray]:
        return self._known_index(delay_aware=False)

    @cached_property
    def _by_report(self) -> tuple[np.ndarray, np.ndarray]:
        return self._known_index(delay_aware=True)

    def _known_index(self, delay_aware: bool) -> tuple[np.ndarray, np.ndarray]:
        """When each event became known (sorted, as int64 microseconds) and the latest
        occurrence among the events known by then (a running maximum)."""
        occurred = pl.col("occurred_at").cast(pl.Datetime("us"))
        known = occurred
        if delay_aware and "reported_at" in self.events.columns:
            reported = pl.col("reported_at").cast(pl.Datetime("us")).fill_null(occurred)
            known = pl.max_horizontal(occurred, reported)
        frame = (self.events.select(known=known.dt.epoch("us"), occurred=occurred.dt.epoch("us"))
                 .drop_nulls().sort("known"))
        times = frame["known"].to_numpy().astype(np.int64)
        latest = np.maximum.accumulate(frame["occurred"].to_numpy().astype(np.int64))
        return times, latest

    def known_at(self, moment: dt.datetime, delay_aware: bool) -> tuple[int, dt.datetime | None]:
        """How many events were known before ``moment`` (the rule of
        :meth:`known_before`) and when the latest of them occurred (None: none known)."""
        times, latest = self._by_report if delay_aware else self._by_occurrence
        count = int(np.searchsorted(times, _micros(moment), side="left"))
        return count, (_moment(int(latest[count - 1])) if count else None)

    def first_known(self, delay_aware: bool) -> dt.datetime | None:
        """When the first event became known (None for an empty store)."""
        times, _ = self._by_report if delay_aware else self._by_occurrence
        return _moment(int(times[0])) if times.size else None

    def summary(self) -> dict[str, object]:
        """Sources, row counts and the time range, for ``/model`` and logs."""
        return {"sources": list(self.sources), "rows": self.events.height,
                "rows_in": self.rows_in, "rows_quarantined": self.rows_quarantined,
                "first": self.first.isoformat() if self.first else None,
                "last": self.last.isoformat() if self.last else None,
                "estimated_time_share": self.estimated_time_share}

    @property
    def estimated_time_share(self) -> float | None:
        """Share of events whose time of day is estimated (entered on the hour)."""
        if "time_is_estimated" not in self.events.columns or not self.events.height:
            return None
        return round(float(self.events["time_is_estimated"].cast(pl.Float64).to_numpy().mean()), 4)


_EPOCH = dt.datetime(1970, 1, 1)


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _moment(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def _is_clean_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def load_event_store(paths: Sequence[str], schema: str, cleaning: CleaningConfig,
                     encoding: str = "utf-8", crime_types: Sequence[str] = ()) -> EventStore:
    """Load ``paths``: ``clean.parquet`` files as they are, anything else through cleaning;
    only the events of ``crime_types`` (all when empty), those the served model forecasts."""
    if not paths:
        raise DataFileError("no data files given for the data store. Pass --data FILE.")
    parquet = [p for p in paths if _is_clean_parquet(p)]
    raw = [p for p in paths if not _is_clean_parquet(p)]
    frames: list[pl.DataFrame] = []
    rows_in = quarantined = 0
    for path in parquet:
        if not Path(path).is_file():
            raise DataFileError(f"data file '{path}' does not exist. Pass --data with a "
                                "clean.parquet from a run or an incident CSV.")
        frame = pl.read_parquet(path)
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise DataFileError(f"'{path}' lacks column(s) {missing}; a parquet data store "
                                "must be a clean.parquet written by crimecast clean or run.")
        frames.append(frame)
        rows_in += frame.height
    if raw:
        from crimecast.data.prepare import prepare_incidents

        result = prepare_incidents(list(raw), schema, cleaning, encoding=encoding)
        frames.append(result.clean)
        rows_in += result.report.rows_in
        quarantined += result.quarantine.height
        if result.quarantine.height:
            logger.warning("data store: %d of %d rows quarantined (see crimecast clean for "
                           "the reasons)", result.quarantine.height, result.report.rows_in)
    events = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    events = select_crime_types(events, list(crime_types)).sort("occurred_at")
    logger.info("data store: %d events from %s", events.height, ", ".join(paths))
    return EventStore(events=events, sources=tuple(Path(p).name for p in paths),
                      rows_in=rows_in, rows_quarantined=quarantined)
