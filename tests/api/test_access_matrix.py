"""The access matrix: every role × every endpoint × an object inside and
outside the account's scope.

A county with two townships: everything the accounts work on lies in
township T1 (micro-grid MG1a inside grid G1), the "outside" objects in
township T2, and "above" is the county itself (outside every scope but the
admin's). For each attempt:

* outside and above: never a leak — the answer is a 4xx, its body names no
  outside object (no id, code, name or figure of T2), and a write changed
  nothing in the database;
* inside: allowed (2xx) exactly when the role has the capability the
  endpoint needs, refused with 403 otherwise.

An admin sees everything, so for the admin "outside" is inside.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from api.auth import PERSONAL_CAPABILITIES, ROLE_CAPABILITIES
from geo.demo import id_check_digit

C = "990301"
T1, T2 = C + "001", C + "002"
COM1, COM2 = T1 + "001", T2 + "001"
G1, G2 = COM1 + "001", COM2 + "001"
MG1, MG2 = G1 + "01", G2 + "01"
DAY = "2020-02-06"


def box(x0: float, x1: float) -> str:
    return f"MULTIPOLYGON((({x0} 0,{x1} 0,{x1} 0.01,{x0} 0.01,{x0} 0)))"


def person_id(n: int) -> str:
    first = f"44532119850101{n:03d}"
    return first + id_check_digit(first)


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)

    def side(self, where: str) -> dict[str, object]:
        """The objects of one side: inside (T1) or outside (T2)."""
        n = "1" if where == "inside" else "2"
        return {
            "township": T1 if n == "1" else T2, "grid": G1 if n == "1" else G2,
            "microgrid": MG1 if n == "1" else MG2, "household": self.ids[f"h{n}"],
            "resident": self.ids[f"r{n}"], "case": self.ids[f"c{n}"],
            "checkpoint": self.ids[f"k{n}"], "round": self.ids[f"round{n}"],
            "x": 0.005 if n == "1" else 0.025,
        }  # fmt: skip


def build_world(session) -> World:
    w = World()
    run = session.execute
    areas = [(C, "county", None, box(0, 0.04)), (T1, "township", C, box(0, 0.02)),
             (T2, "township", C, box(0.02, 0.04)), (COM1, "community", T1, box(0, 0.02)),
             (COM2, "community", T2, box(0.02, 0.04)), (G1, "grid", COM1, box(0, 0.02)),
             (G2, "grid", COM2, box(0.02, 0.04)), (MG1, "microgrid", G1, box(0, 0.01)),
             (G1 + "02", "microgrid", G1, box(0.01, 0.02)), (MG2, "microgrid", G2, box(0.02, 0.03)),
             (G2 + "02", "microgrid", G2, box(0.03, 0.04))]  # fmt: skip
    for code, level, parent, wkt in areas:
        name = {T1: "里镇", T2: "外镇"}.get(code, f"{level}-{code[-3:]}")
        run(text("INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
                 " VALUES (:c, :n, :l, :p, :county, '2020-01-01', ST_GeomFromText(:w, 4326))"),
            {"c": code, "n": name, "l": level, "p": parent, "county": C, "w": wkt})  # fmt: skip
    for n, x, mg in (("1", 0.005, MG1), ("2", 0.025, MG2)):
        w.ids[f"h{n}"] = run(text(
            "INSERT INTO household (county_code, microgrid_code, address, geom, geocode_level,"
            " geocode_status) VALUES (:c, :mg, :a, ST_SetSRID(ST_MakePoint(:x, 0.005), 4326),"
            " 'building', 'matched') RETURNING id"),
            {"c": C, "mg": mg, "a": f"测试路{n}号", "x": x}).scalar_one()  # fmt: skip
        w.ids[f"r{n}"] = run(text(
            "INSERT INTO resident (county_code, household_id, name, id_number, phone, category)"
            " VALUES (:c, :h, :name, :id, :phone, 'local_permanent') RETURNING id"),
            {"c": C, "h": w.ids[f"h{n}"], "name": f"居民{n}", "id": person_id(int(n)),
             "phone": f"1380013800{n}"}).scalar_one()  # fmt: skip
        w.ids[f"c{n}"] = run(text(
            "INSERT INTO case_report (county_code, resident_id, status, reported_on)"
            " VALUES (:c, :r, 'suspected', :d) RETURNING id"),
            {"c": C, "r": w.ids[f"r{n}"], "d": DAY}).scalar_one()  # fmt: skip
        run(text("INSERT INTO case_status_change (case_id, status, effective_on) VALUES (:i, 'suspected', :d)"),
            {"i": w.ids[f"c{n}"], "d": DAY})  # fmt: skip
        w.ids[f"k{n}"] = run(text(
            "INSERT INTO checkpoint (county_code, name, kind, geom) VALUES (:c, :name,"
            " 'estate_gate', ST_SetSRID(ST_MakePoint(:x, 0.002), 4326)) RETURNING id"),
            {"c": C, "name": f"卡口{n}", "x": x}).scalar_one()  # fmt: skip
        run(text("INSERT INTO passage (county_code, checkpoint_id, passed_at, resident_id, temperature_c,"
                 " health_code, home_microgrid_code) VALUES (:c, :k, :t, :r, 36.5, 'green', :mg)"),
            {"c": C, "k": w.ids[f"k{n}"], "t": f"{DAY} 10:00+08", "r": w.ids[f"r{n}"], "mg": mg})  # fmt: skip
        w.ids[f"round{n}"] = run(text(
            "INSERT INTO screening_round (county_code, area_code, name, start_date, end_date)"
            " VALUES (:c, :a, :name, '2020-02-01', '2099-12-31') RETURNING id"),
            {"c": C, "a": T1 if n == "1" else T2, "name": f"第{n}轮"}).scalar_one()  # fmt: skip
    return w


ROLES = {
    # name: (role, areas, personal)
    "admin": ("admin", [], False),
    "commander_p": ("commander", [T1], True),
    "commander": ("commander", [T1], False),
    "commander_g": ("commander", [G1], True),  # a commander of one grid
    "leader": ("grid_leader", [G1], False),
    "worker": ("grid_worker", [MG1], False),
    "wall": ("wall_viewer", [T1], False),
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # formatted with the side's objects
    capability: str
    body: dict | None = None
    params: dict | None = None
    changes: str | None = None  # SQL counting what a write would change


def _visit_body(s):
    return {"household_id": s["household"], "result": "complete", "persons_seen": 1,
            "visited_at": f"{DAY}T10:00:00+08:00",
            "location": {"type": "Point", "coordinates": [s["x"], 0.005]}}  # fmt: skip


ENDPOINTS = [
    Endpoint("area", "GET", "/api/areas/{microgrid}", "read_aggregates"),
    Endpoint("children", "GET", "/api/areas/{grid}/children", "read_aggregates"),
    Endpoint("areas within", "GET", "/api/areas", "read_aggregates", params={"within": "{township}"}),
    Endpoint("buildings", "GET", "/api/buildings", "read_aggregates", params={"within": "{grid}"}),
    Endpoint("households", "GET", "/api/areas/{microgrid}/households", "read_personal"),
    Endpoint("unvisited households", "GET", "/api/areas/{grid}/households", "read_personal",
             params={"status": "unvisited", "as_of": DAY}),
    Endpoint("residents", "GET", "/api/residents", "read_personal", params={"within": "{microgrid}"}),
    Endpoint("resident", "GET", "/api/residents/{resident}", "read_personal"),
    Endpoint("reveal", "POST", "/api/residents/{resident}/reveal", "reveal",
             body={"reason": "核实身份 checking identity"},
             changes="SELECT count(*) FROM audit_log WHERE action = 'reveal'"),
    Endpoint("cases", "GET", "/api/cases", "read_personal", params={"within": "{township}", "as_of": DAY}),
    Endpoint("case", "GET", "/api/cases/{case}", "read_personal"),
    Endpoint("case status", "POST", "/api/cases/{case}/status", "manage_cases",
             body={"status": "confirmed", "effective_on": DAY},
             changes="SELECT count(*) FROM case_status_change"),
    Endpoint("report case", "POST", "/api/cases", "manage_cases",
             body={"resident_id": "{resident}", "status": "suspected", "reported_on": DAY},
             changes="SELECT count(*) FROM case_report"),
    Endpoint("visits", "GET", "/api/visits", "read_personal", params={"household_id": "{household}"}),
    Endpoint("record visit", "POST", "/api/visits", "record_visits", body="visit",
             changes="SELECT count(*) FROM visit"),
    Endpoint("round", "GET", "/api/rounds/{round}", "read_aggregates", params={"as_of": DAY}),
    Endpoint("rounds within", "GET", "/api/rounds", "read_aggregates", params={"within": "{township}"}),
    Endpoint("new round", "POST", "/api/rounds", "manage_rounds",
             body={"area_code": "{township}", "name": "新一轮", "start_date": DAY, "end_date": DAY},
             changes="SELECT count(*) FROM screening_round"),
    Endpoint("checkpoint", "GET", "/api/checkpoints/{checkpoint}", "read_aggregates"),
    Endpoint("checkpoints within", "GET", "/api/checkpoints", "read_aggregates",
             params={"within": "{township}"}),
    Endpoint("move checkpoint", "PATCH", "/api/checkpoints/{checkpoint}", "manage_checkpoints",
             body={"name": "改名"}, changes="SELECT count(*) FROM checkpoint WHERE name = '改名'"),
    Endpoint("passages", "GET", "/api/checkpoints/{checkpoint}/passages", "read_personal",
             params={"date": DAY}),
    Endpoint("record passage", "POST", "/api/checkpoints/{checkpoint}/passages", "record_passages",
             body={"passed_at": f"{DAY}T11:00:00+08:00", "plate": "粤W00001", "temperature_c": 36.4},
             changes="SELECT count(*) FROM passage"),
    Endpoint("coverage layer", "GET", "/api/layers/coverage", "read_aggregates",
             params={"within": "{township}", "as_of": DAY}),
    Endpoint("cases layer", "GET", "/api/layers/cases", "read_aggregates",
             params={"within": "{grid}", "level": "microgrid", "as_of": DAY}),
    Endpoint("hexagons", "GET", "/api/hex/quarantine", "read_aggregates",
             params={"within": "{township}", "as_of": DAY}),
    Endpoint("tile", "GET", "/api/tiles/coverage/12/2048/2047.mvt", "read_aggregates",
             params={"within": "{township}", "as_of": DAY}),
    Endpoint("key figures", "GET", "/api/figures", "read_aggregates",
             params={"within": "{township}", "as_of": DAY}),
    Endpoint("editor layout", "GET", "/api/areas/{grid}/microgrids", "edit_microgrids"),
    Endpoint("area history", "GET", "/api/areas/{microgrid}/history", "read_aggregates"),
    Endpoint("check draft", "POST", "/api/areas/{grid}/check-microgrid", "edit_microgrids",
             body={"geometry": {"type": "Polygon", "coordinates": [[[0.001, 0.001], [0.002, 0.001], [0.002, 0.002], [0.001, 0.001]]]}}),
    Endpoint("suggest micro-grids", "POST", "/api/areas/{grid}/suggest-microgrids", "edit_microgrids",
             changes="SELECT count(*) FROM area"),
    Endpoint("today's tasks", "GET", "/api/tasks", "read_personal", params={"microgrid": "{microgrid}"}),
    Endpoint("walking route", "GET", "/api/routes/visits", "read_personal",
             params={"microgrid": "{microgrid}"}),
    Endpoint("ogc item", "GET", "/ogc/collections/microgrid/items/{microgrid}", "read_aggregates"),
    Endpoint("ogc checkpoint", "GET", "/ogc/collections/checkpoints/items/{checkpoint}", "read_aggregates"),
]  # fmt: skip
SIDES = ("inside", "outside", "above")
# Lists that may name an area above the account's own: a grid worker sees the
# county's round. They must still list nothing from outside.
ANCESTOR_LISTS = {"rounds within"}


def _fill(value, side: dict):
    if isinstance(value, str):
        return value.format(**side) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, side) for k, v in value.items()}
    return value


def _coerce(body: dict) -> dict:
    return {k: int(v) if isinstance(v, str) and v.isdigit() and k.endswith("_id") else v
            for k, v in body.items()}  # fmt: skip


@pytest.fixture
def world(session):
    return build_world(session)


@pytest.fixture
def accounts(login, world):
    return {name: login(f"m_{name}", role, areas=areas, personal=personal)
            for name, (role, areas, personal) in ROLES.items()}  # fmt: skip


def own_areas(role: str) -> dict[str, str]:
    """A role's "inside" areas: its own, never above it (a grid worker's
    township is outside its scope)."""
    root = (ROLES[role][1] or [T1])[0]
    levels = {
        T1: ("township", "grid", "microgrid"),
        G1: ("township", "grid"),
        MG1: ("township", "grid"),
    }
    return {name: root for name in levels[root] if not (root == T1 and name != "township")}


def _empty_list(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("numberMatched") == 0


def outside_markers(world: World) -> list[str]:
    """Strings that would give an outside object away in a response body."""
    s = world.side("outside")
    return [T2, G2, MG2, "外镇", "居民2", "卡口2", "第2轮", "测试路2号",
            f'"id": {s["household"]},', f'"id":{s["household"]},',
            f'"id":{s["resident"]},', f'"id":{s["case"]},', f'"id":{s["checkpoint"]},']  # fmt: skip


def attempt(test_client, endpoint: Endpoint, side: dict):
    path = _fill(endpoint.path, side)
    params = _fill(endpoint.params or {}, side)
    if endpoint.body == "visit":
        body = _visit_body(side)
    else:
        body = _coerce(_fill(endpoint.body, side)) if endpoint.body else None
    return test_client.request(endpoint.method, path, params=params, json=body)


def test_the_matrix_has_at_least_500_attempts() -> None:
    """Every role × endpoint × side, but the admin's "above" (nothing is above it)."""
    assert (len(ROLES) * len(SIDES) - 1) * len(ENDPOINTS) >= 500


