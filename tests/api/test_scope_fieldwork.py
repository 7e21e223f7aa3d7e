"""Field work behind accounts and scopes: rounds, visits, cases, checkpoints
and passages, tried by every role on objects inside and outside its areas.

The town: county C with grid G1 (micro-grids M11, M12) and grid G2
(micro-grid M21); a household, a resident, a case in each micro-grid's reach,
a round over C, G1, G2 and M12, a checkpoint in M11 and one in M21. The
accounts: a grid worker of M11, a grid leader of G1, a commander of G1
(without and with personal access) and a wall viewer of G1. Everything in
M21/G2 lies outside all of them; M12 lies outside the grid worker's.

What must hold: no token, 401; a role without the capability, 403; an
outside object answers exactly as a missing one (404 for a path, 422 with the
same words in a body, item by item in a batch); outside objects are never
returned, listed, counted or changed (the database is checked after refused
writes); and every write and personal read leaves one audit row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import Scope
from db.cases import CaseReport, report_case
from db.checkpoints import PassageInput, create_checkpoint, record_passages
from db.visits import Recorder, create_round, submit_visit
from geo.crs import WGS84
from tests.db.test_cases import _area, _household, _resident, id_number
from tests.db.test_visits import visit_body

PROBLEM = "application/problem+json"
EVERYTHING = Scope(everything=True, roots=())
C = "990500"
G1, G2 = f"{C}001", f"{C}002"
M11, M12, M21 = f"{G1}001", f"{G1}002", f"{G2}001"
MISSING = 999_999_999
HOMES = {"h11": (115.025, 23.05), "h12": (115.075, 23.05), "h21": (115.15, 23.05)}
K1_POINT, K2_POINT = (115.02, 23.02), (115.16, 23.02)  # in M11, in M21
INSIDE_POINT, OUTSIDE_POINT = (115.03, 23.03), (115.17, 23.03)  # in M11, in M21
# Words that only objects outside every non-admin scope carry: never in their answers.
OUTSIDE_WORDS = ("外网格居民", "G2 专项排查", "G2 高速卡口", M21)
FEB_6 = "2020-02-06T10:00:00+08:00"
NOW = dt.datetime(2020, 3, 1, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Town:
    h11: int
    h12: int
    h21: int
    r11: int
    r12: int
    r21: int
    r21_id_number: str
    c11: int
    c21: int
    county_round: int
    g1_round: int
    g2_round: int
    m12_round: int
    k1: int
    k2: int

    def point(self, name: str) -> tuple[float, float]:
        return HOMES[name]


def build_town(session: Session) -> Town:
    _area(session, C, "county", None, (115.0, 23.0, 115.2, 23.1), C)
    _area(session, G1, "grid", C, (115.0, 23.0, 115.1, 23.1), C)
    _area(session, G2, "grid", C, (115.1, 23.0, 115.2, 23.1), C)
    _area(session, M11, "microgrid", G1, (115.0, 23.0, 115.05, 23.1), C)
    _area(session, M12, "microgrid", G1, (115.05, 23.0, 115.1, 23.1), C)
    _area(session, M21, "microgrid", G2, (115.1, 23.0, 115.2, 23.1), C)
    homes = {
        name: _household(session, county=C, xy=xy, microgrid=mg)
        for (name, xy), mg in zip(HOMES.items(), (M11, M12, M21), strict=True)
    }
    numbers = [id_number(f"44532119800101{i:03d}") for i in range(1, 4)]
    r11 = _resident(session, county=C, household=homes["h11"], name="内网格居民", number=numbers[0],
                    phone="13800138011")  # fmt: skip
    r12 = _resident(session, county=C, household=homes["h12"], name="邻网格居民", number=numbers[1])
    r21 = _resident(session, county=C, household=homes["h21"], name="外网格居民", number=numbers[2],
                    phone="13900139021")  # fmt: skip

    def new_round(area: str, name: str, start: int) -> int:
        return create_round(
            session, area_code=area, name=name, start_date=dt.date(2020, 2, start),
            end_date=dt.date(2020, 2, 14 if area == C else 10), scope=EVERYTHING,
        ).id  # fmt: skip

    def new_case(resident: int) -> int:
        report = CaseReport(
            status="suspected", reported_on=dt.date(2020, 2, 1), resident_id=resident
        )
        return report_case(
            session, report=report, today=dt.date(2020, 3, 1), scope=EVERYTHING
        ).case.id

    def new_checkpoint(name: str, xy: tuple[float, float]) -> int:
        return create_checkpoint(
            session, name=name, kind="highway_exit", x=xy[0], y=xy[1], crs=WGS84, note=None,
            today=dt.date.today(), scope=EVERYTHING,
        ).id  # fmt: skip

    town = Town(
        h11=homes["h11"], h12=homes["h12"], h21=homes["h21"], r11=r11, r12=r12, r21=r21,
        r21_id_number=numbers[2], c11=new_case(r11), c21=new_case(r21),
        county_round=new_round(C, "全县排查", 1), g1_round=new_round(G1, "G1 复查", 5),
        g2_round=new_round(G2, "G2 专项排查", 5), m12_round=new_round(M12, "M12 夜查", 6),
        k1=new_checkpoint("G1 村口卡点", K1_POINT), k2=new_checkpoint("G2 高速卡口", K2_POINT),
    )  # fmt: skip
    report_case(session, report=CaseReport(status="confirmed", reported_on=dt.date(2020, 2, 2),
                address="某村 3 号", county_code=C), today=dt.date(2020, 3, 1), scope=EVERYTHING)  # fmt: skip
    admin = Recorder(worker="fixture_admin", scope=EVERYTHING, today=NOW.date())
    for home in ("h11", "h12", "h21"):
        submit_visit(session, payload=visit_body(getattr(town, home), at=town.point(home)),
                     idempotency_key=None, now=NOW, recorder=admin)  # fmt: skip
    passed = dt.datetime(2020, 2, 1, 9, 0, tzinfo=dt.UTC)
    record_passages(session, checkpoint_id=town.k1, now=NOW, scope=EVERYTHING, rows=[
        (0, PassageInput(passed_at=passed, resident_id=r11)),
        (1, PassageInput(passed_at=passed, id_number=numbers[2], temperature_c=37.8)),
    ])  # fmt: skip
    record_passages(session, checkpoint_id=town.k2, now=NOW, scope=EVERYTHING,
                    rows=[(0, PassageInput(passed_at=passed, resident_id=r21))])  # fmt: skip
    return town


@pytest.fixture
def town(session) -> Town:
    return build_town(session)


@pytest.fixture
def accounts(login, town) -> dict[str, TestClient]:
    return {
        "grid_worker": login("w_m11", "grid_worker", [M11]),
        "grid_leader": login("l_g1", "grid_leader", [G1]),
        "commander": login("c_g1", "commander", [G1]),
        "commander_personal": login("cp_g1", "commander", [G1], personal=True),
        "wall_viewer": login("v_g1", "wall_viewer", [G1]),
    }


def count(session: Session, sql: str, **params: Any) -> int:
    return int(session.execute(text(sql), params).scalar_one())


def point(xy: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(xy)}


def detail(response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return str(response.json()["detail"])


def snapshot(session: Session, town: Town) -> dict[str, Any]:
    """Everything outside the scopes (and the inside checkpoint's place), to
    compare before and after refused writes."""
    one = session.execute(
        text(
            "SELECT (SELECT count(*) FROM visit WHERE household_id = :h21),"
            " (SELECT count(*) FROM visit WHERE household_id = :h12),"
            " (SELECT count(*) FROM case_report WHERE resident_id = :r21),"
            " (SELECT count(*) FROM case_status_change WHERE case_id = :c21),"
            " (SELECT status FROM case_report WHERE id = :c21),"
            " (SELECT count(*) FROM screening_round WHERE area_code IN (:g2, :m21)),"
            " (SELECT count(*) FROM checkpoint WHERE ST_X(geom) > 115.1 AND county_code = :c),"
            " (SELECT ST_AsText(geom) || name || active FROM checkpoint WHERE id = :k2),"
            " (SELECT ST_AsText(geom) FROM checkpoint WHERE id = :k1),"
            " (SELECT count(*) FROM passage WHERE checkpoint_id = :k2),"
            " (SELECT count(*) FROM case_report WHERE address IS NOT NULL AND county_code = :c)"
        ),
        {"h21": town.h21, "h12": town.h12, "r21": town.r21, "c21": town.c21, "g2": G2,
         "m21": M21, "c": C, "k2": town.k2, "k1": town.k1},
    ).one()  # fmt: skip
    return dict(enumerate(one))


# -- the access matrix ---------------------------------------------------------------------------
ROLES = ("grid_worker", "grid_leader", "commander", "commander_personal", "wall_viewer")
Attempt = tuple[str, str, Any]


def attempts(t: Town) -> dict[str, Attempt]:
    """Every route of rounds, visits, cases and checkpoints, on an object inside
    every scope (M11 / G1) and one outside all of them (M21 / G2)."""
    passage = {"passed_at": "2020-02-01T10:00:00+08:00", "plate": "粤X00001"}
    new_round = {"name": "夜查", "start_date": "2020-02-03", "end_date": "2020-02-04"}
    checkpoint = {"name": "新卡点", "kind": "estate_gate"}
    status = {"status": "confirmed", "effective_on": "2020-02-03"}
    return {
        "rounds_list": ("GET", "/api/rounds", None),
        "round_in": ("GET", f"/api/rounds/{t.g1_round}", None),
        "round_out": ("GET", f"/api/rounds/{t.g2_round}", None),
        "round_create_in": ("POST", "/api/rounds", new_round | {"area_code": G1}),
        "round_create_out": ("POST", "/api/rounds", new_round | {"area_code": G2}),
        "visit_in": ("POST", "/api/visits", visit_body(t.h11, at=t.point("h11"), visited_at=FEB_6)),
        "visit_out": ("POST", "/api/visits", visit_body(t.h21, at=t.point("h21"), visited_at=FEB_6)),
        "visits_list": ("GET", "/api/visits", None),
        "visits_out": ("GET", f"/api/visits?household_id={t.h21}", None),
        "case_create_in": ("POST", "/api/cases", {"resident_id": t.r11, "status": "suspected", "reported_on": "2020-02-03"}),
        "case_create_out": ("POST", "/api/cases", {"resident_id": t.r21, "status": "suspected", "reported_on": "2020-02-03"}),
        "case_address_out": ("POST", "/api/cases", {"address": "某村", "county_code": C, "status": "suspected", "reported_on": "2020-02-03"}),
        "case_status_in": ("POST", f"/api/cases/{t.c11}/status", status),
        "case_status_out": ("POST", f"/api/cases/{t.c21}/status", status),
        "case_in": ("GET", f"/api/cases/{t.c11}", None),
        "case_out": ("GET", f"/api/cases/{t.c21}", None),
        "cases_list": ("GET", "/api/cases", None),
        "cases_out": ("GET", f"/api/cases?within={G2}", None),
        "checkpoints_list": ("GET", "/api/checkpoints", None),
        "checkpoint_in": ("GET", f"/api/checkpoints/{t.k1}", None),
        "checkpoint_out": ("GET", f"/api/checkpoints/{t.k2}", None),
        "checkpoint_create_in": ("POST", "/api/checkpoints", checkpoint | {"location": point(INSIDE_POINT)}),
        "checkpoint_create_out": ("POST", "/api/checkpoints", checkpoint | {"location": point(OUTSIDE_POINT)}),
        "checkpoint_patch_in": ("PATCH", f"/api/checkpoints/{t.k1}", {"note": "夜间关闭"}),
        "checkpoint_patch_out": ("PATCH", f"/api/checkpoints/{t.k2}", {"active": False}),
        "checkpoint_move_out": ("PATCH", f"/api/checkpoints/{t.k1}", {"location": point(OUTSIDE_POINT)}),
        "passage_in": ("POST", f"/api/checkpoints/{t.k1}/passages", passage),
        "passage_out": ("POST", f"/api/checkpoints/{t.k2}/passages", passage),
        "passages_in": ("GET", f"/api/checkpoints/{t.k1}/passages", None),
        "passages_out": ("GET", f"/api/checkpoints/{t.k2}/passages", None),
    }  # fmt: skip


# Expected status per action, by role: (grid_worker, grid_leader, commander,
# commander_personal, wall_viewer). Admin: every "in" and "out" allowed.
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    "rounds_list": (200, 200, 200, 200, 200),
    "round_in": (200, 200, 200, 200, 200),
    "round_out": (404, 404, 404, 404, 404),
    "round_create_in": (403, 403, 201, 201, 403),
    "round_create_out": (403, 403, 422, 422, 403),
    "visit_in": (201, 201, 403, 403, 403),
    "visit_out": (422, 422, 403, 403, 403),
    "visits_list": (200, 200, 403, 200, 403),
    "visits_out": (200, 200, 403, 200, 403),  # an empty list, as for a missing household
    "case_create_in": (403, 201, 201, 201, 403),
    "case_create_out": (403, 422, 422, 422, 403),
    "case_address_out": (403, 422, 422, 422, 403),  # the county lies above their areas
    "case_status_in": (403, 200, 200, 200, 403),
    "case_status_out": (403, 404, 404, 404, 403),
    "case_in": (200, 200, 403, 200, 403),
    "case_out": (404, 404, 403, 404, 403),
    "cases_list": (200, 200, 403, 200, 403),
    "cases_out": (404, 404, 403, 404, 403),
    "checkpoints_list": (200, 200, 200, 200, 200),
    "checkpoint_in": (200, 200, 200, 200, 200),
    "checkpoint_out": (404, 404, 404, 404, 404),
    "checkpoint_create_in": (403, 403, 201, 201, 403),
    "checkpoint_create_out": (403, 403, 422, 422, 403),
    "checkpoint_patch_in": (403, 403, 200, 200, 403),
    "checkpoint_patch_out": (403, 403, 404, 404, 403),
    "checkpoint_move_out": (403, 403, 422, 422, 403),
    "passage_in": (201, 201, 201, 201, 403),
    "passage_out": (404, 404, 404, 404, 403),
    "passages_in": (200, 200, 403, 200, 403),
    "passages_out": (404, 404, 403, 404, 403),
}


def send(client: TestClient, attempt: Attempt):
    method, url, body = attempt
    return (
        client.request(method, url, json=body) if body is not None else client.request(method, url)
    )


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(role: str, accounts, session, town) -> None:
    client = accounts[role]
    column = ROLES.index(role)
    before = snapshot(session, town)
    tried = attempts(town)
    assert set(tried) == set(EXPECTED)
    for name, attempt in tried.items():
        response = send(client, attempt)
        assert response.status_code == EXPECTED[name][column], (role, name, response.text)
        for word in OUTSIDE_WORDS:
            assert word not in response.text, (role, name, word, response.text)
        if response.status_code == 403:
            assert "may not" in detail(response)
    assert snapshot(session, town) == before, role


def test_admin_reaches_inside_and_outside(client, session, town) -> None:
    for name, attempt in attempts(town).items():
        response = send(client, attempt)
        assert response.status_code < 300, (name, response.text)
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=town.h21) == 2


def test_without_a_token_every_route_is_401(anonymous, session, town) -> None:
    before = snapshot(session, town)
    for name, attempt in attempts(town).items():
        response = send(anonymous, attempt)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "log in" in detail(response)
    assert snapshot(session, town) == before


# -- outside answers as missing ------------------------------------------------------------------
def same_words(outside, missing, *, outside_id: int | str, missing_id: int | str = MISSING) -> None:
    assert outside.status_code == missing.status_code, (outside.text, missing.text)
    assert detail(outside) == detail(missing).replace(str(missing_id), str(outside_id))


def test_outside_objects_answer_as_missing_ones(accounts, town) -> None:
    leader, commander = accounts["grid_leader"], accounts["commander"]
    personal = accounts["commander_personal"]
    pairs: list[tuple[Callable[[int], Any], int]] = [
        (lambda i: leader.get(f"/api/rounds/{i}"), town.g2_round),
        (lambda i: leader.get(f"/api/cases/{i}"), town.c21),
        (lambda i: personal.get(f"/api/cases/{i}"), town.c21),
        (lambda i: leader.post(f"/api/cases/{i}/status",
                               json={"status": "recovered", "effective_on": "2020-02-05"}), town.c21),
        (lambda i: leader.get(f"/api/checkpoints/{i}"), town.k2),
        (lambda i: commander.patch(f"/api/checkpoints/{i}", json={"active": False}), town.k2),
        (lambda i: leader.post(f"/api/checkpoints/{i}/passages",
                               json={"passed_at": "2020-02-01T10:00:00", "plate": "A1"}), town.k2),
        (lambda i: leader.get(f"/api/checkpoints/{i}/passages"), town.k2),
        (lambda i: leader.post("/api/visits", json=visit_body(i, at=HOMES["h21"], visited_at=FEB_6)), town.h21),
        (lambda i: leader.post("/api/visits", json=visit_body(
            town.h11, at=HOMES["h11"], visited_at=FEB_6, round_id=i)), town.g2_round),
        (lambda i: leader.post("/api/cases", json={"resident_id": i, "status": "suspected",
                                                   "reported_on": "2020-02-03"}), town.r21),
        (lambda i: leader.post("/api/cases", json={"household_id": i, "status": "suspected",
                                                   "reported_on": "2020-02-03"}), town.h21),
    ]  # fmt: skip
    for ask, outside_id in pairs:
        outside, missing = ask(outside_id), ask(MISSING)
        assert outside.status_code in (404, 422), outside.text
        same_words(outside, missing, outside_id=outside_id)
    # areas: a round over G2, a list within G2, a county above the caller's grid
    for url, body in [
        ("/api/rounds", {"name": "x", "start_date": "2020-02-03", "end_date": "2020-02-04"}),
    ]:
        same_words(commander.post(url, json=body | {"area_code": G2}),
                   commander.post(url, json=body | {"area_code": "nowhere"}),
                   outside_id=G2, missing_id="nowhere")  # fmt: skip
    for url in ("/api/cases", "/api/checkpoints", "/api/rounds"):
        who = personal if url == "/api/cases" else commander
        same_words(who.get(url, params={"within": G2}), who.get(url, params={"within": "nowhere"}),
                   outside_id=G2, missing_id="nowhere")  # fmt: skip
    address = {"address": "某村", "status": "suspected", "reported_on": "2020-02-03"}
    same_words(commander.post("/api/cases", json=address | {"county_code": C}),
               commander.post("/api/cases", json=address | {"county_code": "990599"}),
               outside_id=C, missing_id="990599")  # fmt: skip
    # a visit batch answers each outside item as a missing one
    worker = accounts["grid_worker"]
    batch = worker.post("/api/visits", json=[
        visit_body(town.h11, at=HOMES["h11"], visited_at=FEB_6),
        visit_body(town.h12, at=HOMES["h12"], visited_at=FEB_6),  # M12: outside the worker's M11
        visit_body(MISSING, at=HOMES["h12"], visited_at=FEB_6),
        visit_body(town.h11, at=HOMES["h11"], visited_at=FEB_6, round_id=town.m12_round),
        visit_body(town.h11, at=HOMES["h11"], visited_at=FEB_6, round_id=MISSING),
    ])  # fmt: skip
    assert batch.status_code == 207, batch.text
    items = batch.json()["results"]
    assert [i["status"] for i in items] == [201, 422, 422, 422, 422]
    assert items[1]["detail"] == items[2]["detail"].replace(str(MISSING), str(town.h12))
    assert items[3]["detail"] == items[4]["detail"].replace(str(MISSING), str(town.m12_round))


def test_commander_cannot_place_or_move_a_checkpoint_outside(
    accounts, login, session, town
) -> None:
    commander = accounts["commander"]
    placed = commander.post("/api/checkpoints", json={"name": "界外", "kind": "port",
                                                      "location": point(OUTSIDE_POINT)})  # fmt: skip
    assert placed.status_code == 422 and "outside your areas" in detail(placed)
    assert count(session, "SELECT count(*) FROM checkpoint WHERE name = '界外'") == 0
    where_k1 = session.execute(
        text("SELECT ST_AsText(geom) FROM checkpoint WHERE id = :k"), {"k": town.k1}
    ).scalar_one()
    moved = commander.patch(f"/api/checkpoints/{town.k1}",
                            json={"location": point(OUTSIDE_POINT), "name": "搬走"})  # fmt: skip
    assert moved.status_code == 422 and "outside your areas" in detail(moved)
    after = session.execute(
        text("SELECT ST_AsText(geom), name FROM checkpoint WHERE id = :k"), {"k": town.k1}
    ).one()
    assert tuple(after) == (where_k1, "G1 村口卡点")
    inside = commander.patch(f"/api/checkpoints/{town.k1}", json={"location": point(INSIDE_POINT)})
    assert inside.status_code == 200, inside.text
    # a commander of the whole county may: the scope, not the role, decides
    county = login("c_county", "commander", [C])
    there = county.post("/api/checkpoints", json={"name": "界外", "kind": "port",
                                                  "location": point(OUTSIDE_POINT)})  # fmt: skip
    assert there.status_code == 201, there.text
    assert county.patch(f"/api/checkpoints/{town.k2}", json={"active": False}).status_code == 200


# -- lists and figures are cut to the scope ------------------------------------------------------
def ids(body: dict[str, Any], key: str = "items") -> set[int]:
    if key == "features":
        return {int(f["properties"]["id"]) for f in body["features"]}
    return {int(i["id"]) for i in body[key]}


def test_lists_and_figures_hold_only_the_scope(accounts, client, town) -> None:
    worker, leader = accounts["grid_worker"], accounts["grid_leader"]
    viewer, personal = accounts["wall_viewer"], accounts["commander_personal"]
    every_round = {town.county_round, town.g1_round, town.g2_round, town.m12_round}
    assert ids(client.get("/api/rounds").json()) >= every_round
    # rounds over the scope's areas, below them, or above one of its roots
    worker_rounds = worker.get("/api/rounds").json()
    assert ids(worker_rounds) == {town.county_round, town.g1_round}
    assert worker_rounds["numberMatched"] == 2
    assert ids(leader.get("/api/rounds").json()) == every_round - {town.g2_round}
    assert ids(viewer.get("/api/rounds", params={"within": C}).json()) == {
        town.county_round, town.g1_round, town.m12_round,
    }  # fmt: skip
    assert worker.get("/api/rounds", params={"within": M12}).status_code == 404
    # a county round's figures count only the households in scope
    figures = {
        who: c.get(f"/api/rounds/{town.county_round}").json()["figures"]["households"]
        for who, c in (("admin", client), ("worker", worker), ("leader", leader))
    }
    assert figures == {"admin": 3, "worker": 1, "leader": 2}
    # visits: only the scope's households (the fixture visited h11, h12 and h21)
    assert {v["household_id"] for v in worker.get("/api/visits").json()["items"]} == {town.h11}
    assert leader.get("/api/visits").json()["numberMatched"] == 2
    for household in (town.h21, MISSING):
        empty = leader.get("/api/visits", params={"household_id": household}).json()
        assert (empty["numberMatched"], empty["items"]) == (0, [])
    by_round = leader.get("/api/visits", params={"round": town.county_round}).json()
    assert by_round["numberMatched"] == 0  # visited in G1's rounds, not the county's
    # cases: where the person lives
    assert ids(leader.get("/api/cases").json()) == {town.c11}
    assert ids(personal.get("/api/cases").json()) == {town.c11}
    assert leader.get("/api/cases").json()["numberMatched"] == 1
    assert ids(worker.get("/api/cases", params={"within": M11}).json()) == {town.c11}
    assert client.get("/api/cases", params={"within": C}).json()["numberMatched"] == 3
    # checkpoints: whose point lies in the scope
    listed = viewer.get("/api/checkpoints").json()
    assert ids(listed, "features") == {town.k1} and listed["numberMatched"] == 1
    assert ids(client.get("/api/checkpoints").json(), "features") >= {town.k1, town.k2}
    assert (
        viewer.get("/api/checkpoints", params={"bbox": "115.1,23.0,115.2,23.1"}).json()[
            "numberMatched"
        ]
        == 0
    )


def test_passages_name_only_people_living_in_scope(accounts, client, session, town) -> None:
    worker = accounts["grid_worker"]
    url = f"/api/checkpoints/{town.k1}/passages"
    seen = worker.get(url).json()["items"]
    assert [(p["resident_id"], p["home_microgrid_code"]) for p in seen] == [
        (town.r11, M11), (None, None),  # r21 lives in M21: passed here, but not named
    ]  # fmt: skip
    assert [p["flagged"] for p in seen] == [False, True]
    by_admin = client.get(url).json()["items"]
    assert by_admin[1]["resident_id"] == town.r21 and by_admin[1]["home_microgrid_code"] == M21
    rows = [
        {"passed_at": "2020-02-01T11:00:00+08:00", "id_number": town.r21_id_number},
        {"passed_at": "2020-02-01T11:05:00+08:00", "resident_id": town.r21},
        {"passed_at": "2020-02-01T11:10:00+08:00", "resident_id": MISSING},
        {"passed_at": "2020-02-01T11:15:00+08:00", "resident_id": town.r11},
    ]
    stored = worker.post(url, json=rows)
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert [(p["resident_id"], p["home_microgrid_code"]) for p in body["items"]] == [
        (None, None), (town.r11, M11),
    ]  # fmt: skip
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert reasons == {1: f"no resident with id {town.r21}", 2: f"no resident with id {MISSING}"}
    # stored by id number all the same: the figures by home still count r21 in M21
    attributed = session.execute(
        text("SELECT resident_id, home_microgrid_code FROM passage WHERE id = :id"),
        {"id": body["items"][0]["id"]},
    ).one()
    assert tuple(attributed) == (town.r21, M21)
    assert town.r21_id_number not in stored.text


# -- the worker is the account; server-set fields are refused ----------------------------------------
def test_visits_record_the_account_and_refuse_a_worker_field(accounts, session, town) -> None:
    worker = accounts["grid_worker"]
    body = visit_body(town.h11, at=town.point("h11"), visited_at=FEB_6)
    stored = worker.post("/api/visits", json=body)
    assert stored.status_code == 201, stored.text
    assert stored.json()["worker"] == "w_m11"
    in_db = session.execute(
        text("SELECT worker FROM visit WHERE id = :id"), {"id": stored.json()["id"]}
    ).scalar_one()
    assert in_db == "w_m11"
    forged = worker.post("/api/visits", json=body | {"worker": "someone_else"})
    assert forged.status_code == 422 and detail(forged).startswith("worker: set by the server")
    assert count(session, "SELECT count(*) FROM visit WHERE worker = 'someone_else'") == 0
    leader = accounts["grid_leader"]
    for url, extra in [
        ("/api/cases", {"home_microgrid_code": M11}),
        ("/api/cases", {"id": 5}),
        (f"/api/cases/{town.c11}/status", {"changed_at": "2020-02-03T00:00:00Z"}),
    ]:
        base = ({"resident_id": town.r11, "status": "suspected", "reported_on": "2020-02-03"}
                if url == "/api/cases" else {"status": "confirmed", "effective_on": "2020-02-03"})  # fmt: skip
        refused = leader.post(url, json=base | extra)
        assert refused.status_code == 422 and next(iter(extra)) in detail(refused)
    commander = accounts["commander"]
    for extra in ({"county_code": C}, {"id": 7}, {"created_at": "2020-01-01T00:00:00Z"}):
        refused = commander.post("/api/checkpoints", json={
            "name": "x", "kind": "port", "location": point(INSIDE_POINT)} | extra)  # fmt: skip
        assert refused.status_code == 422 and next(iter(extra)) in detail(refused)
    passage = {"passed_at": "2020-02-01T10:00:00+08:00", "plate": "粤X1"}
    for extra in ({"flagged": False}, {"home_microgrid_code": M11}, {"id": 3}):
        refused = worker.post(f"/api/checkpoints/{town.k1}/passages", json=passage | extra)
        assert refused.status_code == 422 and next(iter(extra)) in detail(refused)


# -- the audit trail ---------------------------------------------------------------------------------
def audit_rows(session: Session, *, user: str, method: str, path: str) -> list[tuple[str, str]]:
    rows = session.execute(
        text(
            "SELECT action, coalesce(object_id, '') FROM audit_log"
            " WHERE user_name = :u AND method = :m AND path = :p ORDER BY id"
        ),
        {"u": user, "m": method, "p": path},
    ).all()
    return [(str(a), str(o)) for a, o in rows]


def test_writes_and_personal_reads_are_audited(accounts, session, town) -> None:
    worker, leader = accounts["grid_worker"], accounts["grid_leader"]
    body = visit_body(town.h11, at=town.point("h11"), visited_at=FEB_6)
    assert worker.post("/api/visits", json=body).status_code == 201
    assert audit_rows(session, user="w_m11", method="POST", path="/api/visits") == [("write", "")]
    assert worker.get("/api/visits").status_code == 200
    assert audit_rows(session, user="w_m11", method="GET", path="/api/visits") == [
        ("read_personal", "")
    ]
    assert leader.get(f"/api/cases/{town.c11}").status_code == 200
    assert audit_rows(session, user="l_g1", method="GET", path="/api/cases/{case_id}") == [
        ("read_personal", str(town.c11))
    ]
    changed = leader.post(f"/api/cases/{town.c11}/status",
                          json={"status": "confirmed", "effective_on": "2020-02-03"})  # fmt: skip
    assert changed.status_code == 200
    assert audit_rows(session, user="l_g1", method="POST", path="/api/cases/{case_id}/status") == [
        ("write", str(town.c11))
    ]
    assert leader.get(f"/api/checkpoints/{town.k1}/passages").status_code == 200
    assert audit_rows(
        session, user="l_g1", method="GET", path="/api/checkpoints/{checkpoint_id}/passages"
    ) == [("read_personal", str(town.k1))]
    # aggregates are not personal reads; refused requests change nothing, so leave no row
    assert leader.get("/api/rounds").status_code == 200
    assert leader.get(f"/api/checkpoints/{town.k1}").status_code == 200
    assert leader.get(f"/api/cases/{town.c21}").status_code == 404
    assert (
        leader.post("/api/visits", json=visit_body(town.h21, at=town.point("h21"))).status_code
        == 422
    )
    assert worker.post("/api/rounds", json={"area_code": M11, "name": "x", "start_date": "2020-02-03",
                                            "end_date": "2020-02-04"}).status_code == 403  # fmt: skip
    assert audit_rows(session, user="l_g1", method="GET", path="/api/rounds") == []
    assert (
        audit_rows(session, user="l_g1", method="GET", path="/api/checkpoints/{checkpoint_id}")
        == []
    )
    assert len(audit_rows(session, user="l_g1", method="GET", path="/api/cases/{case_id}")) == 1
    assert len(audit_rows(session, user="l_g1", method="POST", path="/api/visits")) == 0
    assert audit_rows(session, user="w_m11", method="POST", path="/api/rounds") == []
