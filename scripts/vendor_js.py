"""Vendor the browser libraries crimecast serves from the npm registry into the package.

Pages never load scripts from a CDN: the files below are copied from the packages'
registry tarballs (pinned versions, checked against the registry's sha512 integrity)
into ``src/crimecast/resources/vendor/<package>/``, with each package's licence, and
``src/crimecast/resources/vendor/VENDORED.json`` records what was taken from where.

Usage (network access to registry.npmjs.org; run again after changing a version)::

    .venv/bin/python scripts/vendor_js.py [--check]

``--check`` downloads nothing: it verifies the vendored files against VENDORED.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "crimecast" / "resources" / "vendor"
REGISTRY = "https://registry.npmjs.org"
# package -> (version, files inside the tarball's ``package/`` folder)
PACKAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "swagger-ui-dist": ("5.35.0", ("swagger-ui-bundle.js", "swagger-ui.css",
                                   "favicon-32x32.png", "LICENSE")),
    "leaflet": ("1.9.4", ("dist/leaflet.js", "dist/leaflet.css", "dist/images/layers.png",
                          "dist/images/layers-2x.png", "dist/images/marker-icon.png",
                          "dist/images/marker-icon-2x.png", "dist/images/marker-shadow.png",
                          "LICENSE")),
}


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        data: bytes = response.read()
    return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vendor() -> dict[str, dict[str, object]]:
    """Download, verify and copy every package's files; returns the VENDORED.json content."""
    record: dict[str, dict[str, object]] = {}
    for name, (version, files) in PACKAGES.items():
        meta = json.loads(_fetch(f"{REGISTRY}/{name}/{version}"))
        tarball = _fetch(meta["dist"]["tarball"])
        algorithm, _, expected = meta["dist"]["integrity"].partition("-")
        if algorithm != "sha512" or base64.b64encode(
                hashlib.sha512(tarball).digest()).decode() != expected:
            sys.exit(f"{name}@{version}: the tarball does not match the registry's integrity")
        out = VENDOR / name
        out.mkdir(parents=True, exist_ok=True)
        digests: dict[str, str] = {}
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for path in files:
                member = archive.extractfile(f"package/{path}")
                if member is None:
                    sys.exit(f"{name}@{version}: {path} is not in the package")
                data = member.read()
                # Keep the layout below dist/ (leaflet.css reads images/...).
                relative = path.removeprefix("dist/")
                (out / relative).parent.mkdir(parents=True, exist_ok=True)
                (out / relative).write_bytes(data)
                digests[relative] = _sha256(data)
        record[name] = {"version": version, "tarball": meta["dist"]["tarball"],
                        "integrity": meta["dist"]["integrity"], "license": meta.get("license"),
                        "files": digests}
    return record


def check() -> list[str]:
    """Differences between the vendored files and VENDORED.json (empty when they agree)."""
    record = json.loads((VENDOR / "VENDORED.json").read_text())
    problems = []
    for name, entry in record.items():
        if entry["version"] != PACKAGES.get(name, ("?",))[0]:
            problems.append(f"{name}: vendored {entry['version']}, pinned "
                            f"{PACKAGES.get(name, ('none',))[0]}")
        for file, digest in entry["files"].items():
            path = VENDOR / name / file
            if not path.exists() or _sha256(path.read_bytes()) != digest:
                problems.append(f"{name}/{file}: missing or changed")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify, download nothing")
    if parser.parse_args().check:
        problems = check()
        print("\n".join(problems) or "vendored files match VENDORED.json")
        sys.exit(1 if problems else 0)
    record = vendor()
    (VENDOR / "VENDORED.json").write_text(json.dumps(record, indent=2) + "\n")
    names = ", ".join(f"{name}@{entry['version']}" for name, entry in record.items())
    print(f"vendored {names} into {VENDOR}")


if __name__ == "__main__":
    main()
