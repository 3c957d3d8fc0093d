"""Tiny inline-SVG charts for the model card: line charts and horizontal bar charts.

No plotting library and nothing external: each function returns one ``<svg>``
element as a string, sized by its ``viewBox`` so the page's CSS can scale it to
the screen. Every piece of text is escaped. Missing values (``None`` or NaN)
are skipped, and a chart with nothing to draw says "No data" instead of failing.
The ``xmlns`` attribute is left out on purpose: inline SVG in HTML5 does not
need it, and the card page must hold no web addresses at all.
"""

from __future__ import annotations

import html
import logging
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Okabe-Ito colours: distinguishable with the common forms of colour blindness.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
)
FONT = "font-family=\"system-ui, sans-serif\""
MAX_POINTS = 200


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a name for the legend and paired x/y values."""

    name: str
    xs: Sequence[float | None]
    ys: Sequence[float | None]
    color: str | None = None
    dashed: bool = False
    markers: bool = False


def esc(text: object) -> str:
    """HTML/SVG-escape any value's ``str`` (quotes included)."""
    return html.escape(str(text), quote=True)


def finite(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def clean_points(
    xs: Sequence[float | None], ys: Sequence[float | None]
) -> list[tuple[float, float]]:
    """The (x, y) pairs in which both values are finite numbers, in order."""
    points: list[tuple[float, float]] = []
    for x, y in zip(xs, ys, strict=False):
        fx, fy = finite(x), finite(y)
        if fx is not None and fy is not None:
            points.append((fx, fy))
    return points


def thin(points: Sequence[tuple[float, float]], max_points: int = MAX_POINTS
         ) -> list[tuple[float, float]]:
    """At most ``max_points`` evenly spaced points, always keeping the first and last."""
    if len(points) <= max_points or max_points < 2:
        return list(points)
    step = (len(points) - 1) / (max_points - 1)
    return [points[round(i * step)] for i in range(max_points)]


def _fmt(value: float) -> str:
    """Short label for a tick or bar value."""
    return f"{value:.3g}"


def _open(width: int, height: int, title: str) -> list[str]:
    """The opening tag, accessible title and background of a chart."""
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}" {FONT} font-size="12">',
        f"<title>{esc(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" font-size="14" '
        f'font-weight="600">{esc(title)}</text>',
    ]


def _no_data(parts: list[str], x: float, y: float) -> None:
    """Append a centred "No data" note."""
    parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#666666">'
                 "No data</text>")


def line_chart(
    series: Sequence[Series], *, title: str, x_label: str, y_label: str,
    x_range: tuple[float, float] = (0.0, 1.0), y_range: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False, width: int = 480, height: int = 360,
) -> str:
    """A line chart with axes, five ticks per axis, an optional y = x diagonal and a legend.

    Points outside the ranges are clipped to the plot area. The legend sits
    under the x-axis label, one row per series, so it never covers a curve.
    """
    left, right, top = 52, 16, 30
    legend_rows = len(series) + (1 if diagonal else 0)
    bottom = 44 + 16 * legend_rows
    total_height = height + 16 * legend_rows
    plot_w, plot_h = width - left - right, total_height - top - bottom
    (x0, x1), (y0, y1) = x_range, y_range
    x_span, y_span = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def sx(x: float) -> float:
        return left + plot_w * (min(max(x, x0), x1) - x0) / x_span

    def sy(y: float) -> float:
        return top + plot_h * (1 - (min(max(y, y0), y1) - y0) / y_span)

    parts = _open(width, total_height, title)
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" '
                 'fill="none" stroke="#999999"/>')
    for i in range(5):
        tx, ty = x0 + x_span * i / 4, y0 + y_span * i / 4
        parts.append(f'<line x1="{sx(tx):.1f}" y1="{top}" x2="{sx(tx):.1f}" '
                     f'y2="{top + plot_h}" stroke="#eeeeee"/>')
        parts.append(f'<line x1="{left}" y1="{sy(ty):.1f}" x2="{left + plot_w}" '
                     f'y2="{sy(ty):.1f}" stroke="#eeeeee"/>')
        parts.append(f'<text x="{sx(tx):.1f}" y="{top + plot_h + 14}" '
                     f'text-anchor="middle">{_fmt(tx)}</text>')
        parts.append(f'<text x="{left - 4}" y="{sy(ty) + 4:.1f}" '
                     f'text-anchor="end">{_fmt(ty)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 30}" '
                 f'text-anchor="middle">{esc(x_label)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{esc(y_label)}</text>')
    legend_y = top + plot_h + 48
    if diagonal:
        parts.append(f'<line x1="{sx(max(x0, y0)):.1f}" y1="{sy(max(x0, y0)):.1f}" '
                     f'x2="{sx(min(x1, y1)):.1f}" y2="{sy(min(x1, y1)):.1f}" '
                     'stroke="#888888" stroke-dasharray="4 4"/>')
    drawn = 0
    for index, line in enumerate(series):
        color = line.color or PALETTE[index % len(PALETTE)]
        points = thin(clean_points(line.xs, line.ys))
        dash = ' stroke-dasharray="6 3"' if line.dashed else ""
        if points:
            drawn += 1
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                         f'stroke-width="2"{dash}><title>{esc(line.name)}</title></polyline>')
            if line.markers:
                parts.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" '
                             f'fill="{color}"/>' for x, y in points)
        row_y = legend_y + 16 * index
        parts.append(f'<line x1="{left}" y1="{row_y - 4}" x2="{left + 24}" y2="{row_y - 4}" '
                     f'stroke="{color}" stroke-width="3"{dash}/>')
        label = line.name if points else f"{line.name} (no data)"
        parts.append(f'<text x="{left + 30}" y="{row_y}">{esc(label)}</text>')
    if diagonal:
        row_y = legend_y + 16 * len(series)
        parts.append(f'<line x1="{left}" y1="{row_y - 4}" x2="{left + 24}" y2="{row_y - 4}" '
                     'stroke="#888888" stroke-dasharray="4 4"/>')
        parts.append(f'<text x="{left + 30}" y="{row_y}">perfect calibration</text>')
    if not drawn:
        _no_data(parts, left + plot_w / 2, top + plot_h / 2)
    parts.append("</svg>")
    return "\n".join(parts)


