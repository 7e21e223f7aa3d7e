"""Household → micro-grid assignment on real PostGIS (db/assign.py), checked
against an independent recount by ST_Covers: ties to the lowest code,
unlocated and outside households unassigned, boundary changes move exactly
the households they should and write no others, and the answer does not
depend on row order. Every test runs on both ways of computing it (from the
micro-grids and from the points)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import shapely
from shapely.geometry import Polygon, box
from sqlalchemy import Connection, text

from db import assign
from db.assign import AssignmentCounts, assign_households, assignment_counts, building_microgrids

COUNTY = "990001"
OTHER_COUNTY = "990002"
X0, Y0 = 113.0, 22.0  # south-west corner of the test micro-grids
CELL = 0.01  # degrees; binary fractions of it are not needed: ties use exact vertices
FIRST_DAY = dt.date(2020, 1, 1)
CHANGE_DAY = dt.date(2021, 6, 1)


@pytest.fixture(params=["bulk", "pointwise"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one way of computing the assignment (normally chosen by size)."""
    from_points = request.param == "pointwise"
    monkeypatch.setattr(assign, "_from_points", lambda connection, **_: from_points)
    return str(request.param)


@pytest.fixture
def conn(session) -> Connection:
    connection: Connection = session.connection()
    return connection


def add_microgrid(
    conn: Connection, code: str, geom: Polygon, *, valid_from: dt.date = FIRST_DAY
) -> None:
    conn.execute(
        text(
            "INSERT INTO area (code, name, level, county_code, valid_from, geom)"
            " VALUES (:code, :name, 'microgrid', :county, :day, ST_Multi(ST_GeomFromText(:wkt, 4326)))"
        ),
        {
            "code": code,
            "name": f"微网格 {code}",
            "county": COUNTY,
            "day": valid_from,
            "wkt": geom.wkt,
        },
    )


def change_microgrid(conn: Connection, code: str, geom: Polygon) -> None:
    """A new version from CHANGE_DAY (the old one closed), as a boundary import does."""
    conn.execute(
        text("UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL"),
        {"code": code, "day": CHANGE_DAY},
    )
    add_microgrid(conn, code, geom, valid_from=CHANGE_DAY)


def close_microgrid(conn: Connection, code: str) -> None:
    conn.execute(
        text("UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL"),
        {"code": code, "day": CHANGE_DAY},
    )


def add_household(
    conn: Connection, x: float | None, y: float | None, *, county: str = COUNTY
) -> int:
    geom = "NULL" if x is None else "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
    return int(
        conn.execute(
            text(
                f"INSERT INTO household (county_code, geom) VALUES (:county, {geom}) RETURNING id"
            ),
            {"county": county, "x": x, "y": y},
        ).scalar_one()
    )


def cell(col: int, row: int) -> Polygon:
    return box(X0 + col * CELL, Y0 + row * CELL, X0 + (col + 1) * CELL, Y0 + (row + 1) * CELL)


def two_by_two(conn: Connection) -> None:
    """M01 south-west, M02 south-east, M03 north-west, M04 north-east."""
    for code, (col, row) in {"M01": (0, 0), "M02": (1, 0), "M03": (0, 1), "M04": (1, 1)}.items():
        add_microgrid(conn, code, cell(col, row))


def stored(conn: Connection, *, county: str = COUNTY) -> dict[int, str | None]:
    rows = conn.execute(
        text("SELECT id, microgrid_code FROM household WHERE county_code = :county"),
        {"county": county},
    )
    return {int(i): code for i, code in rows}


def recount(conn: Connection, *, county: str = COUNTY) -> dict[int, str | None]:
    """Independently of db.assign: the least code among covering micro-grids in force."""
    rows = conn.execute(
        text(
            "SELECT h.id, (SELECT min(a.code) FROM area a WHERE a.level = 'microgrid'"
            " AND a.valid_to IS NULL AND ST_Covers(a.geom, h.geom)) FROM household h"
            " WHERE h.county_code = :county"
        ),
        {"county": county},
    )
    return {int(i): code for i, code in rows}


def row_versions(conn: Connection) -> dict[int, str]:
    """Each household's ctid: any UPDATE of a row gives it a new one."""
    return {int(i): str(t) for i, t in conn.execute(text("SELECT id, ctid::text FROM household"))}


def random_households(conn: Connection, *, n: int, seed: int) -> list[int]:
    """Points over the 2×2 block and a margin around it (some outside every
    micro-grid), a share placed exactly on edges and vertices."""
    rng = random.Random(seed)
    ids = []
    for _ in range(n):
        if rng.random() < 0.2:  # on the lattice lines: shared edges, vertices, the outline
            x = X0 + CELL * rng.choice([0, 0.5, 1, 1.5, 2])
            y = Y0 + CELL * rng.choice([0, 0.25, 1, 1.75, 2])
        else:
            x = X0 + rng.uniform(-0.2, 2.2) * CELL
            y = Y0 + rng.uniform(-0.2, 2.2) * CELL
        ids.append(add_household(conn, x, y))
    return ids


# -- the rule -----------------------------------------------------------------------------
def test_shared_edge_and_vertex_go_to_the_lowest_code(conn, strategy) -> None:
    two_by_two(conn)
    edge_12 = add_household(conn, X0 + CELL, Y0 + 0.5 * CELL)  # M01 | M02
    edge_24 = add_household(conn, X0 + 1.5 * CELL, Y0 + CELL)  # M02 / M04
    vertex = add_household(conn, X0 + CELL, Y0 + CELL)  # all four
    inside = add_household(conn, X0 + 1.5 * CELL, Y0 + 1.5 * CELL)  # M04 only
    outline = add_household(conn, X0 + 2 * CELL, Y0 + 1.5 * CELL)  # M04's outer edge
    counts = assign_households(conn, county_code=COUNTY)
    assert counts == AssignmentCounts(assigned=5, unassigned=0, changed=5)
    assert stored(conn) == {
        edge_12: "M01",
        edge_24: "M02",
        vertex: "M01",
        inside: "M04",
        outline: "M04",
    }


def test_outside_and_unlocated_households_stay_null_and_are_counted(conn, strategy) -> None:
    two_by_two(conn)
    inside = add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    outside = add_household(conn, X0 - 0.5 * CELL, Y0 + 0.5 * CELL)
    unlocated = add_household(conn, None, None)
    counts = assign_households(conn, county_code=COUNTY)
    assert counts == AssignmentCounts(assigned=1, unassigned=2, changed=1)
    assert stored(conn) == {inside: "M01", outside: None, unlocated: None}
    assert assignment_counts(conn, county_code=COUNTY) == (1, 2)


def test_a_household_that_lost_its_point_or_its_micro_grid_is_cleared(conn, strategy) -> None:
    two_by_two(conn)
    moved_out = add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    unlocated = add_household(conn, X0 + 1.5 * CELL, Y0 + 0.5 * CELL)
    assign_households(conn, county_code=COUNTY)
    conn.execute(
        text("UPDATE household SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4326) WHERE id = :id"),
        {"x": X0 - CELL, "y": Y0, "id": moved_out},
    )
    conn.execute(text("UPDATE household SET geom = NULL WHERE id = :id"), {"id": unlocated})
    counts = assign_households(conn, county_code=COUNTY)
    assert counts == AssignmentCounts(assigned=0, unassigned=2, changed=2)
    assert stored(conn) == {moved_out: None, unlocated: None}


def test_whole_county_matches_an_independent_recount(conn, strategy) -> None:
    two_by_two(conn)
    random_households(conn, n=300, seed=1)
    other = add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL, county=OTHER_COUNTY)
    counts = assign_households(conn, county_code=COUNTY)
    expected = recount(conn)
    assert stored(conn) == expected
    assigned = sum(code is not None for code in expected.values())
    assert counts == AssignmentCounts(
        assigned=assigned, unassigned=len(expected) - assigned, changed=assigned
    )
    assert stored(conn, county=OTHER_COUNTY) == {other: None}  # another county is left alone


def test_a_second_run_writes_nothing(conn, strategy) -> None:
    two_by_two(conn)
    random_households(conn, n=100, seed=2)
    first = assign_households(conn, county_code=COUNTY)
    before = row_versions(conn)
    again = assign_households(conn, county_code=COUNTY)
    assert again == AssignmentCounts(
        assigned=first.assigned, unassigned=first.unassigned, changed=0
    )
    assert row_versions(conn) == before


def test_household_ids_limit_the_households_considered(conn, strategy) -> None:
    two_by_two(conn)
    chosen = add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    left = add_household(conn, X0 + 1.5 * CELL, Y0 + 1.5 * CELL)
    counts = assign_households(conn, county_code=COUNTY, household_ids=[chosen])
    assert stored(conn) == {chosen: "M01", left: None}
    assert counts == AssignmentCounts(assigned=1, unassigned=1, changed=1)


# -- boundary changes -------------------------------------------------------------------
def test_boundary_change_moves_exactly_the_households_it_should(conn, strategy) -> None:
    two_by_two(conn)
    random_households(conn, n=400, seed=3)
    # Households exactly on the old and the new shared edge of M01 and M02.
    for y in (0.25, 0.5, 0.75):
        add_household(conn, X0 + CELL, Y0 + y * CELL)
        add_household(conn, X0 + 1.5 * CELL, Y0 + y * CELL)
    assign_households(conn, county_code=COUNTY)
    before = stored(conn)
    versions = row_versions(conn)
    # M01 takes the western half of M02 (their shared edge moves east by half a
    # cell) and a strip west of the block that no micro-grid covered.
    change_microgrid(conn, "M01", box(X0 - 0.1 * CELL, Y0, X0 + 1.5 * CELL, Y0 + CELL))
    change_microgrid(conn, "M02", box(X0 + 1.5 * CELL, Y0, X0 + 2 * CELL, Y0 + CELL))
    counts = assign_households(conn, county_code=COUNTY, microgrid_codes=["M01", "M02"])
    expected = recount(conn)
    moved = {i for i in expected if expected[i] != before[i]}
    assert moved, "the change must move some households"
    assert stored(conn) == expected
    assert counts.changed == len(moved)
    now = row_versions(conn)
    assert {i for i in now if now[i] != versions[i]} == moved  # no other row was written
    assert any(expected[i] == "M01" and before[i] == "M02" for i in moved)
    assert any(expected[i] == "M01" and before[i] is None for i in moved)  # the new strip


def test_closing_a_micro_grid_clears_or_hands_over_its_households(conn, strategy) -> None:
    two_by_two(conn)
    only_m04 = add_household(conn, X0 + 1.5 * CELL, Y0 + 1.5 * CELL)
    edge_34 = add_household(conn, X0 + CELL, Y0 + 1.5 * CELL)  # M03 | M04: M03 keeps it
    edge_24 = add_household(conn, X0 + 1.5 * CELL, Y0 + CELL)  # M02 / M04: M02 keeps it
    elsewhere = add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    assign_households(conn, county_code=COUNTY)
    close_microgrid(conn, "M03")
    versions = row_versions(conn)
    counts = assign_households(conn, county_code=COUNTY, microgrid_codes=["M03"])
    # M03's own household moves to M04, which now covers the shared edge alone.
    assert stored(conn) == {only_m04: "M04", edge_34: "M04", edge_24: "M02", elsewhere: "M01"}
    assert counts.changed == 1
    now = row_versions(conn)
    assert {i for i in now if now[i] != versions[i]} == {edge_34}
    close_microgrid(conn, "M04")
    counts = assign_households(conn, county_code=COUNTY, microgrid_codes=["M04"])
    assert stored(conn) == {only_m04: None, edge_34: None, edge_24: "M02", elsewhere: "M01"}
    assert counts == AssignmentCounts(assigned=2, unassigned=2, changed=2)


def test_independent_of_row_order(conn, strategy) -> None:
    """The same micro-grids and points, inserted in two different orders,
    give the same assignment point by point."""
    rng = random.Random(4)
    shapes = {f"M{i:02d}": g for i, g in enumerate(_wavy_tiling(), start=1)}
    points = [
        (X0 + rng.uniform(-0.1, 3.1) * CELL, Y0 + rng.uniform(-0.1, 2.1) * CELL) for _ in range(150)
    ]
    points += [
        c for g in shapes.values() for c in list(g.exterior.coords)[:-1]
    ]  # every vertex: ties
    answers = []
    for seed in (5, 6):
        order = random.Random(seed)
        savepoint = conn.begin_nested()
        for code in order.sample(sorted(shapes), k=len(shapes)):
            add_microgrid(conn, code, shapes[code])
        placed = {add_household(conn, x, y): (x, y) for x, y in order.sample(points, k=len(points))}
        assign_households(conn, county_code=COUNTY)
        answers.append({placed[i]: code for i, code in stored(conn).items()})
        assert stored(conn) == recount(conn)
        savepoint.rollback()
    assert answers[0] == answers[1]
    assert sum(code is not None for code in answers[0].values()) > len(points) // 2


def _wavy_tiling() -> list[Polygon]:
    """Six cells (3 × 2) sharing zig-zag edges: not only axis-aligned boxes."""
    xs = [X0 + i * CELL for i in range(4)]
    ys = [Y0 + j * CELL for j in range(3)]

    def vertical(i: int, j: int) -> list[tuple[float, float]]:  # south → north, x = xs[i]
        dx = 0.0 if i in (0, 3) else 0.2 * CELL
        return [(xs[i], ys[j]), (xs[i] + dx, ys[j] + 0.5 * CELL), (xs[i], ys[j + 1])]

    def horizontal(i: int, j: int) -> list[tuple[float, float]]:  # west → east, y = ys[j]
        dy = 0.0 if j in (0, 2) else 0.3 * CELL
        return [(xs[i], ys[j]), (xs[i] + 0.5 * CELL, ys[j] + dy), (xs[i + 1], ys[j])]

    cells = []
    for j in range(2):
        for i in range(3):
            ring = (
                horizontal(i, j)[:-1]
                + vertical(i + 1, j)[:-1]
                + horizontal(i, j + 1)[::-1][:-1]
                + vertical(i, j)[::-1][:-1]
            )
            cells.append(Polygon(ring))
    assert all(c.is_valid for c in cells)
    assert shapely.union_all(cells).area == pytest.approx(sum(c.area for c in cells))
    return cells


# -- buildings and the settings ---------------------------------------------------------
@pytest.mark.parametrize("microgrids", ["few", "many"])
def test_building_microgrids_follow_the_same_rule(conn, microgrids) -> None:
    """Either way, the same codes: from the micro-grids when 4 are in force,
    from the 4 buildings when 14 are."""
    two_by_two(conn)
    if microgrids == "many":  # far away, so that probing from the points is chosen
        for i in range(10):
            add_microgrid(
                conn, f"Z{i:02d}", box(X0 + 1 + i * CELL, Y0, X0 + 1 + (i + 1) * CELL, Y0 + CELL)
            )
    ids = {}
    for key, (x, y) in {
        "edge": (1, 0.5),
        "vertex": (1, 1),
        "inside": (1.5, 1.5),
        "out": (3, 3),
    }.items():
        ids[key] = conn.execute(
            text(
                "INSERT INTO building (county_code, code, address, geom) VALUES (:county, :code,"
                " :address, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"
            ),
            {
                "county": COUNTY,
                "code": f"B-{key}",
                "address": key,
                "x": X0 + x * CELL,
                "y": Y0 + y * CELL,
            },
        ).scalar_one()
    assert building_microgrids(conn, county_code=COUNTY) == {
        ids["edge"]: "M01",
        ids["vertex"]: "M01",
        ids["inside"]: "M04",
    }


def test_the_callers_settings_are_put_back(conn, strategy) -> None:
    two_by_two(conn)
    add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    conn.execute(text("SET LOCAL work_mem = '5MB'"))
    assign_households(conn, county_code=COUNTY)
    assert conn.execute(text("SHOW work_mem")).scalar_one() == "5MB"
    tables = conn.execute(
        text(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'wangge_assignment%' AND relpersistence = 't'"
        )
    ).scalar_one()
    assert tables == 0  # its temporary tables are gone


def test_the_way_is_chosen_by_size(conn) -> None:
    """From the points for fewer households than half the micro-grids, else from the micro-grids."""
    two_by_two(conn)
    assert assign._from_points(conn, county_code=COUNTY, households=1)
    assert not assign._from_points(conn, county_code=COUNTY, households=2)
    add_household(conn, X0 + 0.5 * CELL, Y0 + 0.5 * CELL)
    assert assign._from_points(conn, county_code=COUNTY, households=None)
    random_households(conn, n=10, seed=7)
    assert not assign._from_points(conn, county_code=COUNTY, households=None)
