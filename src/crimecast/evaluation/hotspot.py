"""Field measures of a hotspot forecast: hit rate, PAI and PEI* at a share of the area.

Every measure is computed **per time bin and then averaged over bins**. In each
bin the units are ranked by ``score`` (descending; ties by ``unit_id``
ascending, so results never depend on row order; a missing or NaN score ranks last)
and selected in rank order while the area selected *before* a unit is still
below the budget ``share × total study area``. The selection therefore always
holds at least one unit and reaches or overshoots the budget by less than one
unit: 1% of a city of 21 divisions is one whole division, so the *actual*
selected share ``a`` is what the measures divide by, and ``area_share@1%``
reports its mean.

* **hit rate** ``h = n / N``: events in the selected units ``n`` over all events
  in the bin ``N``.
* **PAI**, the Predictive Accuracy Index (Chainey, Tompson & Uhlig 2008, "The
  utility of hotspot mapping for predicting spatial patterns of crime",
  *Security Journal* 21): ``PAI = h / a``, the hit rate per unit of area share;
  1 is no better than picking places at random.
* **PEI***, the Predictive Efficiency Index as modified by Hunt (2016, "Do crime
  hot spots move?", NIJ) after Mohler et al. (2011, 2015): ``PEI* = n / n*``,
  where ``n*`` is what an oracle captures with the same rule and budget, ranking
  units by the bin's actual count (descending; ties by ``unit_id``). With
  equal-sized units (grid cells, H3 hexagons) the oracle's selection is optimal
  and ``0 <= PEI* <= 1``. With unequal units (divisions, districts) the greedy
  oracle need not be the most events that fit the budget and its selection's
  area differs from the model's, so PEI* can exceed 1 there.

Bins without a single event have no hit rate, PAI or PEI* (``n / 0``); they are
left out of every average and counted in ``bins_without_events`` (with
non-negative counts these are exactly the bins where the oracle captures
nothing). Each measure is reported as ``{"value": mean over evaluated bins,
"standard_deviation": population standard deviation over those bins}``.

The total study area is the sum of ``area_km2`` over *every* unit of
``unit_areas``, including units absent from the predictions; within a group
(:func:`hotspot_metrics_by`) it is the area of the group's own units.
Everything is one sort per ranking and group-wise cumulative sums in Polars:
no Python loop over bins or units.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from crimecast.errors import DataError
from crimecast.evaluation.metrics import json_float
from crimecast.evaluation.threads import thread_map

logger = logging.getLogger(__name__)

DEFAULT_SHARES: tuple[float, ...] = (0.01, 0.05, 0.10)
HOTSPOT_MEASURES: tuple[str, ...] = ("hit_rate", "pai", "pei_star", "area_share")
REQUIRED_COLUMNS: tuple[str, ...] = ("unit_id", "bin_start", "score", "actual_count")

# Budgets are compared with a tolerance relative to the total area so that a
# cumulative area equal to the budget up to float rounding counts as "reached".
_AREA_TOLERANCE = 1e-9
_BIN = "bin_start"


def share_label(share: float) -> str:
    """``0.01 -> "1%"``, ``0.1 -> "10%"``, ``0.025 -> "2.5%"``: the suffix of the metric keys."""
    return f"{round(share * 100, 6):g}%"


def metric_keys(shares: Sequence[float] = DEFAULT_SHARES) -> list[str]:
    """The per-share keys of :func:`hotspot_metrics`, e.g. ``"pai@5%"``, in report order."""
    return [f"{measure}@{share_label(s)}" for s in shares for measure in HOTSPOT_MEASURES]


def _check_shares(shares: Sequence[float]) -> list[float]:
    checked = [float(s) for s in shares]
    if not checked or any(not (0.0 < s <= 1.0) for s in checked):
        raise DataError(
            f"shares must be fractions of the study area in (0, 1]; got {list(shares)}. "
            "Pass e.g. shares=(0.01, 0.05, 0.10)."
        )
    if len({share_label(s) for s in checked}) != len(checked):
        raise DataError(f"shares must be distinct; got {list(shares)}.")
    return checked


def _check_areas(unit_areas: pl.DataFrame) -> pl.DataFrame:
    """``unit_id, area_km2, unit_rank`` with ``unit_rank`` the unit's place in id order."""
    missing = {"unit_id", "area_km2"} - set(unit_areas.columns)
    if missing:
        raise DataError(
            f"unit_areas lacks column(s) {sorted(missing)}; it needs unit_id and area_km2 "
            "for every unit of the study area."
        )
    areas = unit_areas.select(
        pl.col("unit_id").cast(pl.String), pl.col("area_km2").cast(pl.Float64)
    )
    if areas.height == 0:
        raise DataError("unit_areas is empty; pass the area of every unit of the study area.")
    if areas["unit_id"].is_duplicated().any():
        dupes = areas.filter(pl.col("unit_id").is_duplicated())["unit_id"].unique().sort()
        raise DataError(
            f"unit_areas lists unit(s) {dupes.head(5).to_list()} more than once; "
            "give each unit exactly one area."
        )
    bad = areas.filter(
        pl.col("area_km2").is_null() | ~pl.col("area_km2").is_finite() | (pl.col("area_km2") <= 0)
    )
    if bad.height:
        raise DataError(
            f"area_km2 must be a positive number for every unit; got {bad.head(5).rows()}."
        )
    return areas.sort("unit_id").with_row_index("unit_rank")


