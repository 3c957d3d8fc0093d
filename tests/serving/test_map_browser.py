"""The /map page in headless Chromium at a phone-sized viewport, with no network.

Every host except the loopback server is unresolvable, so the page must render
from this server alone. The screenshot must not be blank and the DOM must hold
one hotspot shape per requested unit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from .conftest import LiveServer

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking"]
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
PHONE = "--window-size=390,844"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CRIMECAST_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required (CRIMECAST_REQUIRE_BROWSER is set) but not found; "
                    ".ci/run installs the Debian chromium package.")
    pytest.skip("no Chromium on this machine (.ci/run installs it)")


def run_browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [chromium(), *FLAGS, OFFLINE, PHONE, f"--user-data-dir={profile}",
               "--virtual-time-budget=20000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_map_renders_the_hotspots_offline_on_a_phone(shared_server: LiveServer,
                                                     tmp_path: Path) -> None:
    from PIL import Image

    url = f"{shared_server.url}/map?at=2023-08-01T06:00&horizon=1d&top=6"
    dom = run_browser(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-state="ready"' in html, re.findall(r'<div id="status"[^<]*', html)
    assert len(re.findall(r'<path [^>]*class="hotspot"', html)) == 6
    assert len(re.findall(r'<path [^>]*class="boundary"', html)) == 21
    assert html.count("<li>") == 6
    assert "SYNTHETIC DATA" in html

    shot = tmp_path / "map.png"
    result = run_browser([f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (390, 844)
    pixels = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    white = (pixels.min(axis=1) > 245).mean()
    r, g, b = pixels.T
    risk = int(((r > 150) & (g < 140) & (b < 100)).sum())
    assert white < 0.9  # not blank
    assert len(np.unique(pixels, axis=0)) > 50
    assert risk > 1000  # the hotspots are drawn in the risk colours


def test_map_shows_the_servers_error_instead_of_failing_silently(shared_server: LiveServer,
                                                                 tmp_path: Path) -> None:
    url = f"{shared_server.url}/map?at=2023-08-01T06:00&horizon=1d&top=0"
    dom = run_browser(["--dump-dom", url], tmp_path / "profile")
    assert 'data-state="error"' in dom.stdout
    assert "top: Input should be greater than or equal to 1" in dom.stdout
