"""The ``/map`` page: Leaflet (vendored from the npm registry, served by this server).

Zoom, pan, tap a place for details, a ranked list, and downloads of the shown forecast
as GeoJSON and CSV. The background tiles come from ``serving.tiles`` (OpenStreetMap by
default, an agency's own tile server, or ``none``); with ``none`` the page loads nothing
from anywhere but this server and still shows the division outlines and names and the
census tracts. Each place has a pin of fixed size at its centre, so a 150 m cell stays
visible at city zoom. A bearer token, when the server needs one, is read from the URL
fragment (``/map#token=...``), which browsers never send to servers or write to logs.
"""

from __future__ import annotations

import html
import json

from crimecast.serving.guard import VENDOR_PATH

_STYLE = """
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: #1d2430; background: #f6f7f9; }
  header { padding: 10px 14px; background: #1d2430; color: #fff; }
  header h1 { margin: 0; font-size: 17px; }
  header .meta { font-size: 12px; opacity: .85; }
  .badge { display: inline-block; padding: 1px 6px; border-radius: 4px; background: #c0392b;
           color: #fff; font-size: 11px; font-weight: 600; margin-left: 6px; }
  form { display: flex; flex-wrap: wrap; gap: 8px; padding: 10px 14px; background: #fff;
         border-bottom: 1px solid #dde1e6; align-items: flex-end; }
  label { display: flex; flex-direction: column; font-size: 12px; color: #4a5565; }
  input, select, button { font: inherit; padding: 6px 8px; border: 1px solid #b8c0cc;
                          border-radius: 6px; min-height: 38px; }
  button { background: #2563eb; color: #fff; border-color: #2563eb; padding: 6px 14px; }
  .downloads a { display: inline-block; margin-right: 8px; font-size: 13px; }
  main { display: flex; flex-wrap: wrap; gap: 12px; padding: 12px 14px; }
  #mapbox { flex: 2 1 420px; min-width: 0; }
  #map { height: 62vh; min-height: 320px; border: 1px solid #dde1e6; border-radius: 8px;
         background: #e8ecf0; }
  .region-label { font-size: 11px; font-weight: 700; color: #27303d; white-space: nowrap;
                  text-shadow: 0 0 3px #fff, 0 0 3px #fff; pointer-events: none; }
  .rank-pin { display: grid; place-items: center; border-radius: 50%; color: #fff;
              font-size: 11px; font-weight: 700; border: 2px solid #fff;
              box-shadow: 0 0 2px #000; }
  aside { flex: 1 1 260px; min-width: 0; }
  #status { padding: 8px 10px; background: #fff; border: 1px solid #dde1e6;
            border-radius: 8px; font-size: 13px; margin-bottom: 10px; }
  #status.error { border-color: #c0392b; color: #8e1b10; background: #fff4f2; }
  ol { margin: 0; padding: 0; list-style: none; }
  li { display: grid; grid-template-columns: 2.2em 1fr; gap: 6px; align-items: center;
       padding: 7px 8px; background: #fff; border: 1px solid #e5e8ec; border-radius: 6px;
       margin-bottom: 5px; cursor: pointer; }
  li .swatch { width: 1.8em; height: 1.8em; border-radius: 4px; display: grid;
               place-items: center; font-weight: 700; font-size: 12px; color: #fff; }
  li .name { font-weight: 600; }
  li .sub { font-size: 12px; color: #4a5565; }
  .legend { display: flex; align-items: center; gap: 6px; font-size: 12px; margin: 6px 4px; }
  .ramp { flex: 0 0 120px; height: 10px; border-radius: 3px;
          background: linear-gradient(90deg, #fee8a6, #f59e0b, #dc2626, #7f1d1d); }
  footer { padding: 6px 14px 16px; font-size: 12px; color: #4a5565; }
"""

