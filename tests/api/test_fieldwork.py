"""Today's door visits (/api/tasks), their walking route (/api/routes/visits,
GPX) and temperatures taken at the door, on a demo moved to today. The task
list is recounted in Python from the raw rows; the route's length from its
own line; the GPX parsed as XML."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.deps import get_engine
from db.engine import engine_for
from geo.localtime import CHINA_TZ, local_today
from tests.api.conftest import bearer
from tests.conftest import BUSIEST_MICROGRID_SQL, add_account, live_demo_database, scalar_sql

GPX_NS = {"g": "http://www.topografix.com/GPX/1/1"}


@pytest.fixture(scope="module")
def live_demo(pg) -> Iterator[tuple[TestClient, object, str, TestClient]]:
    """The demo moved to today; a grid worker of the micro-grid with the most
    households to visit, and a wall viewer of the county."""
    from tests.api.conftest import _HASH

    url, owner = live_demo_database(pg, "fieldwork_demo", households=3_000, seed=5)
    microgrid = str(scalar_sql(owner, BUSIEST_MICROGRID_SQL))
    add_account(owner, name="fw_worker", role="grid_worker", areas=[microgrid], password_hash=_HASH)
    add_account(owner, name="fw_wall", role="wall_viewer", areas=["445321"], password_hash=_HASH)
    app = create_app()
    engine = engine_for(url)
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as worker, TestClient(app) as wall:
        worker.headers.update(bearer(worker, "fw_worker"))
        wall.headers.update(bearer(wall, "fw_wall"))
        yield worker, owner, microgrid, wall
    engine.dispose()
    owner.dispose()


def expected_reasons(owner, microgrid: str) -> dict[int, set[str]]:
    """Each household's reasons, recounted from the raw rows in Python."""
    today = local_today()
    yesterday = today - dt.timedelta(days=1)
    with owner.connect() as conn:
        households = [int(i) for (i,) in conn.execute(
            text("SELECT id FROM household WHERE microgrid_code = :m AND geom IS NOT NULL"), {"m": microgrid})]  # fmt: skip
        rounds = conn.execute(text("SELECT id, start_date, end_date FROM screening_round ORDER BY start_date DESC, id DESC")).all()
        in_progress = [r for r in rounds if r[1] <= today <= r[2]]
        round_id = in_progress[0][0] if in_progress else None
        visits = conn.execute(text("SELECT household_id, result FROM visit WHERE round_id = :r"), {"r": round_id}).all()
        residents = conn.execute(text("SELECT id, household_id FROM resident WHERE household_id = ANY(:h)"), {"h": households}).all()
        quarantines = conn.execute(text("SELECT resident_id, start_date, released_on FROM quarantine")).all()
        checks = conn.execute(text("SELECT resident_id, checked_at, temperature_c FROM temperature_check")).all()
    home = {int(r): int(h) for r, h in residents}
    reasons: dict[int, set[str]] = {h: set() for h in households}
    if round_id is not None:
        results: dict[int, list[str]] = {}
        for household_id, result in visits:
            results.setdefault(int(household_id), []).append(result)
        for h in households:
            if h not in results:
                reasons[h].add("unvisited")
            elif "complete" not in results[h]:
                reasons[h].add("incomplete")
    checked_today = {int(r) for r, at, _ in checks if at.astimezone(CHINA_TZ).date() == today}
    for resident_id, start, released in quarantines:
        active = start <= today and (released is None or released > today)
        if int(resident_id) in home and active and int(resident_id) not in checked_today:
            reasons[home[int(resident_id)]].add("quarantine_overdue")
    for resident_id, at, celsius in checks:
        if int(resident_id) in home and float(celsius) >= 37.3 and at.astimezone(CHINA_TZ).date() in (today, yesterday):
            reasons[home[int(resident_id)]].add("fever")
    return {h: r for h, r in reasons.items() if r}


def haversine_m(a, b) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def test_tasks_equal_a_recount_and_come_in_priority_order(live_demo) -> None:
    worker, owner, microgrid, _ = live_demo
    body = worker.get("/api/tasks", params={"microgrid": microgrid}).json()
    got = {f["properties"]["household_id"]: set(f["properties"]["reasons"]) for f in body["features"]}
    assert got == expected_reasons(owner, microgrid)
    assert len(got) >= 5 and body["round"] is not None
    priorities = [f["properties"]["priority"] for f in body["features"]]
    assert priorities == sorted(priorities)
    order = ("fever", "quarantine_overdue", "incomplete", "unvisited")
    for f in body["features"]:
        p = f["properties"]
        assert p["reason"] == min(p["reasons"], key=order.index)
        assert p["priority"] == order.index(p["reason"]) + 1
    assert body["counts"] == {r: sum(r in s for s in got.values()) for r in order}


