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
from collections.abc import Mapping, Sequence
from typing import Any

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