def _prepare(
    frame: pl.DataFrame, areas: pl.DataFrame, by: str | None
) -> pl.DataFrame:
    """The columns the measures need, each row's area, and an integer ``_group`` per (by, bin)."""
    needed = [*REQUIRED_COLUMNS, *([by] if by else [])]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"the predictions frame lacks column(s) {missing}; hotspot measures need {needed}."
        )
    if "model" in frame.columns and frame["model"].n_unique() > 1:
        raise DataError(
            f"hotspot measures take one model's rows; got models "
            f"{sorted(frame['model'].unique().to_list())}. Filter on the model column first."
        )
    keys = [by, _BIN] if by else [_BIN]
    for column in keys:
        if frame[column].null_count():
            raise DataError(f"column {column!r} has missing values; every row needs one.")
    # Sorting on one integer group key is several times faster than on (string, datetime).
    bin_code = pl.col(_BIN).rank("dense").cast(pl.Int64) - 1
    group = bin_code
    if by:
        group = pl.col(by).cast(pl.String).cast(pl.Categorical).to_physical().cast(
            pl.Int64
        ) * (frame[_BIN].n_unique() + 1) + bin_code
    base = frame.with_row_index("_row").select(
        "_row",
        *keys,
        pl.col("unit_id").cast(pl.String),
        pl.col("score").cast(pl.Float64).fill_nan(None),
        pl.col("actual_count").cast(pl.Int64),
        group.alias("_group"),
    ).join(areas, on="unit_id", how="left")
    unknown = base.filter(pl.col("area_km2").is_null())["unit_id"].unique().sort()
    if unknown.len():
        raise DataError(
            f"{unknown.len()} unit(s) of the predictions have no area in unit_areas, e.g. "
            f"{unknown.head(5).to_list()}; unit_areas must cover every unit."
        )
    count = pl.col("actual_count")
    if base.select(count.is_null().any() | (count < 0).any()).item():
        raise DataError("actual_count must be a non-negative event count in every row.")
    per_bin = base.group_by(_BIN).agg(rows=pl.len(), units=pl.col("unit_rank").n_unique())
    if per_bin.select((pl.col("rows") != pl.col("units")).any()).item():
        raise DataError(
            "each (unit_id, bin_start) must appear once; got duplicate rows. "
            "Pass one row per unit and bin."
        )
    return base


def _leading(rows: pl.DataFrame, rank_column: str, limits: list[pl.Expr]) -> pl.DataFrame:
    """The rows of each ``_group`` that can lie under the largest limit, and no others to
    sort: a unit is chosen only while the area ranked before it is below the limit, so at
    most ``k = largest limit / smallest area + 1`` units are (areas are positive). Each
    group keeps its rows ranked at or above its ``k``-th (ties included: a prefix of the
    full ranking, so every cumulative area and every sum is the same bit for bit), or all
    of them when it has fewer than ``k`` ranked rows."""
    bound = rows.select(pl.max_horizontal(*limits).max() / pl.col("area_km2").min()).item()
    if bound is None or not bound < rows.height:
        return rows
    k = int(bound) + 2  # one more for the rounding of the cumulative areas
    score = pl.col(rank_column)
    return rows.filter((score >= score.top_k(k).min().over("_group"))
                       | (score.count().over("_group") < k))


