"""The printable shift briefing: one page for the patrol sergeant (``crimecast brief``).

A map of the forecast places (division outlines, each place numbered), the ranked places
with expected crimes and their chance in plain words, the data's freshness, the model's
version and run id, and the limits of the forecast. The same content is written as a
one-page PDF (matplotlib, A4) or as a self-contained printable HTML page; the map needs
no tiles, so the briefing prints anywhere.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import textwrap
from dataclasses import dataclass
from typing import Any

import polars as pl
import shapely
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from crimecast.cards.plots import as_img, draw_outlines, fill_shapes, set_lonlat_aspect
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecast
from crimecast.serving.geojson import UnitShapes, boundaries
from crimecast.serving.state import hotspot_meaning

A4_INCHES = (8.27, 11.69)
COLOURS = ("#7f1d1d", "#dc2626", "#f59e0b", "#fde68a")  # rank quartiles, darkest first


@dataclass(frozen=True)
class Briefing:
    """Everything one page says, in words and rows (the PDF and HTML render the same)."""

    title: str
    lines: list[str]  # freshness, model, window: under the title
    rows: pl.DataFrame  # rank, place, expected, chance
    meaning: str
    limits: list[str]
    forecast: Forecast
    shapes: UnitShapes
    outlines: dict[str, Any]


def _when(moment: dt.datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y %H:%M}"


def _test_accuracy(bundle: ModelBundle) -> str | None:
    metrics = (bundle.evaluation or {}).get("hotspot_metrics", {})
    hit, pai = (metrics.get(k, {}).get("value") for k in ("hit_rate@1%", "pai@1%"))
    if hit is None or pai is None:
        return None
    return (f"In testing on past data, the 1% of the area this model ranked highest held "
            f"{hit:.0%} of the crimes that followed ({pai:.1f} times what 1% of the area "
            "would hold by chance).")


def build_briefing(bundle: ModelBundle, forecast: Forecast, shapes: UnitShapes, top: int,
                   estimated_share: float | None = None,
                   generated: dt.datetime | None = None) -> Briefing:
    """The briefing of ``forecast``'s ``top`` places (pure: no files)."""
    if bundle.unit_table is None:
        raise ValueError("the model has no unit table; a briefing needs the places' shapes.")
    ranked = forecast.ranked.head(top)
    rows = pl.DataFrame({
        "rank": ranked["rank"],
        "place": [shapes.place[u] for u in ranked["unit_id"].to_list()],
        "expected": ranked["expected_count"].round(1),
        "chance": (ranked["score"] * 100).round(0).cast(pl.Int64),
        "unit_id": ranked["unit_id"],
    })
    audit = bundle.audit()
    version = (f"version {audit['model_version']}" if audit["model_version"] is not None
               else "not registered")
    through = (f"{forecast.data_through.day} {forecast.data_through:%b %Y %H:%M}"
               if forecast.data_through else "no data")
    meaning = hotspot_meaning(bundle.feature_config)
    limits = [
        "Places, never people: this says where crime is more likely, not who commits it. "
        "It is no reason to stop or search anyone.",
        "A chance, not a certainty: most listed places will see no crime in this window, "
        "and crime will also happen elsewhere.",
        f"Only crimes reported by {through} are counted; later reports are not.",
    ]
    accuracy = _test_accuracy(bundle)
    if accuracy:
        limits.append(accuracy)
    if estimated_share:
        limits.append(f"{estimated_share:.0%} of the crimes in the data have an estimated "
                      "time (entered on the hour), so short windows are less certain.")
    stamp = generated or dt.datetime.now()
    return Briefing(
        title=(f"Shift briefing: {_when(forecast.window_start)} to "
               + (f"{forecast.window_end:%H:%M}" if forecast.window_end.date()
                  == forecast.window_start.date() else _when(forecast.window_end))
               + f" ({forecast.horizon})"),
        lines=[f"Data through {through} ({forecast.events_known:,} crimes known).",
               f"Model {audit['model_name']} {version}, run {audit['run_id']}; crime types: "
               f"{audit['crime_types']}.",
               f"Generated {_when(stamp)}. Top {rows.height} of {forecast.ranked.height:,} "
               "places."],
        rows=rows, meaning=meaning, limits=limits, forecast=forecast, shapes=shapes,
        outlines=boundaries(bundle.unit_table))


