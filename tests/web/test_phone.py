"""The grid worker's phone page in headless Chromium with a 360×740 touch
screen, on a live demo of its own (its writes commit): log in, see the route,
record a visit; go offline, record two more (one far from its household, which
asks for a reason); the page reopens offline; back online, all three are stored
exactly once; and nothing is requested from another host."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from tests.conftest import BUSIEST_MICROGRID_SQL, add_account, live_demo_database, scalar_sql
from tests.web.conftest import (
    WEB_PASSWORD,
    api_client,
    assert_only_service,
    log_in,
    serve_demo,
    watch_requests,
)

pytestmark = pytest.mark.browser

WORKER = "phone_worker"


@pytest.fixture(scope="module")
def phone_demo(pg, tmp_path_factory):
    """A 3,000-household demo moved to today, a grid worker of its busiest
    micro-grid (the most households not yet visited), and a server on it."""
    from api.security import hash_password

    url, engine = live_demo_database(pg, "phone_demo", households=3_000, seed=11)
    microgrid = str(scalar_sql(engine, BUSIEST_MICROGRID_SQL))
    add_account(engine, name=WORKER, role="grid_worker", areas=[microgrid],
                password_hash=hash_password(WEB_PASSWORD))  # fmt: skip
    with serve_demo(url, log_dir=tmp_path_factory.mktemp("phone")) as base:
        yield base, microgrid, engine
    engine.dispose()


def offset(lon: float, lat: float, *, east_m: float) -> tuple[float, float]:
    return lon + east_m / (111_320 * math.cos(math.radians(lat))), lat


def visits_by(engine, household_ids: list[int]) -> dict[int, list[tuple[str, str | None]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT household_id, worker, far_reason FROM visit WHERE household_id = ANY(:ids) AND worker = :w"),
            {"ids": household_ids, "w": WORKER},
        ).all()
    found: dict[int, list[tuple[str, str | None]]] = {i: [] for i in household_ids}
    for household_id, worker, far_reason in rows:
        found[int(household_id)].append((worker, far_reason))
    return found


def record(page, *, household_id: int, at: tuple[float, float], result: str = "complete") -> None:
    page.context.set_geolocation({"longitude": at[0], "latitude": at[1]})
    page.locator(f"#stops li[data-household='{household_id}'] button").click()
    page.locator("#door").wait_for(state="visible")
    page.locator(f"#results input[value='{result}']").check()
    page.fill("#persons", "2")
    page.locator("#door-save").click()


def test_phone_route_record_offline(phone_demo, browser, artifacts_dir) -> None:
    base, microgrid, engine = phone_demo
    api = api_client(base, WORKER)
    route = api.get("/api/routes/visits", params={"microgrid": microgrid}).json()
    stops = route["features"]
    assert len(stops) >= 3
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True, locale="zh-CN",
        permissions=["geolocation"], geolocation={"longitude": 0.0, "latitude": 0.0},
        service_workers="allow",
    )  # fmt: skip
    page = context.new_page()
    requested = watch_requests(page)
    page.goto(f"{base}/m")
    log_in(page, WORKER)
    page.wait_for_function("document.body.dataset.ready", timeout=60_000)
    page.wait_for_function("document.body.dataset.sw === 'ready' && navigator.serviceWorker.controller !== null", timeout=30_000)
    page.wait_for_timeout(1_000)  # the page asks again once controlled, filling the offline cache
    page.wait_for_function("document.body.dataset.ready", timeout=60_000)

    # The list is the route: every stop, in the API's walking order, with its reasons.
    assert int(page.evaluate("document.body.dataset.stops")) == len(stops)
    shown = page.evaluate("Array.from(document.querySelectorAll('#stops li')).map(li => Number(li.dataset.household))")
    assert shown == [f["properties"]["household_id"] for f in stops]
    first_reasons = page.locator("#stops li .why").first.inner_text()
    assert first_reasons == " · ".join(stops[0]["properties"]["labels"])
    page.screenshot(path=str(artifacts_dir / "phone-list.png"))
    page.locator("#tabs button[data-tab='map']").click()
    assert page.locator(".stop-icon").count() == len(stops)
    page.screenshot(path=str(artifacts_dir / "phone-map.png"))
    page.locator("#tabs button[data-tab='list']").click()

    # One visit online, at the door.
    a, b, c = (f["properties"]["household_id"] for f in stops[:3])
    points = {f["properties"]["household_id"]: tuple(f["geometry"]["coordinates"]) for f in stops}
    record(page, household_id=a, at=points[a])
    page.wait_for_function("document.body.dataset.sent === '1' && document.body.dataset.outbox === '0'")

    # Offline: two more; one 300 m from its household asks for a reason first.
    context.set_offline(True)
    page.wait_for_function("document.body.dataset.online === 'false'")
    record(page, household_id=b, at=points[b], result="nobody_home")
    page.wait_for_function("document.body.dataset.outbox === '1'")
    record(page, household_id=c, at=offset(*points[c], east_m=300))
    page.wait_for_function("document.body.dataset.askedFar")
    assert 280 <= int(page.evaluate("document.body.dataset.askedFar")) <= 320
    assert "超过 100 米" in page.locator("#far-text").inner_text()
    page.screenshot(path=str(artifacts_dir / "phone-far-reason.png"))
    page.fill("#far-reason", "住户在村委会办事, 在那里登记")
    page.locator("#door-save").click()
    page.wait_for_function("document.body.dataset.outbox === '2'")
    assert page.locator("#outbox").inner_text() == "待上传 2"
    assert visits_by(engine, [b, c]) == {b: [], c: []}  # nothing left the phone

    # The page itself opens with no connection, with its list and its outbox.
    page.reload()
    page.wait_for_function("document.body.dataset.ready && document.body.dataset.outbox === '2'", timeout=30_000)
    assert "离线缓存" in page.locator("#summary").inner_text()
    page.screenshot(path=str(artifacts_dir / "phone-offline.png"))

    # Back online: sent with their keys, each stored exactly once.
    context.set_offline(False)
    page.wait_for_function("document.body.dataset.outbox === '0'", timeout=30_000)
    stored = visits_by(engine, [a, b, c])
    assert stored == {
        a: [(WORKER, None)], b: [(WORKER, None)], c: [(WORKER, "住户在村委会办事, 在那里登记")],
    }
    assert_only_service(requested, base)
    api.close()
    context.close()