def _captured(
    base: pl.DataFrame, rank_column: str, limits: list[pl.Expr], prefix: str
) -> pl.DataFrame:
    """Per ``_group``: events (and area) of the units selected under each limit."""
    needed = dict.fromkeys(["_group", rank_column, "unit_rank", "area_km2", "actual_count",
                            "total_area_km2"])
    ranked = _leading(base.select(*needed), rank_column, limits).sort(
        ["_group", rank_column, "unit_rank"], descending=[False, True, False], nulls_last=True
    ).with_columns(
        _before=pl.col("area_km2").cum_sum().over("_group") - pl.col("area_km2")
    )
    aggregations: list[pl.Expr] = []
    for i, limit in enumerate(limits):
        chosen = pl.col("_before") < limit
        aggregations.append(pl.col("actual_count").filter(chosen).sum().alias(f"{prefix}n_{i}"))
        if prefix == "model_":
            aggregations.append(pl.col("area_km2").filter(chosen).sum().alias(f"area_{i}"))
    return ranked.group_by("_group").agg(aggregations)


@dataclass(frozen=True)
class SharedRows:
    """What every forecaster scored on the same rows shares: the checked rows (without a
    score), the per-bin events and the oracle's catch."""

    base: pl.DataFrame
    keys: list[str]
    shares: list[float]
    limits: list[pl.Expr]
    events: pl.DataFrame


def _shared(frame: pl.DataFrame, unit_areas: pl.DataFrame, shares: Sequence[float],
            by: str | None) -> SharedRows:
    checked = _check_shares(shares)
    areas = _check_areas(unit_areas)
    base = _prepare(frame, areas, by)
    keys = [by, _BIN] if by else [_BIN]
    if by:
        # Summed in unit order, one unit after the other: a hash group's sum adds in whatever
        # order its threads meet the rows, so the last bits of a total varied between runs.
        totals = (
            base.select(by, "unit_rank", "area_km2")
            .unique([by, "unit_rank"])
            .sort(by, "unit_rank")
            .group_by(by, maintain_order=True)
            .agg(total_area_km2=pl.col("area_km2").cum_sum().last())
        )
        base = base.join(totals, on=by, how="left")
    else:
        base = base.with_columns(total_area_km2=pl.lit(float(areas["area_km2"].sum())))
    total = pl.col("total_area_km2")
    limits = [total * (s - _AREA_TOLERANCE) for s in checked]

    events = base.group_by("_group").agg(
        *(pl.col(k).first() for k in keys),
        events=pl.col("actual_count").sum(),
        total_area_km2=total.first(),
    )
    # Units without events rank after all others in the oracle's order, so they
    # cannot change what it captures: leave them out of its (much smaller) sort.
    oracle = _captured(base.filter(pl.col("actual_count") > 0), "actual_count", limits, "oracle_")
    return SharedRows(base, keys, checked, limits,
                   events.join(oracle, on="_group", how="left"))


def _measured(shared: SharedRows, base: pl.DataFrame) -> pl.DataFrame:
    """The per-bin measures of the forecaster whose ``score`` column ``base`` holds."""
    model = _captured(base, "score", shared.limits, "model_")
    joined = shared.events.join(model, on="_group", how="left")
    total = pl.col("total_area_km2")
    has_events = pl.col("events") > 0
    measures: list[pl.Expr] = []
    for i, share in enumerate(shared.shares):
        label = share_label(share)
        hit = pl.col(f"model_n_{i}") / pl.col("events")
        area_share = pl.col(f"area_{i}") / total
        pei = pl.when(pl.col(f"oracle_n_{i}") > 0).then(
            pl.col(f"model_n_{i}") / pl.col(f"oracle_n_{i}")
        )
        measures += [
            pl.when(has_events).then(hit).alias(f"hit_rate@{label}"),
            pl.when(has_events).then(hit / area_share).alias(f"pai@{label}"),
            pl.when(has_events).then(pei).alias(f"pei_star@{label}"),
            pl.when(has_events).then(area_share).alias(f"area_share@{label}"),
        ]
    keys = shared.keys
    return joined.select(*keys, "events", "total_area_km2", *measures).sort(keys)


