"""Headless Chromium for the tests of every page a person sees (CI installs Debian chromium).

Every host except the loopback is unresolvable, so a page must render from the local
server or its own file alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking"]
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
PHONE = "390,844"
DESKTOP = "1280,2400"


def chromium() -> str:
    """The Chromium executable; skips (or fails under CRIMECAST_REQUIRE_BROWSER) without."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CRIMECAST_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required (CRIMECAST_REQUIRE_BROWSER is set) but not found; "
                    ".ci/run installs the Debian chromium package.")
    pytest.skip("no Chromium on this machine (.ci/run installs it)")


def run_browser(args: list[str], profile: Path, window: str = PHONE
                ) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline with ``args`` (``--dump-dom URL``, ``--screenshot=…``)."""
    command = [chromium(), *FLAGS, OFFLINE, f"--window-size={window}",
               f"--user-data-dir={profile}", "--virtual-time-budget=20000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def screenshot(url: str, tmp_path: Path, name: str, window: str = PHONE) -> np.ndarray:
    """The page at ``url`` as an (H, W, 3) int32 RGB array (asserts the browser succeeded)."""
    from PIL import Image

    shot = tmp_path / f"{name}.png"
    result = run_browser([f"--screenshot={shot}", url], tmp_path / f"profile-{name}", window)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    return np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
