// The grid worker's phone (/m): today's door visits in one micro-grid in walking
// order (GET /api/routes/visits), as a list and a map, and a form at the door —
// result, persons seen, temperatures of quarantined members, a note, the GPS point.
// Every record goes to the outbox first (IndexedDB, with its idempotency key) and is
// sent from there, at once when online and when the connection returns otherwise:
// nothing lost, nothing doubled. A visit more than 100 m from the household asks for
// a reason before it is kept. The service worker (/m-sw.js) makes the page open offline.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const FAR_M = 100; // as the server's rule (db.visits.FAR_VISIT_M)
  const SYNC_EVERY_MS = 30_000;
  const state = { account: null, microgrid: null, route: null, here: null, door: null, sending: false };

  // -- connection, outbox ---------------------------------------------------------------------
  function showNet() {
    const online = navigator.onLine;
    $("net").textContent = online ? "在线" : "离线 offline";
    $("net").className = online ? "" : "offline";
    document.body.dataset.online = String(online);
  }
  async function showOutbox() {
    const n = state.account ? await WanggeOutbox.count(state.account.name) : 0;
    $("outbox").textContent = n ? `待上传 ${n}` : "";
    document.body.dataset.outbox = String(n);
  }
  window.addEventListener("online", () => { showNet(); flush(); });
  window.addEventListener("offline", showNet);

  /** Send the account's waiting records, oldest first; stop at the first network failure. */
  async function flush() {
    if (state.sending || !state.account || !navigator.onLine) return;
    state.sending = true;
    try {
      for (const record of await WanggeOutbox.all(state.account.name)) {
        let response;
        try {
          response = await WanggeAuth.fetch("/api/visits", {
            method: "POST",
            headers: { "Content-Type": "application/json", "Idempotency-Key": record.key },
            body: JSON.stringify(record.body),
          });
        } catch (err) { break; } // offline again, or signed out: the record waits
        if (response.ok) {
          await WanggeOutbox.remove(record.key);
          document.body.dataset.sent = String(Number(document.body.dataset.sent || 0) + 1);
        } else if (response.status === 429 || response.status >= 500) {
          break; // try again later
        } else {
          // Refused for good (the household left the micro-grid, the round ended…):
          // say so, and keep nothing that would be refused again forever.
          let detail = response.statusText;
          try { detail = (await response.json()).detail; } catch (e) { /* keep the status text */ }
          note(`未能上传 ${record.label}: ${detail}`);
          await WanggeOutbox.remove(record.key);
        }
      }
    } finally {
      state.sending = false;
      await showOutbox();
    }
  }
  function note(text) { $("summary").textContent = text; }

  // -- today's route ----------------------------------------------------------------------------
  const map = L.map("map", { zoomSnap: 0.5 });
  map.setView([22.7, 112.2], 14);
  const drawn = L.layerGroup().addTo(map);

  function doneToday() {
    const key = `wangge.done.${new Date().toISOString().slice(0, 10)}`;
    return { key, ids: new Set(JSON.parse(sessionStorage.getItem(key) || "[]")) };
  }
  function markDone(householdId) {
    const done = doneToday();
    done.ids.add(householdId);
    sessionStorage.setItem(done.key, JSON.stringify([...done.ids]));
  }

  async function loadRoute() {
    const q = new URLSearchParams({ microgrid: state.microgrid });
    if (state.here) q.set("from", `${state.here[0].toFixed(6)},${state.here[1].toFixed(6)}`);
    const response = await WanggeAuth.fetch(`/api/routes/visits?${q}`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error((await response.json()).detail);
    state.route = await response.json();
    const offline = response.headers.get("X-Wangge-Offline") === "1";
    drawRoute(offline);
    $("gpx").href = `/api/routes/visits.gpx?${q}`;
  }

  function drawRoute(offline) {
    const body = state.route;
    const done = doneToday().ids;
    const list = $("stops");
    list.innerHTML = "";
    drawn.clearLayers();
    body.features.forEach((f) => {
      const p = f.properties;
      const li = document.createElement("li");
      li.className = `p${p.priority}${done.has(p.household_id) ? " done" : ""}`;
      li.dataset.household = String(p.household_id);
      li.innerHTML = '<span class="n"></span><div><div class="addr"></div><div class="why"></div></div><button type="button">上门</button>';
      li.querySelector(".n").textContent = String(p.order);
      li.querySelector(".addr").textContent = p.address || `户 ${p.household_id}`;
      li.querySelector(".why").textContent = p.labels.join(" · ");
      li.querySelector("button").addEventListener("click", () => openDoor(f));
      list.appendChild(li);
      const [lon, lat] = f.geometry.coordinates;
      const icon = L.divIcon({ className: "stop-icon", html: String(p.order), iconSize: [24, 24] });
      drawn.addLayer(L.marker([lat, lon], { icon }).on("click", () => openDoor(f)));
    });
    const line = body.route.geometry.coordinates.map(([lon, lat]) => [lat, lon]);
    if (line.length > 1) drawn.addLayer(L.polyline(line, { color: "#1f6fb2", weight: 4 }));
    if (line.length) map.fitBounds(L.latLngBounds(line), { padding: [20, 20], animate: false });
    const km = (body.route.distance_m / 1000).toFixed(2);
    const minutes = Math.round(body.route.duration_s / 60);
    note(`${body.features.length} 户待访 · 步行 ${km} km · 约 ${minutes} 分钟${offline ? " · 离线缓存 offline copy" : ""}`);
    document.body.dataset.stops = String(body.features.length);
    document.body.dataset.ready = String(Date.now());
  }

  // -- at the door ------------------------------------------------------------------------------
  function metresBetween([lon1, lat1], [lon2, lat2]) {
    const r = 6371008.8, rad = Math.PI / 180;
    const a = Math.sin((lat2 - lat1) * rad / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
    return 2 * r * Math.asin(Math.sqrt(a));
  }
  function position() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) { reject(new Error("此设备无法定位 · no location on this device")); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => resolve([p.coords.longitude, p.coords.latitude]),
        (err) => reject(new Error(`无法定位 · location unavailable: ${err.message}`)),
        // A fresh fix: the point kept is the door's, not the last one's.
        { enableHighAccuracy: true, timeout: 15_000, maximumAge: 0 },
      );
    });
  }

  function openDoor(feature) {
    const p = feature.properties;
    state.door = { feature, far: null };
    $("door-title").textContent = p.address || `户 ${p.household_id}`;
    $("door-reasons").textContent = p.labels.join(" · ");
    $("door-form").reset();
    $("far").hidden = true;
    $("door-message").textContent = "";
    const temps = $("temps");
    temps.innerHTML = "";
    p.quarantined.forEach((person) => {
      const label = document.createElement("label");
      label.textContent = `体温 ${person.name}${person.checked_today ? " (今日已测)" : ""} °C `;
      const input = document.createElement("input");
      input.type = "number"; input.step = "0.1"; input.min = "34"; input.max = "43"; input.inputMode = "decimal";
      input.dataset.resident = String(person.resident_id);
      label.appendChild(input);
      temps.appendChild(label);
    });
    $("door").showModal();
  }
  $("door-cancel").addEventListener("click", () => $("door").close());

  $("door-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const door = state.door;
    const p = door.feature.properties;
    $("door-save").disabled = true;
    try {
      const here = await position();
      state.here = here;
      const away = metresBetween(here, door.feature.geometry.coordinates);
      const farReason = $("far-reason").value.trim();
      if (away > FAR_M && !farReason) {
        $("far-text").textContent = `您距离该户 ${Math.round(away)} 米, 超过 ${FAR_M} 米: 请说明原因 · You are ${Math.round(away)} m away: give a reason`;
        $("far").hidden = false;
        $("far-reason").focus();
        document.body.dataset.askedFar = String(Math.round(away));
        return;
      }
      const temperatures = [...$("temps").querySelectorAll("input")]
        .filter((i) => i.value !== "")
        .map((i) => ({ resident_id: Number(i.dataset.resident), temperature_c: Number(i.value) }));
      const body = {
        household_id: p.household_id,
        result: new FormData($("door-form")).get("result"),
        persons_seen: Number($("persons").value) || 0,
        visited_at: new Date().toISOString(),
        location: { type: "Point", coordinates: [Number(here[0].toFixed(7)), Number(here[1].toFixed(7))] },
      };
      if ($("note").value.trim()) body.note = $("note").value.trim();
      if (away > FAR_M) body.far_reason = farReason;
      if (temperatures.length) body.temperatures = temperatures;
      const key = (crypto.randomUUID && crypto.randomUUID()) || `${Date.now()}-${Math.random().toString(16).slice(2)}`;
      await WanggeOutbox.add({ key, account: state.account.name, body, label: p.address || String(p.household_id), queued_at: new Date().toISOString() });
      markDone(p.household_id);
      $("door").close();
      document.querySelector(`#stops li[data-household="${p.household_id}"]`)?.classList.add("done");
      document.body.dataset.recorded = String(Number(document.body.dataset.recorded || 0) + 1);
      await showOutbox();
      flush();
    } catch (err) {
      if (!err.unauthorized) $("door-message").textContent = err.message;
    } finally {
      $("door-save").disabled = false;
    }
  });

  // -- tabs, micro-grids, start -------------------------------------------------------------------
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("#tabs button").forEach((x) => x.classList.toggle("active", x === b));
    $("list-view").hidden = b.dataset.tab !== "list";
    $("map-view").hidden = b.dataset.tab !== "map";
    if (b.dataset.tab === "map") map.invalidateSize();
  }));
  $("mg").addEventListener("change", () => { state.microgrid = $("mg").value; loadRoute().catch(failed); });

  async function microgrids(account) {
    const codes = [];
    for (const code of account.areas || []) {
      const area = await WanggeAuth.getJSON(`/api/areas/${encodeURIComponent(code)}`);
      if (area.properties.level === "microgrid") codes.push([code, area.properties.name]);
      else {
        const children = await WanggeAuth.getJSON(`/api/areas/${encodeURIComponent(code)}/children`);
        children.features.forEach((f) => codes.push([f.properties.code, f.properties.name]));
      }
    }
    return codes;
  }
  function failed(err) { if (!err.unauthorized) note(`出错 · error: ${err.message}`); }

  async function start(account) {
    state.account = account;
    showNet();
    await showOutbox();
    const codes = await microgrids(account);
    $("mg").innerHTML = codes.map(([c, n]) => `<option value="${c}">${n}</option>`).join("");
    if (!codes.length) { note("此账户没有微网格 · no micro-grids for this account"); return; }
    state.microgrid = codes[0][0];
    await loadRoute();
    flush();
  }
  function stop() {
    state.account = null;
    drawn.clearLayers();
    $("stops").innerHTML = "";
    note("");
    delete document.body.dataset.ready;
    // Personal data (addresses, today's list) must not stay on a shared phone.
    if (navigator.serviceWorker && navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage("clear-data");
  }

  if ("serviceWorker" in navigator) {
    // Once the worker controls the page, ask again for what the page shows, so
    // the worker's cache holds it for the next time there is no signal.
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (state.account) start(state.account).catch(failed);
    });
    navigator.serviceWorker.register("/m-sw.js", { scope: "/m" })
      .then(() => navigator.serviceWorker.ready)
      .then(() => { document.body.dataset.sw = "ready"; })
      .catch((err) => { document.body.dataset.sw = `failed: ${err.message}`; });
  }
  setInterval(flush, SYNC_EVERY_MS);
  showNet();
  WanggeAuth.start({ onLogin: (who) => start(who).catch(failed), onLogout: stop });
})();
