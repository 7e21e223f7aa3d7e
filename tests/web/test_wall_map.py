"""The command-centre wall map in real headless Chromium on the demo: every
layer switched, drill-down two levels and back, the date slider moved; the
legend and key figures shown equal the API's; screenshots of each state; and
not one request to another host."""

from __future__ import annotations

import pytest
from shapely.geometry import shape

from tests.web.conftest import api_client, assert_only_service, log_in, watch_requests

pytestmark = pytest.mark.browser

DAY = "2020-02-06"
COUNTY = "445321"
LAYERS = ["coverage", "incomplete", "unvisited", "cases", "quarantine", "quarantine_overdue",
          "fever", "checkpoint_flags", "checkpoints", "hexagons"]  # fmt: skip


def shown(value: float | None) -> str:
    """The page's number format (en-US, at most 2 decimals)."""
    if value is None:
        return "—"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def wait_view(page, **expected: str) -> None:
    page.wait_for_function(
        "(want) => document.body.dataset.ready && Object.entries(want).every(([k, v]) => document.body.dataset[k] === v)",
        arg=expected,
        timeout=60_000,
    )


def click_area(page, feature: dict) -> None:
    inside = shape(feature["geometry"]).representative_point()
    xy = page.evaluate(
        "([lat, lon]) => { const p = wanggeMap.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [inside.y, inside.x],
    )
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])


def legend_rows(page) -> list[tuple[str, str]]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('#legend .row')).map(r => [r.dataset.label, r.dataset.colour])"
    )


def api_legend(legend: dict) -> list[tuple[str, str]]:
    rows = [(c["label"], c["colour"]) for c in legend["classes"]]
    if legend.get("no_data"):
        rows.append((legend["no_data"]["label"], legend["no_data"]["colour"]))
    return [list(r) for r in rows]  # type: ignore[misc]


def assert_figures(page, api, *, within: str, as_of: str) -> None:
    page.wait_for_function(
        "(key) => document.body.dataset.figures === key", arg=f"{within}|{as_of}", timeout=180_000
    )
    body = api.get("/api/figures", params={"within": within, "as_of": as_of}, timeout=300).json()
    cards = page.evaluate(
        "Array.from(document.querySelectorAll('#figures .figure')).map(d => [d.dataset.id, d.dataset.value, d.dataset.change, d.querySelector('.value').textContent, d.querySelector('.change').className])"
    )
    assert [c[0] for c in cards] == [f["id"] for f in body["figures"]]
    for (fid, value, change, text, change_class), figure in zip(cards, body["figures"], strict=True):
        # A change is coloured as good or bad news by the figure's own direction.
        direction = "up" if (figure["change"] or 0) > 0 else "down" if (figure["change"] or 0) < 0 else None
        verdict = None if direction is None or not figure["better"] else (
            "good" if direction == figure["better"] else "bad")
        assert ({"good", "bad"} & set(change_class.split())) == ({verdict} if verdict else set()), fid
        expected = figure["value"]
        assert (float(value) if value else None) == (
            None if expected is None else pytest.approx(expected)
        ), fid
        assert (float(change) if change else None) == (
            None if figure["change"] is None else pytest.approx(figure["change"])
        ), fid
        assert text == shown(expected) + ("" if expected is None else figure["unit"]), fid