def _clip_label(label: str, limit: int = 22) -> str:
    """``label`` cut to ``limit`` characters with an ellipsis."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(
    labels: Sequence[str], values: Sequence[float | None], *, title: str, x_label: str,
    max_bars: int = 20, sort_desc: bool = True, color: str = PALETTE[0],
    highlight: dict[str, str] | None = None, width: int = 480,
) -> str:
    """A horizontal bar chart, one row per label, biggest first when ``sort_desc``.

    Only the first ``max_bars`` rows (after sorting) are drawn. Missing values
    are shown as "n/a" and sort last; negative values are drawn as zero-width
    bars with their value printed. ``highlight`` maps a label to a bar colour.
    Long labels are shortened on the chart; the full label is the bar's tooltip.
    """
    rows: list[tuple[str, float | None]] = [
        (str(label), finite(value)) for label, value in zip(labels, values, strict=False)
    ]
    if sort_desc:
        rows.sort(key=lambda row: (row[1] is None, -(row[1] or 0.0)))
    if len(rows) > max_bars:
        logger.debug("bar chart %r: showing %d of %d rows", title, max_bars, len(rows))
        rows = rows[:max_bars]
    left, right, top, row_h = 150, 56, 30, 20
    plot_w = width - left - right
    height = top + row_h * max(len(rows), 1) + 36
    peak = max((v for _, v in rows if v is not None and v > 0), default=0.0) or 1.0
    parts = _open(width, height, title)
    for index, (label, value) in enumerate(rows):
        y = top + row_h * index
        bar_w = plot_w * max(value or 0.0, 0.0) / peak
        fill = (highlight or {}).get(label, color)
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">'
                     f"{esc(_clip_label(label))}</text>")
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{bar_w:.1f}" height="{row_h - 6}" '
                     f'fill="{fill}"><title>{esc(label)}: '
                     f'{esc("n/a" if value is None else _fmt(value))}</title></rect>')
        parts.append(f'<text x="{left + bar_w + 4:.1f}" y="{y + 14}">'
                     f'{esc("n/a" if value is None else _fmt(value))}</text>')
    axis_y = top + row_h * max(len(rows), 1)
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{axis_y}" stroke="#999999"/>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{axis_y + 24}" '
                 f'text-anchor="middle">{esc(x_label)}</text>')
    if not rows:
        _no_data(parts, left + plot_w / 2, top + row_h / 2 + 4)
    parts.append("</svg>")
    return "\n".join(parts)