_BODY = """
<header>
  <h1>Where crime is forecast <span id="synthetic" class="badge" hidden>SYNTHETIC DATA</span></h1>
  <div class="meta" id="modelmeta">loading the model...</div>
  <div class="meta" id="estimated" hidden></div>
</header>
<form id="controls">
  <label>Start of window <input type="datetime-local" id="at" step="3600"></label>
  <label id="unitbox" hidden>Places <select id="unit"></select></label>
  <label>Length <select id="horizon"></select></label>
  <label>How many places <input type="number" id="top" min="1" max="1000" value="20"
    style="width:5em"></label>
  <button type="submit">Show</button>
  <span class="downloads" id="downloads" hidden>Download:
    <a id="dl-geojson" href="#">GeoJSON</a><a id="dl-csv" href="#">CSV</a></span>
</form>
<main>
  <div id="mapbox">
    <div id="map" role="application" aria-label="Map of the forecast places"></div>
    <div class="legend"><span>lower chance</span><span class="ramp"></span>
      <span>higher chance</span></div>
  </div>
  <aside>
    <div id="status">loading...</div>
    <ol id="list"></ol>
  </aside>
</main>
<footer>Forecasts are about places, never people. Places are ranked by the model's chance
that each is a hotspot in the window. "Expected crimes" is the average count in the same
hours of the previous weeks, a simple yardstick shown for scale, so a place with fewer
expected crimes can rank above one with more when recent or nearby crime says so.</footer>
"""