def test_route_visits_every_task_once_and_measures_its_line(live_demo) -> None:
    worker, _, microgrid, _ = live_demo
    tasks = worker.get("/api/tasks", params={"microgrid": microgrid}).json()["features"]
    first = tasks[0]["geometry"]["coordinates"]
    start = (first[0] + 0.001, first[1] + 0.001)
    body = worker.get("/api/routes/visits", params={"microgrid": microgrid, "from": f"{start[0]},{start[1]}"}).json()
    stops = body["features"]
    assert sorted(f["properties"]["household_id"] for f in stops) == sorted(t["properties"]["household_id"] for t in tasks)
    assert [f["properties"]["order"] for f in stops] == list(range(1, len(stops) + 1))
    line = body["route"]["geometry"]["coordinates"]
    assert line[0] == pytest.approx(list(start), abs=1e-6)
    walked = sum(haversine_m(a, b) for a, b in itertools.pairwise(line)) * 1.3
    assert body["route"]["distance_m"] == pytest.approx(walked, rel=1e-3)
    assert body["route"]["duration_s"] >= body["route"]["distance_m"] / 1.5
    # Households of one building are consecutive, by unit then floor.
    seen_buildings: list[int] = []
    for f in stops:
        b = f["properties"]["building_id"]
        if b is not None and (not seen_buildings or seen_buildings[-1] != b):
            assert b not in seen_buildings, "a building visited twice"
            seen_buildings.append(b)
    refused = worker.get("/api/routes/visits", params={"microgrid": microgrid, "from": "east,north"})
    assert refused.status_code == 422 and "lon,lat" in refused.json()["detail"]


def test_gpx(live_demo) -> None:
    worker, _, microgrid, _ = live_demo
    route = worker.get("/api/routes/visits", params={"microgrid": microgrid, "from": "112.2,22.7"}).json()
    response = worker.get("/api/routes/visits.gpx", params={"microgrid": microgrid, "from": "112.2,22.7"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/gpx+xml")
    assert "attachment" in response.headers["content-disposition"]
    root = ET.fromstring(response.content)
    waypoints = root.findall("g:wpt", GPX_NS)
    route_points = root.findall("g:rte/g:rtept", GPX_NS)
    assert len(waypoints) == len(route["features"]) and len(route_points) == len(route["features"]) + 1
    for wpt, feature in zip(waypoints, route["features"], strict=True):
        assert [float(wpt.get("lon")), float(wpt.get("lat"))] == pytest.approx(feature["geometry"]["coordinates"], abs=1e-6)


def test_temperatures_at_the_door(live_demo) -> None:
    worker, owner, microgrid, _ = live_demo
    with owner.connect() as conn:
        row = conn.execute(text(
            "SELECT r.id, h.id, ST_X(h.geom), ST_Y(h.geom) FROM resident r JOIN household h ON h.id = r.household_id"
            " WHERE h.microgrid_code = :m ORDER BY r.id LIMIT 1"), {"m": microgrid}).one()  # fmt: skip
        stranger = conn.execute(text("SELECT r.id FROM resident r JOIN household h ON h.id = r.household_id"
                                     " WHERE h.microgrid_code = :m AND h.id <> :h LIMIT 1"),
                                {"m": microgrid, "h": row[1]}).scalar_one()  # fmt: skip
    resident_id, household_id, lon, lat = row
    body = {"household_id": household_id, "result": "complete", "persons_seen": 1,
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "temperatures": [{"resident_id": resident_id, "temperature_c": 37.6}]}  # fmt: skip

    def checks() -> int:
        with owner.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM temperature_check WHERE resident_id = :r AND temperature_c = 37.6"), {"r": resident_id}).scalar_one())

    before = checks()
    first = worker.post("/api/visits", json=body, headers={"Idempotency-Key": "door-temps-1"})
    assert first.status_code == 201, first.text
    assert first.json()["temperatures"] == [{"resident_id": resident_id, "temperature_c": 37.6}]
    again = worker.post("/api/visits", json=body, headers={"Idempotency-Key": "door-temps-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert checks() == before + 1  # stored once
    # A fever today makes the household a fever follow-up.
    tasks = worker.get("/api/tasks", params={"microgrid": microgrid}).json()["features"]
    assert "fever" in next(f["properties"]["reasons"] for f in tasks if f["properties"]["household_id"] == household_id)
    wrong = worker.post("/api/visits", json=body | {"temperatures": [{"resident_id": stranger, "temperature_c": 36.5}]})
    assert wrong.status_code == 422 and "do not live in household" in wrong.json()["detail"]
    hot = worker.post("/api/visits", json=body | {"temperatures": [{"resident_id": resident_id, "temperature_c": 48}]})
    assert hot.status_code == 422 and "between 30.0 and 45.0" in hot.json()["detail"]


def test_who_may_ask(live_demo) -> None:
    worker, _, _, wall = live_demo
    assert wall.get("/api/tasks", params={"microgrid": "445321"}).status_code == 403
    assert worker.get("/api/routes/visits", params={"microgrid": "445321100001001"}).status_code == 404
