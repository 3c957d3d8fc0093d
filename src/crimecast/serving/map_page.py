"""The ``/map`` page: one self-contained HTML file, no network beyond this server.

No CDN scripts, web fonts or map tiles: region outlines (``/boundaries``) and
the forecast (``/hotspots``) are drawn as inline SVG. A bearer token, when the
server needs one, is read from the URL fragment (``/map#token=...``), which
browsers never send to the server or write to its logs.
"""

from __future__ import annotations

MAP_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crimecast: forecast hotspots</title>
<style>
  :root { color-scheme: light; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: #1d2430; background: #f6f7f9; }
  header { padding: 10px 14px; background: #1d2430; color: #fff; }
  header h1 { margin: 0; font-size: 17px; }
  header .meta { font-size: 12px; opacity: .8; }
  .badge { display: inline-block; padding: 1px 6px; border-radius: 4px; background: #c0392b;
           color: #fff; font-size: 11px; font-weight: 600; margin-left: 6px; }
  form { display: flex; flex-wrap: wrap; gap: 8px; padding: 10px 14px; background: #fff;
         border-bottom: 1px solid #dde1e6; align-items: flex-end; }
  label { display: flex; flex-direction: column; font-size: 12px; color: #4a5565; }
  input, select, button { font: inherit; padding: 6px 8px; border: 1px solid #b8c0cc;
                          border-radius: 6px; min-height: 38px; }
  button { background: #2563eb; color: #fff; border-color: #2563eb; padding: 6px 14px; }
  main { display: flex; flex-wrap: wrap; gap: 12px; padding: 12px 14px; }
  #mapbox { flex: 2 1 420px; min-width: 0; background: #fff; border: 1px solid #dde1e6;
            border-radius: 8px; padding: 6px; }
  svg { width: 100%; height: auto; display: block; touch-action: manipulation; }
  .boundary { fill: #eef1f4; stroke: #8a94a3; stroke-width: .6; vector-effect: non-scaling-stroke; }
  .hotspot { stroke: #3b0a0a; stroke-width: 1.2; vector-effect: non-scaling-stroke;
             fill-opacity: .85; }
  .hotspot:hover { stroke-width: 2.5; }
  .rank { font-size: 11px; font-weight: 700; fill: #111; paint-order: stroke;
          stroke: #fff; stroke-width: 3px; text-anchor: middle; pointer-events: none; }
  aside { flex: 1 1 260px; min-width: 0; }
  #status { padding: 8px 10px; background: #fff; border: 1px solid #dde1e6;
            border-radius: 8px; font-size: 13px; margin-bottom: 10px; }
  #status.error { border-color: #c0392b; color: #8e1b10; background: #fff4f2; }
  ol { margin: 0; padding: 0; list-style: none; }
  li { display: grid; grid-template-columns: 2.2em 1fr auto; gap: 6px; align-items: center;
       padding: 7px 8px; background: #fff; border: 1px solid #e5e8ec; border-radius: 6px;
       margin-bottom: 5px; }
  li .swatch { width: 1.8em; height: 1.8em; border-radius: 4px; display: grid;
               place-items: center; font-weight: 700; font-size: 12px; color: #fff; }
  li .name { font-weight: 600; }
  li .sub { font-size: 12px; color: #5b6473; }
  li .score { font-variant-numeric: tabular-nums; font-weight: 600; }
  .legend { display: flex; align-items: center; gap: 6px; font-size: 12px; margin: 6px 4px; }
  .ramp { flex: 0 0 120px; height: 10px; border-radius: 3px;
          background: linear-gradient(90deg, #fee8a6, #f59e0b, #dc2626, #7f1d1d); }
  footer { padding: 6px 14px 16px; font-size: 12px; color: #5b6473; }
</style>
</head>
<body data-state="loading">
<header>
  <h1>Forecast hotspots <span id="synthetic" class="badge" hidden>SYNTHETIC DATA</span></h1>
  <div class="meta" id="modelmeta">loading model...</div>
</header>
<form id="controls">
  <label>Start of window <input type="datetime-local" id="at" step="3600"></label>
  <label id="unitbox" hidden>Places <select id="unit"></select></label>
  <label>Horizon <select id="horizon"></select></label>
  <label>Top <input type="number" id="top" min="1" max="1000" value="20" style="width:5em"></label>
  <button type="submit">Update</button>
</form>
<main>
  <div id="mapbox">
    <svg id="map" viewBox="0 0 1000 800" role="img" aria-label="Map of forecast hotspots">
      <g id="boundaries"></g><g id="hotspots"></g><g id="labels"></g>
    </svg>
    <div class="legend"><span>lower risk</span><span class="ramp"></span>
      <span>higher risk</span></div>
  </div>
  <aside>
    <div id="status">loading...</div>
    <ol id="list"></ol>
  </aside>
</main>
<footer>Forecasts are about places, never people. Scores are the mean hotspot probability
over the window; "expected" is the average count in the same hours of the previous weeks.</footer>
<script>
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? {"Authorization": "Bearer " + token} : {};
const svgNS = "http://www.w3.org/2000/svg";
let view = null;

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
function rings(geom) {
  if (!geom) return [];
  if (geom.type === "Polygon") return geom.coordinates;
  if (geom.type === "MultiPolygon") return geom.coordinates.flat();
  return [];
}
function fit(features) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const f of features) for (const ring of rings(f.geometry)) for (const [x, y] of ring) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const w = (x1 - x0) * k || 1, h = (y1 - y0) || 1;
  const scale = 1000 / Math.max(w, h * 1.25);
  view = {x0, y1, k, scale};
  document.getElementById("map").setAttribute("viewBox",
    "0 0 " + Math.ceil(w * scale) + " " + Math.ceil(h * scale));
}
function project([x, y]) {
  return [((x - view.x0) * view.k * view.scale).toFixed(1),
          ((view.y1 - y) * view.scale).toFixed(1)];
}
function pathOf(geom) {
  return rings(geom).map(r => "M" + r.map(p => project(p).join(" ")).join("L") + "Z").join("");
}
function centre(geom) {
  let best = null, area = -1;
  for (const r of rings(geom)) {
    let xs = 0, ys = 0, a = 0;
    for (let i = 0; i < r.length - 1; i++) {
      const c = r[i][0] * r[i + 1][1] - r[i + 1][0] * r[i][1];
      a += c; xs += (r[i][0] + r[i + 1][0]) * c; ys += (r[i][1] + r[i + 1][1]) * c;
    }
    if (Math.abs(a) > area && a !== 0) { area = Math.abs(a); best = [xs / (3 * a), ys / (3 * a)]; }
  }
  return best;
}
function colour(t) {
  const stops = [[254, 232, 166], [245, 158, 11], [220, 38, 38], [127, 29, 29]];
  t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  const c = stops[i].map((v, j) => Math.round(v + (stops[i + 1][j] - v) * f));
  return "rgb(" + c.join(",") + ")";
}
function el(name, attrs, parent) {
  const node = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent.appendChild(node);
  return node;
}
function modelLabel(m) {  // an unregistered model has no version: never "vnull"
  return m.model_version == null
    ? "unregistered run " + (m.crimecast_run_id || m.run_id || "(none)")
    : "v" + m.model_version + ", run " + m.run_id;
}
function setStatus(text, isError) {
  const box = document.getElementById("status");
  box.textContent = text;
  box.className = isError ? "error" : "";
}
function drawBoundaries(doc) {
  fit(doc.features);
  const g = document.getElementById("boundaries");
  g.replaceChildren();
  for (const f of doc.features) {
    const p = el("path", {d: pathOf(f.geometry), class: "boundary"}, g);
    el("title", {}, p).textContent = f.properties.region;
  }
}
function drawHotspots(doc) {
  const g = document.getElementById("hotspots"), labels = document.getElementById("labels");
  const list = document.getElementById("list");
  g.replaceChildren(); labels.replaceChildren(); list.replaceChildren();
  const scores = doc.features.map(f => f.properties.score);
  const lo = Math.min(...scores), hi = Math.max(...scores);
  for (const f of [...doc.features].reverse()) {
    const p = f.properties, t = hi > lo ? (p.score - lo) / (hi - lo) : 1;
    const shape = el("path", {d: pathOf(f.geometry), class: "hotspot", fill: colour(t),
                              "data-rank": p.rank, "data-unit": p.unit_id}, g);
    el("title", {}, shape).textContent = "#" + p.rank + " " + p.name + ": score " +
      (100 * p.score).toFixed(1) + "%, expected " + p.expected_count;
    const c = centre(f.geometry);
    if (c) {
      const [x, y] = project(c);
      el("text", {x, y, class: "rank"}, labels).textContent = p.rank;
    }
  }
  for (const f of doc.features) {
    const p = f.properties, t = hi > lo ? (p.score - lo) / (hi - lo) : 1;
    const li = document.createElement("li");
    li.innerHTML = '<span class="swatch"></span><span><span class="name"></span><br>' +
      '<span class="sub"></span></span><span class="score"></span>';
    li.querySelector(".swatch").style.background = colour(t);
    li.querySelector(".swatch").textContent = p.rank;
    li.querySelector(".name").textContent = p.name;
    li.querySelector(".sub").textContent = p.region + " \\u00b7 expected " + p.expected_count +
      (p.hotspot ? " \\u00b7 flagged " + p.flagged_bins + " bin(s)" : "");
    li.querySelector(".score").textContent = (100 * p.score).toFixed(1) + "%";
    list.appendChild(li);
  }
  const m = doc.properties;
  setStatus(m.window_start.replace("T", " ") + " to " + m.window_end.replace("T", " ") +
    " (" + m.horizon + ", issued " + m.issued_at.replace("T", " ") + ", " + m.events_used +
    " events, data through " + String(m.data_through).replace("T", " ") +
    (m.weather_available ? "" : ", no weather") + "); model " + modelLabel(m), false);
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
    const model = await getJSON("/model");
    document.getElementById("modelmeta").textContent = model.model_name + " " +
      (model.model_version == null ? "(unregistered)" : "v" + model.model_version) +
      " \\u00b7 " + model.model_type + " \\u00b7 " + model.spatial_unit +
      " x " + model.time_bin + " \\u00b7 risk rating " + model.risk_rating;
    document.getElementById("synthetic").hidden = !model.synthetic_data;
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
    drawBoundaries(await getJSON("/boundaries"));
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
</script>
</body>
</html>
"""
