"""Rounds and visits over HTTP: status codes, problem+json reasons for every bad
input (never a 500), idempotent replays, batches answered item by item, and
concurrent duplicate submissions through the real app on a committed database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.deps import get_engine
from api.security import hash_password
from db.accounts import create_account
from db.engine import session_scope
from geo.localtime import local_today
from tests.api.conftest import TEST_PASSWORD, bearer
from tests.db.test_visits import (
    COUNTY,
    GEOD,
    Field,
    build_field,
    run_together,
    visit_body,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def field(session) -> Field:
    return build_field(session)


def count(session, sql: str, **params: Any) -> int:
    return int(session.execute(text(sql), params).scalar_one())


def assert_problem(response, status: int | None = None, needle: str = "") -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == response.status_code and body["detail"], body
    assert needle in body["detail"], (needle, body["detail"])
    return body


# -- rounds ---------------------------------------------------------------------------------
def test_create_list_and_read_rounds(client: TestClient, session, field: Field) -> None:
    made = client.post(
        "/api/rounds",
        json={"area_code": f"{COUNTY}M1", "name": "M1 夜查", "start_date": "2020-02-03",
              "end_date": "2020-02-03"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["county_code"] == COUNTY and created["area_code"] == f"{COUNTY}M1"
    assert created["start_date"] == created["end_date"] == "2020-02-03"

    listed = client.get("/api/rounds", params={"within": f"{COUNTY}G1", "as_of": "2020-02-01"})
    assert listed.status_code == 200
    body = listed.json()
    ids = {item["id"] for item in body["items"]}
    # the county's (ancestor), G1's two (itself), M1's (descendant); not M3's
    assert ids == {field.county_round.id, field.grid_round.id, field.grid_round_2.id, created["id"]}
    assert body["numberMatched"] == body["numberReturned"] == 4
    active = client.get("/api/rounds", params={"within": f"{COUNTY}M1", "active_on": "2020-02-12"})
    assert {item["id"] for item in active.json()["items"]} == {field.county_round.id}
    paged = client.get("/api/rounds", params={"within": COUNTY, "limit": 2}).json()
    assert paged["numberMatched"] == 5 and paged["numberReturned"] == 2
    assert paged["links"][0]["rel"] == "next"

    h1 = field.point("h1")
    client.post(
        "/api/visits", json=visit_body(field.h1, at=h1, visited_at="2020-02-03T20:00:00+08:00")
    )
    detail = client.get(f"/api/rounds/{created['id']}").json()
    assert detail["name"] == "M1 夜查"
    assert detail["figures"] == {"as_of": "2020-02-03", "households": 1, "complete": 1,
                                 "incomplete": 0, "unvisited": 0, "visits": 1}  # fmt: skip
    county = client.get(f"/api/rounds/{field.county_round.id}").json()["figures"]
    assert (county["households"], county["complete"], county["unvisited"]) == (3, 0, 3)


def test_bad_rounds_are_problems(client: TestClient, field: Field) -> None:
    good = {"area_code": COUNTY, "name": "x", "start_date": "2020-02-03", "end_date": "2020-02-04"}
    for change, needle in [
        ({"end_date": "2020-02-01"}, "before start_date"),
        ({"area_code": "nowhere"}, "no area with code 'nowhere'"),
        ({"start_date": "2019-06-01"}, "on 2019-06-01"),
        ({"start_date": "someday"}, "start_date"),
        ({"name": " "}, "blank"),
        ({"colour": "red"}, "colour"),
    ]:
        assert_problem(client.post("/api/rounds", json=good | change), 422, needle)
    assert_problem(client.post("/api/rounds", json={"name": "x"}), 422, "area_code")
    assert_problem(client.get("/api/rounds/999999999"), 404, "no screening round")
    assert_problem(client.get("/api/rounds/abc"), 422)
    assert_problem(client.get("/api/rounds", params={"within": "nowhere"}), 404, "nowhere")
    assert_problem(client.get("/api/rounds", params={"active_on": "soon"}), 422, "active_on")


# -- one visit --------------------------------------------------------------------------------
def test_visit_is_stored_with_its_distance(client: TestClient, session, field: Field) -> None:
    lon, lat = field.point("h2")
    body = visit_body(field.h2, at=(lon, lat), distance_m=42.0, note="全家在家")
    response = client.post("/api/visits", json=body)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert set(stored) == {"id", "household_id", "round_id", "result", "persons_seen", "note",
                           "worker", "visited_at", "location", "distance_m", "far_reason"}  # fmt: skip
    _, _, geodesic_m = GEOD.inv(lon, lat, *body["location"]["coordinates"])
    assert stored["distance_m"] == pytest.approx(geodesic_m, abs=0.01)
    sql_m = session.execute(
        text(
            "SELECT ST_Distance(h.geom::geography, v.geom::geography) FROM visit v"
            " JOIN household h ON h.id = v.household_id WHERE v.id = :id"
        ),
        {"id": stored["id"]},
    ).scalar_one()
    assert stored["distance_m"] == pytest.approx(sql_m, abs=0.005)
    assert stored["round_id"] == field.grid_round_2.id
    assert stored["location"]["type"] == "Point"
    assert (stored["note"], stored["persons_seen"], stored["result"]) == ("全家在家", 3, "complete")
    assert stored["worker"] == "test_admin"  # the account, never the body
    listed = client.get("/api/visits", params={"household_id": field.h2}).json()
    assert listed["numberMatched"] == 1 and listed["items"] == [stored]


def test_far_visit_needs_a_reason(client: TestClient, session, field: Field) -> None:
    far = visit_body(field.h1, at=field.point("h1"), distance_m=321.0)
    problem = assert_problem(client.post("/api/visits", json=far), 422, "321.0 m from household")
    assert problem["distance_m"] == pytest.approx(321.0, abs=0.01)
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h1) == 0
    kept = client.post("/api/visits", json=far | {"far_reason": "住户在地里干活，田头登记"})
    assert kept.status_code == 201, kept.text
    assert kept.json()["far_reason"] == "住户在地里干活，田头登记"
    assert kept.json()["distance_m"] == pytest.approx(321.0, abs=0.01)


def test_default_time_is_now_in_todays_round(client: TestClient, field: Field) -> None:
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    rounds = client.post(
        "/api/rounds",
        json={"area_code": COUNTY, "name": "今天", "start_date": str(today - dt.timedelta(days=1)),
              "end_date": str(today + dt.timedelta(days=1))},
    ).json()  # fmt: skip
    body = visit_body(field.h3, at=field.point("h3"))
    del body["visited_at"]
    stored = client.post("/api/visits", json=body)
    assert stored.status_code == 201, stored.text
    assert stored.json()["round_id"] == rounds["id"]
    visited = dt.datetime.fromisoformat(stored.json()["visited_at"])
    assert abs((visited - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    assert_problem(
        client.post("/api/visits", json=body | {"visited_at": soon}), 422, "in the future"
    )


def test_every_bad_visit_is_a_problem_with_a_reason(client: TestClient, field: Field) -> None:
    at = field.point("h1")
    good = visit_body(field.h1, at=at)
    bodies: list[tuple[Any, str]] = [
        (good | {"household_id": 10**12}, "no such household"),
        (good | {"household_id": 2**80}, "not a valid id"),
        (good | {"household_id": "1"}, "whole number"),
        (good | {"round_id": 10**12}, "no such screening round"),
        (
            visit_body(field.h3, at=field.point("h3"), round_id=field.grid_round.id),
            "is not in round",
        ),
        (good | {"visited_at": "2020-02-28T09:00:00+08:00"}, "no active screening round"),
        (visit_body(field.unlocated, at=at), "not located"),
        (good | {"result": "ok"}, "result 'ok'"),
        (good | {"persons_seen": -2}, "persons_seen"),
        (good | {"persons_seen": 1e9}, "persons_seen"),
        (good | {"location": {"type": "Point", "coordinates": [113.0, 95.0]}}, "out of range"),
        (good | {"location": {"type": "Point", "coordinates": [-181, 22.0]}}, "out of range"),
        (good | {"location": {"type": "Polygon", "coordinates": []}}, "GeoJSON Point"),
        (good | {"location": "113.0,22.0"}, "GeoJSON Point"),
        ({k: v for k, v in good.items() if k != "location"}, "location is required"),
        (good | {"crs": "EPSG:999999"}, "EPSG:999999"),
        (good | {"visited_at": "06/02/2020 10:00"}, "ISO 8601"),
        (good | {"extra": 1}, "unknown member"),
        (good | {"note": ["a"]}, "note must be text"),
        ("a string", "dict"),
        (17, ""),
    ]
    for body, needle in bodies:
        assert_problem(client.post("/api/visits", json=body), None, needle)
    raw_cases = [
        (b'{"household_id": 1, "result": "complete"', "JSON"),  # truncated
        (b'{"household_id": 1, "location": {"type": "Point", "coordinates": [NaN, 22]}}', ""),
        (b"", ""),
    ]
    for raw, needle in raw_cases:
        response = client.post(
            "/api/visits", content=raw, headers={"content-type": "application/json"}
        )
        assert_problem(response, None, needle)
    too_long = client.post("/api/visits", json=good, headers={"Idempotency-Key": "k" * 201})
    assert_problem(too_long, 422, "at most 200")
    assert_problem(client.get("/api/visits", params={"round": "first"}), 422, "round")
    assert_problem(client.get("/api/visits", params={"household_id": 2**70}), 422)
    assert_problem(client.get("/api/visits", params={"limit": 0}), 422, "limit")


# -- idempotency ---------------------------------------------------------------------------------
def test_idempotent_replay_returns_the_same_visit(
    client: TestClient, session, field: Field
) -> None:
    body = visit_body(field.h3, at=field.point("h3"))
    headers = {"Idempotency-Key": "phone-42:0007"}
    first = client.post("/api/visits", json=body, headers=headers)
    second = client.post("/api/visits", content=json.dumps(body, indent=2, sort_keys=True),
                         headers=headers | {"content-type": "application/json"})  # fmt: skip
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h3) == 1
    assert (
        count(session, "SELECT count(*) FROM idempotency_record WHERE key = 'phone-42:0007'") == 1
    )
    other = client.post("/api/visits", json=body | {"persons_seen": 5}, headers=headers)
    assert_problem(other, 422, "already used with a different body")
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h3) == 1
    # the same visit later sent in a batch with the same key is the same visit
    batch = client.post("/api/visits", json=[body | {"idempotency_key": "phone-42:0007"}]).json()
    assert batch["results"][0]["id"] == first.json()["id"] and batch["results"][0]["replayed"]


# -- batches ------------------------------------------------------------------------------------
def test_batch_stores_the_good_and_reports_each_bad(
    client: TestClient, session, field: Field
) -> None:
    at1, at2, at3 = field.point("h1"), field.point("h2"), field.point("h3")
    items: list[Any] = [
        visit_body(field.h1, at=at1, idempotency_key="q-1", result="nobody_home"),  # 0 good
        visit_body(field.h2, at=at2, idempotency_key="q-2", location={"type": "Point"}),  # 1 bad
        visit_body(field.h3, at=at3, idempotency_key="q-3", distance_m=150.0),  # 2 far
        visit_body(
            field.h3, at=at3, idempotency_key="q-4", distance_m=150.0, far_reason="隔离户，隔窗询问"
        ),  # 3 good
        42,  # 4 not an object
        visit_body(
            field.h1, at=at1, idempotency_key="q-5", visited_at="2020-02-07T08:00:00+08:00"
        ),  # 5 good
        visit_body(field.h2, at=at2, idempotency_key=7),  # 6 key not text
    ]
    response = client.post("/api/visits", json=items)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    stored = [r for r in results if r["status"] == 201]
    problems = [r for r in results if r["status"] != 201]
    assert [r["index"] for r in stored] == [0, 3, 5]
    assert [r["index"] for r in problems] == [1, 2, 4, 6]
    for problem in problems:
        assert problem["status"] == 422 and problem["detail"] and problem["title"]
    assert "150.0 m" in problems[1]["detail"] and "JSON object" in problems[2]["detail"]
    assert count(session, "SELECT count(*) FROM visit WHERE county_code = :c", c=COUNTY) == 3
    round_id = field.grid_round_2.id
    listed = client.get("/api/visits", params={"round": round_id, "limit": 1}).json()
    assert listed["numberMatched"] == 2 and listed["numberReturned"] == 1  # h1 twice
    assert listed["items"][0]["result"] == "nobody_home"  # ordered by visited_at
    # the phone resends its whole queue: stored ones replay, the fixed ones store
    items[1] = visit_body(field.h2, at=at2, idempotency_key="q-2")
    items[2] = items[2] | {"far_reason": "住户外出，电话核实"}
    items[4] = visit_body(field.h2, at=at2, idempotency_key="q-6", result="refused")
    items[6] = visit_body(field.h2, at=at2, idempotency_key="q-7", result="partial")
    again = client.post("/api/visits", json=items)
    assert again.status_code == 200, again.text
    results_again = again.json()["results"]
    assert [r["replayed"] for r in results_again] == [True, False, False, True, False, True, False]
    assert [r["id"] for r in results_again if r["replayed"]] == [r["id"] for r in stored]
    assert count(session, "SELECT count(*) FROM visit WHERE county_code = :c", c=COUNTY) == 7
    empty = client.post("/api/visits", json=[])
    assert empty.status_code == 200 and empty.json() == {"results": []}
    with_header = client.post("/api/visits", json=items, headers={"Idempotency-Key": "whole"})
    assert_problem(with_header, 422, "own idempotency_key")


def test_server_set_members_are_refused_by_name(client: TestClient, session, field: Field) -> None:
    good = visit_body(field.h1, at=field.point("h1"))
    for member, value in [("worker", "王五"), ("distance_m", 0.0), ("id", 1), ("county_code", "x"),
                          ("created_at", "2020-02-06T10:00:00+08:00")]:  # fmt: skip
        problem = assert_problem(client.post("/api/visits", json=good | {member: value}), 422)
        assert problem["detail"].startswith(f"{member}: set by the server"), problem["detail"]
    batch = client.post("/api/visits", json=[good | {"worker": "王五"}]).json()["results"]
    assert batch[0]["status"] == 422 and "worker: set by the server" in batch[0]["detail"]
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h1) == 0
    for extra in ({"county_code": COUNTY}, {"id": 5}):
        assert_problem(
            client.post("/api/rounds", json={"area_code": COUNTY, "name": "x",
                        "start_date": "2020-02-03", "end_date": "2020-02-04"} | extra),
            422, next(iter(extra)),
        )  # fmt: skip


def test_one_key_from_two_accounts_is_not_a_replay(
    client: TestClient, login, session, field: Field
) -> None:
    body = visit_body(field.h1, at=field.point("h1"))
    headers = {"Idempotency-Key": "shared-phone:1"}
    assert client.post("/api/visits", json=body, headers=headers).status_code == 201
    other = login("second_admin", "admin")
    refused = other.post("/api/visits", json=body, headers=headers)
    assert_problem(refused, 422, "already used by another account")
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h1) == 1


# -- concurrency, through the app, on a committed database -----------------------------------------
@pytest.fixture(scope="module")
def committed_app(pg) -> Iterator[tuple[Any, Any, Field, dict[str, str]]]:
    engine = create_engine(pg.database("visits_concurrency_api"), pool_size=12, max_overflow=4)
    with session_scope(engine) as setup:
        built = build_field(setup)
        create_account(setup, name="concurrent_worker", role="admin", areas=[],
                       password_hash=hash_password(TEST_PASSWORD), today=local_today())  # fmt: skip
    app = create_app()
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as login_client:
        headers = bearer(login_client, "concurrent_worker")
    yield app, engine, built, headers
    engine.dispose()


def test_concurrent_duplicate_posts_store_one_visit(committed_app) -> None:
    app, engine, built, auth = committed_app
    body = visit_body(built.h1, at=built.point("h1"), note="http-concurrent")

    def post(i: int) -> tuple[int, dict[str, Any]]:
        client = TestClient(app, headers=auth)  # one per thread, as the server would run them
        response = client.post("/api/visits", json=body, headers={"Idempotency-Key": "same-key"})
        return response.status_code, response.json()

    answers = run_together(8, post)
    assert all(isinstance(a, tuple) for a in answers), answers
    assert {status for status, _ in answers} == {201}
    assert all(answer == answers[0][1] for _, answer in answers)
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM visit WHERE note = 'http-concurrent'")
        ).scalar_one()
    assert stored == 1

    # and a batch sent by two phones at once (the same queue): each key stored once
    queue = [
        visit_body(built.h2, at=built.point("h2"), idempotency_key=f"queue-{k}", note="http-batch")
        for k in range(5)
    ]

    def post_batch(i: int) -> list[dict[str, Any]]:
        response = TestClient(app, headers=auth).post("/api/visits", json=queue)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["results"]]

    batches = run_together(4, post_batch)
    assert all(b == batches[0] for b in batches), batches
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM visit WHERE note = 'http-batch'")
        ).scalar_one()
    assert stored == 5
