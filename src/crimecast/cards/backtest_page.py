"""``backtest.html``: the rolling-origin backtest as plots a commander and an analyst read.

Hit rate and PAI against the share of the area flagged (0.5% to 20%) for every
forecaster, PAI at 1% per origin over time, a predicted-versus-actual map of one forecast
period, and the hit rate by area (or why an area has none). Pure: the CLI passes the
backtest's predictions and report and the unit table, and writes the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import shapely
from matplotlib import colormaps
from matplotlib.colors import Normalize

from crimecast.cards.plots import (
    PALETTE,
    area_curves_img,
    as_img,
    fill_shapes,
    new_figure,
    no_data,
    page,
    section,
    set_lonlat_aspect,
    table,
)
from crimecast.evaluation.hotspot import hotspot_curve, hotspot_metrics, hotspot_metrics_by

AREA_SHARE = 0.05  # the per-area chart's share of each area


def _style(name: str, highlight: Sequence[str]) -> dict[str, Any]:
    if name in highlight:
        return {"color": PALETTE[highlight.index(name) % len(PALETTE)], "linewidth": 2.2,
                "label": name, "zorder": 3}
    return {"color": "#c4c9d0", "linewidth": 0.8, "zorder": 1}


def curves_section(predictions: pl.DataFrame, areas: pl.DataFrame, highlight: Sequence[str]
                   ) -> tuple[str, str]:
    """Hit rate and PAI against the share of area flagged, one line per forecaster."""
    names = predictions["model"].unique().sort().to_list()
    curves = {name: hotspot_curve(predictions.filter(pl.col("model") == name), areas)
              .to_dict(as_series=False) for name in names}
    words = (f"Every forecaster ({len(names)}; the named ones in colour, the rest grey), "
             "averaged over the forecast periods with crimes. Higher is better: a curve "
             "above another catches more crime in the same area. PAI 1 is chance.")
    return words, area_curves_img(curves, highlight)


def origins_section(predictions: pl.DataFrame, areas: pl.DataFrame,
                    highlight: Sequence[str]) -> tuple[str, str]:
    """PAI at 1% per origin for the named forecasters."""
    origins = predictions["origin"].unique().sort().to_list()
    figure = new_figure(10.0, 3.2)
    axes = figure.axes[0]
    for name in highlight:
        rows = predictions.filter(pl.col("model") == name)
        if rows.height == 0:
            continue
        values = [hotspot_metrics(rows.filter(pl.col("origin") == o), areas)["pai@1%"]["value"]
                  for o in origins]
        axes.plot(origins, [np.nan if v is None else v for v in values], marker="o",
                  **_style(name, highlight))
    axes.set_ylabel("PAI at 1% of the area")
    axes.tick_params(axis="x", labelrotation=30)
    axes.legend(loc="best", frameon=False, fontsize=8)
    words = (f"PAI at 1% of the area at each of the {len(origins)} origins (each forecaster "
             "retrained there). Spread between origins shows how much one week's number "
             "can be trusted.")
    return words, as_img(figure, "PAI per origin over time")


def map_section(predictions: pl.DataFrame, units: pl.DataFrame, model: str,
                period: dt.datetime | None) -> tuple[str, str]:
    """The forecast of ``model`` beside the crimes that followed, for one period."""
    rows = predictions.filter(pl.col("model") == model)
    if rows.height == 0:
        return "", no_data(f"No predictions of {model}.")
    if period is None:  # the busiest period of the last origin
        last = rows.filter(pl.col("origin") == rows["origin"].max())
        period = (last.group_by("bin_start").agg(n=pl.col("actual_count").sum())
                  .sort(["n", "bin_start"], descending=[True, False])["bin_start"][0])
    chosen = rows.filter(pl.col("bin_start") == period)
    if chosen.height == 0:
        return "", no_data(f"No forecast period starts at {period}.")
    shapes = units.select("unit_id", "wkt").join(chosen, on="unit_id", how="inner")
    geometries = shapely.from_wkt(shapes["wkt"].to_list())
    figure = new_figure(10.0, 5.0, ncols=2)
    for axes, column, title, cmap in (
            (figure.axes[0], "score", f"forecast ({model})", "YlOrRd"),
            (figure.axes[1], "actual_count", "crimes that happened", "Blues")):
        values = shapes[column].cast(pl.Float64).to_numpy()
        norm = Normalize(float(np.nanmin(values)), float(np.nanmax(values)) or 1.0)
        fill_shapes(axes, geometries, colormaps[cmap](norm(values)), linewidths=0.2,
                    edgecolors="#999999")
        axes.set_title(title)
        axes.set_axis_off()
        set_lonlat_aspect(axes, shapely.get_coordinates(geometries)[:, 1])
    crimes = int(chosen["actual_count"].sum())
    top = chosen.sort("score", descending=True).head(max(1, chosen.height // 100))
    caught = int(top["actual_count"].sum())
    words = (f"The period starting {period:%a %d %b %Y %H:%M}: {crimes} crimes; the 1% of "
             f"places ranked highest ({top.height}) held {caught} of them.")
    return words, as_img(figure, "predicted versus actual map")


def area_section(predictions: pl.DataFrame, areas: pl.DataFrame, model: str) -> tuple[str, str]:
    """Hit rate at 5% of each area's own area, for one forecaster; areas too coarse for a
    5% share say so instead of showing n/a."""
    rows = predictions.filter(pl.col("model") == model)
    result = hotspot_metrics_by(rows, areas.select("unit_id", "area_km2"), by="region",
                                shares=(AREA_SHARE,))
    counts = areas.group_by("region").agg(units=pl.len())
    lines, labels, values = [], [], []
    for row in counts.sort("region").iter_rows(named=True):
        block = result.get(str(row["region"]), {})
        value = block.get("hit_rate@5%", {}).get("value")
        flagged = block.get("area_share@5%", {}).get("value")
        # The first place is always flagged: where it alone is far over 5% of the area, a
        # "hit rate at 5%" would be that place's share of everything, not a forecast.
        if value is None or (flagged is not None and flagged > 2 * AREA_SHARE):
            why = (f"its places are too large (the first flagged is {flagged:.0%} of it)"
                   if flagged is not None else "no crimes in the test periods")
            lines.append((row["region"], row["units"], f"n/a: {why}"))
        else:
            labels.append(str(row["region"]))
            values.append(value * 100)
            lines.append((row["region"], row["units"], f"{value:.1%}"))
    if not values:
        return ("Every area is a single unit or too coarse for 5% of it to be flagged: "
                "per-area hit rates need smaller places (grid cells).",
                table(["area", "units", f"hit rate at 5% ({model})"], lines))
    figure = new_figure(8.0, 0.6 + 0.25 * len(values))
    axes = figure.axes[0]
    axes.barh(labels[::-1], values[::-1], color=PALETTE[0])
    axes.set_xlabel(f"% of the area's crimes in its top 5% ({model})")
    words = ("Hit rate at 5% of each area's own area: how the forecast serves each division. "
             "Large differences deserve a look before deployment.")
    return words, as_img(figure, "hit rate by area") + table(
        ["area", "units", f"hit rate at 5% ({model})"], lines)


def backtest_html(predictions: pl.DataFrame, report: dict[str, Any], units: pl.DataFrame,
                  highlight: Sequence[str], map_model: str,
                  period: dt.datetime | None = None) -> str:
    """The page. ``units`` is the unit table (``unit_id, region, area_km2, wkt``);
    ``highlight`` the forecasters drawn in colour; ``map_model`` the one mapped."""
    areas = units.select("unit_id", "area_km2", "region")
    present = [h for h in highlight if h in set(predictions["model"].unique().to_list())]
    sections = [
        ("Hit rate and PAI against the share of area flagged",
         *curves_section(predictions, areas, present)),
        ("PAI per origin", *origins_section(predictions, areas, present)),
        ("Forecast and what happened", *map_section(predictions, units, map_model, period)),
        ("By area", *area_section(predictions, areas, map_model)),
    ]
    intervals = report.get("intervals", {}).get("pai@1%", {})
    ratios = [(name, f"{v['value']:.2f}", f"{v['ci95'][0]:.2f} to {v['ci95'][1]:.2f}",
               f"{v['ratio_to_best_naive']:.2f}",
               f"{v['ratio_ci95'][0]:.2f} to {v['ratio_ci95'][1]:.2f}")
              for name, v in sorted(intervals.items(), key=lambda kv: -kv[1]["value"])
              if name in present]
    origins = report.get("origins", [])
    body = "".join(section(*parts) for parts in sections)
    summary = table(["forecaster", "PAI@1%", "95% interval", "ratio to best naive",
                     "ratio 95% interval"], ratios)
    return page("crimecast: backtest", f"""<h1>Backtest: {len(origins)} origins, \
{report.get('forecast_bins', 0):,} forecast periods, {report.get('units', 0):,} places</h1>
<p>Every forecaster retrained at each origin exactly as <code>crimecast run</code> trains,
then scored on the periods that followed. The champion is chosen on validation at each
origin, never on these numbers; "naive_best" is the best simple rule chosen the same way.</p>
{summary}
{body}""")
