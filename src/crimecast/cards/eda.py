"""Exploratory analysis of cleaned incidents: ``crimecast eda`` writes one self-contained page.

Pure: :func:`eda_sections` turns the clean rows and the cleaning report into titled
sections (a plot or a table each, with a sentence saying what it shows);
:func:`render_eda_html` makes the page. The CLI reads the files and writes the page.
Plots are matplotlib PNGs embedded in the page (:mod:`crimecast.cards.plots`), so the
file has no external resource. Places, never people: the repeat-place table lists
150 m squares (centre coordinates and division), never addresses or persons.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import shapely

from crimecast.cards.plots import (
    PALETTE,
    as_img,
    draw_outlines,
    new_figure,
    no_data,
    page,
    section,
    set_lonlat_aspect,
    table,
)
from crimecast.data.clean import CleanReport
from crimecast.data.geo import AreaSet, to_lonlat, to_projected, utm_crs_for

PLACE_M = 150.0  # side of the squares the repeat-place table counts events in
TOP_PLACES = 15
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# The packaged daily weather is Los Angeles (crimecast.data.weather): used only for data
# whose median point lies in this box (south, west, north, east).
WEATHER_BOX = (33.3, -119.0, 34.9, -117.6)
DELAY_BUCKETS = ((0, "same day"), (1, "1 day"), (2, "2-7 days"), (8, "8-30 days"),
                 (31, "1-12 months"), (366, "over a year"))


@dataclass(frozen=True)
class Section:
    """One titled part of the page: what it shows in words, then a plot or table."""

    title: str
    words: str
    body: str


def _counts_over_time(clean: pl.DataFrame) -> Section:
    figure = new_figure(9.0, 3.2, ncols=2)
    month_axes, week_axes = figure.axes
    for axes, every, label in ((month_axes, "1mo", "month"), (week_axes, "1w", "week")):
        series = (clean.group_by(pl.col("occurred_at").dt.truncate(every)).agg(n=pl.len())
                  .sort("occurred_at"))
        starts, counts = series["occurred_at"].to_list(), series["n"].to_list()
        if every == "1mo" and len(starts) <= 36:  # a few months: one labelled bar each
            names = [d.strftime("%b %Y") for d in starts]
            axes.bar(names, counts, color=PALETTE[0])
            axes.set_xticks(range(len(names)), names)
            if len(names) > 12:
                for i, tick in enumerate(axes.get_xticklabels()):
                    tick.set_visible(i % 3 == 0)
        else:
            axes.plot(starts, counts, color=PALETTE[0])
        axes.set_title(f"Crimes per {label}")
        axes.set_ylabel(f"crimes per {label}")
        axes.tick_params(axis="x", labelrotation=30)
    words = ("Recorded crimes by month and by week of occurrence. The first and last week "
             "may be partial, and the last ones are often low because not every crime has "
             "been reported yet.")
    return Section("Crimes over time", words, as_img(figure, "crimes per month and per week"))


def _hour_weekday(clean: pl.DataFrame) -> Section:
    grid = np.zeros((7, 24))
    counts = clean.group_by(weekday=pl.col("occurred_at").dt.weekday() - 1,
                            hour=pl.col("occurred_at").dt.hour()).agg(n=pl.len())
    grid[counts["weekday"].to_numpy(), counts["hour"].to_numpy()] = counts["n"].to_numpy()
    figure = new_figure(9.0, 3.0)
    axes = figure.axes[0]
    axes.grid(False)
    image = axes.imshow(grid, aspect="auto", cmap="YlOrRd")
    axes.set_yticks(range(7), WEEKDAYS)
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}:00" for h in range(0, 24, 2)])
    axes.set_xlabel("hour of the day the crime occurred")
    figure.colorbar(image, ax=axes, label="crimes")
    words = ("When crimes occur, by weekday and hour. Records with an estimated time "
             "(entered on the hour) pile up on round hours, noon and midnight especially.")
    return Section("Hour of day by weekday", words, as_img(figure, "hour by weekday heatmap"))


def _bars(clean: pl.DataFrame, column: str, title: str, words: str, top: int = 25
          ) -> Section:
    counts = (clean.group_by(column).agg(n=pl.len()).sort("n", descending=True)
              .with_columns(pl.col(column).fill_null("(unknown)")).head(top))
    if counts.height == 0:
        return Section(title, words, no_data("No records."))
    figure = new_figure(8.0, 0.6 + 0.26 * counts.height)
    axes = figure.axes[0]
    axes.barh(counts[column].cast(pl.String).to_list()[::-1], counts["n"].to_list()[::-1],
              color=PALETTE[0])
    axes.set_xlabel("crimes")
    return Section(title, words, as_img(figure, title))


def _density(clean: pl.DataFrame, areas: AreaSet | None) -> Section:
    lat, lon = clean["lat"].to_numpy(), clean["lon"].to_numpy()
    if lat.size == 0:
        return Section("Where crimes happen", "", no_data("No records with coordinates."))
    figure = new_figure(7.0, 6.0)
    axes = figure.axes[0]
    axes.grid(False)
    cells = axes.hexbin(lon, lat, gridsize=80, bins="log", cmap="YlOrRd", mincnt=1)
    if areas is not None:
        draw_outlines(axes, areas.geometries)
        x0, y0, x1, y1 = shapely.total_bounds(areas.geometries)
        axes.set_xlim(min(x0, lon.min()), max(x1, lon.max()))
        axes.set_ylim(min(y0, lat.min()), max(y1, lat.max()))
    set_lonlat_aspect(axes, lat)
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    figure.colorbar(cells, ax=axes, label="crimes per hexagon (log scale)")
    words = ("Crimes per small hexagon (colour on a log scale)"
             + (", with the division outlines." if areas is not None else "."))
    return Section("Where crimes happen", words, as_img(figure, "spatial density map"))


def _delays(clean: pl.DataFrame) -> Section:
    days = clean.select((pl.col("reported_at").dt.date() - pl.col("occurred_at").dt.date())
                        .dt.total_days().alias("d"))["d"].drop_nulls().to_numpy()
    title = "How long until a crime is reported"
    if days.size == 0:
        return Section(title, "", no_data("No records carry a report date."))
    edges = [lo for lo, _ in DELAY_BUCKETS]
    which = np.searchsorted(edges, np.maximum(days, 0), side="right") - 1
    shares = np.bincount(which, minlength=len(edges)) / days.size
    figure = new_figure(8.0, 2.8)
    axes = figure.axes[0]
    axes.bar([label for _, label in DELAY_BUCKETS], shares * 100, color=PALETTE[1])
    axes.set_ylabel("% of crimes")
    words = (f"Days from occurrence to report. {shares[0]:.0%} are reported the same day; "
             f"{(days > 7).mean():.0%} more than a week later (median "
             f"{float(np.median(days)):.0f} days). Features count a crime only once it is "
             "reported when delay-aware.")
    return Section(title, words, as_img(figure, "reporting delay distribution"))


def _estimated_times(clean: pl.DataFrame) -> Section:
    minutes = clean["occurred_at"].dt.minute().to_numpy()
    share = float(clean["time_is_estimated"].cast(pl.Float64).to_numpy().mean()) \
        if clean.height else 0.0
    figure = new_figure(8.0, 2.6)
    axes = figure.axes[0]
    counts = np.bincount(minutes, minlength=60)
    colours = [PALETTE[1] if m in (0, 30) else PALETTE[0] for m in range(60)]
    axes.bar(range(60), counts, color=colours)
    axes.set_xlabel("minute of the hour the crime is recorded to have occurred")
    axes.set_ylabel("crimes")
    words = (f"{share:.0%} of the records have an estimated time (entered on the hour; "
             "crimecast flags them). Hourly forecasts are least reliable for such data; "
             "8-hour shifts and days are less affected.")
    return Section("Estimated times", words, as_img(figure, "minute of the hour"))


def _quarantine(report: CleanReport) -> Section:
    reasons = {**report.by_reason}
    title = "Records set aside while cleaning"
    if not reasons:
        return Section(title, "", no_data(f"None of the {report.rows_in:,} records was set "
                                          "aside."))
    rows = sorted(reasons.items(), key=lambda kv: -kv[1])
    words = (f"{report.rows_quarantined:,} of {report.rows_in:,} records were set aside (in "
             "quarantine.csv with the reason for each); enforcement-driven crime types are "
             "excluded by default.")
    return Section(title, words, table(["reason", "records", "rule"], [
        (reason, n, report.rules.get(reason, "")) for reason, n in rows]))


def _repeat_places(clean: pl.DataFrame) -> Section:
    title = "Places with the most crimes"
    if clean.height == 0:
        return Section(title, "", no_data("No records."))
    lat, lon = clean["lat"].to_numpy(), clean["lon"].to_numpy()
    crs = utm_crs_for(float(np.median(lon)), float(np.median(lat)))
    x, y = to_projected(lat, lon, crs)
    cells = pl.DataFrame({"cx": np.floor(x / PLACE_M), "cy": np.floor(y / PLACE_M),
                          "area": clean["area_name"], "day": clean["occurred_at"].dt.date()})
    top = (cells.group_by("cx", "cy")
           .agg(n=pl.len(), days=pl.col("day").n_unique(), area=pl.col("area").mode().first())
           .sort(["n", "cx", "cy"], descending=[True, False, False]).head(TOP_PLACES))
    c_lon, c_lat = to_lonlat((top["cx"].to_numpy() + 0.5) * PLACE_M,
                             (top["cy"].to_numpy() + 0.5) * PLACE_M, crs)
    rows = [(i + 1, int(n), int(d), area or "", f"{la:.5f}, {lo:.5f}", f"{n / clean.height:.2%}")
            for i, (n, d, area, la, lo) in enumerate(zip(
                top["n"], top["days"], top["area"], c_lat, c_lon, strict=True))]
    words = (f"The {PLACE_M:.0f} m squares with the most recorded crimes, and on how many "
             "different days. Crime concentrates: these few squares hold "
             f"{top['n'].sum() / clean.height:.1%} of all crimes.")
    return Section(title, words, table(["rank", "crimes", "days", "division",
                                        "centre (lat, lon)", "share"], rows))


def _temperature(clean: pl.DataFrame, weather: pl.DataFrame | None) -> Section:
    title = "Crime and temperature"
    if clean.height == 0 or weather is None:
        return Section(title, "", no_data("No weather data for these records."))
    south, west, north, east = WEATHER_BOX
    lat, lon = (float(np.median(clean[c].to_numpy())) for c in ("lat", "lon"))
    if not (south <= lat <= north and west <= lon <= east):
        return Section(title, "", no_data(
            "The packaged daily weather is for Los Angeles; these records are elsewhere."))
    daily = (clean.group_by(date=pl.col("occurred_at").dt.date()).agg(n=pl.len())
             .join(weather.select("date", "tavg_c"), on="date", how="inner").drop_nulls())
    if daily.height < 30:
        return Section(title, "", no_data(
            f"Only {daily.height} days of these records have weather (at least 30 needed)."))
    figure = new_figure(8.0, 3.2)
    axes = figure.axes[0]
    t, n = daily["tavg_c"].to_numpy(), daily["n"].to_numpy()
    axes.scatter(t, n, s=6, alpha=0.35, color=PALETTE[0], label="one day")
    bins = np.arange(np.floor(t.min()), np.ceil(t.max()) + 2, 2.0)
    which = np.digitize(t, bins)
    centres = [(bins[i - 1] + 1, n[which == i].mean()) for i in np.unique(which)
               if (which == i).sum() >= 5]
    if centres:
        axes.plot(*zip(*centres, strict=True), color=PALETTE[1], linewidth=2,
                  label="mean per 2 °C")
    axes.set_xlabel("mean daily temperature (°C)")
    axes.set_ylabel("crimes that day")
    axes.legend(loc="upper left", frameon=False)
    corr = float(np.corrcoef(t, n)[0, 1]) if np.std(t) > 0 and np.std(n) > 0 else float("nan")
    words = (f"Crimes per day against the day's mean temperature over {daily.height:,} days "
             f"(correlation {corr:+.2f}). Weekday, season and recording practice move with "
             "temperature too: this is an association, not a cause.")
    return Section(title, words, as_img(figure, "crime against temperature"))


def eda_sections(clean: pl.DataFrame, report: CleanReport, areas: AreaSet | None = None,
                 weather: pl.DataFrame | None = None) -> list[Section]:
    """Every section of the exploratory page, from cleaned incidents and their report."""
    return [
        _counts_over_time(clean),
        _hour_weekday(clean),
        _bars(clean, "area_name", "Crimes by area",
              "Recorded crimes per police area (division), largest first."),
        _bars(clean, "crime_category", "Crimes by category",
              "Recorded crimes per crime category (crimecast's grouping of crime codes)."),
        _density(clean, areas),
        _delays(clean),
        _estimated_times(clean),
        _quarantine(report),
        _repeat_places(clean),
        _temperature(clean, weather),
    ]


def render_eda_html(sections: Sequence[Section], report: CleanReport, files: Sequence[str],
                    sample: tuple[int, int] | None = None, generated: dt.datetime | None = None
                    ) -> str:
    """The page: a header (the files, the period, the record counts), then every section.
    ``sample`` is ``(rows plotted, clean rows)`` when a sample was drawn."""
    stamp = (generated or dt.datetime.now()).strftime("%d %b %Y %H:%M")
    period = (f"{report.occurred_min[:10]} to {report.occurred_max[:10]}"
              if report.occurred_min and report.occurred_max else "no dates")
    note = (f"<p class=note>Plots use a seeded sample of {sample[0]:,} of the {sample[1]:,} "
            "clean records; counts are of the sample.</p>" if sample else "")
    parts = "".join(section(s.title, s.words, s.body) for s in sections)
    names = ", ".join(html.escape(f.rsplit("/", 1)[-1]) for f in files)
    return page("crimecast: exploratory analysis", f"""<h1>Exploratory analysis of \
{report.rows_clean:,} crimes</h1>
<p>From {names}: {report.rows_in:,} records read, {report.rows_clean:,} clean,
{report.rows_quarantined:,} set aside; crimes occurred {period}. Generated {stamp}.
Places, never people: nothing here describes a person.</p>
{note}
{parts}""")
