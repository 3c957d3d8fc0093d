"""Forecasts for dispatch: KML layers, a webhook POST and per-shift file names.

:func:`forecast_kml` renders a shift's forecast as KML 2.2 (Google Earth, ArcGIS, QGIS, CAD
map layers) from the very features of :func:`~crimecast.serving.geojson.hotspots_geojson`,
so both say the same; :func:`post_forecast` POSTs a forecast to a receiver, retrying
transient failures, every attempt with the same ``Idempotency-Key``;
:func:`shift_file_stem` names a shift's files so its GeoJSON, CSV and KML sit side by side.
Places, never people: every output describes where crime is more likely.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import http
import http.client
import json
import logging
import math
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from crimecast import __version__
from crimecast.errors import ConfigError, ServingError
from crimecast.serving.bundle import ModelBundle
from crimecast.serving.forecast import Forecast
from crimecast.serving.geojson import UnitShapes, forecast_properties, hotspot_features
from crimecast.serving.state import hotspot_meaning

logger = logging.getLogger(__name__)

KML_NS = "http://www.opengis.net/kml/2.2"
KML_STYLE = "hotspot"
KML_FILL = "8c2626dc"  # aabbggrr: the briefing's red (#dc2626), 55% opaque
KML_LINE = "ff1d1d7f"  # the briefing's darkest red (#7f1d1d), opaque
# Per place, as the GeoJSON properties say them (an unregistered model: an empty value).
KML_FIELDS = ("rank", "score", "expected_count", "unit_id", "place", "flagged_bins",
              "window_start", "window_end", "model_name", "model_version", "run_id",
              "crimecast_run_id", "data_through", "events_known", "crime_types")
DISPATCH_FORMATS = {"geojson": ".geojson", "csv": ".csv", "kml": ".kml"}
PLACES_NOT_PEOPLE = ("Places, never people: this says where crime is more likely, not who "
                     "commits it. It is no reason to stop or search anyone.")
# Characters XML 1.0 cannot hold at all (escaping does not help): replaced by U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

USER_AGENT = f"crimecast/{__version__}"
POST_EXAMPLE = "https://cad.example.gov/hotspots"
MAX_RETRIES = 10
MAX_ANSWER_BYTES = 64 * 1024
RETRY_STATUS = frozenset({429})  # and every 5xx
UPSTREAM_STATUS = 502  # ServingError.status of a failed delivery: the receiver failed us



def _text(value: Any) -> str:
    """A value as KML text: JSON's spelling of booleans, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("\ufffd", str(value))


def _add(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrs)
    if text is not None:
        child.text = _text(text)
    return child


def _extended(parent: ET.Element, values: dict[str, Any]) -> None:
    data = _add(parent, "ExtendedData")
    for name, value in values.items():
        _add(_add(data, "Data", name=name), "value", value)


def _ring(parent: ET.Element, tag: str, ring: list[list[float]]) -> None:
    points = [(float(p[0]), float(p[1])) for p in ring]
    if points and points[0] != points[-1]:
        points.append(points[0])
    _add(_add(_add(parent, tag), "LinearRing"), "coordinates",
         " ".join(f"{lon:.6f},{lat:.6f}" for lon, lat in points))


def _polygon(parent: ET.Element, rings: list[list[list[float]]]) -> None:
    polygon = _add(parent, "Polygon")
    _add(polygon, "tessellate", 1)
    _ring(polygon, "outerBoundaryIs", rings[0])
    for hole in rings[1:]:
        _ring(polygon, "innerBoundaryIs", hole)


def _geometry(parent: ET.Element, geometry: dict[str, Any],
              centre: tuple[float, float]) -> None:
    """A GeoJSON (Multi)Polygon as KML (lon,lat order, closed rings); any other shape as
    its centre point, so the place still shows."""
    if geometry["type"] == "Polygon":
        _polygon(parent, geometry["coordinates"])
    elif geometry["type"] == "MultiPolygon":
        multi = _add(parent, "MultiGeometry")
        for rings in geometry["coordinates"]:
            _polygon(multi, rings)
    else:
        _add(_add(parent, "Point"), "coordinates", f"{centre[0]:.6f},{centre[1]:.6f}")


