"""Forecast-log rows for what a model answered (see :mod:`crimecast.serving.forecast_log`).

A ranked window (``/hotspots``, ``predict``, ``brief``) gives one row per place of its
top ``top``; an ``/invocations`` answer one row per scored row. The part of a window's
rows that does not change between requests (the model, the window, the places and
their scores) is built once by :func:`window_template` and stamped per answer by
:func:`stamped`, so logging an answer about a known window costs a few microseconds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecast
from crimecast.serving.forecast_log import (
    FORECAST_LOG_SCHEMA,
    TEMPLATE_SCHEMA,
    Rows,
    StampedRows,
)

FRAME_ABOVE = 256  # more scored rows than this are logged as one frame, not row mappings
Row = dict[str, Any]


def new_request_id() -> str:
    """A request id for the log (uuid4, hex)."""
    return uuid.uuid4().hex


def utc_now() -> dt.datetime:
    """When an answer is issued (UTC, microseconds)."""
    return dt.datetime.now(dt.UTC)


def model_identity(bundle: ModelBundle) -> Row:
    """The columns that name the model (and its crime types and kind of place)."""
    audit = bundle.audit()
    return {"model_name": audit["model_name"], "model_version": audit["model_version"],
            "run_id": audit["run_id"], "crimecast_run_id": audit["crimecast_run_id"],
            "crime_types": audit["crime_types"],
            "spatial_unit": bundle.feature_config.spatial_unit}


def window_template(forecast: Forecast, bundle: ModelBundle, top: int) -> pa.Table:
    """The request-independent columns of the ``top`` places of ``forecast``."""
    shared = {**model_identity(bundle), "horizon": forecast.horizon,
              "window_start": forecast.window_start, "window_end": forecast.window_end,
              "data_through": forecast.data_through}
    ranked = forecast.ranked.head(top).select("unit_id", "rank", "score", "expected_count")
    return pa.Table.from_pylist(
        [{**shared, "unit_id": str(unit), "rank": rank, "score": score,
          "expected_count": expected} for unit, rank, score, expected in ranked.iter_rows()],
        schema=TEMPLATE_SCHEMA)


def stamped(template: pa.Table, *, endpoint: str, request_id: str, role: str, served: bool,
            issued_at: dt.datetime) -> StampedRows:
    """``template``'s rows as one answer: when, where, which request and role."""
    return StampedRows(template, (issued_at, endpoint, request_id, role, served))


def invocation_rows(scores: np.ndarray, bundle: ModelBundle, *, request_id: str, role: str,
                    served: bool, issued_at: dt.datetime) -> Rows:
    """One row per scored ``/invocations`` row (``rank`` = its index in the request)."""
    constants: Row = {"issued_at": issued_at, "endpoint": "invocations",
                      "request_id": request_id, "role": role, "served": served,
                      **model_identity(bundle), "horizon": None, "window_start": None,
                      "window_end": None, "data_through": None, "unit_id": None,
                      "expected_count": None}
    values = np.asarray(scores, dtype=np.float64).ravel()
    if len(values) <= FRAME_ABOVE:
        return [{**constants, "rank": i, "score": s} for i, s in enumerate(values.tolist())]
    frame = pl.DataFrame({"rank": np.arange(len(values), dtype=np.int32), "score": values})
    return frame.with_columns(
        pl.lit(value, dtype=FORECAST_LOG_SCHEMA[name]).alias(name)
        for name, value in constants.items()).select(FORECAST_LOG_SCHEMA.names())
