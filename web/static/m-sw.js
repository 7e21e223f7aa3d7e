// The phone page's service worker: the page opens with no connection once it has
// been visited, and today's list and route stay readable offline.
// - The page and its scripts: network first, the cached copy when there is none.
// - Today's tasks, route, basemap and areas (GET): network first, the last answer
//   when offline (marked with the header X-Wangge-Offline: 1).
// - Everything else (visits are POSTs) goes to the network untouched: the page's
//   outbox (IndexedDB) keeps what could not be sent.
// Logging out clears the cached answers (personal data must not stay on the phone).
const SHELL = "wangge-m-shell-v1";
const DATA = "wangge-m-data-v1";
const SHELL_FILES = [
  "/m", "/static/m.css", "/static/m.js", "/static/m-outbox.js", "/static/auth.js", "/static/auth.css",
  "/static/vendor/leaflet-1.9.4/leaflet.js", "/static/vendor/leaflet-1.9.4/leaflet.css",
];
const DATA_PATHS = ["/api/tasks", "/api/routes/visits", "/api/basemap", "/api/areas/", "/api/auth/me"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== DATA).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});
self.addEventListener("message", (event) => {
  if (event.data === "clear-data") event.waitUntil(caches.delete(DATA));
});

async function networkFirst(request, cacheName, { offlineHeader }) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request);
    if (!cached) throw err;
    if (!offlineHeader) return cached;
    const headers = new Headers(cached.headers);
    headers.set("X-Wangge-Offline", "1");
    return new Response(await cached.blob(), { status: cached.status, headers });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (DATA_PATHS.some((p) => url.pathname.startsWith(p))) {
    event.respondWith(networkFirst(request, DATA, { offlineHeader: true }));
  } else if (SHELL_FILES.includes(url.pathname)) {
    // The shell is cached by path: /m?x=1 is the same page.
    event.respondWith(networkFirst(new Request(url.pathname), SHELL, { offlineHeader: false }));
  }
});
