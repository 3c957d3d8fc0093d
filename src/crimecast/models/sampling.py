"""Training on what matters: every row with an event, a weighted sample of the empty rows.

A fine grid is mostly empty: at 150 m per 8 hours, well over 99% of (cell, bin)
rows hold no event, and they all look alike. When the training rows exceed
``max_rows``, :func:`sample_training_rows` keeps **every row with an event**
(``target_count > 0``) and a seeded simple random sample of the rows without
one, of size ``n`` out of ``N``. Each sampled empty row then stands for
``N / n`` empty rows: its weight is ``N / n`` (the Horvitz–Thompson weight of
sampling without replacement), event rows weigh 1. So any weighted sum over
the sample is an unbiased estimate of the same sum over the whole panel, and
exact for the number of rows and for every sum that is zero on empty rows
(events, positive labels). Estimators fit with these weights minimise the
same expected loss as on the full panel; the probability calibration uses
them too.

Only training fits on the sample. Validation, evaluation, backtests and
serving always score every unit of every bin.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from crimecast.features.design import WEIGHT

COUNT = "target_count"

logger = logging.getLogger(__name__)


def sample_training_rows(rows: pl.DataFrame, max_rows: int, seed: int) -> pl.DataFrame:
    """``rows`` with a ``_weight`` column; sampled (see module doc) only above ``max_rows``.

    At least as many empty rows as event rows are kept, so the model always sees
    both; row order (by bin) is preserved.
    """
    given = WEIGHT in rows.columns  # a training design (features --rows sampled) is weighted
    if rows.height <= max_rows:
        return rows if given else rows.with_columns(pl.lit(1.0, dtype=pl.Float64).alias(WEIGHT))
    has_event = (rows[COUNT] > 0).to_numpy()
    events, empty = int(has_event.sum()), int((~has_event).sum())
    keep_empty = min(empty, max(max_rows - events, events, 1))
    chosen = np.zeros(rows.height, dtype=bool)
    chosen[has_event] = True
    empty_rows = np.flatnonzero(~has_event)
    picked = np.random.default_rng(seed).choice(empty_rows, size=keep_empty, replace=False)
    chosen[picked] = True
    weight = np.where(has_event, 1.0, empty / keep_empty)
    if given:
        weight = weight * rows[WEIGHT].to_numpy()
    sampled = rows.with_columns(pl.Series(WEIGHT, weight)).filter(pl.Series(chosen))
    logger.info("training on %d of %d rows: all %d with events and %d of %d empty ones "
                "(weight %.2f each)", sampled.height, rows.height, events, keep_empty, empty,
                empty / keep_empty)
    return sampled