def shared_rows(frame: pl.DataFrame, unit_areas: pl.DataFrame,
                shares: Sequence[float] = DEFAULT_SHARES, by: str | None = None) -> SharedRows:
    """What :func:`hotspot_per_bin` of ``frame`` shares with every other forecaster's
    frame holding the same rows: feed each one's scores to :func:`measured_with`. Its
    rows keep only the columns the ranking reads (a forecaster's block holds it)."""
    shared = _shared(frame, unit_areas, shares, by)
    slim = shared.base.select("_row", "_group", "unit_rank", "area_km2", "actual_count",
                              "total_area_km2")
    return dataclasses.replace(shared, base=slim)


def measured_with(shared: SharedRows, score: pl.Series, index: pl.Series) -> pl.DataFrame:
    """:func:`hotspot_per_bin` of the rows behind ``shared`` scored by ``score``, where
    ``index`` gives the position in ``score`` of each row of ``shared.base``."""
    score = score.cast(pl.Float64).fill_nan(None).gather(index)
    return _measured(shared, shared.base.with_columns(score=score))


def hotspot_per_bin(
    frame: pl.DataFrame,
    unit_areas: pl.DataFrame,
    shares: Sequence[float] = DEFAULT_SHARES,
    by: str | None = None,
) -> pl.DataFrame:
    """One row per bin (per ``by`` group and bin) with ``events`` and every measure.

    Columns: ``[by,] bin_start, events, total_area_km2`` and for each share the
    keys of :func:`metric_keys` (``hit_rate@1%`` …), null where the bin has no
    events. With ``by`` (e.g. ``"region"``) units are ranked within their group
    and the study area is the area of the group's units that appear in ``frame``.
    """
    shared = _shared(frame, unit_areas, shares, by)
    return _measured(shared, shared.base)


SAME_ROWS: tuple[str, ...] = ("unit_id", "bin_start", "actual_count")


def hotspot_per_bin_of(
    frames: Mapping[str, pl.DataFrame],
    unit_areas: pl.DataFrame,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, pl.DataFrame]:
    """:func:`hotspot_per_bin` of every forecaster's rows, ``{name: per-bin frame}``.

    Frames holding the first one's rows (:data:`SAME_ROWS`) in the same order, as
    :func:`~crimecast.evaluation.predict.predictions_frame` lays every forecaster's
    out, share its checks, per-bin events and oracle; any other is computed alone.
    """
    if not frames:
        return {}
    first = next(iter(frames.values()))
    shared = _shared(first, unit_areas, shares, None)
    same = first.select(SAME_ROWS)

    def per_bin(frame: pl.DataFrame) -> pl.DataFrame:
        if frame is first:
            return _measured(shared, shared.base)
        if frame.select(SAME_ROWS).equals(same) and "score" in frame.columns and (
                "model" not in frame.columns or frame["model"].n_unique() == 1):
            return measured_with(shared, frame["score"], shared.base["_row"])
        return hotspot_per_bin(frame, unit_areas, shares)

    return dict(zip(frames, thread_map(per_bin, frames.values()), strict=True))


def _summary_expressions(shares: Sequence[float]) -> list[pl.Expr]:
    evaluated = pl.col("events") > 0
    expressions: list[pl.Expr] = [
        evaluated.sum().alias("bins_evaluated"),
        (~evaluated).sum().alias("bins_without_events"),
    ]
    for key in metric_keys(shares):
        values = pl.col(key).filter(evaluated & pl.col(key).is_not_null())
        expressions += [values.mean().alias(f"{key}|mean"), values.std(ddof=0).alias(f"{key}|sd")]
    return expressions