def place_description(props: dict[str, Any], forecast: Forecast, meaning: str) -> str:
    """One place in plain words, as the map's popup says it: expected crimes, the chance
    of being a hotspot (``meaning``: :func:`~crimecast.serving.state.hotspot_meaning`),
    the periods above the alert threshold and the centre."""
    periods = (f" (average over the window's {forecast.bins} periods)"
               if forecast.bins > 1 else "")
    flagged = (f"Above the alert threshold in {props['flagged_bins']} of {forecast.bins} "
               "period(s)." if props["hotspot"] else "Below the alert threshold in every "
               "period.")
    return "\n".join([
        f"Expected crimes in this {forecast.horizon} window: {props['expected_count']:.1f}.",
        f"Chance of being {meaning}: {100 * props['score']:.0f}%{periods}.", flagged,
        f"Centre {props['centre_lat']:.5f}, {props['centre_lon']:.5f}."])


def _document_description(forecast: Forecast, bundle: ModelBundle, shown: int,
                          meaning: str) -> str:
    through = forecast.data_through
    audit = bundle.audit()
    return "\n".join([
        f"Crime hotspot forecast for {forecast.window_start:%Y-%m-%d %H:%M} to "
        f"{forecast.window_end:%Y-%m-%d %H:%M} ({forecast.horizon}), issued "
        f"{forecast.issued_at:%Y-%m-%d %H:%M}: the top {shown} of "
        f"{forecast.ranked.height:,} places.",
        f"Model {bundle.describe()}; crime types: {audit['crime_types']}.",
        (f"Data through {through:%Y-%m-%d %H:%M} ({forecast.events_known:,} crimes known)."
         if through is not None else "No data."),
        f"Chance: the chance of being {meaning}.", PLACES_NOT_PEOPLE])


def forecast_kml(forecast: Forecast, shapes: UnitShapes, bundle: ModelBundle,
                 top: int) -> bytes:
    """The ``top`` places of ``forecast`` as a KML 2.2 document (UTF-8 bytes).

    One Placemark per place in rank order: its name (``#1 Central``), the forecast in
    plain words, its polygon (a MultiGeometry for a MultiPolygon) and, as ExtendedData,
    the same values as the GeoJSON's properties (:data:`KML_FIELDS`). The Document says
    the window, the model, the run and the data's freshness, in words and as
    ExtendedData (the GeoJSON collection's properties)."""
    audit = bundle.audit()
    meaning = hotspot_meaning(bundle.feature_config)
    features = [json.loads(f) for f in hotspot_features(forecast, shapes, audit, top)]
    # Unprefixed names under a default namespace declared once (ElementTree's own
    # default_namespace option refuses the unqualified id and name attributes KML uses).
    root = ET.Element("kml", xmlns=KML_NS)
    document = _add(root, "Document")
    _add(document, "name", f"crimecast hotspots {forecast.window_start:%Y-%m-%d %H:%M} "
                           f"({forecast.horizon})")
    _add(document, "open", 1)
    _add(document, "description",
         _document_description(forecast, bundle, len(features), meaning))
    style = _add(document, "Style", id=KML_STYLE)
    _add(_add(style, "LineStyle"), "color", KML_LINE)
    _add(_add(style, "PolyStyle"), "color", KML_FILL)  # filled and outlined: KML's default
    _extended(document, forecast_properties(forecast, audit, bundle.threshold,
                                            bundle.feature_config.spatial_unit, top))
    for feature in features:
        props = feature["properties"]
        placemark = _add(document, "Placemark", id=f"rank-{props['rank']}")
        _add(placemark, "name", f"#{props['rank']} {props['place']}")
        _add(placemark, "description", place_description(props, forecast, meaning))
        _add(placemark, "styleUrl", f"#{KML_STYLE}")
        _extended(placemark, {k: props.get(k) for k in KML_FIELDS})
        _geometry(placemark, feature["geometry"], (props["centre_lon"], props["centre_lat"]))
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"



def shift_file_stem(forecast: Forecast, prefix: str = "hotspots") -> str:
    """The stem of a shift's dispatch files: ``hotspots_2024-03-31T2200_8h`` (window start,
    no colons, so it is a valid file name everywhere; then the horizon)."""
    return f"{prefix}_{forecast.window_start:%Y-%m-%dT%H%M}_{forecast.horizon.strip().lower()}"


