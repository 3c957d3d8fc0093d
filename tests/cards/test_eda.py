"""`crimecast eda`: one self-contained page of plots, checked in headless Chromium (#13)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from crimecast.cards.eda import PLACE_M, eda_sections
from crimecast.cli import app
from crimecast.data.clean import CleanReport
from crimecast.data.geo import to_lonlat, to_projected, utm_crs_for
from crimecast.data.output import write_incidents
from crimecast.synthetic.generate import generate_incidents
from tests.browser import DESKTOP, screenshot

TITLES = ("Crimes over time", "Hour of day by weekday", "Crimes by area", "Crimes by category",
          "Where crimes happen", "How long until a crime is reported", "Estimated times",
          "Records set aside while cleaning", "Places with the most crimes",
          "Crime and temperature")


@pytest.fixture(scope="module")
def eda_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eda")
    data = folder / "la.csv"
    write_incidents(generate_incidents(dt.date(2023, 1, 1), dt.date(2023, 6, 30), seed=11),
                    data)
    result = CliRunner().invoke(app, ["eda", "--data", str(data), "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "10 sections" in result.output
    return folder / "eda.html"


def test_the_page_has_every_section_and_nothing_from_elsewhere(eda_page: Path) -> None:
    page = eda_page.read_text()
    for title in TITLES:
        assert f"<h2>{title}</h2>" in page, title
    # Nine plots (the quarantine and repeat places are tables), all inline PNGs.
    assert len(re.findall(r'<img class="plot"', page)) == 8
    links = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    assert links and all(link.startswith("data:image/png;base64,") for link in links)
    assert "http" not in page.replace("http-equiv", "")
    assert "correlation" in page  # LA data: the packaged LA weather is used


def test_the_page_shows_its_plots_in_a_browser(eda_page: Path, tmp_path: Path) -> None:
    pixels = screenshot(eda_page.as_uri(), tmp_path, "eda", window=DESKTOP).reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.9  # not blank
    assert int(((b > 150) & (r < 40) & (g > 90) & (g < 140)).sum()) > 5000  # blue bars
    assert int(((r > 200) & (g < 120) & (b < 60)).sum()) > 2000  # the heatmap's reds


def _report(rows: int) -> CleanReport:
    return CleanReport(rows_in=rows, rows_clean=rows, rows_quarantined=0, by_reason={},
                       excluded_crime_types={}, time_is_estimated=0,
                       occurred_min="2024-02-01T00:00:00", occurred_max="2024-02-03T00:00:00",
                       files={})


def _events(lat: list[float], lon: list[float], delays: list[int], minute: int = 15
            ) -> pl.DataFrame:
    start = dt.datetime(2024, 2, 1, 10, minute)
    occurred = [start + dt.timedelta(hours=i) for i in range(len(lat))]
    return pl.DataFrame({
        "occurred_at": occurred,
        "reported_at": [o + dt.timedelta(days=d) for o, d in zip(occurred, delays, strict=True)],
        "lat": lat, "lon": lon, "area_name": ["Central"] * len(lat),
        "crime_category": ["property"] * len(lat),
        "time_is_estimated": [minute == 0] * len(lat)})


def test_repeat_places_count_events_in_150_m_squares() -> None:
    crs = utm_crs_for(-118.25, 34.05)
    x0, y0 = to_projected(np.array([34.05]), np.array([-118.25]), crs)
    # Three events in one square, one in the next square east, on known days.
    cx = (np.floor(x0[0] / PLACE_M) + 0.5) * PLACE_M
    cy = (np.floor(y0[0] / PLACE_M) + 0.5) * PLACE_M
    xs = np.array([cx, cx + 10, cx - 10, cx + PLACE_M])
    lon, lat = to_lonlat(xs, np.full(4, cy), crs)
    events = _events(lat.tolist(), lon.tolist(), [0, 0, 0, 0])
    section = next(s for s in eda_sections(events, _report(4)) if s.title.startswith("Places"))
    rows = re.findall(r"<tr><td class=num>(\d+)</td><td class=num>(\d+)</td>"
                      r"<td class=num>(\d+)</td><td>Central</td><td>([^<]+)</td>", section.body)
    assert [r[:3] for r in rows] == [("1", "3", "1"), ("2", "1", "1")]
    c_lon, c_lat = to_lonlat(np.array([cx]), np.array([cy]), crs)
    assert rows[0][3] == f"{c_lat[0]:.5f}, {c_lon[0]:.5f}"
    assert "these few squares hold 100.0% of all crimes" in section.words


def test_delays_and_estimated_times_in_plain_words() -> None:
    events = _events([34.05] * 4, [-118.25] * 4, [0, 0, 3, 40], minute=0)
    sections = {s.title: s for s in eda_sections(events, _report(4))}
    assert sections["How long until a crime is reported"].words.startswith(
        "Days from occurrence to report. 50% are reported the same day; 25% more than a "
        "week later (median 2 days).")
    assert sections["Estimated times"].words.startswith("100% of the records have an "
                                                        "estimated time")
    assert "nothing" not in sections["Records set aside while cleaning"].body
    assert "None of the 4 records was set aside." in sections[
        "Records set aside while cleaning"].body


def test_weather_is_used_only_where_it_was_measured() -> None:
    events = _events([45.52] * 3, [-122.68] * 3, [0, 0, 0])  # Portland
    weather = pl.DataFrame({"date": [dt.date(2024, 2, 1)], "tavg_c": [10.0]})
    section = eda_sections(events, _report(3), weather=weather)[-1]
    assert "The packaged daily weather is for Los Angeles" in section.body


def test_a_sample_must_be_positive(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eda", "--data", "x.csv", "--out", str(tmp_path),
                                      "--sample", "0"])
    assert result.exit_code == 2
    assert "sample must be >= 1 records; got 0. Pass --sample 100000." in result.output
