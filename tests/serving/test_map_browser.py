"""The /map page (Leaflet, vendored) in headless Chromium, with no network but loopback.

With tiles off the page loads nothing but this server's files and still draws the
division outlines with their names, the census tracts, a pin and a shape per place, and
the ranked list; with a tile server on 127.0.0.1 (a fixture) the tiles are drawn under
them. Screenshots must show what they should, at phone and desktop sizes.
"""

from __future__ import annotations

import http.server
import io
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from crimecast.config import ServingConfig
from crimecast.serving.state import Loaded
from tests.browser import DESKTOP, run_browser, screenshot

from .conftest import LiveServer

TILE_RGB = (40, 170, 160)  # the fixture's tiles: a teal no other part of the page uses
TILE_IMG = re.compile(r'<img [^>]*class="[^"]*\bleaflet-tile\b')
URL_ATTRS = re.compile(r'\b(?:src|href)="([^"]*)"')


def _dom(url: str, tmp_path: Path, name: str) -> str:
    dom = run_browser(["--dump-dom", url], tmp_path / f"profile-{name}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    return re.sub(r"<script\b.*?</script>", "", dom.stdout, flags=re.S)  # the drawn DOM


def _places(html: str) -> int:
    return len(re.findall(r'<path [^>]*class="[^"]*\bhotspot\b', html))


@pytest.fixture(scope="module")
def tile_server() -> Iterator[str]:
    """A tile server on 127.0.0.1: one teal 256-pixel PNG for every {z}/{x}/{y}."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), TILE_RGB).save(buffer, format="PNG")
    tile = buffer.getvalue()

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    server.shutdown()


def test_map_offline_on_a_phone_loads_nothing_from_elsewhere(
        live_server: Callable[..., LiveServer], loaded: Loaded, tmp_path: Path) -> None:
    with live_server(ServingConfig(tiles="none"), loaded=loaded) as server:
        url = f"{server.url}/map?at=2023-08-01T06:00&horizon=1d&top=6"
        html = _dom(url, tmp_path, "dom")
        assert 'data-state="ready"' in html, re.findall(r'<div id="status"[^<]*', html)
        assert _places(html) == 6
        assert len(re.findall(r'<div class="rank-pin"', html)) == 6
        assert len(re.findall(r'<path [^>]*class="[^"]*\bboundary\b', html)) == 21
        assert len(re.findall(r'class="[^"]*\bregion-label\b[^"]*"[^>]*>Central<', html)) == 1
        assert len(re.findall(r'<path [^>]*class="[^"]*\btract\b', html)) > 500
        assert html.count("<li>") == 6
        assert "Data through " in html and "crimes in this 1d window" in html
        assert "chance of being unusually busy for that place" in html
        assert "SYNTHETIC DATA" in html and not TILE_IMG.search(html)
        links = URL_ATTRS.findall(html)
        outside = [u for u in links if not u.startswith(("/", "#", "blob:", "data:"))]
        assert not outside, outside
        assert "blob:" in html  # the GeoJSON and CSV downloads are ready
        pixels = screenshot(url, tmp_path, "phone").reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.9  # not blank
    assert int(((r > 150) & (g < 140) & (b < 100)).sum()) > 1000  # places in risk colours
    outline = (abs(r - 0x4a) < 25) & (abs(g - 0x55) < 25) & (abs(b - 0x65) < 25)
    assert int(outline.sum()) > 500  # division outlines and tract lines without tiles


def test_map_draws_tiles_from_the_configured_server(
        live_server: Callable[..., LiveServer], loaded: Loaded, tile_server: str,
        tmp_path: Path) -> None:
    config = ServingConfig(tiles=tile_server, tiles_attribution="Test tiles")
    with live_server(config, loaded=loaded) as server:
        url = f"{server.url}/map?at=2023-08-01T06:00&horizon=1d&top=6"
        html = _dom(url, tmp_path, "dom")
        assert 'data-state="ready"' in html and _places(html) == 6
        assert len(TILE_IMG.findall(html)) >= 4 and "Test tiles" in html
        pixels = screenshot(url, tmp_path, "desktop", window=DESKTOP).reshape(-1, 3)
    teal = np.all(np.abs(pixels - np.array(TILE_RGB)) < 12, axis=1)
    assert teal.mean() > 0.05, teal.mean()  # the tiles are drawn
    r, g, b = pixels.T
    assert int(((r > 150) & (g < 140) & (b < 100)).sum()) > 500  # places over the tiles


def test_map_shows_the_servers_error_instead_of_failing_silently(shared_server: LiveServer,
                                                                 tmp_path: Path) -> None:
    url = f"{shared_server.url}/map?at=2023-08-01T06:00&horizon=1d&top=0"
    dom = run_browser(["--dump-dom", url], tmp_path / "profile")
    assert 'data-state="error"' in dom.stdout
    assert "top: Input should be greater than or equal to 1" in dom.stdout


def test_the_api_docs_render_offline(shared_server: LiveServer, tmp_path: Path) -> None:
    """/docs draws every operation from the vendored Swagger UI with no network."""
    from PIL import Image

    url = f"{shared_server.url}/docs"
    dom = run_browser(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for path in ("/hotspots", "/invocations", "/ping", "/boundaries", "/model/card"):
        assert f'data-path="{path}"' in html, path
    assert "swagger.io/validator" not in html
    shot = tmp_path / "docs.png"
    result = run_browser([f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32).reshape(-1, 3)
    r, g, b = pixels.T
    # Swagger UI's method badges: GET blue (#61affe), POST green (#49cc90).
    assert int(((b > 230) & (r < 120) & (g > 150)).sum()) > 200
    assert int(((g > 180) & (r < 100) & (b > 120) & (b < 170)).sum()) > 200