def _summary_dict(row: dict[str, Any], shares: Sequence[float]) -> dict[str, Any]:
    result: dict[str, Any] = {
        key: {
            "value": json_float(row[f"{key}|mean"]),
            "standard_deviation": json_float(row[f"{key}|sd"]),
        }
        for key in metric_keys(shares)
    }
    result["bins_evaluated"] = int(row["bins_evaluated"] or 0)
    result["bins_without_events"] = int(row["bins_without_events"] or 0)
    return result


def summarise_per_bin(
    per_bin: pl.DataFrame, shares: Sequence[float] = DEFAULT_SHARES, by: str | None = None,
) -> Any:
    """The summary of :func:`hotspot_metrics` (or, with ``by``, of :func:`hotspot_metrics_by`)
    from the per-bin rows of :func:`hotspot_per_bin`, e.g. concatenated over time blocks."""
    if by is None:
        return _summary_dict(per_bin.select(_summary_expressions(shares)).row(0, named=True),
                             shares)
    summary = per_bin.group_by(by).agg(_summary_expressions(shares)).sort(by)
    return {str(row[by]): _summary_dict(row, shares) for row in summary.iter_rows(named=True)}


def hotspot_metrics(
    frame: pl.DataFrame,
    unit_areas: pl.DataFrame,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, Any]:
    """Hit rate, PAI, PEI* and actual area share at each share, averaged over bins.

    ``frame`` holds one model's rows (``unit_id``, ``bin_start``, ``score``,
    ``actual_count``); ``unit_areas`` (``unit_id``, ``area_km2``) covers every
    unit of the study area. Returns ``{"hit_rate@1%": {"value", "standard_deviation"},
    "pai@1%": …, "pei_star@1%": …, "area_share@1%": …, … , "bins_evaluated": n,
    "bins_without_events": n}``; see the module docstring for the definitions.
    """
    result: dict[str, Any] = summarise_per_bin(hotspot_per_bin(frame, unit_areas, shares),
                                               shares)
    return result


def hotspot_metrics_by(
    frame: pl.DataFrame,
    unit_areas: pl.DataFrame,
    by: str,
    shares: Sequence[float] = DEFAULT_SHARES,
) -> dict[str, dict[str, Any]]:
    """:func:`hotspot_metrics` for each value of column ``by``, ranked within the group.

    Each group's study area is the total area of its own units; all groups are
    computed in one pass. Keys are the group values as strings.
    """
    result: dict[str, dict[str, Any]] = summarise_per_bin(
        hotspot_per_bin(frame, unit_areas, shares, by=by), shares, by)
    return result


CURVE_SHARES: tuple[float, ...] = tuple(round(0.005 * k, 3) for k in range(1, 41))  # to 20%
# Every share a report and its curves read (the curves' include the report's).
REPORT_SHARES: tuple[float, ...] = tuple(sorted({*CURVE_SHARES, *DEFAULT_SHARES}))


def hotspot_curve(frame: pl.DataFrame, unit_areas: pl.DataFrame,
                  shares: Sequence[float] = CURVE_SHARES) -> pl.DataFrame:
    """Hit rate, PAI and PEI* against the share of the area flagged (0.5% to 20% by
    default), each the mean over the bins with events: the curves the card and the
    backtest page draw. Columns ``share, hit_rate, pai, pei_star``."""
    return curve_of_per_bin(hotspot_per_bin(frame, unit_areas, shares), shares)


def curve_of_per_bin(per_bin: pl.DataFrame,
                     shares: Sequence[float] = CURVE_SHARES) -> pl.DataFrame:
    """:func:`hotspot_curve` from the per-bin rows of :func:`hotspot_per_bin` computed at
    (at least) ``shares``, e.g. concatenated over the blocks of a streamed evaluation."""
    summary = summarise_per_bin(per_bin, shares)
    return pl.DataFrame({
        "share": [float(s) for s in shares],
        **{measure: [summary[f"{measure}@{share_label(s)}"]["value"] for s in shares]
           for measure in ("hit_rate", "pai", "pei_star")},
    }, schema_overrides={m: pl.Float64 for m in ("hit_rate", "pai", "pei_star")})
