"""Plots for the pages people read (EDA, and later the card, backtest and briefing).

One library for every plot: **matplotlib**, drawn with its object API (``Figure``, no
``pyplot`` global state, so it is safe in threads) and embedded as PNG ``data:`` URIs.
Why matplotlib rather than plotly: a page stays one small self-contained file with no
script at all (plotly inlines ~3.5 MB of JavaScript per page), it prints and turns into
a PDF briefing as it looks on screen, it works offline and in any browser, and it
renders the same pixels every time (tests can check them).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

# Okabe-Ito colours: distinguishable with the common forms of colour blindness.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
)
DPI = 110


def new_figure(width: float = 8.0, height: float = 3.2, ncols: int = 1) -> Figure:
    """A figure of ``width`` × ``height`` inches with ``ncols`` axes side by side, styled
    for the pages (light grid, no top and right spines)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    for axes in figure.subplots(1, ncols, squeeze=False)[0]:
        axes.grid(True, color="#e5e5e5", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    return figure


def as_img(figure: Figure, alt: str) -> str:
    """``figure`` as an ``<img>`` holding a PNG ``data:`` URI (no file, no address)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    data = base64.b64encode(buffer.getvalue()).decode()
    return (f'<img class="plot" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">')


def no_data(message: str) -> str:
    """What a section shows instead of a plot: why there is nothing to draw."""
    return f'<p class="no-data">{html.escape(message)}</p>'


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small HTML table (every cell escaped; numbers right-aligned)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)

    def cell(value: object) -> str:
        numeric = isinstance(value, int | float)
        text = f"{value:,}" if isinstance(value, int) else str(value)
        return f'<td{" class=num" if numeric else ""}>{html.escape(text)}</td>'

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def area_curves_img(curves: Mapping[str, Mapping[str, Sequence[float]]],
                    highlight: Sequence[str]) -> str:
    """Hit rate and PAI against the share of the area flagged, one line per forecaster
    (``curves[name]`` holds ``share``, ``hit_rate`` and ``pai`` lists); the ``highlight``
    ones in colour and named, the rest grey."""
    figure = new_figure(10.0, 3.8, ncols=2)
    hit_axes, pai_axes = figure.axes
    for name in sorted(curves, key=lambda n: n in highlight):  # highlighted drawn last
        curve = curves[name]
        share = [100 * s for s in curve["share"]]
        style: dict[str, Any] = (
            {"color": PALETTE[list(highlight).index(name) % len(PALETTE)], "linewidth": 2.2,
             "label": name, "zorder": 3} if name in highlight
            else {"color": "#c4c9d0", "linewidth": 0.8, "zorder": 1})
        hit_axes.plot(share, [100 * (v if v is not None else float("nan"))
                              for v in curve["hit_rate"]], **style)
        pai_axes.plot(share, [v if v is not None else float("nan") for v in curve["pai"]],
                      **style)
    hit_axes.set_xlabel("share of the area flagged (%)")
    hit_axes.set_ylabel("% of crimes in the flagged area")
    pai_axes.set_xlabel("share of the area flagged (%)")
    pai_axes.set_ylabel("PAI (times better than chance)")
    pai_axes.axhline(1.0, color="#888888", linestyle=":", linewidth=1)
    hit_axes.legend(loc="lower right", frameon=False, fontsize=8)
    return as_img(figure, "hit rate and PAI against the share of area flagged")


def draw_outlines(axes: Any, geometries: Iterable[Any], color: str = "#555555",
                  linewidth: float = 0.6) -> None:
    """The boundaries of lon/lat ``geometries`` as one line collection."""
    rings = [shapely.get_coordinates(ring) for geometry in geometries
             for ring in shapely.get_parts(shapely.boundary(geometry))]
    axes.add_collection(LineCollection(rings, colors=color, linewidths=linewidth))
    axes.autoscale_view()


def fill_shapes(axes: Any, geometries: Iterable[Any], colours: Iterable[Any],
                **style: Any) -> None:
    """Lon/lat ``geometries`` filled with their ``colours`` as one polygon collection (one
    artist, not one per place: thousands of grid cells draw in a blink)."""
    verts, faces = [], []
    for geometry, colour in zip(geometries, colours, strict=True):
        for part in shapely.get_parts(geometry):
            verts.append(shapely.get_coordinates(shapely.get_exterior_ring(part)))
            faces.append(colour)
    axes.add_collection(PolyCollection(verts, facecolors=faces, **style))
    axes.autoscale_view()


def set_lonlat_aspect(axes: Any, latitudes: Sequence[float] | np.ndarray) -> None:
    """Equal distances on both axes of a lon/lat map at the mean of ``latitudes``."""
    mean = float(np.mean(latitudes)) if len(latitudes) else 0.0
    axes.set_aspect(1 / max(0.2, math.cos(math.radians(mean))))


PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1rem;
       color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
img.plot { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note, .no-data { background: #fff7e0; padding: 0.5rem; }
"""


def section(title: str, words: str, body: str) -> str:
    """One titled part of a page: what it shows in words, then its plot or table."""
    return (f"<section><h2>{html.escape(title)}</h2><p>{html.escape(words)}</p>{body}"
            "</section>")


def page(title: str, body: str) -> str:
    """A self-contained page (no scripts, no external resources) around ``body``."""
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style></head><body>\n"
            f"{body}\n</body></html>\n")