def test_wall_map(served_demo, web_accounts, browser, artifacts_dir) -> None:
    base = served_demo
    api = api_client(base, "web_admin")
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    page = context.new_page()
    requested = watch_requests(page)

    page.goto(f"{base}/?as_of={DAY}")
    log_in(page, "web_admin")
    wait_view(page, level="township", parent=COUNTY, layer="coverage", asOf=DAY)
    coverage = api.get("/api/layers/coverage", params={"within": COUNTY, "as_of": DAY}).json()
    assert int(page.evaluate("document.body.dataset.features")) == len(coverage["features"]) == 12
    assert legend_rows(page) == api_legend(coverage["legend"])
    assert_figures(page, api, within=COUNTY, as_of=DAY)
    # The ranking: lowest coverage first, from the layer's features.
    ranked = sorted((f["properties"] for f in coverage["features"] if f["properties"]["value"] is not None),
                    key=lambda p: (p["value"], p["code"]))  # fmt: skip
    codes = page.evaluate(
        "Array.from(document.querySelectorAll('#ranking li')).map(li => li.dataset.code)"
    )
    assert codes == [p["code"] for p in ranked][:10]
    # Area names as permanent labels.
    labels = page.locator(".leaflet-tooltip.area-label").all_inner_texts()
    assert {f["properties"]["name"] for f in coverage["features"]} <= {
        t.split("\n")[0] for t in labels
    }
    assert page.locator("#crumbs a").all_inner_texts() == ["新兴县"]
    assert page.locator("#layers h2").inner_text() == "图层"
    page.screenshot(path=str(artifacts_dir / "wall-county-coverage.png"))

    # Every layer, each with the API's legend.
    for layer in LAYERS:
        page.locator(f"#layer-list button[data-layer='{layer}']").click()
        wait_view(page, layer=layer, parent=COUNTY, asOf=DAY)
        if layer == "hexagons":
            hexes = api.get(
                "/api/hex/coverage", params={"within": COUNTY, "as_of": DAY, "res": 9}
            ).json()
            assert legend_rows(page) == api_legend(hexes["legend"])
            assert int(page.evaluate("document.body.dataset.extra")) == len(hexes["features"])
        elif layer == "checkpoints":
            points = api.get("/api/checkpoints", params={"within": COUNTY, "limit": 1000}).json()
            assert int(page.evaluate("document.body.dataset.extra")) == len(points["features"])
            assert page.locator("path.checkpoint").count() == len(points["features"])
        else:
            body = api.get(f"/api/layers/{layer}", params={"within": COUNTY, "as_of": DAY}).json()
            assert legend_rows(page) == api_legend(body["legend"]), layer
        page.screenshot(path=str(artifacts_dir / f"wall-layer-{layer}.png"))

    # Drill down two levels (by clicking the map) and back.
    page.locator("#layer-list button[data-layer='coverage']").click()
    wait_view(page, layer="coverage", parent=COUNTY)
    town = next(f for f in coverage["features"] if f["properties"]["name"] == "新城镇")
    town_code = town["properties"]["code"]
    click_area(page, town)
    wait_view(page, level="community", parent=town_code, layer="coverage")
    communities = api.get("/api/layers/coverage", params={"within": town_code, "as_of": DAY}).json()
    assert int(page.evaluate("document.body.dataset.features")) == len(communities["features"])
    assert legend_rows(page) == api_legend(communities["legend"])
    assert_figures(page, api, within=town_code, as_of=DAY)
    assert page.locator("#crumbs a").all_inner_texts() == ["新兴县", "新城镇"]
    page.screenshot(path=str(artifacts_dir / "wall-drill-township.png"))

    community = communities["features"][0]
    community_code = community["properties"]["code"]
    click_area(page, community)
    wait_view(page, level="grid", parent=community_code, layer="coverage")
    assert_figures(page, api, within=community_code, as_of=DAY)
    assert page.locator("#crumbs a").all_inner_texts() == [
        "新兴县",
        "新城镇",
        community["properties"]["name"],
    ]
    page.screenshot(path=str(artifacts_dir / "wall-drill-community.png"))

    page.locator("#back").click()
    wait_view(page, level="community", parent=town_code)
    page.locator("#crumbs a", has_text="新兴县").click()
    wait_view(page, level="township", parent=COUNTY)

    # The date slider: one day back.
    page.evaluate(
        "() => { const s = document.getElementById('date-slider'); s.value = String(Number(s.max) - 1); s.dispatchEvent(new Event('change')); }"
    )
    wait_view(page, level="township", parent=COUNTY, asOf="2020-02-05")
    before = api.get(
        "/api/layers/coverage", params={"within": COUNTY, "as_of": "2020-02-05"}
    ).json()
    assert legend_rows(page) == api_legend(before["legend"])
    assert_figures(page, api, within=COUNTY, as_of="2020-02-05")
    assert page.locator("#date-shown").inner_text() == "2020-02-05"
    page.screenshot(path=str(artifacts_dir / "wall-date-2020-02-05.png"))

    # English on the toggle; a refresh keeps the view.
    center = page.evaluate(
        "[wanggeMap.getCenter().lat, wanggeMap.getCenter().lng, wanggeMap.getZoom()]"
    )
    page.locator("#lang").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    wait_view(page, level="township", parent=COUNTY, asOf="2020-02-05")
    assert page.locator("#layers h2").inner_text() == "Layers"
    ready = page.evaluate("document.body.dataset.ready")
    page.evaluate("wanggeWall.reload()")
    page.wait_for_function("(r) => document.body.dataset.ready !== r", arg=ready, timeout=60_000)
    assert (
        page.evaluate("[wanggeMap.getCenter().lat, wanggeMap.getCenter().lng, wanggeMap.getZoom()]")
        == center
    )
    page.screenshot(path=str(artifacts_dir / "wall-english.png"))

    # 4K: the same page, sizes scaled with the viewport.
    small = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    page.set_viewport_size({"width": 3840, "height": 2160})
    large = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert large >= 1.9 * small
    page.screenshot(path=str(artifacts_dir / "wall-4k.png"))

    assert_only_service(requested, base)
    api.close()
    context.close()
