"""Accounts and scopes on the read routes (areas, people, geocoding, imports,
layers, tiles, hexagons, OGC): a small county with two townships, one inside a
commander's scope (IN) and one outside it (OUT).

What must hold: no token → 401 (problem+json, WWW-Authenticate); an object
outside the scope answers exactly as a missing one (404, same words); lists,
layers, tiles and OGC collections hold only the scope's objects, counted as an
independent SQL count counts them; the wall viewer never gets personal data
(403); the reveal gives full numbers only to roles allowed it and writes one
audit row with the reason; boxes and pages have caps.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import re
from dataclasses import dataclass, field

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from api.settings import ApiSettings
from db.assign import assign_households
from geo.bbox import box_area_km2

PROBLEM = "application/problem+json"
COUNTY = "990301"
IN, OUT = COUNTY + "001", COUNTY + "002"
IN_C, OUT_C = IN + "001", OUT + "001"
IN_G, OUT_G = IN_C + "001", OUT_C + "001"
IN_MG, OUT_MG = IN_G + "01", OUT_G + "01"
MISSING = "990399999"
OTHER_COUNTY = "990302"
FIRST_DAY = dt.date(2020, 1, 1)
X0 = 10.0  # the county: x ∈ [10.00, 10.04], y ∈ [0, 0.01]; IN the west half, OUT the east
ID_MASK = re.compile(r"^\d{4}\*{10}[\dX]{4}$")
ADDRESSES = {IN: ("东镇", "人民路", "12号"), OUT: ("西镇", "解放路", "8号")}


def box_wkt(x0: float, y0: float, x1: float, y1: float) -> str:
    return f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"


@dataclass
class Town:
    households: list[int] = field(default_factory=list)
    residents: list[int] = field(default_factory=list)
    building: int = 0
    review: int = 0
    checkpoint: int = 0


@dataclass
class County:
    towns: dict[str, Town]
    out_round: int
    county_round: int
    batch: int
    identifiers: dict[int, tuple[str, str]]  # resident id → (id number, phone)


def _insert(conn, sql: str, **params) -> int:
    return int(conn.execute(text(sql + " RETURNING id"), params).scalar_one())


@pytest.fixture
def county(session) -> County:
    conn = session.connection()

    def area(code: str, level: str, parent: str | None, x0: float, x1: float) -> None:
        conn.execute(
            text(
                "INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
                " VALUES (:code, :name, :level, :parent, :county, :day, ST_GeomFromText(:wkt, 4326))"
            ),
            {"code": code, "name": f"{level} {code}", "level": level, "parent": parent,
             "county": COUNTY, "day": FIRST_DAY, "wkt": box_wkt(x0, 0.0, x1, 0.01)},
        )  # fmt: skip

    area(COUNTY, "county", None, X0, X0 + 0.04)
    towns: dict[str, Town] = {}
    identifiers: dict[int, tuple[str, str]] = {}
    serial = 0
    for town, x0, count in ((IN, X0, 3), (OUT, X0 + 0.02, 2)):
        township, road, number = ADDRESSES[town]
        x1 = x0 + 0.02
        area(town, "township", COUNTY, x0, x1)
        area(town + "001", "community", town, x0, x1)
        area(town + "001001", "grid", town + "001", x0, x1)
        area(town + "00100101", "microgrid", town + "001001", x0, x1)
        t = Town()
        point = {"x": x0 + 0.01, "y": 0.005}
        t.building = _insert(
            conn,
            "INSERT INTO building (county_code, code, address, county, township, road,"
            " house_number, geom) VALUES (:c, :code, :address, '测试县', :township, :road,"
            " :number, ST_SetSRID(ST_MakePoint(:x, :y), 4326))",
            c=COUNTY, code=f"B{town}", address=f"测试县{township}{road}{number}",
            township=township, road=road, number=number, **point,
        )  # fmt: skip
        t.checkpoint = _insert(
            conn,
            "INSERT INTO checkpoint (county_code, name, kind, geom)"
            " VALUES (:c, :name, 'village_entrance', ST_SetSRID(ST_MakePoint(:x, :y), 4326))",
            c=COUNTY, name=f"卡口{town}", **point,
        )  # fmt: skip
        for i in range(count):
            located = _insert(
                conn,
                "INSERT INTO household (county_code, building_id, room, geom, geocode_level,"
                " geocode_status) VALUES (:c, :b, :room, ST_SetSRID(ST_MakePoint(:x, :y), 4326),"
                " 'building', 'matched')",
                c=COUNTY, b=t.building, room=str(101 + i), **point,
            )  # fmt: skip
            t.households.append(located)
        # One household located only to the community, waiting in the review queue.
        unlocated = _insert(
            conn,
            "INSERT INTO household (county_code, address, area_code, geocode_level, geocode_status)"
            " VALUES (:c, :address, :area, 'community', 'review')",
            c=COUNTY, address=f"测试县{town}某处", area=town + "001",
        )  # fmt: skip
        t.households.append(unlocated)
        t.review = _insert(
            conn,
            "INSERT INTO geocode_review (county_code, household_id, address, reason)"
            " VALUES (:c, :h, :address, 'fallback')",
            c=COUNTY, h=unlocated, address=f"测试县{town}某处",
        )  # fmt: skip
        for household in t.households:
            for _ in range(2):
                serial += 1
                id_number, phone = f"4453211990010{serial:04d}X", f"1380000{serial:04d}"
                resident = _insert(
                    conn,
                    "INSERT INTO resident (county_code, household_id, name, category, id_number,"
                    " phone) VALUES (:c, :h, '测试', 'local_permanent', :id_number, :phone)",
                    c=COUNTY, h=household, id_number=id_number, phone=phone,
                )  # fmt: skip
                t.residents.append(resident)
                identifiers[resident] = (id_number, phone)
        towns[town] = t
    assign_households(conn, county_code=COUNTY)
    # Another county with a registry, nobody's here but the admin's.
    conn.execute(
        text(
            "INSERT INTO area (code, name, level, county_code, valid_from, geom) VALUES"
            " (:code, '邻县', 'county', :code, :day, ST_GeomFromText(:wkt, 4326))"
        ),
        {"code": OTHER_COUNTY, "day": FIRST_DAY, "wkt": box_wkt(X0 + 1, 0.0, X0 + 1.04, 0.01)},
    )
    _insert(
        conn,
        "INSERT INTO building (county_code, code, address, county, road, house_number, geom)"
        " VALUES (:c, 'BOTHER', '邻县人民路12号', '邻县', '人民路', '12号',"
        " ST_SetSRID(ST_MakePoint(:x, 0.005), 4326))",
        c=OTHER_COUNTY, x=X0 + 1.01,
    )  # fmt: skip

    def screening_round(area_code: str) -> int:
        return _insert(
            conn,
            "INSERT INTO screening_round (county_code, area_code, name, start_date, end_date)"
            " VALUES (:c, :a, :name, :start, :end)",
            c=COUNTY, a=area_code, name=f"排查 {area_code}", start=FIRST_DAY,
            end=dt.date(2030, 1, 1),
        )  # fmt: skip

    batch = _insert(
        conn,
        "INSERT INTO import_batch (kind, file_name, file_sha256, mode, rows_total, rows_applied,"
        " rows_rejected, report, rejected_file, rejected_format) VALUES ('residents', 'r.csv',"
        " :sha, 'per-row', 2, 1, 1, CAST(:report AS jsonb), :file, 'csv')",
        sha="0" * 64, report=f'{{"county_code": "{COUNTY}"}}', file=b"row,reason\n",
    )  # fmt: skip
    return County(
        towns=towns, out_round=screening_round(OUT), county_round=screening_round(COUNTY),
        batch=batch, identifiers=identifiers,
    )  # fmt: skip


@pytest.fixture
def commander(login, county):
    """A commander of township IN who may read personal data."""
    return login("cmd_in", "commander", areas=[IN], personal=True)


@pytest.fixture
def wall(login, county):
    return login("wall_in", "wall_viewer", areas=[IN])


def detail(response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return response.json()["detail"]


def same_404(client, outside: str, missing: str, *, out_key: str, missing_key: str) -> None:
    """``outside`` and ``missing`` both 404 with the same words (but for the key named)."""
    a, b = client.get(outside), client.get(missing)
    assert (a.status_code, b.status_code) == (404, 404), (a.text, b.text)
    assert detail(a).replace(out_key, "?") == detail(b).replace(missing_key, "?")


def sql(session, query: str, **params):
    return session.execute(text(query), params).all()


# -- 401 ------------------------------------------------------------------------------
MY_PREFIXES = (
    "/api/areas", "/api/buildings", "/api/residents", "/api/geocode", "/api/imports",
    "/api/layers", "/api/hex", "/api/tiles", "/ogc",
)  # fmt: skip


def test_every_route_needs_a_token_but_health(anonymous) -> None:
    """Every path and method of these routes, as /openapi.json lists them."""
    paths = anonymous.get("/openapi.json").json()["paths"]
    tried = 0
    for template, operations in paths.items():
        if not template.startswith(MY_PREFIXES):
            continue
        path = re.sub(r"\{[^}]+\}", "1", template)
        for method in operations:
            response = anonymous.request(method.upper(), path)
            assert response.status_code == 401, (method, template, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.headers["www-authenticate"] == "Bearer"
            tried += 1
    assert tried >= 25
    assert anonymous.get("/api/health").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200


def test_a_forged_token_is_401(anonymous) -> None:
    response = anonymous.get("/api/areas", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


# -- outside = missing --------------------------------------------------------------------
def test_areas_outside_answer_as_missing(commander, county) -> None:
    for suffix in ("", "/children", "/households"):
        same_404(commander, f"/api/areas/{OUT}{suffix}", f"/api/areas/{MISSING}{suffix}",
                 out_key=OUT, missing_key=MISSING)  # fmt: skip
    # The county holds IN but is not inside it: not theirs either.
    assert commander.get(f"/api/areas/{COUNTY}").status_code == 404
    for path in ("/api/areas", "/api/buildings", "/api/residents", "/api/geocode/review",
                 "/api/layers/cases", "/api/hex/cases"):  # fmt: skip
        same_404(commander, f"{path}?within={OUT}", f"{path}?within={MISSING}",
                 out_key=OUT, missing_key=MISSING)  # fmt: skip
    same_404(commander, f"/api/tiles/cases/12/2161/2047.mvt?within={OUT}",
             f"/api/tiles/cases/12/2161/2047.mvt?within={MISSING}", out_key=OUT,
             missing_key=MISSING)  # fmt: skip
    same_404(commander, f"/ogc/collections/township/items/{OUT}",
             f"/ogc/collections/township/items/{MISSING}", out_key=OUT,
             missing_key=MISSING)  # fmt: skip
    assert commander.get(f"/api/areas/{IN}").status_code == 200
    assert commander.get(f"/api/areas/{IN_MG}").status_code == 200


def test_objects_outside_answer_as_missing(commander, county, session) -> None:
    out, mine = county.towns[OUT], county.towns[IN]
    top = sql(session, "SELECT max(id) FROM resident")[0][0] + 1000
    same_404(commander, f"/api/residents/{out.residents[0]}", f"/api/residents/{top}",
             out_key=str(out.residents[0]), missing_key=str(top))  # fmt: skip
    assert detail(commander.get(f"/api/residents/{top}")) == f"no resident with id {top}"
    assert commander.get(f"/api/residents/{mine.residents[0]}").status_code == 200
    top_cp = sql(session, "SELECT max(id) FROM checkpoint")[0][0] + 1000
    same_404(commander, f"/ogc/collections/checkpoints/items/{out.checkpoint}",
             f"/ogc/collections/checkpoints/items/{top_cp}", out_key=str(out.checkpoint),
             missing_key=str(top_cp))  # fmt: skip
    assert commander.get(f"/ogc/collections/checkpoints/items/{mine.checkpoint}").status_code == 200
    # A round of the other township is not theirs; the county's round is (they work in it).
    top_round = sql(session, "SELECT max(id) FROM screening_round")[0][0] + 1000
    same_404(commander, f"/api/layers/coverage?round={county.out_round}",
             f"/api/layers/coverage?round={top_round}", out_key=str(county.out_round),
             missing_key=str(top_round))  # fmt: skip
    assert commander.get(f"/api/layers/coverage?round={county.county_round}").status_code == 200
    # Writes on outside objects: the same 404, nothing changed.
    top_review = sql(session, "SELECT max(id) FROM geocode_review")[0][0] + 1000
    body = {"building_id": mine.building}
    a = commander.post(f"/api/geocode/review/{out.review}/resolve", json=body)
    b = commander.post(f"/api/geocode/review/{top_review}/resolve", json=body)
    assert (a.status_code, b.status_code) == (404, 404)
    assert detail(a).replace(str(out.review), "?") == detail(b).replace(str(top_review), "?")
    assert sql(session, "SELECT status FROM geocode_review WHERE id = :i", i=out.review) == [
        ("open",)
    ]


def test_resolving_cannot_move_a_household_out_of_scope(commander, county, session) -> None:
    mine, out = county.towns[IN], county.towns[OUT]
    url = f"/api/geocode/review/{mine.review}/resolve"
    elsewhere = commander.post(url, json={"building_id": out.building})
    assert elsewhere.status_code == 404 and "no building" in detail(elsewhere)
    point = commander.post(
        url, json={"point": {"type": "Point", "coordinates": [X0 + 0.03, 0.005]}}
    )
    assert point.status_code == 422 and "outside your areas" in detail(point)
    done = commander.post(url, json={"building_id": mine.building})
    assert done.status_code == 200, done.text
    household = mine.households[-1]
    assert sql(session, "SELECT microgrid_code FROM household WHERE id = :h", h=household) == [
        (IN_MG,)
    ]


# -- lists filtered to the scope -------------------------------------------------------------
def test_lists_hold_only_the_scope(commander, county, session) -> None:
    mine, out = county.towns[IN], county.towns[OUT]
    areas = commander.get("/api/areas").json()
    assert {f["id"] for f in areas["features"]} == {IN, IN_C, IN_G, IN_MG}
    assert areas["numberMatched"] == 4
    townships = commander.get("/api/areas", params={"level": "township"}).json()
    assert [f["id"] for f in townships["features"]] == [IN]

    residents = commander.get("/api/residents", params={"limit": 1000}).json()
    expected = sql(
        session,
        "SELECT r.id FROM resident r JOIN household h ON h.id = r.household_id"
        " WHERE coalesce(h.microgrid_code, h.area_code, h.county_code) IN (:a, :b, :c, :d)",
        a=IN,
        b=IN_C,
        c=IN_G,
        d=IN_MG,
    )
    assert residents["numberMatched"] == len(expected) == len(mine.residents) == 8
    assert {r["id"] for r in residents["items"]} == {r for (r,) in expected}
    assert not {r["id"] for r in residents["items"]} & set(out.residents)
    for item in residents["items"]:
        assert ID_MASK.match(item["id_number"])

    households = commander.get(f"/api/areas/{IN}/households").json()
    assert {f["id"] for f in households["features"]} == {str(h) for h in mine.households}
    buildings = commander.get("/api/buildings").json()
    assert [f["properties"]["id"] for f in buildings["features"]] == [mine.building]
    review = commander.get("/api/geocode/review").json()
    assert [i["id"] for i in review["items"]] == [mine.review]

    figure = commander.get(f"/api/areas/{IN}").json()["properties"]
    assert (figure["households"], figure["residents"]) == (3, 6)  # located ones only


def test_an_admin_sees_both_townships(client, county) -> None:
    towns = client.get("/api/areas", params={"level": "township", "within": COUNTY}).json()
    assert [f["id"] for f in towns["features"]] == [IN, OUT]
    residents = client.get("/api/residents", params={"within": COUNTY, "limit": 1000}).json()
    assert residents["numberMatched"] == 8 + 6
    review = client.get("/api/geocode/review", params={"within": COUNTY}).json()
    assert {i["id"] for i in review["items"]} == {t.review for t in county.towns.values()}


def test_layers_hex_and_tiles_are_the_scopes(commander, client, county) -> None:
    layer = commander.get("/api/layers/cases").json()
    assert layer["within"] == IN and {f["id"] for f in layer["features"]} == {IN_C}
    assert layer["totals"]["households"] == 3
    whole = client.get("/api/layers/cases", params={"within": COUNTY, "level": "microgrid"}).json()
    assert {f["id"] for f in whole["features"]} == {IN_MG, OUT_MG}

    hexes = commander.get("/api/hex/cases", params={"res": 9}).json()
    assert hexes["within"] == IN
    assert sum(f["properties"]["households"] or 0 for f in hexes["features"]) <= 3

    z = 12
    x = int((X0 + 0.02 + 180.0) / 360.0 * 2**z)
    y = int((1.0 - math.asinh(math.tan(math.radians(0.005))) / math.pi) / 2.0 * 2**z)
    url = f"/api/tiles/cases/{z}/{x}/{y}.mvt"
    params = {"level": "microgrid"}
    mine = commander.get(url, params=params)
    everything = client.get(url, params=params)
    assert mine.status_code == everything.status_code == 200
    # The cache key holds the resolved within: one scope's tile is never another's.
    assert mine.headers["etag"] != everything.headers["etag"]

    def codes(response) -> set[str]:
        body = response.content
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        layers = mapbox_vector_tile.decode(body)
        return {f["properties"]["code"] for f in layers.get("cases", {}).get("features", [])}

    assert codes(mine) == {IN_MG}
    assert codes(everything) == {IN_MG, OUT_MG}
    again = commander.get(url, params=params, headers={"If-None-Match": everything.headers["etag"]})
    assert again.status_code == 200 and codes(again) == {IN_MG}


def test_ogc_collections_hold_only_the_scope(commander, client, county) -> None:
    for level, mine in (("township", IN), ("microgrid", IN_MG)):
        body = commander.get(f"/ogc/collections/{level}/items").json()
        assert [f["id"] for f in body["features"]] == [mine] and body["numberMatched"] == 1
    assert commander.get("/ogc/collections/county/items").json()["numberMatched"] == 0
    points = commander.get("/ogc/collections/checkpoints/items").json()
    assert [f["id"] for f in points["features"]] == [county.towns[IN].checkpoint]
    # Extents are the scope's: the township box is IN's (the west half).
    collections = {c["id"]: c for c in commander.get("/ogc/collections").json()["collections"]}
    (box,) = collections["township"]["extent"]["spatial"]["bbox"]
    assert box == pytest.approx([X0, 0.0, X0 + 0.02, 0.01], abs=2e-6)
    assert "spatial" not in collections["county"].get("extent", {})
    (cbox,) = collections["checkpoints"]["extent"]["spatial"]["bbox"]
    assert cbox == pytest.approx([X0 + 0.01, 0.005, X0 + 0.01, 0.005], abs=2e-6)
    admin = client.get("/ogc/collections/township/items?limit=1000").json()
    assert {IN, OUT} <= {f["id"] for f in admin["features"]}


def test_geocoding_answers_inside_the_scope_only(commander, client, county) -> None:
    def lookup(viewer, town: str, **params):
        response = viewer.get(
            "/api/geocode", params={"address": "测试县" + "".join(ADDRESSES[town]), **params}
        )
        assert response.status_code == 200, response.text
        return response.json()

    mine = lookup(commander, IN)
    assert (mine["status"], mine["building_id"]) == ("matched", county.towns[IN].building)
    theirs = lookup(commander, OUT)
    assert (theirs["status"], theirs["building_id"], theirs["area_code"]) == ("review", None, None)
    assert county.towns[OUT].building not in [c["building_id"] for c in theirs["candidates"]]
    assert lookup(client, OUT, county=COUNTY)["building_id"] == county.towns[OUT].building
    assert lookup(commander, IN, county=COUNTY)["county"] == COUNTY  # their county: may be named
    same_404(commander, f"/api/geocode?address=x&county={OTHER_COUNTY}",
             "/api/geocode?address=x&county=990398", out_key=OTHER_COUNTY, missing_key="990398")  # fmt: skip
    assert client.get(f"/api/geocode?address=x&county={OTHER_COUNTY}").status_code == 200


# -- roles -----------------------------------------------------------------------------------
PERSONAL_GETS = (
    "/api/residents", "/api/areas/{town}/households", "/api/residents/{resident}",
    "/api/geocode/review",
)  # fmt: skip


def test_the_wall_viewer_gets_aggregates_only(wall, login, county) -> None:
    resident = county.towns[IN].residents[0]
    no_personal = login("cmd_plain", "commander", areas=[IN], personal=False)
    for viewer in (wall, no_personal):
        for path in PERSONAL_GETS:
            response = viewer.get(path.format(town=IN, resident=resident))
            assert response.status_code == 403, (path, response.text)
            assert "may not read personal" in detail(response)
        reveal = viewer.post(f"/api/residents/{resident}/reveal", json={"reason": "核实身份"})
        assert reveal.status_code == 403
        for path in ("/api/areas", f"/api/areas/{IN}", "/api/layers/cases", "/api/hex/cases",
                     "/ogc/collections/township/items", "/api/buildings"):  # fmt: skip
            assert viewer.get(path).status_code == 200, path
    # Hexagon suppression stays at k ≥ 5 for them.
    low = wall.get("/api/hex/cases", params={"k": 1})
    assert low.status_code == 403 and "k below 5" in detail(low)


def test_imports_need_their_capability_and_county(commander, wall, login, county) -> None:
    boundaries = commander.post(
        "/api/imports/boundaries",
        files=[("files", ("a.geojson", b"{}", "application/geo+json"))],
        data={"level": "township"},
    )
    assert boundaries.status_code == 403
    register = {"file": ("r.csv", "姓名,身份证号\n".encode(), "text/csv")}
    # A township's commander: the county is not inside their areas → as a missing area.
    outside = commander.post("/api/imports/residents", files=register, data={"county": COUNTY})
    missing = commander.post("/api/imports/residents", files=register, data={"county": MISSING})
    assert (outside.status_code, missing.status_code) == (404, 404)
    assert detail(outside).replace(COUNTY, "?") == detail(missing).replace(MISSING, "?")
    assert wall.post("/api/imports/residents", files=register).status_code == 403

    # Rejected rows: the county's commander (and an admin) only.
    url = f"/api/imports/{county.batch}/rejected.csv"
    county_cmd = login("cmd_county", "commander", areas=[COUNTY])
    assert county_cmd.get(url).status_code == 200
    top = county.batch + 1000
    same_404(commander, url, f"/api/imports/{top}/rejected.csv", out_key=str(county.batch),
             missing_key=str(top))  # fmt: skip
    assert wall.get(url).status_code == 403


# -- reveal ------------------------------------------------------------------------------------
def audit_rows(session, action: str = "reveal"):
    return sql(
        session,
        "SELECT user_name, role, object_type, object_id, area_code, reason FROM audit_log"
        " WHERE action = :a ORDER BY id",
        a=action,
    )


def test_reveal_gives_full_numbers_to_allowed_roles_and_is_audited(
    login, commander, county, session
) -> None:
    worker = login("worker_in", "grid_worker", areas=[IN_MG])
    resident = county.towns[IN].residents[0]
    id_number, phone = county.identifiers[resident]
    # Everything else stays masked.
    for path in (f"/api/residents/{resident}", "/api/residents?limit=100"):
        raw = worker.get(path).text
        assert id_number not in raw and phone not in raw
    before = len(audit_rows(session))
    response = worker.post(f"/api/residents/{resident}/reveal", json={"reason": "核实隔离人员身份"})
    assert response.status_code == 200, response.text
    assert response.json() == {"resident_id": resident, "id_number": id_number, "phone": phone}
    rows = audit_rows(session)
    assert len(rows) == before + 1
    assert rows[-1] == ("worker_in", "grid_worker", "residents", str(resident), IN_MG,
                        "核实隔离人员身份")  # fmt: skip
    # A commander whose account allows personal data may reveal too.
    assert (
        commander.post(f"/api/residents/{resident}/reveal", json={"reason": "流行病学调查"}).json()[
            "phone"
        ]
        == phone
    )

    # Outside the scope: as missing, and nothing audited.
    outside = county.towns[OUT].residents[0]
    count = len(audit_rows(session))
    a = worker.post(f"/api/residents/{outside}/reveal", json={"reason": "核实身份"})
    top = max(county.identifiers) + 1000
    b = worker.post(f"/api/residents/{top}/reveal", json={"reason": "核实身份"})
    assert (a.status_code, b.status_code) == (404, 404)
    assert detail(a).replace(str(outside), "?") == detail(b).replace(str(top), "?")
    assert len(audit_rows(session)) == count


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "reason"),
        ({"reason": "短"}, "reason"),
        ({"reason": "    "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"reason": "核实身份", "user_id": 1}, "user_id"),
        ({"reason": "核实身份", "role": "admin"}, "role"),
    ],
)
def test_reveal_bodies_are_checked(login, county, session, body, says) -> None:
    worker = login("worker_b", "grid_worker", areas=[IN_MG])
    resident = county.towns[IN].residents[0]
    response = worker.post(f"/api/residents/{resident}/reveal", json=body)
    assert response.status_code == 422 and says in detail(response)
    assert audit_rows(session) == []


def test_mass_assignment_on_resolve_is_refused(commander, county) -> None:
    url = f"/api/geocode/review/{county.towns[IN].review}/resolve"
    body = {"building_id": county.towns[IN].building, "household_id": 1}
    response = commander.post(url, json=body)
    assert response.status_code == 422 and "household_id" in detail(response)


# -- limits ------------------------------------------------------------------------------------
def test_box_areas_are_km2_on_the_sphere() -> None:
    # 1° × 1° at the equator ≈ 111.2 km × 110.6 km; at 60° N a degree of longitude halves.
    assert box_area_km2(0, 0, 1, 1) == pytest.approx(12_364, rel=0.005)
    assert box_area_km2(0, 59.5, 1, 60.5) == pytest.approx(12_364 / 2, rel=0.01)


def test_boxes_above_the_cap_are_refused(commander, client, county) -> None:
    cap = ApiSettings().max_bbox_km2
    huge = "100,20,110,30"  # about 1.1 million km²
    for viewer in (commander, client):
        for path in ("/api/areas", "/api/buildings", "/ogc/collections/township/items"):
            response = viewer.get(path, params={"bbox": huge})
            assert response.status_code == 422, (path, response.text)
            assert f"cap of {cap:,.0f} km²" in detail(response)
    small = commander.get("/api/areas", params={"bbox": f"{X0},0,{X0 + 0.01},0.01"})
    assert small.status_code == 200 and small.json()["numberMatched"] == 4


def test_pages_above_the_cap_are_refused(commander, county) -> None:
    cap = ApiSettings().page_limit_max
    for path in ("/api/areas", "/api/residents", "/api/buildings", "/api/geocode/review",
                 f"/api/areas/{IN}/households"):  # fmt: skip
        response = commander.get(path, params={"limit": cap + 1})
        assert response.status_code == 422 and f"page size cap of {cap}" in detail(response)
    # OGC API – Features lets a server lower the limit instead.
    ogc = commander.get("/ogc/collections/township/items", params={"limit": cap * 10})
    assert ogc.status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/api/residents/{2**63}", 422), (f"/api/imports/{2**63}/rejected.csv", 422),
        (f"/api/imports/{2**70}/rejected.xlsx", 422), ("/api/areas/a%00b", 422),
        ("/api/areas?within=a%00b", 422), ("/api/layers/cases?within=a%00b", 422),
        ("/api/hex/cases?within=a%00b", 422), ("/api/residents?tag=a%00b", 422),
        ("/api/geocode?address=x&county=a%00b", 422), ("/api/geocode?address=a%00b", 422),
        ("/ogc/collections/township/items/a%00b", 422), ("/ogc/collections/a%00b/items", 422),
        ("/api/residents/0", 422),
    ],
)  # fmt: skip
def test_values_postgresql_cannot_hold_are_4xx_not_500(client, commander, path, status) -> None:
    for viewer in (client, commander):
        response = viewer.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
