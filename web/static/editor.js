// The micro-grid editor for grid leaders (/editor): the grid's micro-grids coloured by
// households against the target band, buildings and unassigned households as points,
// and the edits — draw new, edit vertices, split with a line, merge two, delete, apply a
// suggested partition — each checked by the server while drawing (households inside,
// band, overlaps, gap) and saved with the version it changes (If-Match), so a stale
// edit is refused rather than lost. Drawing and vertex editing: Leaflet-Geoman, with
// snapping to the grid's edge and the neighbours' edges.
// URL parameters: grid=<code> (default: the account's grid).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const COLOURS = { below: "#6baed6", within: "#74c476", above: "#fb6a4a" };
  const SNAP = { snappable: true, snapDistance: 18, allowSelfIntersection: false };

  const map = L.map("map", { zoomSnap: 0.25 });
  window.editorMap = map; // for browser tests: lon/lat → a point on screen
  map.setView([22.7, 112.2], 12);
  map.attributionControl.setPrefix(false);

  const state = { grid: null, layout: null, selected: null, mode: null, draft: null, preview: null, checkTimer: null };
  let drawn = L.layerGroup().addTo(map);
  let overlays = L.layerGroup().addTo(map);
  const byCode = new Map(); // code → Leaflet layer

  function band() { return { min: Number($("band-min").value) || 30, max: Number($("band-max").value) || 50 }; }
  function say(text, ok) { $("message").textContent = text || ""; $("message").className = ok ? "ok" : ""; }
  function status(text) { $("status").textContent = text; }
  function reason() {
    const value = $("reason").value.trim();
    if (!value) { say("请先填写原因 · Give a reason first"); $("reason").focus(); }
    return value;
  }
  async function send(url, method, body, etag) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (etag) headers["If-Match"] = etag;
    return WanggeAuth.getJSON(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  // -- the layout -----------------------------------------------------------------------------
  async function loadLayout({ fit } = {}) {
    const b = band();
    const body = await WanggeAuth.getJSON(`/api/areas/${encodeURIComponent(state.grid)}/microgrids?min=${b.min}&max=${b.max}`);
    state.layout = body;
    drawn.clearLayers();
    overlays.clearLayers();
    byCode.clear();
    $("grid-name").textContent = `${body.grid.name} ${body.grid.code}`;
    const outline = L.geoJSON(body.grid.geometry, { style: { color: "#12324a", weight: 3, dashArray: "6 4", fill: false } });
    drawn.addLayer(outline);
    body.features.forEach((f) => {
      const layer = L.geoJSON(f, {
        style: { color: "#234", weight: 1.5, fillOpacity: 0.55, fillColor: COLOURS[f.properties.band] },
      }).getLayers()[0];
      layer.feature = f;
      layer.bindTooltip(`${f.properties.name}<br>${f.properties.households} 户`, { permanent: true, direction: "center", className: "mg-label" });
      layer.on("click", () => clicked(f.properties.code));
      drawn.addLayer(layer);
      byCode.set(f.properties.code, layer);
    });
    body.buildings.forEach((b) => {
      const [lon, lat] = b.geometry.coordinates;
      drawn.addLayer(L.circleMarker([lat, lon], { radius: 2 + Math.sqrt(b.properties.households), color: "#555", weight: 1, fillColor: "#fff", fillOpacity: 0.8, pmIgnore: true, interactive: false }));
    });
    body.unassigned.forEach((h) => {
      const [lon, lat] = h.geometry.coordinates;
      drawn.addLayer(L.circleMarker([lat, lon], { radius: 4, color: "#fff", weight: 1, fillColor: "#d7301f", fillOpacity: 1, className: "unassigned", pmIgnore: true, interactive: false }));
    });
    if (fit) map.fitBounds(outline.getBounds(), { padding: [20, 20], animate: false });
    const behind = body.features.filter((f) => f.properties.band !== "within").length;
    status(`${body.features.length} 个微网格 · ${behind} 个不在目标内 · ${body.unassigned.length} 户未划入`);
    document.body.dataset.microgrids = String(body.features.length);
    document.body.dataset.unassigned = String(body.unassigned.length);
    document.body.dataset.ready = String(Date.now());
    if (state.selected && !byCode.has(state.selected)) select(null); else select(state.selected);
  }

  // -- selection ------------------------------------------------------------------------------
  function clicked(code) {
    if (state.mode === "merge") return mergeWith(code);
    if (state.mode) return;
    select(code);
  }
  function select(code) {
    state.selected = code;
    byCode.forEach((layer, c) => layer.setStyle({ weight: c === code ? 4 : 1.5, color: c === code ? "#000" : "#234" }));
    const on = Boolean(code) && !state.mode;
    ["edit", "split", "merge", "delete", "history"].forEach((id) => { $(id).disabled = !on; });
    $("selected").hidden = !code;
    if (!code) { delete document.body.dataset.selected; return; }
    const p = byCode.get(code).feature.properties;
    $("selected-info").innerHTML = "";
    const info = document.createElement("div");
    info.textContent = `${p.name} · ${p.code} · ${p.households} 户 · 版本 v${p.version} (自 ${p.valid_from})`;
    $("selected-info").appendChild(info);
    const giveTo = $("give-to");
    giveTo.innerHTML = '<option value="">不并入 (住户列为未划入) · none</option>';
    byCode.forEach((layer, c) => { if (c !== code) giveTo.insertAdjacentHTML("beforeend", `<option value="${c}">${layer.feature.properties.name} ${c}</option>`); });
    document.body.dataset.selected = code;
  }

  // -- drafts, checked live -----------------------------------------------------------------
  function setMode(mode) {
    state.mode = mode;
    ["new", "edit", "split", "merge", "suggest"].forEach((id) => $(id).classList.toggle("active", id === mode));
    select(state.selected);
  }
  function showDraft(show) { $("draft").hidden = !show; if (!show) { $("draft-figures").innerHTML = ""; $("draft-problems").innerHTML = ""; delete document.body.dataset.draft; } }

  function scheduleCheck(layer, code) {
    clearTimeout(state.checkTimer);
    state.checkTimer = setTimeout(() => check(layer, code), 250);
  }
  async function check(layer, code) {
    const geometry = layer.toGeoJSON().geometry;
    if (!geometry || !geometry.coordinates || !geometry.coordinates.length) return;
    const b = band();
    try {
      const body = await send(`/api/areas/${encodeURIComponent(state.grid)}/check-microgrid?min=${b.min}&max=${b.max}`, "POST", { geometry, code: code || null });
      overlays.clearLayers();
      Object.values(body.overlaps).forEach((g) => overlays.addLayer(L.geoJSON(g, { style: { color: "#b00", weight: 2, fillColor: "#f00", fillOpacity: 0.5 }, pmIgnore: true, interactive: false })));
      const bandText = { below: "偏少 below", within: "达标 within", above: "偏多 above" }[body.band];
      $("draft-figures").innerHTML = `<span class="big">${body.households}</span> 户 households · <span class="band-${body.band}">${bandText} ${b.min}–${b.max}</span><br>面积 ${Math.round(body.area_m2).toLocaleString()} m² · 网格空隙 gap ${Math.round(body.gap_m2).toLocaleString()} m²`;
      $("draft-problems").innerHTML = "";
      body.problems.forEach((p) => { const li = document.createElement("li"); li.textContent = p; $("draft-problems").appendChild(li); });
      $("save").disabled = !body.ok;
      document.body.dataset.draft = `${body.households}|${body.ok}`;
    } catch (err) { if (!err.unauthorized) say(err.message); }
  }

  // New micro-grid: draw a polygon (snapping), adjust it, save.
  $("new").addEventListener("click", () => {
    cancel();
    setMode("new");
    showDraft(true);
    $("save").disabled = true;
    map.pm.enableDraw("Polygon", SNAP);
  });
  map.on("pm:drawstart", ({ workingLayer, shape }) => {
    if (shape !== "Polygon") return;
    // Live feedback while drawing: households inside the shape so far.
    workingLayer.on("pm:vertexadded", () => {
      const points = workingLayer.getLatLngs();
      if (points.length >= 3) scheduleCheck(L.polygon(points), null);
    });
  });
  map.on("pm:create", ({ layer, shape }) => {
    if (state.mode === "new" && shape === "Polygon") {
      state.draft = layer;
      layer.pm.enable(SNAP);
      layer.on("pm:edit", () => scheduleCheck(layer, null));
      check(layer, null);
      document.body.dataset.drawn = "polygon";
    } else if (state.mode === "split" && shape === "Line") {
      map.removeLayer(layer);
      doSplit(layer.toGeoJSON().geometry);
    } else {
      map.removeLayer(layer);
    }
  });

  // Edit the selected micro-grid's vertices (snapping), checked after every change.
  $("edit").addEventListener("click", () => {
    const code = state.selected;
    const layer = byCode.get(code);
    setMode("edit");
    showDraft(true);
    state.draft = layer;
    layer.pm.enable(SNAP);
    layer.on("pm:edit", () => scheduleCheck(layer, code));
    check(layer, code);
  });

  $("save").addEventListener("click", async () => {
    const why = reason();
    if (!why) return;
    try {
      if (state.mode === "new") {
        const body = await send(`/api/areas/${encodeURIComponent(state.grid)}/microgrids`, "POST", { geometry: state.draft.toGeoJSON().geometry, reason: why });
        done(body, `已保存新微网格 · saved ${Object.keys(body.saved).join(", ")}`);
      } else if (state.mode === "edit") {
        const code = state.selected;
        const etag = byCode.get(code).feature.properties.etag;
        const body = await send(`/api/areas/${encodeURIComponent(code)}/geometry`, "PUT", { geometry: state.draft.toGeoJSON().geometry, reason: why }, etag);
        done(body, `已保存 · saved ${code}`);
      } else if (state.mode === "suggest") {
        const geometries = state.preview.getLayers().map((l) => l.toGeoJSON().geometry);
        const body = await send(`/api/areas/${encodeURIComponent(state.grid)}/microgrids`, "PUT", { geometries, reason: why }, state.layout.layout_etag);
        done(body, `已按建议重划 · applied: ${Object.keys(body.saved).length} 个微网格`);
      }
    } catch (err) { failed(err); }
  });
  $("cancel").addEventListener("click", () => { cancel(); loadLayout().catch(failed); });

  function cancel() {
    map.pm.disableDraw();
    if (state.draft) { state.draft.pm.disable(); if (state.mode === "new") map.removeLayer(state.draft); }
    if (state.preview) { map.removeLayer(state.preview); state.preview = null; }
    state.draft = null;
    overlays.clearLayers();
    setMode(null);
    showDraft(false);
  }
  async function done(body, text) {
    const saved = Object.keys(body.saved);
    cancel();
    if (saved.length === 1) state.selected = saved[0];
    await loadLayout();
    const extra = body.unassigned_in_grid ? ` · ${body.unassigned_in_grid} 户未划入 unassigned` : "";
    say(`${text} · ${body.households_moved} 户重新归属 moved${extra}`, true);
    document.body.dataset.saved = saved.concat(body.ended).join(",");
  }
  function failed(err) {
    if (err && err.unauthorized) return;
    if (err && err.status === 412) say(`别人已先保存, 已重新载入 · Someone saved first, reloaded: ${err.message}`);
    else say(err.message || String(err));
    document.body.dataset.error = String(err && err.status);
    if (err && err.status === 412) { cancel(); loadLayout().catch(() => {}); }
  }

  // Split with a drawn line.
  $("split").addEventListener("click", () => {
    if (!reason()) return;
    setMode("split");
    map.pm.enableDraw("Line", SNAP);
  });
  async function doSplit(line) {
    const code = state.selected;
    try {
      const body = await send(`/api/areas/${encodeURIComponent(code)}/split`, "POST", { line, reason: reason() }, byCode.get(code).feature.properties.etag);
      done(body, `已切分 · split ${code}`);
    } catch (err) { setMode(null); failed(err); }
  }

  // Merge: pick the neighbour on the map.
  $("merge").addEventListener("click", () => {
    if (!reason()) return;
    setMode("merge");
    say("点击要合并的相邻微网格 · Click the neighbour to merge with", true);
  });
  async function mergeWith(other) {
    const first = state.selected;
    if (other === first) return;
    const tags = [first, other].map((c) => byCode.get(c).feature.properties.etag).join(", ");
    try {
      const body = await send("/api/areas/merge", "POST", { codes: [first, other], reason: reason() }, tags);
      done(body, `已合并 · merged ${first} + ${other}`);
    } catch (err) { setMode(null); failed(err); }
  }

  $("delete").addEventListener("click", async () => {
    const why = reason();
    if (!why) return;
    const code = state.selected;
    const q = new URLSearchParams({ reason: why });
    if ($("give-to").value) q.set("give_to", $("give-to").value);
    try {
      const body = await send(`/api/areas/${encodeURIComponent(code)}?${q}`, "DELETE", undefined, byCode.get(code).feature.properties.etag);
      state.selected = null;
      done(body, `已删除 · deleted ${code}`);
    } catch (err) { failed(err); }
  });

  // A suggested partition, shown as a preview the leader can adjust, then applied.
  $("suggest").addEventListener("click", async () => {
    cancel();
    const b = band();
    try {
      const body = await send(`/api/areas/${encodeURIComponent(state.grid)}/suggest-microgrids?min=${b.min}&max=${b.max}`, "POST");
      setMode("suggest");
      say("");
      // The preview replaces today's micro-grids on screen: fade them and their labels.
      byCode.forEach((layer) => { layer.closeTooltip(); layer.setStyle({ fillOpacity: 0.08 }); });
      state.preview = L.geoJSON(body, {
        style: (f) => ({ color: "#111", weight: 2, dashArray: "4 3", fillOpacity: 0.45, fillColor: COLOURS[f.properties.band] }),
        onEachFeature: (f, layer) => layer.bindTooltip(`建议 #${f.properties.part}<br>${f.properties.households} 户`, { permanent: true, direction: "center", className: "mg-label" }),
      }).addTo(map);
      state.preview.eachLayer((layer) => layer.pm.enable(SNAP));
      showDraft(true);
      $("save").disabled = false;
      $("draft-figures").innerHTML = `<span class="big">${body.features.length}</span> 个建议微网格 · ${body.within_band} 个在 ${b.min}–${b.max} 户内`;
      $("draft-problems").innerHTML = "";
      body.reasons.forEach((r) => { const li = document.createElement("li"); li.textContent = r; $("draft-problems").appendChild(li); });
      document.body.dataset.suggested = String(body.features.length);
    } catch (err) { failed(err); }
  });

  $("history").addEventListener("click", async () => {
    try {
      const body = await WanggeAuth.getJSON(`/api/areas/${encodeURIComponent(state.selected)}/history`);
      const list = $("history-list");
      list.innerHTML = "";
      body.edits.slice().reverse().forEach((e) => {
        const li = document.createElement("li");
        li.textContent = `${e.at.slice(0, 16).replace("T", " ")} · ${e.action} · ${e.author} · ${e.reason}`;
        list.appendChild(li);
      });
      body.versions.slice().reverse().forEach((v) => {
        const li = document.createElement("li");
        li.textContent = `v${v.version}: ${v.valid_from} – ${v.valid_to || "至今 now"} (${v.source || ""}) · 显示 show`;
        li.className = "version";
        // Show that version's boundary over today's, dashed.
        li.addEventListener("click", () => {
          overlays.clearLayers();
          overlays.addLayer(L.geoJSON(v.geometry, { style: { color: "#6a1b9a", weight: 3, dashArray: "8 5", fill: false }, pmIgnore: true, interactive: false }));
        });
        list.appendChild(li);
      });
      $("history-box").hidden = false;
    } catch (err) { failed(err); }
  });
  ["band-min", "band-max"].forEach((id) => $(id).addEventListener("change", () => loadLayout().catch(failed)));

  // -- start ----------------------------------------------------------------------------------
  async function start(account) {
    const wanted = params.get("grid");
    if (!["grid_leader", "admin"].includes(account.role)) {
      say("此页面供网格长使用 · This page is for grid leaders");
      return;
    }
    let grid = wanted || (account.role === "grid_leader" ? account.areas[0] : null);
    if (!grid) {
      const grids = await WanggeAuth.getJSON("/api/areas?level=grid&limit=1000");
      const pick = $("grid-pick");
      pick.innerHTML = grids.features.map((f) => `<option value="${f.properties.code}">${f.properties.name} ${f.properties.code}</option>`).join("");
      pick.hidden = false;
      pick.onchange = () => { state.grid = pick.value; cancel(); state.selected = null; loadLayout({ fit: true }).catch(failed); };
      grid = pick.value;
    }
    state.grid = grid;
    await loadLayout({ fit: true });
  }
  function stop() {
    cancel();
    drawn.clearLayers();
    overlays.clearLayers();
    byCode.clear();
    state.layout = null;
    state.selected = null;
    delete document.body.dataset.ready;
  }
  WanggeAuth.start({ onLogin: (who) => start(who).catch(failed), onLogout: stop });
})();