@pytest.mark.parametrize("role", list(ROLES))
def test_no_leaks_and_the_right_refusals(session, world, accounts, role) -> None:
    test_client = accounts[role]
    markers = outside_markers(world)
    problems: list[str] = []
    attempts = 0
    for endpoint, where in itertools.product(ENDPOINTS, SIDES):
        attempts += 1
        if where == "above" and role == "admin":
            continue  # nothing is above an admin: the county is inside
        if where == "above":
            side = world.side("outside") | {"township": C, "grid": C, "microgrid": C}
        elif where == "inside":
            side = world.side("inside") | own_areas(role)
        else:
            side = world.side(where)
        before = session.execute(text(endpoint.changes)).scalar_one() if endpoint.changes else None
        response = attempt(test_client, endpoint, side)
        after = session.execute(text(endpoint.changes)).scalar_one() if endpoint.changes else None
        label = f"{role} {endpoint.name} {where}: {response.status_code}"
        if response.status_code >= 500:
            problems.append(f"{label} server error {response.text[:200]}")
            continue
        kind, _, personal = ROLES[role]
        if endpoint.capability in PERSONAL_CAPABILITIES and kind == "commander":
            allowed = personal  # a commander reads personal data only if the account allows it
        else:
            allowed = endpoint.capability in ROLE_CAPABILITIES[kind]
        sees_everything = role == "admin"
        if where == "inside" or sees_everything:
            if allowed and not 200 <= response.status_code < 300:
                problems.append(f"{label} refused, expected allowed: {response.text[:200]}")
            if not allowed and response.status_code != 403:
                problems.append(f"{label} expected 403: {response.text[:200]}")
            continue
        # Outside (or above) the scope: a 4xx — or an empty list, for a list
        # filtered by an outside object — nothing given away, nothing changed.
        if response.status_code < 400 and not (
            _empty_list(response) or (where == "above" and endpoint.name in ANCESTOR_LISTS)
        ):
            problems.append(f"{label} answered an outside request: {response.text[:200]}")
        # The caller's own input echoed back ("no area with code '…002'") gives nothing away.
        sent = f"{response.request.url} {response.request.content.decode()}"
        leaked = [m for m in markers if m in response.text and m not in sent]
        if leaked:
            problems.append(f"{label} body names {leaked}")
        if before != after:
            problems.append(f"{label} changed the database ({before} → {after})")
    assert attempts == len(ENDPOINTS) * len(SIDES)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_lists_and_counts_hold_only_the_inside(world, accounts, role) -> None:
    """Asked for their own area, no list or figure includes T2's objects."""
    test_client = accounts[role]
    area = ROLES[role][1][0]
    layer = test_client.get("/api/layers/quarantine", params={"within": area, "as_of": DAY})
    assert layer.status_code == 200
    assert layer.json()["totals"]["households"] == 1  # the inside household only
    for path in ("/api/checkpoints", "/api/rounds"):
        body = test_client.get(path, params={"within": area}).text
        assert not [m for m in outside_markers(world) if m in body], path
