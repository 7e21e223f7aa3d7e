"""The micro-grid editor in real headless Chromium, as a grid leader on a demo
county of its own (the edits commit): delete a micro-grid, draw a new one in
its place, edit one of its vertices and save — each save checked against the
database; a stale edit gets the 412 message; no request leaves the service."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import text

from tests.conftest import GRID_WITH_MOST_MICROGRIDS_SQL, add_account, live_demo_database, scalar_sql
from tests.web.conftest import WEB_PASSWORD, api_client, assert_only_service, log_in, serve_demo, watch_requests

pytestmark = pytest.mark.browser

LEADER = "editor_leader"


@pytest.fixture(scope="module")
def editor_demo(pg, tmp_path_factory):
    """A 3,000-household demo in a database of its own, a grid leader of its
    grid with the most micro-grids, and a server on it."""
    from api.security import hash_password

    url, engine = live_demo_database(pg, "editor_demo", households=3_000, seed=11)
    grid = str(scalar_sql(engine, GRID_WITH_MOST_MICROGRIDS_SQL))
    add_account(engine, name=LEADER, role="grid_leader", areas=[grid],
                password_hash=hash_password(WEB_PASSWORD))  # fmt: skip
    with serve_demo(url, log_dir=tmp_path_factory.mktemp("editor")) as base:
        yield base, grid, engine
    engine.dispose()


def screen_xy(page, lon: float, lat: float) -> tuple[float, float]:
    x, y = page.evaluate(
        "([lat, lon]) => { const p = editorMap.latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
        [lat, lon],
    )
    box = page.locator("#map").bounding_box()
    return box["x"] + x, box["y"] + y


def households_in(engine, geom) -> int:
    """Households whose point the polygon covers, counted in Python."""
    with engine.connect() as conn:
        points = [shapely.from_wkb(bytes(r[0])) for r in conn.execute(text(
            "SELECT ST_AsBinary(geom) FROM household WHERE geom IS NOT NULL"))]  # fmt: skip
    return sum(geom.covers(p) for p in points)


def stored_households(engine, code: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM household WHERE microgrid_code = :c"), {"c": code}).scalar_one())


def wait_ready_after(page, before: str | None) -> None:
    page.wait_for_function("(b) => document.body.dataset.ready && document.body.dataset.ready !== b",
                           arg=before, timeout=60_000)  # fmt: skip


def test_draw_edit_save(editor_demo, browser, artifacts_dir) -> None:
    base, grid, engine = editor_demo
    api = api_client(base, LEADER)
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    requested = watch_requests(page)
    page.goto(f"{base}/editor")
    log_in(page, LEADER)
    wait_ready_after(page, None)
    layout = api.get(f"/api/areas/{grid}/microgrids").json()
    assert int(page.evaluate("document.body.dataset.microgrids")) == len(layout["features"]) >= 2
    page.screenshot(path=str(artifacts_dir / "editor-grid.png"))

    # Delete the first micro-grid: its households become unassigned (shown in red).
    victim = layout["features"][0]
    victim_shape = shape(victim["geometry"])
    page.fill("#reason", "楼栋拆迁, 重新划分")
    page.mouse.click(*screen_xy(page, *victim_shape.representative_point().coords[0]))
    page.wait_for_function("(c) => document.body.dataset.selected === c", arg=victim["id"])
    ready = page.evaluate("document.body.dataset.ready")
    page.locator("#delete").click()
    wait_ready_after(page, ready)
    lost = victim["properties"]["households"]
    assert int(page.evaluate("document.body.dataset.unassigned")) == lost > 0

    # Draw a new micro-grid in its place: click its corners (a little inside; the
    # editor snaps them onto the neighbours' edges), close the ring.
    ring = victim_shape.buffer(-0.00002).simplify(0.00003)
    ring = max(getattr(ring, "geoms", [ring]), key=lambda g: g.area)
    corners = list(ring.exterior.coords)[:-1]
    page.locator("#new").click()
    for lon, lat in corners:
        page.mouse.click(*screen_xy(page, lon, lat))
    page.mouse.click(*screen_xy(page, *corners[0]))
    page.wait_for_function("document.body.dataset.drawn === 'polygon' && document.body.dataset.draft")
    page.wait_for_function("document.body.dataset.draft.endsWith('|true')", timeout=30_000)
    shown_households = int(page.evaluate("document.body.dataset.draft.split('|')[0]"))
    page.screenshot(path=str(artifacts_dir / "editor-drawn.png"))
    ready = page.evaluate("document.body.dataset.ready")
    page.locator("#save").click()
    wait_ready_after(page, ready)
    created = page.evaluate("document.body.dataset.saved")
    after = {f["id"]: f for f in api.get(f"/api/areas/{grid}/microgrids").json()["features"]}
    assert created in after and created != victim["id"]
    new_shape = shape(after[created]["geometry"])
    assert stored_households(engine, created) == after[created]["properties"]["households"] == shown_households
    assert shown_households == households_in(engine, new_shape) > 0

    # Edit a vertex of the new micro-grid: drag it towards the centre, and save.
    page.mouse.click(*screen_xy(page, *new_shape.representative_point().coords[0]))
    page.wait_for_function("(c) => document.body.dataset.selected === c", arg=created)
    page.locator("#edit").click()
    page.wait_for_function("document.body.dataset.draft !== undefined")
    vertex = page.locator(".marker-icon:not(.marker-icon-middle)").first
    box = vertex.bounding_box()
    centre = screen_xy(page, *new_shape.centroid.coords[0])
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + centre[0]) / 2, (start[1] + centre[1]) / 2, steps=8)
    page.mouse.up()
    page.wait_for_timeout(600)  # the live check runs 250 ms after the last change
    page.wait_for_function("document.body.dataset.draft.endsWith('|true')", timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "editor-vertex.png"))
    ready = page.evaluate("document.body.dataset.ready")
    page.locator("#save").click()
    wait_ready_after(page, ready)
    edited = {f["id"]: f for f in api.get(f"/api/areas/{grid}/microgrids").json()["features"]}[created]
    edited_shape = shape(edited["geometry"])
    assert edited["properties"]["version"] == after[created]["properties"]["version"] + 1
    assert not edited_shape.equals(new_shape) and edited_shape.area < new_shape.area
    assert stored_households(engine, created) == households_in(engine, edited_shape)
    history = api.get(f"/api/areas/{created}/history").json()
    assert [e["action"] for e in history["edits"]] == ["create", "redraw"]
    assert {e["author"] for e in history["edits"]} == {LEADER}

    # A stale edit: someone else saves first; the page says so and reloads.
    page.mouse.click(*screen_xy(page, *edited_shape.representative_point().coords[0]))
    page.locator("#edit").click()
    page.wait_for_function("document.body.dataset.draft !== undefined")
    moved = edited_shape.buffer(-0.00001)
    assert api.put(f"/api/areas/{created}/geometry", headers={"If-Match": edited["properties"]["etag"]},
                   json={"geometry": shapely.geometry.mapping(moved), "reason": "另一位网格长"}).status_code == 200  # fmt: skip
    page.locator("#save").click()
    page.wait_for_function("document.body.dataset.error === '412'")
    assert "别人已先保存" in page.locator("#message").inner_text()
    page.screenshot(path=str(artifacts_dir / "editor-stale.png"))

    # Split the grid by suggestion and apply it; the wall map follows.
    page.wait_for_function("document.body.dataset.ready")
    page.locator("#suggest").click()
    page.wait_for_function("document.body.dataset.suggested")
    suggested = int(page.evaluate("document.body.dataset.suggested"))
    page.screenshot(path=str(artifacts_dir / "editor-suggestion.png"))
    ready = page.evaluate("document.body.dataset.ready")
    page.locator("#save").click()
    wait_ready_after(page, ready)
    applied = api.get(f"/api/areas/{grid}/microgrids").json()["features"]
    assert len(applied) == suggested
    page.goto(f"{base}/")
    page.wait_for_function("(g) => document.body.dataset.ready && document.body.dataset.parent === g", arg=grid, timeout=60_000)
    assert int(page.evaluate("document.body.dataset.features")) == len(applied)
    page.screenshot(path=str(artifacts_dir / "editor-wall-follows.png"))

    assert_only_service(requested, base)
    api.close()
    context.close()
