"""The situation map (GET /api/reports/situation.html) saved to a file and
opened in real headless Chromium with the network off: the map renders (one
path per area, legend, tooltips) with its figures table, and the page makes
not one request besides loading its own file."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.conftest import api_token, watch_requests

pytestmark = pytest.mark.browser

COUNTY = "445321"
DAY = "2020-02-06"


def fetch_situation(base: str, account: str, **params: str) -> str:
    token = api_token(base, account)
    response = httpx.get(
        f"{base}/api/reports/situation.html", params={"date": DAY, **params},
        headers={"Authorization": f"Bearer {token}"}, timeout=60,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.text


def open_offline(browser, path, *, artifact):
    """Open the file with the network off; every request the page makes, and
    every one the route had to block."""
    context = browser.new_context(
        viewport={"width": 1600, "height": 1000}, locale="zh-CN", offline=True
    )
    blocked: list[str] = []

    def block(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    requested = watch_requests(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector(".leaflet-container path.leaflet-interactive", timeout=15_000)
    page.screenshot(path=str(artifact), full_page=True)
    return context, page, requested, blocked, errors


def test_situation_map_renders_with_no_network(
    served_demo, web_accounts, browser, tmp_path, artifacts_dir
) -> None:
    base = served_demo
    api = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {api_token(base, 'web_admin')}"}
    )
    towns = api.get("/api/layers/coverage", params={"within": COUNTY, "as_of": DAY}).json()[
        "features"
    ]
    assert len(towns) == 12

    saved = tmp_path / "situation.html"
    saved.write_text(fetch_situation(base, "web_admin", within=COUNTY), encoding="utf-8")
    context, page, requested, blocked, errors = open_offline(
        browser, saved, artifact=artifacts_dir / "situation-offline-county.png"
    )
    try:
        assert page.locator(".leaflet-container").count() == 1
        paths = page.locator(".leaflet-container path.leaflet-interactive")
        assert paths.count() == len(towns)
        fills = set(page.evaluate(
            "Array.from(document.querySelectorAll('path.leaflet-interactive'))"
            ".map(p => p.getAttribute('fill'))"
        ))  # fmt: skip
        assert fills == {t["properties"]["colour"] for t in towns}
        legend = page.locator(".situation-legend").inner_text()
        assert "覆盖率" in legend and "60" in legend

        table = page.locator("#figures-table")
        assert table.is_visible()
        rows = table.locator("tbody tr.area")
        assert rows.count() == len(towns)
        codes = rows.evaluate_all("rows => rows.map(r => r.dataset.code)")
        assert sorted(codes) == sorted(t["properties"]["code"] for t in towns)
        assert table.locator("tr.total").count() == 1
        by_code = {t["properties"]["code"]: t["properties"] for t in towns}
        first = by_code[codes[0]]
        first_cells = rows.nth(0).locator("td").all_inner_texts()
        assert first_cells[3] == first["name"]
        assert first_cells[7] == f"{first['numerator']:,}"  # complete
        assert first_cells[5] == f"{first['denominator']:,}"  # households in the round

        # A tooltip names the area under the mouse.
        box = paths.nth(0).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
        assert "覆盖率" in page.locator(".leaflet-tooltip").inner_text()

        assert errors == []
        assert blocked == []
        loaded = [r.url for r in requested if not r.url.startswith("data:")]
        assert loaded == [saved.as_uri()]
        assert {urlsplit(url).scheme for url in loaded} == {"file"}
    finally:
        context.close()


def test_a_commanders_situation_map_is_of_their_township(
    served_demo, web_accounts, browser, tmp_path, artifacts_dir
) -> None:
    base = served_demo
    town = web_accounts["web_commander"]["areas"][0]
    page_text = fetch_situation(base, "web_commander")  # no within: the account's area
    saved = tmp_path / "situation-town.html"
    saved.write_text(page_text, encoding="utf-8")
    api = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {api_token(base, 'web_commander')}"}
    )
    communities = api.get("/api/layers/coverage", params={"within": town, "as_of": DAY}).json()[
        "features"
    ]
    context, page, requested, blocked, errors = open_offline(
        browser, saved, artifact=artifacts_dir / "situation-offline-township.png"
    )
    try:
        assert page.locator("path.leaflet-interactive").count() == len(communities) > 0
        assert page.locator("#figures-table tbody tr.area").count() == len(communities)
        assert errors == [] and blocked == []
        assert [r.url for r in requested if not r.url.startswith("data:")] == [saved.as_uri()]
    finally:
        context.close()
    outside = httpx.get(
        f"{base}/api/reports/situation.html", params={"within": COUNTY, "date": DAY},
        headers={"Authorization": f"Bearer {api_token(base, 'web_commander')}"},
    )  # fmt: skip
    assert outside.status_code == 404
