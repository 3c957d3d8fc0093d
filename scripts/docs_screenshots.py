"""Take the README's screenshots (docs/*.png) from a real run, with headless Chromium.

Usage, on a run of the LAPD Feb+Mar 2024 extracts (``crimecast run --data
../shared/data/lapd/lapd_2024_02_citywide.csv.gz
../shared/data/lapd/lapd_2024_03_citywide.csv.gz``)::

    .venv/bin/python scripts/docs_screenshots.py RUNS_DIR RUN_ID AT [--out docs]

Writes map_desktop.png, map_phone.png (the server with ``--tiles none``: the machine may
be offline), eda.png, card.png and briefing.png.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import polars as pl

CLI = [sys.executable, "-m", "crimecast.cli"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", "--virtual-time-budget=20000"]


def shoot(url: str, out: Path, size: str) -> None:
    """Screenshot ``url`` at ``size`` (``W,H``) into ``out``."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Chromium (apt install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
                        f"--screenshot={out}", url], check=True, capture_output=True)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs_dir", type=Path)
    parser.add_argument("run_id")
    parser.add_argument("at", help="window start for the map and the briefing")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    run = args.runs_dir / args.run_id
    clean = run / "process" / "clean.parquet"
    work = Path(tempfile.mkdtemp())

    subprocess.run([*CLI, "brief", "--runs-dir", str(args.runs_dir), "--run", args.run_id,
                    "--data", str(clean), "--at", args.at, "--horizon", "8h", "--top", "15",
                    "--out", str(work / "brief.html")], check=True)
    shoot((work / "brief.html").as_uri(), out / "briefing.png", "900,1300")
    sources = sorted(pl.read_parquet(clean, columns=["source_file"])["source_file"]
                     .unique().to_list())
    subprocess.run([*CLI, "eda", "--data", *sources, "--out", str(work)], check=True)
    shoot((work / "eda.html").as_uri(), out / "eda.png", "1100,2200")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([*CLI, "serve", "--runs-dir", str(args.runs_dir), "--run",
                               args.run_id, "--data", str(clean), "--port", str(port),
                               "--tiles", "none"])
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/ping").status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/map?at={args.at}&horizon=8h&top=10"
        shoot(url, out / "map_desktop.png", "1280,900")
        shoot(url, out / "map_phone.png", "390,844")
        # The card as served: it shows the version the registry gave the model.
        shoot(f"http://127.0.0.1:{port}/model/card", out / "card.png", "1100,3400")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
