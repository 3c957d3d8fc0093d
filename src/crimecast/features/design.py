"""The training design of a large panel, built without the panel.

A fine grid is mostly empty: at 150 m per 8 hours well over 99% of (cell, bin)
rows hold no event, and they all look alike. The design keeps **every row with
an event** and a seeded simple random sample of ``n`` of the ``N`` empty rows;
each sampled empty row weighs ``N / n`` (the Horvitz–Thompson weight of sampling
without replacement), each event row 1. Any weighted sum over the design is an
unbiased estimate of the same sum over the whole panel, and exact for the number
of rows and for every sum that is zero on empty rows (events, positive labels);
estimators fitted with these weights minimise the same expected loss as on the
whole panel (:mod:`crimecast.models.sampling` applies the same rule to a panel
that is already in memory).

When the event rows alone exceed half the design (10M events at 250 m × 8 h hold
about 8M), they are sampled the same way: ``m`` of the ``E`` event rows, each
weighing ``E / m`` (two strata, each a simple random sample, so the estimator is
still unbiased; sums over event rows are then estimates, not exact).

The rows are chosen from the events alone (which cells hold an event, and the
rank of each sampled empty cell among the empty ones), then the event-indexed
engine (:func:`crimecast.features.build.build_rows`) computes their features and
labels: cost grows with the events and the design's rows, never with units × bins.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from crimecast.config import FeatureConfig
from crimecast.executor import SERIAL, Executor
from crimecast.features.build import PanelInputs, build_rows, warm
from crimecast.features.context import pairs_panel_wide
from crimecast.features.excitation import params_of
from crimecast.features.trigger import TRIGGER_CUTOFF

logger = logging.getLogger(__name__)

WEIGHT = "_weight"
CHUNK_ROWS = 1_250_000
SPAN_DAYS = 365  # a chunk's time span when blocks build their own event pairs


@dataclass(frozen=True)
class Design:
    """Rows of the design (sorted by bin, then unit) and how they were drawn."""

    unit: np.ndarray
    bin: np.ndarray
    weight: np.ndarray
    panel_rows: int
    event_rows: int
    empty_rows: int
    sampled_empty: int
    sampled_events: int

    def describe(self) -> dict[str, float | int | str]:
        """JSON-ready summary for ``features_meta.json``."""
        return {"kind": "events plus a weighted sample of empty rows",
                "panel_rows": self.panel_rows, "event_rows": self.event_rows,
                "sampled_event_rows": self.sampled_events,
                "event_weight": (self.event_rows / self.sampled_events
                                 if self.sampled_events else 0.0),
                "empty_rows": self.empty_rows, "sampled_empty_rows": self.sampled_empty,
                "empty_weight": (self.empty_rows / self.sampled_empty
                                 if self.sampled_empty else 0.0)}


def uses_design(config: FeatureConfig, panel_rows: float) -> bool:
    """Whether a panel of ``panel_rows`` rows is built as a training design rather than
    whole: ``features.rows`` ``sampled``, or ``auto`` above ``whole_panel_rows``."""
    if config.rows != "auto":
        return config.rows == "sampled"
    return panel_rows > config.whole_panel_rows


def design_rows(inputs: PanelInputs, max_rows: int, seed: int, first: int | None = None,
                last: int | None = None) -> Design:
    """Every panel row with an event plus a seeded sample of the empty ones (module doc),
    over bins ``first..last`` (default: the whole panel).

    At least as many empty rows as event rows are kept, and up to ``max_rows`` rows
    in all; a panel of at most ``max_rows`` rows is kept whole (weights 1). Event rows
    beyond half of ``max_rows`` are sampled too.
    """
    panel = inputs.panel
    lo = panel.first_bin if first is None else first
    hi = panel.last_bin if last is None else last
    n_units = panel.n_units
    total = n_units * (hi - lo + 1)
    occ, unit = inputs.events["occ"].to_numpy(), inputs.events["_u"].to_numpy()
    inside = (occ >= lo) & (occ <= hi)
    events = np.unique((occ[inside] - lo) * n_units + unit[inside])
    empty = total - events.size
    whole = total <= max_rows
    kept_events = events.size if whole else min(events.size, max(max_rows // 2, 1))
    keep = empty if whole else min(empty, max(max_rows - kept_events, kept_events, 1))
    rng = np.random.default_rng(seed)
    ranks = np.sort(rng.choice(empty, size=keep, replace=False))
    # The r-th empty cell is r plus the number of event cells at or before it.
    before = events - np.arange(events.size)
    chosen = ranks + np.searchsorted(before, ranks, side="right")
    sampled = events if kept_events == events.size else np.sort(
        rng.choice(events, size=kept_events, replace=False))
    cells = np.concatenate([sampled, chosen])
    weight = np.concatenate([np.full(kept_events, events.size / max(kept_events, 1)),
                             np.full(keep, empty / keep if keep else 0.0)])
    order = np.argsort(cells, kind="stable")
    cells, weight = cells[order], weight[order]
    logger.info("training design: %d of %d rows with events (weight %.2f each) and %d of %d "
                "empty rows (weight %.2f each), %d rows of a %d-row panel", kept_events,
                events.size, events.size / max(kept_events, 1), keep, empty,
                empty / keep if keep else 0.0, cells.size, total)
    return Design(unit=cells % n_units, bin=cells // n_units + lo, weight=weight,
                  panel_rows=total, event_rows=int(events.size), empty_rows=int(empty),
                  sampled_empty=int(keep), sampled_events=int(kept_events))


def _chunk(inputs: PanelInputs, part: tuple[np.ndarray, np.ndarray, np.ndarray]
           ) -> pl.DataFrame:
    unit, bin_, weight = part
    return build_rows(inputs, unit, bin_).with_columns(pl.Series(WEIGHT, weight))


def chunk_span_bins(inputs: PanelInputs) -> int | None:
    """The most bins one chunk of rows may span: a year when the panel's event pairs are
    built per block (:func:`crimecast.features.context.pairs_panel_wide`), so a chunk's
    pairs cover about a year and a half of events (its year and the SEPP epoch before);
    otherwise any."""
    config = inputs.config
    radius = max(TRIGGER_CUTOFF * params_of(config).sigma_m, config.near_repeat_radius_m)
    if pairs_panel_wide(inputs.events.height, inputs.units, radius):
        return None
    return max(1, inputs.binning.bins_for(dt.timedelta(days=SPAN_DAYS)))


def design_chunks(inputs: PanelInputs, design: Design, executor: Executor | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> Iterator[list[pl.DataFrame]]:
    """The design's rows with every feature, label and ``_weight``, in chunks of consecutive
    rows (so each chunk spans a stretch of time, at most :func:`chunk_span_bins`) computed
    through ``executor``, one round of a chunk per worker at a time (memory: one chunk per
    worker), in row order."""
    runner = executor or SERIAL
    size = max(1, min(chunk_rows, -(-design.unit.size // max(runner.workers, 1))))
    cuts = set(range(0, design.unit.size, size))
    span = chunk_span_bins(inputs)
    if span is not None and design.bin.size:
        edges = np.arange(int(design.bin[0]), int(design.bin[-1]) + 1, span)
        cuts.update(np.searchsorted(design.bin, edges).tolist())
    bounds = sorted(cuts | {design.unit.size})
    parts = [(design.unit[a:b], design.bin[a:b], design.weight[a:b])
             for a, b in itertools.pairwise(bounds) if b > a]
    if runner.workers > 1 and len(parts) > 1:
        warm(inputs)
    for start in range(0, len(parts), runner.workers):
        yield runner.map(_chunk, parts[start:start + runner.workers], shared=inputs)


def build_design(inputs: PanelInputs, design: Design, executor: Executor | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> list[pl.DataFrame]:
    """All chunks of :func:`design_chunks` (in memory: for tests and small designs)."""
    return [frame for frames in design_chunks(inputs, design, executor, chunk_rows)
            for frame in frames]