_SCRIPT = r"""
"use strict";
const settings = JSON.parse(document.getElementById("settings").textContent);
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? {"Authorization": "Bearer " + token} : {};
const map = L.map("map", {zoomSnap: 0.25, preferCanvas: false});
map.attributionControl.setPrefix("Leaflet");
if (settings.tiles !== "none") {
  L.tileLayer(settings.tiles, {maxZoom: 19, attribution: settings.attribution}).addTo(map);
}
const tractLayer = L.layerGroup().addTo(map), outlineLayer = L.layerGroup().addTo(map);
const hotspotLayer = L.layerGroup().addTo(map);
let model = null, pins = {}, current = null;

async function getJSON(url) {
  const r = await fetch(url, {headers});
  const text = await r.text();
  let doc = null;
  try { doc = JSON.parse(text); } catch (e) { doc = {detail: text}; }
  if (!r.ok) {
    const detail = doc && doc.detail;
    throw new Error(Array.isArray(detail)
      ? detail.map(d => (d.loc || []).slice(-1) + ": " + d.msg).join("; ")
      : (detail || ("HTTP " + r.status)));
  }
  return doc;
}
function colour(t) {
  const stops = [[254, 232, 166], [245, 158, 11], [220, 38, 38], [127, 29, 29]];
  t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  const c = stops[i].map((v, j) => Math.round(v + (stops[i + 1][j] - v) * f));
  return "rgb(" + c.join(",") + ")";
}
function when(iso) {  // "Fri 1 Aug 2023 06:00" from a local ISO time
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toLocaleDateString("en-GB", {weekday: "short", day: "numeric", month: "short",
    year: "numeric"}) + " " + iso.slice(11, 16);
}
function day(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleDateString("en-GB",
    {day: "numeric", month: "short", year: "numeric"});
}
function modelWords(m) {  // an unregistered model has no version: never "vnull"
  return m.model_version == null
    ? "not registered (run " + (m.crimecast_run_id || m.run_id || "none") + ")"
    : "version " + m.model_version + " (run " + m.run_id + ")";
}
function setStatus(text, isError) {
  const box = document.getElementById("status");
  box.textContent = text;
  box.className = isError ? "error" : "";
}
function details(p, doc) {
  const m = doc.properties, pct = (100 * p.score).toFixed(0);
  const periods = m.bins > 1 ? " (average over the window's " + m.bins + " periods)" : "";
  return [
    "<b>#" + p.rank + " " + esc(p.place) + "</b>",
    "Expected crimes in this " + esc(m.horizon) + " window: " + p.expected_count.toFixed(1),
    "Chance of being " + esc(model.hotspot_meaning) + ": " + pct + "%" + periods,
    p.hotspot ? "Above the alert threshold in " + p.flagged_bins + " of " + m.bins +
      " period(s)" : "Below the alert threshold in every period",
    "Centre " + p.centre_lat.toFixed(5) + ", " + p.centre_lon.toFixed(5),
  ].join("<br>");
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;"}[c]));
}
function drawOutlines(doc) {
  outlineLayer.clearLayers();
  const layer = L.geoJSON(doc, {interactive: false, style: {className: "boundary",
    color: "#4a5565", weight: 1.5, fillColor: "#eef1f4",
    fillOpacity: settings.tiles === "none" ? 0.6 : 0.05}});
  outlineLayer.addLayer(layer);
  labels = [];
  for (const f of doc.features) {
    const p = f.properties;
    if (p.label_lat == null) continue;
    const marker = L.marker([p.label_lat, p.label_lon], {interactive: false,
      icon: L.divIcon({className: "region-label", html: esc(p.region), iconSize: null})});
    outlineLayer.addLayer(marker);
    labels.push(marker);
  }
  if (layer.getBounds().isValid()) map.fitBounds(layer.getBounds(), {padding: [8, 8]});
  declutter();
}
let labels = [];
function declutter() {  // hide a region name that would overlap one already shown
  const shown = [];
  for (const marker of labels) {
    const el = marker.getElement();
    if (!el) continue;
    el.style.visibility = "";
    const box = el.getBoundingClientRect();
    const clash = shown.some(b => box.left < b.right && box.right > b.left &&
                                   box.top < b.bottom && box.bottom > b.top);
    if (clash) el.style.visibility = "hidden"; else shown.push(box);
  }
}
map.on("zoomend moveend", declutter);
function drawTracts(doc) {
  tractLayer.clearLayers();
  tractLayer.addLayer(L.geoJSON(doc, {interactive: false, style: {className: "tract",
    color: "#8a94a3", weight: 0.5, fill: false}}));
}
function drawHotspots(doc) {
  hotspotLayer.clearLayers(); pins = {}; current = doc;
  const list = document.getElementById("list");
  list.replaceChildren();
  const scores = doc.features.map(f => f.properties.score);
  const lo = Math.min(...scores), hi = Math.max(...scores);
  const tone = p => colour(hi > lo ? (p.score - lo) / (hi - lo) : 1);
  for (const f of [...doc.features].reverse()) {
    const p = f.properties;
    const shape = L.geoJSON(f, {style: {className: "hotspot", color: "#3b0a0a",
      weight: 1.2, fillColor: tone(p), fillOpacity: 0.8}});
    shape.bindPopup(details(p, doc));
    const pin = L.marker([p.centre_lat, p.centre_lon], {title: "#" + p.rank + " " + p.place,
      icon: L.divIcon({className: "", iconSize: [24, 24], html: '<div class="rank-pin" ' +
        'style="width:24px;height:24px;background:' + tone(p) + '">' + p.rank + "</div>"})});
    pin.bindPopup(details(p, doc));
    hotspotLayer.addLayer(shape); hotspotLayer.addLayer(pin);
    pins[p.rank] = pin;
  }
  for (const f of doc.features) {
    const p = f.properties;
    const li = document.createElement("li");
    li.innerHTML = '<span class="swatch"></span><span><span class="name"></span><br>' +
      '<span class="sub"></span></span>';
    li.querySelector(".swatch").style.background = tone(p);
    li.querySelector(".swatch").textContent = p.rank;
    li.querySelector(".name").textContent = p.place;
    li.querySelector(".sub").textContent = "expected " + p.expected_count.toFixed(1) +
      " crimes in this " + doc.properties.horizon + " window \u00b7 " +
      (100 * p.score).toFixed(0) + "% chance of being " + model.hotspot_meaning;
    li.addEventListener("click", () => {
      map.setView([p.centre_lat, p.centre_lon], Math.max(map.getZoom(), 15));
      pins[p.rank].openPopup();
    });
    list.appendChild(li);
  }
  const m = doc.properties;
  setStatus("Forecast for " + when(m.window_start) + " to " + when(m.window_end) +
    " (" + m.horizon + "). Data through " + day(m.data_through) + "; " +
    m.events_known.toLocaleString("en-GB") + " crimes known when it was issued" +
    (m.weather_available ? "" : "; no weather") + ". Model " + modelWords(m) + ".", false);
  offerDownloads(doc);
}
function offerDownloads(doc) {
  const m = doc.properties, stem = "crimecast-" + m.window_start.replace(/[:T]/g, "-") +
    "-" + m.horizon;
  const columns = ["rank", "place", "region", "expected_count", "score", "hotspot",
    "centre_lat", "centre_lon", "unit_id", "window_start", "window_end", "data_through",
    "model_name", "model_version", "run_id"];
  const cell = v => v == null ? "" : /[",\n]/.test(String(v))
    ? '"' + String(v).replace(/"/g, '""') + '"' : String(v);
  const rows = doc.features.map(f => columns.map(c => cell(c in f.properties
    ? f.properties[c] : m[c])).join(","));
  const csv = [columns.join(","), ...rows].join("\n") + "\n";
  const link = (id, text, type, name) => {
    const a = document.getElementById(id);
    if (a.dataset.url) URL.revokeObjectURL(a.dataset.url);
    a.dataset.url = URL.createObjectURL(new Blob([text], {type}));
    a.href = a.dataset.url; a.download = name;
  };
  link("dl-geojson", JSON.stringify(doc), "application/geo+json", stem + ".geojson");
  link("dl-csv", csv, "text/csv", stem + ".csv");
  document.getElementById("downloads").hidden = false;
}
async function refresh() {
  document.body.dataset.state = "loading";
  const q = new URLSearchParams({at: document.getElementById("at").value,
    horizon: document.getElementById("horizon").value, top: document.getElementById("top").value});
  if (document.getElementById("unit").value) q.set("unit", document.getElementById("unit").value);
  try {
    drawHotspots(await getJSON("/hotspots?" + q));
    document.body.dataset.state = "ready";
  } catch (e) {
    setStatus(e.message, true);
    document.body.dataset.state = "error";
  }
}
async function start() {
  try {
    model = await getJSON("/model");
    document.getElementById("modelmeta").textContent = "Model " + modelWords(model) +
      " \u00b7 " + model.model_type + " \u00b7 " + model.spatial_unit + " places, " +
      model.time_bin + " periods \u00b7 risk rating " + model.risk_rating;
    document.getElementById("synthetic").hidden = model.synthetic_data !== true;
    const share = model.data_store && model.data_store.estimated_time_share;
    if (share) {
      const box = document.getElementById("estimated");
      box.textContent = Math.round(100 * share) + "% of the crimes in the data have an " +
        "estimated time (entered on the hour); short periods are the least certain.";
      box.hidden = false;
    }
    const select = document.getElementById("horizon"), units = document.getElementById("unit");
    const choices = model.spatial_units || {};
    const setHorizons = info => select.replaceChildren(...info.horizons.map(
      h => new Option(h, h, false, h === info.default_horizon)));
    units.replaceChildren(...Object.keys(choices).map(
      u => new Option(u + " (" + choices[u].time_bin + ")", u, false, u === model.spatial_unit)));
    document.getElementById("unitbox").hidden = Object.keys(choices).length < 2;
    units.addEventListener("change", () => setHorizons(choices[units.value]));
    setHorizons(model);
    const params = new URLSearchParams(location.search);
    if (params.get("unit") && choices[params.get("unit")]) {
      units.value = params.get("unit"); setHorizons(choices[units.value]);
    }
    document.getElementById("at").value = (params.get("at") || model.default_at).slice(0, 16);
    if (params.get("horizon")) select.value = params.get("horizon");
    if (params.get("top")) document.getElementById("top").value = params.get("top");
    drawOutlines(await getJSON("/boundaries"));
    try { drawTracts(await getJSON("/tracts")); } catch (e) { /* no tracts: outlines only */ }
    await refresh();
  } catch (e) {
    setStatus(e.message, true);
    document.body.dataset.state = "error";
  }
}
document.getElementById("controls").addEventListener("submit", ev => {
  ev.preventDefault(); refresh();
});
start();
"""


def map_html(tiles: str = "none", attribution: str = "") -> str:
    """The page, with the tile layer's URL template (or ``none``) and its attribution."""
    settings = json.dumps({"tiles": tiles, "attribution": html.escape(attribution)}
                          ).replace("</", "<\\/")  # cannot close the script element
    leaflet = f"{VENDOR_PATH}/leaflet"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>crimecast: forecast places</title>\n"
        f'<link rel="stylesheet" href="{leaflet}/leaflet.css">\n'
        f"<style>{_STYLE}</style>\n</head>\n"
        f'<body data-state="loading">{_BODY}'
        '<script type="application/json" id="settings">'
        f"{settings}</script>\n"
        f'<script src="{leaflet}/leaflet.js"></script>\n'
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )
