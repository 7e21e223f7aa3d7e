"""The micro-grid editor's API on a hand-built grid: redraw, create, split,
merge, delete and replace, each kept as a version with its author and reason,
stale edits refused (412) and unconditional ones too (428), households
reassigned, figures following, and the boundaries of earlier days kept.

The grid is x ∈ [0, 0.02], y ∈ [0, 0.01] (degrees, near 113°E 23°N); A is its
west half, B its east half; 60 households on a lattice strictly inside."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, box, mapping, shape
from sqlalchemy import text

from db.assign import assign_households
from geo.localtime import local_today

X0, Y0 = 113.0, 23.0
W, H = 0.02, 0.01
COUNTY = "990201"
TOWNSHIP, COMMUNITY, GRID = "990201001", "990201001001", "990201001001001"
GRID2 = "990201001001002"
MG_A, MG_B = GRID + "01", GRID + "02"
FIRST_DAY = dt.date(2020, 1, 1)


def rect(x0: float, y0: float, x1: float, y1: float):
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def poly_json(geom) -> dict:
    return mapping(geom)


@pytest.fixture
def grid_world(session):
    """The grid, its two micro-grids and 60 households (10 × 6 lattice)."""
    return build_grid(session.connection())


def build_grid(conn) -> list[tuple[float, float]]:
    whole, grid = rect(0, 0, W + 0.005, H), rect(0, 0, W, H)
    for code, level, parent, geom in (
        (COUNTY, "county", None, whole), (TOWNSHIP, "township", COUNTY, whole),
        (COMMUNITY, "community", TOWNSHIP, whole), (GRID, "grid", COMMUNITY, grid),
        (GRID2, "grid", COMMUNITY, rect(W, 0, W + 0.005, H)),
        (MG_A, "microgrid", GRID, rect(0, 0, W / 2, H)),
        (MG_B, "microgrid", GRID, rect(W / 2, 0, W, H)),
    ):  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
                " VALUES (:c, :n, :l, :p, :county, :d, ST_Multi(ST_GeomFromText(:wkt, 4326)))"
            ),
            {"c": code, "n": f"{level} {code}", "l": level, "p": parent, "county": COUNTY,
             "d": FIRST_DAY, "wkt": geom.wkt},
        )  # fmt: skip
    points = [
        (X0 + (i + 0.5) * W / 10 + 0.0001 * (j % 2), Y0 + (j + 0.5) * H / 6)
        for i in range(10) for j in range(6)
    ]  # fmt: skip
    for x, y in points:
        conn.execute(
            text("INSERT INTO household (county_code, geom) VALUES (:c, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
            {"c": COUNTY, "x": x, "y": y},
        )
    assign_households(conn, county_code=COUNTY)
    return points


@pytest.fixture
def leader(login, grid_world):
    return login("grid_leader_1", "grid_leader", areas=[GRID])


def layout(client) -> dict:
    response = client.get(f"/api/areas/{GRID}/microgrids")
    assert response.status_code == 200, response.text
    return response.json()


def etag(client, code: str) -> str:
    return next(f["properties"]["etag"] for f in layout(client)["features"] if f["id"] == code)


def recount(session) -> dict[str, int]:
    """Households per micro-grid in force, counted in Python from the points
    and polygons (the lowest code where a point is on a shared edge)."""
    polygons = {
        code: shapely.from_wkb(bytes(wkb))
        for code, wkb in session.execute(
            text("SELECT code, ST_AsBinary(geom) FROM area WHERE level = 'microgrid'"
                 " AND parent_code = :g AND valid_to IS NULL ORDER BY code"), {"g": GRID}
        ).all()
    }  # fmt: skip
    counts = dict.fromkeys(polygons, 0)
    for (wkb,) in session.execute(text("SELECT ST_AsBinary(geom) FROM household WHERE county_code = :c"), {"c": COUNTY}):
        point = shapely.from_wkb(bytes(wkb))
        covering = [code for code, poly in polygons.items() if poly.covers(point)]
        if covering:
            counts[min(covering)] += 1
    return counts


def stored_assignment(session) -> dict[str | None, int]:
    rows = session.execute(
        text("SELECT microgrid_code, count(*) FROM household WHERE county_code = :c GROUP BY 1"),
        {"c": COUNTY},
    ).all()
    return {code: int(n) for code, n in rows}


def test_layout_lists_etags_and_households(leader) -> None:
    body = layout(leader)
    assert [f["id"] for f in body["features"]] == [MG_A, MG_B]
    assert [f["properties"]["households"] for f in body["features"]] == [30, 30]
    assert all(f["properties"]["band"] == "within" for f in body["features"])
    assert body["features"][0]["properties"]["etag"] == f'"{MG_A}.v1"'
    assert body["unassigned"] == []


def test_redraw_moves_households_keeps_a_version_and_the_past(leader, session) -> None:
    # Move the shared edge east by a fifth of the grid: A grows, B shrinks.
    tag_a, tag_b = etag(leader, MG_A), etag(leader, MG_B)
    shrink_b = leader.put(
        f"/api/areas/{MG_B}/geometry", headers={"If-Match": tag_b},
        json={"geometry": poly_json(rect(0.014, 0, W, H)), "reason": "楼栋调整"},
    )  # fmt: skip
    assert shrink_b.status_code == 200, shrink_b.text
    assert shrink_b.json()["unassigned_in_grid"] == 12  # two columns of 6 left in the gap
    assert shrink_b.json()["gap_m2"] > 0
    assert len(layout(leader)["unassigned"]) == 12
    grow_a = leader.put(
        f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag_a},
        json={"geometry": poly_json(rect(0, 0, 0.014, H)), "reason": "楼栋调整"},
    )  # fmt: skip
    assert grow_a.status_code == 200, grow_a.text
    body = grow_a.json()
    assert body["households"] == {MG_A: 42, MG_B: 18} == recount(session)
    assert stored_assignment(session) == {MG_A: 42, MG_B: 18}
    assert body["unassigned_in_grid"] == 0 and body["gap_m2"] == 0
    assert grow_a.headers["ETag"] == f'"{MG_A}.v2"'

    history = leader.get(f"/api/areas/{MG_A}/history").json()
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][0]["valid_to"] == history["versions"][1]["valid_from"] == local_today().isoformat()
    assert [(e["action"], e["author"], e["reason"]) for e in history["edits"]] == [
        ("redraw", "grid_leader_1", "楼栋调整")
    ]
    # The layers of a day before the edit keep the boundaries and figures of then.
    before = leader.get("/api/layers/cases", params={"within": GRID, "level": "microgrid",
                                                     "as_of": "2020-06-01"}).json()  # fmt: skip
    assert {f["properties"]["code"]: f["properties"]["households"] for f in before["features"]} == {MG_A: 30, MG_B: 30}
    now = leader.get("/api/layers/cases", params={"within": GRID, "level": "microgrid"}).json()
    assert {f["properties"]["code"]: f["properties"]["households"] for f in now["features"]} == {MG_A: 42, MG_B: 18}


def test_stale_and_unconditional_edits_are_refused(leader, session) -> None:
    tag = etag(leader, MG_A)
    body = {"geometry": poly_json(rect(0, 0, 0.009, H)), "reason": "r"}
    missing = leader.put(f"/api/areas/{MG_A}/geometry", json=body)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"
    assert "If-Match" in missing.json()["detail"]
    first = leader.put(f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag}, json=body)
    assert first.status_code == 200
    second = leader.put(f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag},
                        json={"geometry": poly_json(rect(0, 0, 0.008, H)), "reason": "r"})  # fmt: skip
    assert second.status_code == 412
    assert "changed since you loaded it" in second.json()["detail"]
    # The loser's shape was not saved.
    stored = shapely.from_wkb(bytes(session.execute(
        text("SELECT ST_AsBinary(geom) FROM area WHERE code = :c AND valid_to IS NULL"), {"c": MG_A}
    ).scalar_one()))  # fmt: skip
    assert stored.bounds[2] == pytest.approx(X0 + 0.009)


def test_bad_shapes_are_refused_with_the_reason(leader) -> None:
    tag = etag(leader, MG_A)
    put = lambda geom: leader.put(  # noqa: E731
        f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag}, json={"geometry": geom, "reason": "r"}
    )
    over = put(poly_json(rect(0, 0, 0.015, H)))
    assert over.status_code == 422 and f"overlap micro-grid {MG_B}" in over.json()["detail"]
    outside = put(poly_json(rect(-0.005, 0, 0.01, H)))
    assert outside.status_code == 422 and "outside its grid" in outside.json()["detail"]
    bowtie = {"type": "Polygon", "coordinates": [[[X0, Y0], [X0 + 0.01, Y0 + 0.01], [X0 + 0.01, Y0], [X0, Y0 + 0.01], [X0, Y0]]]}
    assert "not a valid polygon" in put(bowtie).json()["detail"]
    assert "must be a GeoJSON" in put({"type": "Point", "coordinates": [X0, Y0]}).json()["detail"]
    no_reason = leader.put(f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag},
                           json={"geometry": poly_json(rect(0, 0, 0.009, H)), "reason": "  "})  # fmt: skip
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    # A vertex 0.5 m off the shared edge is snapped onto it: no sliver, no overlap.
    nudge = 0.5 / 111_320
    snapped = put(poly_json(rect(0, 0, W / 2 + nudge, H)))
    assert snapped.status_code == 200, snapped.text
    assert snapped.json()["gap_m2"] == 0


def test_check_reports_households_band_overlaps(leader) -> None:
    draft = leader.post(f"/api/areas/{GRID}/check-microgrid",
                        json={"geometry": poly_json(rect(0.006, 0, 0.014, H))})  # fmt: skip
    assert draft.status_code == 200
    body = draft.json()
    assert not body["ok"] and set(body["overlaps_m2"]) == {MG_A, MG_B}
    assert body["households"] == 0  # nothing would be left once the siblings are cut out
    redraw = leader.post(f"/api/areas/{GRID}/check-microgrid",
                         json={"geometry": poly_json(rect(0, 0, 0.006, H)), "code": MG_A}).json()  # fmt: skip
    assert redraw["ok"] and redraw["households"] == 18 and redraw["band"] == "below"


def test_split_merge_delete_create(leader, session) -> None:
    line = LineString([(X0 + 0.005, Y0 - 0.001), (X0 + 0.005, Y0 + H + 0.001)])
    split = leader.post(f"/api/areas/{MG_A}/split", headers={"If-Match": etag(leader, MG_A)},
                        json={"line": mapping(line), "reason": "太大"})  # fmt: skip
    assert split.status_code == 200, split.text
    new_code = GRID + "03"
    assert split.json()["households"] == {MG_A: 15, MG_B: 30, new_code: 15} == recount(session)

    no_line = leader.post(f"/api/areas/{MG_B}/split", headers={"If-Match": etag(leader, MG_B)},
                          json={"line": mapping(LineString([(X0, Y0 - 1), (X0 + 0.001, Y0 - 1)])), "reason": "r"})  # fmt: skip
    assert no_line.status_code == 422 and "does not cut" in no_line.json()["detail"]

    far_apart = leader.post("/api/areas/merge", headers={"If-Match": f"{etag(leader, MG_A)}, {etag(leader, MG_B)}"},
                            json={"codes": [MG_A, MG_B], "reason": "r"})  # fmt: skip
    assert far_apart.status_code == 422 and "do not touch" in far_apart.json()["detail"]
    merged = leader.post("/api/areas/merge", headers={"If-Match": f"{etag(leader, MG_B)}, {etag(leader, new_code)}"},
                         json={"codes": [new_code, MG_B], "reason": "合并"})  # fmt: skip
    assert merged.status_code == 200, merged.text
    assert merged.json()["ended"] == [new_code]
    assert merged.json()["households"] == {MG_A: 15, MG_B: 45} == recount(session)

    gone = leader.delete(f"/api/areas/{MG_A}", params={"reason": "拆除"}, headers={"If-Match": etag(leader, MG_A)})
    assert gone.status_code == 200, gone.text
    # The three households on A's east edge are B's now (B covers them too).
    assert gone.json()["unassigned_in_grid"] == 12
    assert stored_assignment(session) == {MG_B: 48, None: 12}
    drawn = leader.post(f"/api/areas/{GRID}/microgrids",
                        json={"geometry": poly_json(rect(0, 0, 0.005, H)), "reason": "新建", "name": "一号"})  # fmt: skip
    assert drawn.status_code == 201, drawn.text
    created = next(iter(drawn.json()["saved"]))
    assert created == GRID + "04"  # codes are never reused
    assert drawn.json()["households"][created] == 12 and drawn.json()["unassigned_in_grid"] == 0
    assert drawn.json()["households"] == recount(session)


@pytest.fixture
def committed_grid(pg):
    """The same grid in a database of its own whose writes commit (two real
    sessions must race), with two grid leaders; dropped afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from api.app import create_app
    from api.deps import get_engine
    from db.accounts import replace_account
    from db.engine import engine_for
    from tests.api.conftest import _HASH

    url = pg.database("editor_race")
    owner = create_engine(url)
    with Session(owner) as setup:
        setup.execute(text("TRUNCATE area, household, area_edit, app_user CASCADE"))
        build_grid(setup.connection())
        for name in ("racer_1", "racer_2"):
            replace_account(setup, name=name, role="grid_leader", areas=[GRID],
                            password_hash=_HASH, today=local_today())  # fmt: skip
        setup.commit()
    app = create_app()
    engine = engine_for(url)
    app.dependency_overrides[get_engine] = lambda: engine
    yield app
    engine.dispose()
    owner.dispose()


def test_two_editors_one_wins(committed_grid) -> None:
    from fastapi.testclient import TestClient

    from tests.api.conftest import bearer

    clients = []
    for name in ("racer_1", "racer_2"):
        client = TestClient(committed_grid)
        client.headers.update(bearer(client, name))
        clients.append(client)
    tag = etag(clients[0], MG_A)
    answers: list[int] = []
    barrier = threading.Barrier(2)

    def save(client, x1):
        barrier.wait()
        answers.append(client.put(f"/api/areas/{MG_A}/geometry", headers={"If-Match": tag},
                                  json={"geometry": poly_json(rect(0, 0, x1, H)), "reason": "r"}).status_code)  # fmt: skip

    threads = [threading.Thread(target=save, args=(c, x)) for c, x in zip(clients, (0.008, 0.007), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 412]
    assert etag(clients[1], MG_A) == f'"{MG_A}.v2"'  # one new version, not two
    for client in clients:
        client.close()


def test_others_may_not_edit(login, grid_world) -> None:
    worker = login("gw", "grid_worker", areas=[MG_A])
    refused = worker.put(f"/api/areas/{MG_A}/geometry", headers={"If-Match": f'"{MG_A}.v1"'},
                         json={"geometry": poly_json(rect(0, 0, 0.009, H)), "reason": "r"})  # fmt: skip
    assert refused.status_code == 403
    elsewhere = login("gl_other", "grid_leader", areas=[GRID2])
    hidden = elsewhere.get(f"/api/areas/{GRID}/microgrids")
    assert hidden.status_code == 404


# -- property: random sequences of splits, merges and redraws ---------------------------------
_EXAMPLES = itertools.count()
operation = st.one_of(
    st.tuples(st.just("split"), st.floats(0.1, 0.9), st.booleans()),
    st.tuples(st.just("merge"), st.integers(0, 10), st.integers(0, 10)),
    st.tuples(st.just("redraw"), st.integers(0, 10), st.floats(0.02, 0.3)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(operation, min_size=3, max_size=7))
def test_random_edits_keep_the_partition(login, grid_world, session, steps) -> None:
    # An account per example: the examples share one minute, and one account's
    # requests would meet the per-account rate limit (600 a minute) on a fast machine.
    savepoint = session.begin_nested()
    leader = login(f"prop_leader_{next(_EXAMPLES)}", "grid_leader", areas=[GRID])
    try:
        for step in steps:
            features = layout(leader)["features"]
            if step[0] == "split":
                target = max(features, key=lambda f: f["properties"]["households"])
                minx, miny, maxx, maxy = shape(target["geometry"]).bounds
                if step[2]:
                    x = minx + step[1] * (maxx - minx)
                    line = LineString([(x, miny - 0.001), (x, maxy + 0.001)])
                else:
                    y = miny + step[1] * (maxy - miny)
                    line = LineString([(minx - 0.001, y), (maxx + 0.001, y)])
                r = leader.post(f"/api/areas/{target['id']}/split", headers={"If-Match": target["properties"]["etag"]},
                                json={"line": mapping(line), "reason": "p"})  # fmt: skip
            elif step[0] == "merge" and len(features) > 1:
                a = features[step[1] % len(features)]
                b = features[step[2] % len(features)]
                r = leader.post("/api/areas/merge", headers={"If-Match": f"{a['properties']['etag']},{b['properties']['etag']}"},
                                json={"codes": [a["id"], b["id"]], "reason": "p"})  # fmt: skip
            else:
                target = features[step[1] % len(features)]
                shrunk = shape(target["geometry"]).buffer(-step[2] * 0.002, join_style="mitre")
                r = leader.put(f"/api/areas/{target['id']}/geometry", headers={"If-Match": target["properties"]["etag"]},
                               json={"geometry": mapping(shrunk) if not shrunk.is_empty else target["geometry"], "reason": "p"})  # fmt: skip
            assert r.status_code in (200, 422), r.text  # refused with a reason, never a 500
            assert_partition(session)
    finally:
        savepoint.rollback()


def assert_partition(session) -> None:
    """No two micro-grids overlap, each household is in the micro-grid that
    covers it (exactly one), and those in no micro-grid are unassigned."""
    polygons = {
        code: shapely.from_wkb(bytes(wkb))
        for code, wkb in session.execute(
            text("SELECT code, ST_AsBinary(geom) FROM area WHERE level = 'microgrid'"
                 " AND parent_code = :g AND valid_to IS NULL"), {"g": GRID}
        ).all()
    }  # fmt: skip
    codes = sorted(polygons)
    for i, a in enumerate(codes):
        for b in codes[i + 1:]:
            assert polygons[a].intersection(polygons[b]).area < 1e-12, (a, b)
    rows = session.execute(
        text("SELECT ST_X(geom), ST_Y(geom), microgrid_code FROM household WHERE county_code = :c"),
        {"c": COUNTY},
    ).all()
    for x, y, stored in rows:
        covering = sorted(code for code, poly in polygons.items() if poly.covers(Point(x, y)))
        assert stored == (covering[0] if covering else None), (x, y, stored, covering)
        assert len(covering) <= 1 or Point(x, y).distance(polygons[covering[0]].boundary) < 1e-9
