"""Time bins: integer bin indices for 1h, 8h/12h shifts, 1d and 7d.

A bin index ``b`` covers ``[origin + b*step, origin + (b+1)*step)``. The origin is
Monday 1970-01-05 at ``shift_start_hour`` for shifts (00:00 otherwise), so days
start at midnight, weeks on Monday, and 8h/12h shifts at the configured hour
(e.g. 06:00-14:00-22:00). All arithmetic is on integers, which keeps the as-of
rules exact.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import polars as pl

from crimecast.errors import ConfigError

STEPS_HOURS: dict[str, int] = {"1h": 1, "8h": 8, "12h": 12, "1d": 24, "7d": 168}
_EPOCH_MONDAY = dt.datetime(1970, 1, 5)


@dataclass(frozen=True)
class TimeBinning:
    """How timestamps map to bins."""

    every: str = "1h"
    shift_start_hour: int = 0

    def __post_init__(self) -> None:
        if self.every not in STEPS_HOURS:
            raise ConfigError(
                f"time_bin must be one of {', '.join(STEPS_HOURS)}; got '{self.every}'. "
                "Pass --time-bin 1h."
            )
        if not 0 <= self.shift_start_hour <= 23:
            raise ConfigError(
                f"shift_start_hour must be between 0 and 23; got {self.shift_start_hour}. "
                "Pass --shift-start-hour 6."
            )

    @property
    def hours(self) -> int:
        """Length of one bin in hours."""
        return STEPS_HOURS[self.every]

    @property
    def step(self) -> dt.timedelta:
        """Length of one bin."""
        return dt.timedelta(hours=self.hours)

    @property
    def origin(self) -> dt.datetime:
        """Start of bin 0."""
        offset = self.shift_start_hour if self.every in ("8h", "12h") else 0
        return _EPOCH_MONDAY + dt.timedelta(hours=offset)

    def bins_for(self, duration: dt.timedelta) -> int:
        """Whole bins covering ``duration`` (at least 1)."""
        return max(1, math.ceil(duration / self.step))

    def index(self, column: str | pl.Expr) -> pl.Expr:
        """Bin index (Int64) of a Datetime expression; floor division, so exact."""
        expr = pl.col(column) if isinstance(column, str) else column
        micros = (expr - pl.lit(self.origin)).dt.total_microseconds()
        return (micros // (self.hours * 3_600_000_000)).cast(pl.Int64)

    def index_of(self, moment: dt.datetime) -> int:
        """Bin index of one timestamp."""
        return int((moment - self.origin) // self.step)

    def start(self, index: str | pl.Expr) -> pl.Expr:
        """Bin start (Datetime) of an index expression."""
        expr = pl.col(index) if isinstance(index, str) else index
        return pl.lit(self.origin) + pl.duration(hours=expr * self.hours)

    def start_of(self, index: int) -> dt.datetime:
        """Bin start of one index."""
        return self.origin + index * self.step

    def first_index_at_or_after(self, column: str | pl.Expr) -> pl.Expr:
        """Smallest bin index whose start is at or after the given Datetime."""
        expr = pl.col(column) if isinstance(column, str) else column
        micros = (expr - pl.lit(self.origin)).dt.total_microseconds()
        step = self.hours * 3_600_000_000
        return (-((-micros) // step)).cast(pl.Int64)
