"""The first map in real headless Chromium, after logging in: areas coloured
by households, click to drill down, breadcrumbs back, every API call with the
bearer token, and not one request to another host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from shapely.geometry import shape

from tests.web.conftest import api_client, assert_only_service, log_in, watch_requests

pytestmark = pytest.mark.browser


def click_area(page, feature: dict) -> None:
    """Click a point surely inside the area (its representative point)."""
    inside = shape(feature["geometry"]).representative_point()
    xy = page.evaluate("([lat, lon]) => { const p = wanggeMap.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }", [inside.y, inside.x])
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def wait_for_level(page, *, level: str, parent: str) -> int:
    page.wait_for_function(
        "([level, parent]) => document.body.dataset.level === level && document.body.dataset.parent === parent",
        arg=[level, parent],
        timeout=15_000,
    )
    return int(page.evaluate("document.body.dataset.features"))


def test_map_drills_down_and_back_offline(served_demo, web_accounts, browser, artifacts_dir) -> None:
    base = served_demo
    api = api_client(base, "web_admin")
    towns = api.get("/api/areas/445321/children").json()["features"]
    seat = next(f for f in towns if f["properties"]["name"] == "新城镇")
    communities = api.get(f"/api/areas/{seat['properties']['code']}/children").json()["features"]

    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    requested = watch_requests(page)

    # The wall map (issue 6) on the demo's day, showing a layer that varies between towns.
    page.goto(base + "/?as_of=2020-02-06&layer=quarantine")
    log_in(page, "web_admin")  # an admin opens on the top level, as before accounts existed
    assert wait_for_level(page, level="township", parent="445321") == len(towns) == 12
    assert page.locator("path.leaflet-interactive").count() == len(towns)
    assert "隔离人员" in page.locator("#legend").inner_text()
    assert page.locator("#crumbs a").all_inner_texts() == ["新兴县"]
    # Colours follow the layer: the towns differ.
    fills = page.evaluate("Array.from(document.querySelectorAll('path.leaflet-interactive')).map(p => p.getAttribute('fill'))")
    assert len(set(fills)) >= 3
    page.screenshot(path=str(artifacts_dir / "first-map-county.png"))

    click_area(page, seat)
    assert wait_for_level(page, level="community", parent=seat["properties"]["code"]) == len(communities)
    assert page.locator("#crumbs a").all_inner_texts() == ["新兴县", "新城镇"]
    page.screenshot(path=str(artifacts_dir / "first-map-township.png"))

    page.locator("#crumbs a", has_text="新兴县").click()
    assert wait_for_level(page, level="township", parent="445321") == 12

    api_calls = [r for r in requested if urlsplit(r.url).path.startswith("/api/") and urlsplit(r.url).path != "/api/auth/token"]
    assert any(urlsplit(r.url).path.startswith("/api/areas") for r in api_calls)
    for request in api_calls:
        assert request.all_headers().get("authorization", "").startswith("Bearer "), request.url
    assert_only_service(requested, base)
    api.close()
    context.close()