def _draw_map(briefing: Briefing, axes: Any) -> None:
    axes.set_axis_off()
    features = briefing.outlines["features"]
    draw_outlines(axes, [shapely.from_geojson(json.dumps(f["geometry"])) for f in features],
                  color="#6b7280")
    for p in (f["properties"] for f in features if f["properties"].get("label_lon") is not None):
        axes.text(p["label_lon"], p["label_lat"], p["region"], fontsize=6, color="#374151",
                  ha="center", va="center")
    units = [str(u) for u in briefing.rows["unit_id"]]
    n = max(len(units), 1)
    colours = [COLOURS[min(3, 4 * i // n)] for i in range(len(units))]
    fill_shapes(axes, [shapely.from_geojson(briefing.shapes.geometry[u]) for u in units],
                colours, alpha=0.85, linewidths=0.4, edgecolors="#3b0a0a")
    for rank, unit, colour in zip(briefing.rows["rank"], units, colours, strict=True):
        lon, lat = briefing.shapes.centroid[unit]
        axes.scatter([lon], [lat], s=90, color=colour, edgecolors="white", linewidths=1,
                     zorder=3)
        axes.text(lon, lat, str(rank), fontsize=6, color="white", ha="center", va="center",
                  fontweight="bold", zorder=4)
    set_lonlat_aspect(axes, [briefing.shapes.centroid[u][1] for u in units] or [34.0])


def _paragraph(figure: Figure, y: float, text: str, size: float, width: int,
               **style: Any) -> float:
    """Write ``text`` wrapped to ``width`` characters from height ``y`` (figure fraction);
    returns the height below it."""
    lines = textwrap.wrap(text, width) or [""]
    figure.text(0.05, y, "\n".join(lines), fontsize=size, va="top", linespacing=1.3, **style)
    return y - len(lines) * size * 1.3 / 72 / A4_INCHES[1] - 0.006


def briefing_figure(briefing: Briefing) -> Figure:
    """The page as one A4 figure: title, map, ranked places, limits."""
    figure = Figure(figsize=A4_INCHES, dpi=150)
    y = _paragraph(figure, 0.965, briefing.title, 13, 70, fontweight="bold")
    for line in briefing.lines:
        y = _paragraph(figure, y, line, 8, 120, color="#374151")
    _draw_map(briefing, figure.add_axes((0.05, 0.47, 0.9, y - 0.48)))
    y = _paragraph(figure, 0.465, f"Ranked places. Chance: the chance of being "
                   f"{briefing.meaning}.", 8, 120)
    table = [[str(r), p[:70], f"{e:.1f}", f"{c}%"] for r, p, e, c in zip(
        briefing.rows["rank"], briefing.rows["place"], briefing.rows["expected"],
        briefing.rows["chance"], strict=True)]
    axes = figure.add_axes((0.05, 0.17, 0.9, y - 0.175))
    axes.set_axis_off()
    if table:
        cells = axes.table(cellText=table, colLabels=["#", "place", "expected crimes",
                                                     "chance"],
                           colWidths=[0.05, 0.65, 0.15, 0.15], cellLoc="left",
                           # Fills the space between the heading and the limits, however
                           # many rows (at most 40: --top).
                           bbox=Bbox.from_bounds(0.0, max(0.0, 1 - (len(table) + 1) / 22),
                                                 1.0, min(1.0, (len(table) + 1) / 22)))
        cells.auto_set_font_size(False)
        cells.set_fontsize(7)
    y = _paragraph(figure, 0.16, "Limits of this forecast", 9, 80, fontweight="bold")
    for line in briefing.limits:
        y = _paragraph(figure, y, "• " + line, 7, 130)
    return figure


def briefing_pdf(briefing: Briefing) -> bytes:
    """The one-page PDF."""
    buffer = io.BytesIO()
    briefing_figure(briefing).savefig(buffer, format="pdf")
    return buffer.getvalue()


def briefing_html(briefing: Briefing) -> str:
    """The same page as self-contained HTML (prints on one A4 page)."""
    figure = Figure(figsize=(7.5, 5.2), dpi=110, layout="constrained")
    _draw_map(briefing, figure.add_subplot())
    rows = "".join(
        f"<tr><td class=num>{r}</td><td>{html.escape(p)}</td><td class=num>{e:.1f}</td>"
        f"<td class=num>{c}%</td></tr>" for r, p, e, c in zip(
            briefing.rows["rank"], briefing.rows["place"], briefing.rows["expected"],
            briefing.rows["chance"], strict=True))
    limits = "".join(f"<li>{html.escape(line)}</li>" for line in briefing.limits)
    lines = "".join(f"<p class=meta>{html.escape(line)}</p>" for line in briefing.lines)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(briefing.title)}</title>
<style>
@page {{ size: A4; margin: 12mm; }}
body {{ font-family: system-ui, sans-serif; color: #1d2430; max-width: 50rem; margin: auto;
       padding: 0.5rem; font-size: 11px; }}
h1 {{ font-size: 16px; margin: 0 0 4px; }} .meta {{ margin: 0; color: #374151; }}
img.plot {{ width: 100%; height: auto; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 2px 6px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
h2 {{ font-size: 12px; margin: 8px 0 2px; }} ul {{ margin: 0; padding-left: 1.2em; }}
</style></head><body>
<h1>{html.escape(briefing.title)}</h1>{lines}
{as_img(figure, "map of the forecast places")}
<h2>Ranked places</h2>
<p class=meta>Chance = chance of being {html.escape(briefing.meaning)}.</p>
<table><thead><tr><th>#</th><th>place</th><th>expected crimes</th><th>chance</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Limits of this forecast</h2><ul>{limits}</ul>
</body></html>
"""
