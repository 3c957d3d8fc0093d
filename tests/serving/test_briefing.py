"""``crimecast brief``: a one-page shift briefing as PDF (rendered to pixels) and HTML (#13)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from crimecast.serving.briefing import build_briefing
from crimecast.serving.forecast import compute_forecast, parse_at
from crimecast.serving.geojson import UnitShapes
from crimecast.serving.state import Loaded
from tests.browser import DESKTOP, screenshot

from .conftest import ServedRun
from .test_cli import crimecast

AT = "2023-08-01T06:00"


def _brief(served_run: ServedRun, out: Path, *extra: str) -> str:
    result = crimecast("brief", "--runs-dir", str(served_run.runs), "--at", AT, "--horizon",
                       "8h", "--top", "12", "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def pdf_page(served_run: ServedRun, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    import pypdfium2 as pdfium

    out = tmp_path_factory.mktemp("brief") / "brief.pdf"
    told = _brief(served_run, out)
    assert "briefing of 12 places, 2023-08-01 06:00 to 2023-08-01 14:00" in told
    pdf = pdfium.PdfDocument(str(out))
    assert len(pdf) == 1
    width, height = pdf[0].get_size()
    assert abs(width / height - 210 / 297) < 0.01  # A4
    text = pdf[0].get_textpage().get_text_range()
    assert "Shift briefing: Tue 1 Aug 2023 06:00 to 14:00 (8h)" in text
    assert "Limits of this forecast" in text and "Places, never people" in text
    assert re.search(r"run [0-9a-f]{32}", text) and "version " in text
    assert "Data through " in text
    return np.asarray(pdf[0].render(scale=1.5).to_pil().convert("RGB"), dtype=np.int32)


def test_the_pdf_shows_a_map_a_table_and_words(pdf_page: np.ndarray) -> None:
    pixels = pdf_page.reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.97  # not blank
    assert (pixels.min(axis=1) > 245).mean() > 0.5  # a printable page, mostly paper
    assert int(((r > 150) & (g < 140) & (b < 100)).sum()) > 2000  # places in risk colours
    assert int((pixels.max(axis=1) < 60).sum()) > 5000  # text and table lines
    # The map sits above the table: the risk colours are in the upper half.
    rows = np.flatnonzero(((pdf_page[..., 0] > 150) & (pdf_page[..., 1] < 140)
                           & (pdf_page[..., 2] < 100)).any(axis=1))
    assert rows.max() < pdf_page.shape[0] * 0.55


def test_the_html_briefing_is_self_contained_and_prints(served_run: ServedRun,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "brief.html"
    _brief(served_run, out)
    page = out.read_text()
    assert re.findall(r'(?:src|href)="([^":]*):', page) == ["data"]
    assert len(re.findall(r"<tr><td class=num>\d+</td>", page)) == 12
    assert "@page { size: A4" in page and "Limits of this forecast" in page
    pixels = screenshot(out.as_uri(), tmp_path, "brief", window=DESKTOP).reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.99  # a tall window: mostly paper below
    assert int(((r > 150) & (g < 140) & (b < 100)).sum()) > 1000


def test_brief_refuses_an_unknown_format(served_run: ServedRun, tmp_path: Path) -> None:
    result = crimecast("brief", "--runs-dir", str(served_run.runs), "--at", AT,
                       "--out", str(tmp_path / "brief.docx"))
    assert result.returncode == 2
    assert "out must end in .pdf or .html; got 'brief.docx'. Pass --out brief.pdf." in \
        result.stderr


def test_the_briefing_says_what_its_numbers_are(loaded: Loaded) -> None:
    bundle, store = loaded.bundle, loaded.store
    assert store is not None and bundle.unit_table is not None
    forecast = compute_forecast(bundle, store, loaded.weather, parse_at(AT), "8h", 7, 14.0)
    briefing = build_briefing(bundle, forecast, UnitShapes.from_table(bundle.unit_table), 5,
                              estimated_share=0.37)
    assert briefing.rows.columns == ["rank", "place", "expected", "chance", "unit_id"]
    assert briefing.rows["rank"].to_list() == [1, 2, 3, 4, 5]
    assert briefing.meaning.startswith("unusually busy for that place")
    assert any(line.startswith("37% of the crimes in the data have an estimated time")
               for line in briefing.limits)
    assert briefing.lines[0].startswith("Data through ")
