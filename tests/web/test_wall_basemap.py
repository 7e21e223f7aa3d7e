"""The wall map over a GCJ-02 basemap from a PMTiles archive Wangge serves:
the tiles come from the service, every geometry is asked for in GCJ-02 and
drawn where the API puts it, and no request leaves the service."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from shapely.geometry import shape

from tests.pmtiles_fixture import write_raster_pmtiles
from tests.web.conftest import api_client, assert_only_service, log_in, serve_demo, watch_requests

pytestmark = pytest.mark.browser

DAY = "2020-02-06"
COUNTY = "445321"


@pytest.fixture(scope="module")
def served_over_gcj02(demo_db_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("basemap")
    archive = root / "county.pmtiles"
    # The demo county (新兴县) and a margin, zoom 8–12.
    write_raster_pmtiles(archive, bbox_lonlat=(111.9, 22.3, 112.6, 23.0), zooms=range(8, 13))
    env = {"WANGGE_BASEMAP_KIND": "pmtiles", "WANGGE_BASEMAP_PMTILES": str(archive),
           "WANGGE_BASEMAP_CRS": "gcj02", "WANGGE_BASEMAP_ATTRIBUTION": "测试底图 GCJ-02"}  # fmt: skip
    with serve_demo(demo_db_url, log_dir=root, env=env) as base:
        yield base


def test_wall_map_over_a_gcj02_pmtiles_basemap(
    served_over_gcj02, web_accounts, browser, artifacts_dir
) -> None:
    base = served_over_gcj02
    api = api_client(base, "web_admin")
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    requested = watch_requests(page)
    tiles_ok: list[str] = []
    page.on("response", lambda r: tiles_ok.append(r.url) if "/basemap/" in r.url and r.status == 200 else None)

    page.goto(f"{base}/?as_of={DAY}")
    log_in(page, "web_admin")
    page.wait_for_function(
        "() => document.body.dataset.ready && document.body.dataset.parent === '445321'",
        timeout=60_000,
    )
    assert page.evaluate("document.body.dataset.basemap") == "pmtiles|gcj02"
    page.wait_for_function("document.querySelectorAll('img.leaflet-tile-loaded').length > 0")
    assert tiles_ok, "no basemap tile was drawn"
    assert "测试底图 GCJ-02" in page.locator(".leaflet-control-attribution").inner_text()

    # Every geometry request asked for GCJ-02.
    geometry_requests = [
        r.url for r in requested
        if urlsplit(r.url).path.startswith(("/api/layers/", "/api/hex/", "/api/checkpoints"))
    ]  # fmt: skip
    assert geometry_requests
    assert all(parse_qs(urlsplit(u).query).get("crs") == ["gcj02"] for u in geometry_requests)

    # The townships are drawn where the API's GCJ-02 geometry puts them, not at WGS84.
    gcj = api.get("/api/layers/coverage", params={"within": COUNTY, "as_of": DAY, "crs": "gcj02"}).json()
    wgs = api.get("/api/layers/coverage", params={"within": COUNTY, "as_of": DAY}).json()
    drawn = page.evaluate(
        """() => { const out = {}; wanggeMap.eachLayer((l) => { if (l.feature && l.getBounds) {
             const b = l.getBounds(); out[l.feature.properties.code] = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; } });
           return out; }"""
    )
    for feature in gcj["features"]:
        code = feature["properties"]["code"]
        assert drawn[code] == pytest.approx(shape(feature["geometry"]).bounds, abs=1e-9), code
    shift_deg = abs(shape(gcj["features"][0]["geometry"]).centroid.x - shape(wgs["features"][0]["geometry"]).centroid.x)
    assert 0.001 < shift_deg < 0.02  # GCJ-02 moves Guangdong by some hundreds of metres
    page.screenshot(path=str(artifacts_dir / "wall-basemap-gcj02.png"))

    # Checkpoints as points, also in GCJ-02, also from the service only.
    page.locator("#layer-list button[data-layer='checkpoints']").click()
    page.wait_for_function("document.body.dataset.layer === 'checkpoints' && document.body.dataset.extra !== ''")
    points = api.get("/api/checkpoints", params={"within": COUNTY, "limit": 1000, "crs": "gcj02"}).json()
    shown = page.evaluate(
        """() => { const out = []; wanggeMap.eachLayer((l) => { if (l.feature && l.getLatLng) {
             const p = l.getLatLng(); out.push([p.lng, p.lat]); } }); return out.sort(); }"""
    )
    expected = sorted([list(f["geometry"]["coordinates"]) for f in points["features"]])
    assert len(shown) == len(expected) > 0
    assert [[round(v, 7) for v in p] for p in shown] == [[round(v, 7) for v in p] for p in expected]

    assert_only_service(requested, base)
    api.close()
    context.close()