def shift_file_name(forecast: Forecast, fmt: str, prefix: str = "hotspots") -> str:
    """The file a dispatch export writes for ``fmt`` (geojson, csv or kml):
    ``hotspots_2024-03-31T2200_8h.kml``."""
    suffix = DISPATCH_FORMATS.get(fmt.strip().lower())
    if suffix is None:
        raise ConfigError(f"format must be geojson, csv or kml; got '{fmt}'. Pass --format "
                          "kml.")
    return shift_file_stem(forecast, prefix) + suffix


@dataclass(frozen=True)
class PostResult:
    """A delivered POST: where, the receiver's status, how many attempts and how long
    (every attempt and wait included)."""

    url: str
    status: int
    attempts: int
    seconds: float


def _bad_url(rule: str, url: str) -> ConfigError:
    return ConfigError(f"post must {rule}; got '{url}'. Pass --post {POST_EXAMPLE}.")


def check_post_url(url: str) -> str:
    """``url`` (trimmed) if it is an http:// or https:// URL a POST can go to; else a
    one-line :class:`ConfigError` naming ``--post``, the rule, the value and the fix."""
    text = url.strip()
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise _bad_url("be a URL without spaces or control characters (write a space as "
                       "%20)", url)
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # an unclosed [IPv6] bracket
        raise _bad_url("be an http:// or https:// URL", url) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad_url("be an http:// or https:// URL", url)
    if parts.username is not None or parts.password is not None:
        shown = text.replace(f":{parts.password}@", ":***@") if parts.password else text
        raise ConfigError(f"post must not carry a user name or password (they would be "
                          f"logged); got '{shown}'. Pass --post {POST_EXAMPLE} and give the "
                          "receiver's token as a header.")
    if not parts.hostname:
        raise _bad_url("name a host after the scheme", url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise _bad_url("have a port from 1 to 65535, if any", url)
    return text


def _check_post_numbers(timeout_s: float, retries: int, backoff_s: float,
                        max_wait_s: float) -> None:
    if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ConfigError(f"timeout_s must be a positive number of seconds; got {timeout_s!r}. "
                          "Pass timeout_s=10.")
    if isinstance(retries, bool) or not isinstance(retries, int) \
            or not 0 <= retries <= MAX_RETRIES:
        raise ConfigError(f"retries must be a whole number from 0 to {MAX_RETRIES}; got "
                          f"{retries!r}. Pass retries=3.")
    for name, value, example in (("backoff_s", backoff_s, 0.5), ("max_wait_s", max_wait_s, 30)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a number of seconds, 0 or more; got {value!r}. "
                              f"Pass {name}={example}.")


def forecast_key(forecast: Forecast, bundle: ModelBundle) -> str:
    """The ``Idempotency-Key`` of a forecast window and model run: the same for every
    post of that window by that model (whatever ``top`` or format), different for another
    window, horizon, spatial unit, model run or version, or crime-type selection."""
    audit = bundle.audit()
    run = audit["run_id"] or audit["crimecast_run_id"] or bundle.source
    parts = ("crimecast-forecast", forecast.window_start.isoformat(),
             forecast.window_end.isoformat(), forecast.horizon.strip().lower(),
             bundle.feature_config.spatial_unit, audit["model_name"], str(run),
             str(audit["model_version"]), audit["crime_types"])
    return "crimecast-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def body_key(body: bytes) -> str:
    """An ``Idempotency-Key`` from the body itself (the same bytes: the same key)."""
    return "crimecast-" + hashlib.sha256(body).hexdigest()[:32]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class _Attempt:
    status: int | None
    what: str  # the failure in words, for the log and the final error
    retry: bool
    retry_after: float | None = None
    location: str | None = None
    fix: str = "Check that the receiver is up and reachable, then run again."


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _phrase(code: int, reason: str | None) -> str:
    try:
        return f"HTTP {code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code} {reason or ''}".rstrip()


def _failure(reason: object, timeout_s: float) -> _Attempt:
    if isinstance(reason, TimeoutError):
        return _Attempt(None, f"no answer within {timeout_s:g} s", retry=True)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return _Attempt(None, f"the certificate was not trusted ({reason.verify_message})",
                        retry=False, fix="Use a URL whose certificate this machine trusts.")
    if isinstance(reason, ConnectionRefusedError):
        return _Attempt(None, "the connection was refused", retry=True)
    if isinstance(reason, OSError) and reason.strerror:
        return _Attempt(None, f"the connection failed ({reason.strerror})", retry=True)
    return _Attempt(None, f"the connection failed ({reason})", retry=True)


def _attempt(opener: urllib.request.OpenerDirector, request: urllib.request.Request,
             timeout_s: float) -> _Attempt:
    try:
        with opener.open(request, timeout=timeout_s) as response:
            response.read(MAX_ANSWER_BYTES)  # the answer is not used: read a little, close
            return _Attempt(response.status, _phrase(response.status, response.reason),
                            retry=False)
    except urllib.error.HTTPError as exc:
        code = exc.code
        exc.close()
        retry = code >= 500 or code in RETRY_STATUS
        return _Attempt(code, _phrase(code, exc.reason), retry=retry,
                        retry_after=_retry_after(exc.headers.get("Retry-After")),
                        location=exc.headers.get("Location"))
    except urllib.error.URLError as exc:
        return _failure(exc.reason, timeout_s)
    except (OSError, http.client.HTTPException) as exc:  # a timeout or reset mid-answer
        return _failure(exc, timeout_s)
    except ValueError as exc:  # http.client.InvalidURL: a host it cannot connect to
        return _Attempt(None, f"the URL was refused ({exc})", retry=False,
                        fix=f"Pass --post {POST_EXAMPLE}.")


def _final_error(url: str, attempts: int, last: _Attempt) -> ServingError:
    tried = f"post to '{url}' failed after {attempts} attempt{'s' if attempts > 1 else ''}"
    if last.status is not None and 300 <= last.status < 400:
        where = urllib.parse.urljoin(url, last.location or "")
        detail, fix = (f"{last.what}, a redirect to '{where}' (a POST is not redirected)",
                       f"Pass --post {where}.")
    elif last.status is not None and not last.retry:
        detail, fix = (f"{last.what}, not retried (the receiver refused the request)",
                       "Check the URL and what the receiver accepts, then run again.")
    else:
        detail, fix = last.what, last.fix
    return ServingError(f"{tried}: {detail}. {fix}", status=UPSTREAM_STATUS)


def post_forecast(url: str, body: bytes, *, content_type: str = "application/geo+json",
                  timeout_s: float = 10.0, retries: int = 3, backoff_s: float = 0.5,
                  headers: dict[str, str] | None = None, idempotency_key: str | None = None,
                  max_wait_s: float = 30.0) -> PostResult:
    """POST ``body`` (a shift's forecast GeoJSON, say) to ``url``; returns a
    :class:`PostResult` on a 2xx answer.

    Up to ``1 + retries`` attempts, each within ``timeout_s``. A connection error, a
    timeout, a 5xx or a 429 is retried after ``backoff_s``, doubled each time, or the
    receiver's ``Retry-After`` if longer; no wait exceeds ``max_wait_s``. Any other answer
    (a 4xx, a redirect) is final at once. Every attempt sends the same ``Idempotency-Key``
    (``idempotency_key``, e.g. :func:`forecast_key` of the forecast and model, else
    :func:`body_key` of ``body``) and ``User-Agent: crimecast/<version>``; ``headers`` are
    added last (an ``Authorization`` token, say).

    Raises :class:`ConfigError` for a URL that is not http(s) or an invalid number, and a
    one-line :class:`ServingError` (status 502) naming the URL, the attempts and the last
    status or error when delivery fails."""
    url = check_post_url(url)
    _check_post_numbers(timeout_s, retries, backoff_s, max_wait_s)
    sent = {"Content-Type": content_type, "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key or body_key(body), **(headers or {})}
    opener = urllib.request.build_opener(_NoRedirect())
    began = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        request = urllib.request.Request(url, data=body, headers=sent, method="POST")
        outcome = _attempt(opener, request, timeout_s)
        if outcome.status is not None and 200 <= outcome.status < 300:
            seconds = time.monotonic() - began
            logger.info("posted %d bytes to %s: %s after %d attempt(s) in %.2f s", len(body),
                        url, outcome.what, attempts, seconds)
            return PostResult(url=url, status=outcome.status, attempts=attempts,
                              seconds=seconds)
        if not outcome.retry or attempts > retries:
            raise _final_error(url, attempts, outcome)
        wait = backoff_s * 2 ** (attempts - 1)
        if outcome.retry_after is not None:
            wait = max(wait, outcome.retry_after)
        wait = min(wait, max_wait_s)
        logger.warning("post to %s: %s; retry %d of %d in %.2f s", url, outcome.what,
                       attempts, retries, wait)
        time.sleep(wait)
