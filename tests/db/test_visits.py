"""Screening rounds and visits on real PostGIS (db/visits.py): distances against
an independent geodesic, the 100 m rule, active-round resolution by the China
Standard Time date, coverage figures against a recount, idempotent submission
(also under truly concurrent duplicates, on a committed database) and batches
that store their good items and report every bad one."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyproj import Geod
from shapely.geometry import box
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from db.access import Scope
from db.engine import session_scope
from db.visits import (
    Recorder,
    RoundRecord,
    Submission,
    active_round,
    create_round,
    household_round_status,
    list_rounds,
    list_visits,
    parse_visit,
    round_figures,
    submit_visit,
    submit_visit_batch,
)
from geo.crs import wgs84_to_gcj02
from geo.errors import InvalidInput, NotFound, WanggeError

COUNTY = "990301"
FIRST_DAY = dt.date(2020, 1, 1)
NOW = dt.datetime(2020, 3, 1, 12, 0, tzinfo=dt.UTC)  # "now" for every parse in these tests
GEOD = Geod(ellps="WGS84")
EVERYTHING = Scope(everything=True, roots=())
# The account recording the visits of these tests: sees every area.
RECORDER = Recorder(worker="李网格员", scope=EVERYTHING, today=NOW.date())


@dataclass(frozen=True)
class Field:
    """County C (west grid G1 = micro-grids M1, M2; east grid G2 = M3), a
    household in each micro-grid, one not located, and four rounds."""

    h1: int  # in M1 (G1)
    h2: int  # in M2 (G1)
    h3: int  # in M3 (G2)
    unlocated: int
    county_round: RoundRecord  # whole county, 1–14 Feb 2020
    grid_round: RoundRecord  # G1, 5–10 Feb
    grid_round_2: RoundRecord  # G1, 5–10 Feb too, created later: wins the tie
    microgrid_round: RoundRecord  # M3, 20–25 Feb

    def point(self, name: str) -> tuple[float, float]:
        return HOUSEHOLD_POINTS[name]


HOUSEHOLD_POINTS = {"h1": (113.005, 22.01), "h2": (113.015, 22.01), "h3": (113.03, 22.01)}
AREAS = [  # code, level, parent, (x0, y0, x1, y1)
    (COUNTY, "county", None, (113.0, 22.0, 113.04, 22.02)),
    (f"{COUNTY}G1", "grid", COUNTY, (113.0, 22.0, 113.02, 22.02)),
    (f"{COUNTY}G2", "grid", COUNTY, (113.02, 22.0, 113.04, 22.02)),
    (f"{COUNTY}M1", "microgrid", f"{COUNTY}G1", (113.0, 22.0, 113.01, 22.02)),
    (f"{COUNTY}M2", "microgrid", f"{COUNTY}G1", (113.01, 22.0, 113.02, 22.02)),
    (f"{COUNTY}M3", "microgrid", f"{COUNTY}G2", (113.02, 22.0, 113.04, 22.02)),
]


def add_household(
    session: Session, *, microgrid: str | None, x: float | None, y: float | None
) -> int:
    geom = "NULL" if x is None else "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
    return int(
        session.execute(
            text(
                "INSERT INTO household (county_code, microgrid_code, geom)"
                f" VALUES (:county, :mg, {geom}) RETURNING id"
            ),
            {"county": COUNTY, "mg": microgrid, "x": x, "y": y},
        ).scalar_one()
    )


def build_field(session: Session) -> Field:
    """The test hierarchy, households and rounds, written through ``session``."""
    for code, level, parent, bounds in AREAS:
        session.execute(
            text(
                "INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
                " VALUES (:code, :name, :level, :parent, :county, :day,"
                " ST_Multi(ST_GeomFromText(:wkt, 4326)))"
            ),
            {"code": code, "name": f"区域 {code}", "level": level, "parent": parent, "county": COUNTY,
             "day": FIRST_DAY, "wkt": box(*bounds).wkt},
        )  # fmt: skip
    ids = {
        name: add_household(session, microgrid=f"{COUNTY}M{name[1]}", x=x, y=y)
        for name, (x, y) in HOUSEHOLD_POINTS.items()
    }
    feb = dt.date(2020, 2, 1)

    def new_round(area: str, name: str, start: int, end: int) -> RoundRecord:
        return create_round(
            session, area_code=area, name=name,
            start_date=feb.replace(day=start), end_date=feb.replace(day=end), scope=EVERYTHING,
        )  # fmt: skip

    return Field(
        h1=ids["h1"], h2=ids["h2"], h3=ids["h3"],
        unlocated=add_household(session, microgrid=None, x=None, y=None),
        county_round=new_round(COUNTY, "全县第一轮排查", 1, 14),
        grid_round=new_round(f"{COUNTY}G1", "G1 复查", 5, 10),
        grid_round_2=new_round(f"{COUNTY}G1", "G1 再复查", 5, 10),
        microgrid_round=new_round(f"{COUNTY}M3", "M3 专项", 20, 25),
    )  # fmt: skip


def offset_point(lon: float, lat: float, *, azimuth_deg: float, distance_m: float) -> list[float]:
    """The point ``distance_m`` from (lon, lat) on the WGS84 ellipsoid."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth_deg, distance_m)
    return [lon2, lat2]


def visit_body(
    household_id: int, *, at: tuple[float, float], distance_m: float = 10.0, **members: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "household_id": household_id,
        "result": "complete",
        "persons_seen": 3,
        "visited_at": "2020-02-06T10:00:00+08:00",
        "location": {
            "type": "Point",
            "coordinates": offset_point(*at, azimuth_deg=37.0, distance_m=distance_m),
        },
    }
    return body | members


@pytest.fixture
def field(session: Session) -> Field:
    return build_field(session)


def count(session: Session, sql: str, **params: Any) -> int:
    return int(session.execute(text(sql), params).scalar_one())


# -- rounds ---------------------------------------------------------------------------------
def test_create_round_derives_county_and_refuses_bad_ones(session: Session, field: Field) -> None:
    assert field.county_round.county_code == COUNTY
    assert field.grid_round.county_code == COUNTY and field.grid_round.area_code == f"{COUNTY}G1"
    for kwargs, needle in [
        ({"area_code": COUNTY, "start_date": dt.date(2020, 2, 5), "end_date": dt.date(2020, 2, 4)},
         "before start_date"),
        ({"area_code": "nowhere", "start_date": dt.date(2020, 2, 5), "end_date": dt.date(2020, 2, 6)},
         "no area with code 'nowhere'"),
        ({"area_code": COUNTY, "start_date": dt.date(2019, 12, 1), "end_date": dt.date(2020, 2, 6)},
         "on 2019-12-01"),
    ]:  # fmt: skip
        with pytest.raises(InvalidInput, match=needle):
            create_round(session, name="x", scope=EVERYTHING, **kwargs)
    with pytest.raises(InvalidInput, match="blank"):
        create_round(session, area_code=COUNTY, name="  ", start_date=FIRST_DAY, end_date=FIRST_DAY,
                     scope=EVERYTHING)  # fmt: skip


def test_rounds_within_go_up_and_down_the_hierarchy(session: Session, field: Field) -> None:
    from db.paging import Page

    page = Page(limit=50, offset=0)
    day = dt.date(2020, 2, 1)

    def ids(**kwargs: Any) -> set[int]:
        records, matched = list_rounds(session, as_of=day, page=page, scope=EVERYTHING, **kwargs)
        assert matched == len(records)
        return {r.id for r in records}

    f = field
    everything = {f.county_round.id, f.grid_round.id, f.grid_round_2.id, f.microgrid_round.id}
    assert everything <= ids(within=None, active_on=None)
    # G1: its ancestor (the county) and itself; not M3's round (under G2)
    assert ids(within=f"{COUNTY}G1", active_on=None) == everything - {f.microgrid_round.id}
    # the county: every round below it
    assert ids(within=COUNTY, active_on=None) == everything
    # M3: its ancestor's round and its own
    assert ids(within=f"{COUNTY}M3", active_on=None) == {f.county_round.id, f.microgrid_round.id}
    assert ids(within=COUNTY, active_on=dt.date(2020, 2, 12)) == {f.county_round.id}
    assert ids(within=COUNTY, active_on=dt.date(2020, 2, 10)) == everything - {f.microgrid_round.id}
    with pytest.raises(NotFound, match="no area with code 'nowhere'"):
        list_rounds(
            session, within="nowhere", active_on=None, as_of=day, page=page, scope=EVERYTHING
        )


def test_figures_and_household_status_equal_a_recount(session: Session, field: Field) -> None:
    here = {name: field.point(name) for name in ("h1", "h2")}
    submit_visit(session, payload=visit_body(field.h1, at=here["h1"], result="nobody_home"),
                 idempotency_key=None, now=NOW, recorder=RECORDER)  # fmt: skip
    submit_visit(
        session,
        payload=visit_body(field.h1, at=here["h1"]),
        idempotency_key=None,
        now=NOW,
        recorder=RECORDER,
    )
    submit_visit(session, payload=visit_body(field.h2, at=here["h2"], result="partial"),
                 idempotency_key=None, now=NOW, recorder=RECORDER)  # fmt: skip
    round_id = field.grid_round_2.id  # where the active-round rule puts 6 Feb visits in G1
    status = household_round_status(
        session, round_id=round_id, household_ids=[field.h1, field.h2, field.h3, field.unlocated]
    )
    assert status == {
        field.h1: "complete", field.h2: "incomplete", field.h3: "unvisited",
        field.unlocated: "unvisited",
    }  # fmt: skip
    assert household_round_status(session, round_id=field.county_round.id,
                                  household_ids=[field.h1]) == {field.h1: "unvisited"}  # fmt: skip
    with pytest.raises(NotFound):
        household_round_status(session, round_id=10**12, household_ids=[field.h1])

    figures = round_figures(session, round_id=round_id, as_of=dt.date(2030, 1, 1), scope=EVERYTHING)
    assert figures.as_of == field.grid_round_2.end_date  # moved into the round's dates
    # Recount independently: households whose point lies in G1's polygon, and their visits.
    recount = session.execute(
        text(
            "SELECT count(*),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM visit v WHERE v.household_id = h.id"
            "   AND v.round_id = :r AND v.result = 'complete')),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM visit v WHERE v.household_id = h.id"
            "   AND v.round_id = :r) AND NOT EXISTS (SELECT 1 FROM visit v WHERE"
            "   v.household_id = h.id AND v.round_id = :r AND v.result = 'complete'))"
            " FROM household h JOIN area a ON a.code = :g AND ST_Covers(a.geom, h.geom)"
        ),
        {"r": round_id, "g": f"{COUNTY}G1"},
    ).one()
    assert (figures.households, figures.complete, figures.incomplete) == tuple(recount) == (2, 1, 1)
    assert figures.unvisited == 0 and figures.visits == 3
    county = round_figures(
        session, round_id=field.county_round.id, as_of=dt.date(2020, 2, 2), scope=EVERYTHING
    )
    assert (county.households, county.complete, county.incomplete, county.unvisited) == (3, 0, 0, 3)


# -- visits ---------------------------------------------------------------------------------
def test_distance_equals_an_independent_geodesic(session: Session, field: Field) -> None:
    lon, lat = field.point("h1")
    body = visit_body(field.h1, at=(lon, lat), distance_m=63.0, note="门口登记")
    stored = submit_visit(
        session, payload=body, idempotency_key=None, now=NOW, recorder=RECORDER
    ).visit
    _, _, geodesic_m = GEOD.inv(lon, lat, *body["location"]["coordinates"])
    assert stored["distance_m"] == pytest.approx(geodesic_m, abs=0.01)
    assert geodesic_m == pytest.approx(63.0, abs=1e-6)
    sql_m = session.execute(
        text(
            "SELECT ST_Distance(h.geom::geography, v.geom::geography)"
            " FROM visit v JOIN household h ON h.id = v.household_id WHERE v.id = :id"
        ),
        {"id": stored["id"]},
    ).scalar_one()
    assert stored["distance_m"] == pytest.approx(sql_m, abs=0.005)
    assert stored | {"id": 0, "distance_m": 0} == {
        "id": 0, "household_id": field.h1, "round_id": field.grid_round_2.id,
        "result": "complete", "persons_seen": 3, "note": "门口登记", "worker": "李网格员",
        "visited_at": "2020-02-06T10:00:00+08:00",
        "location": {"type": "Point", "coordinates": [round(c, 6) for c in body["location"]["coordinates"]]},
        "distance_m": 0, "far_reason": None,
    }  # fmt: skip


def test_gcj02_location_is_converted_before_measuring(session: Session, field: Field) -> None:
    lon, lat = field.point("h2")
    wgs = offset_point(lon, lat, azimuth_deg=90.0, distance_m=20.0)
    gcj_lon, gcj_lat = wgs84_to_gcj02(wgs[0], wgs[1])
    body = visit_body(field.h2, at=(lon, lat)) | {
        "location": {"type": "Point", "coordinates": [float(gcj_lon), float(gcj_lat)]},
        "crs": "gcj02",
    }
    stored = submit_visit(
        session, payload=body, idempotency_key=None, now=NOW, recorder=RECORDER
    ).visit
    assert stored["distance_m"] == pytest.approx(20.0, abs=0.05)  # ~500 m if read as WGS84


def test_a_far_visit_needs_a_reason(session: Session, field: Field) -> None:
    at = field.point("h3")
    far = visit_body(field.h3, at=at, distance_m=250.0)
    with pytest.raises(InvalidInput, match=r"250\.0 m from household") as refused:
        submit_visit(session, payload=far, idempotency_key=None, now=NOW, recorder=RECORDER)
    assert refused.value.extra["distance_m"] == pytest.approx(250.0, abs=0.01)
    with pytest.raises(InvalidInput, match="far_reason"):
        submit_visit(
            session,
            payload=far | {"far_reason": "   "},
            idempotency_key=None,
            now=NOW,
            recorder=RECORDER,
        )
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h3) == 0
    kept = submit_visit(
        session,
        payload=far | {"far_reason": "住户在村口卡点接受询问"},
        idempotency_key=None,
        now=NOW,
        recorder=RECORDER,
    ).visit
    assert kept["far_reason"] == "住户在村口卡点接受询问"
    assert kept["distance_m"] == pytest.approx(250.0, abs=0.01)
    near = submit_visit(
        session,
        payload=visit_body(field.h3, at=at, distance_m=99.0),
        idempotency_key=None,
        now=NOW,
        recorder=RECORDER,
    ).visit
    assert near["far_reason"] is None and near["distance_m"] == pytest.approx(99.0, abs=0.01)


@pytest.mark.parametrize(
    ("household", "visited_at", "expected"),
    [
        ("h1", "2020-02-06T10:00:00+08:00", "grid_round_2"),  # two G1 rounds tie: highest id
        ("h3", "2020-02-06T10:00:00+08:00", "county_round"),  # G2 has only the county's
        ("h1", "2020-02-12T10:00:00+08:00", "county_round"),  # G1's rounds have ended
        ("h3", "2020-02-21T09:00:00+08:00", "microgrid_round"),  # county's ended, M3's on
        ("h1", "2020-02-04T23:30:00", "county_round"),  # no offset: China time, 4 Feb
        ("h1", "2020-02-04T23:30:00+00:00", "grid_round_2"),  # 07:30 on 5 Feb in China
        ("h1", "2020-02-04T16:30:00Z", "grid_round_2"),  # 00:30 on 5 Feb in China
        ("h1", "2020-02-04T15:59:59Z", "county_round"),  # 23:59:59 on 4 Feb in China
    ],
)
def test_active_round_resolution(
    session: Session, field: Field, household: str, visited_at: str, expected: str
) -> None:
    household_id = getattr(field, household)
    body = visit_body(household_id, at=field.point(household), visited_at=visited_at)
    stored = submit_visit(
        session, payload=body, idempotency_key=None, now=NOW, recorder=RECORDER
    ).visit
    assert stored["round_id"] == getattr(field, expected).id


def test_no_active_round_and_bad_references(session: Session, field: Field) -> None:
    def refused(body: dict[str, Any], needle: str) -> None:
        with pytest.raises(InvalidInput, match=needle):
            submit_visit(session, payload=body, idempotency_key=None, now=NOW, recorder=RECORDER)

    at = field.point("h1")
    refused(visit_body(field.h1, at=at, visited_at="2020-02-28T10:00:00+08:00"),
            "no active screening round on 2020-02-28")  # fmt: skip
    refused(visit_body(field.unlocated, at=at), "not located")
    refused(visit_body(10**12, at=at), "no such household")
    refused(visit_body(field.h1, at=at, round_id=10**12), "no such screening round")
    refused(visit_body(field.h3, at=field.point("h3"), round_id=field.grid_round.id),
            f"not in round {field.grid_round.id}'s area {COUNTY}G1")  # fmt: skip
    refused(visit_body(field.h1, at=at, round_id=field.grid_round.id,
                       visited_at="2020-02-12T10:00:00+08:00"), "outside round")  # fmt: skip
    # explicit round chosen over the active one
    stored = submit_visit(
        session, payload=visit_body(field.h1, at=at, round_id=field.county_round.id),
        idempotency_key=None, now=NOW, recorder=RECORDER,
    ).visit  # fmt: skip
    assert stored["round_id"] == field.county_round.id
    assert count(session, "SELECT count(*) FROM visit WHERE county_code = :c", c=COUNTY) == 1
    assert (
        active_round(session, county_code=COUNTY, microgrid_code=None, day=dt.date(2020, 2, 6))
        is None
    )


GOOD = {
    "household_id": 1,
    "result": "complete",
    "location": {"type": "Point", "coordinates": [113.0, 22.0]},
}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"result": "done"}, "result 'done' is not one of complete"),
        ({"result": None}, "result None"),
        ({"household_id": None}, "household_id is required"),
        ({"household_id": "12"}, "household_id must be a whole number"),
        ({"household_id": True}, "household_id must be a whole number"),
        ({"household_id": 2**70}, "not a valid id"),
        ({"round_id": 0}, "not a valid id"),
        ({"persons_seen": -1}, "persons_seen -1 must be between 0"),
        ({"persons_seen": 2.5}, "persons_seen must be a whole number"),
        ({"note": 5}, "note must be text"),
        ({"worker": "李网格员"}, "worker: set by the server"),
        ({"distance_m": 0.0, "id": 5}, "id, distance_m: set by the server"),
        ({"location": None}, "location is required"),
        ({"location": [113.0, 22.0]}, "GeoJSON Point"),
        (
            {"location": {"type": "LineString", "coordinates": [[113, 22], [114, 23]]}},
            "GeoJSON Point",
        ),
        ({"location": {"type": "Point", "coordinates": [113.0]}}, r"\[lon, lat\]"),
        ({"location": {"type": "Point", "coordinates": ["113", "22"]}}, r"\[lon, lat\]"),
        ({"location": {"type": "Point", "coordinates": [float("nan"), 22.0]}}, r"\[lon, lat\]"),
        ({"location": {"type": "Point", "coordinates": [200.0, 22.0]}}, "out of range"),
        ({"location": {"type": "Point", "coordinates": [22.0, 113.0]}}, "out of range"),
        ({"crs": "mars2000"}, "unknown coordinate reference system"),
        ({"visited_at": "yesterday"}, "not an ISO 8601"),
        ({"visited_at": "2020-02-06"}, "must be an ISO 8601 date and time"),
        ({"visited_at": 1580954400}, "must be an ISO 8601"),
        ({"visited_at": "2020-03-01T20:06:00+08:00"}, "6 min in the future"),
        ({"far_reasn": "typo"}, "unknown member"),
    ],
)
def test_bad_visit_bodies_are_refused_with_a_reason(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        parse_visit(GOOD | change, now=NOW)


def test_parse_accepts_clock_drift_and_defaults_to_now() -> None:
    assert parse_visit(GOOD, now=NOW).visited_at == NOW
    drift = parse_visit(GOOD | {"visited_at": "2020-03-01T20:04:00+08:00"}, now=NOW)
    assert drift.visited_at - NOW == dt.timedelta(minutes=4)
    with pytest.raises(InvalidInput, match="a visit is a JSON object, not an array"):
        parse_visit([GOOD], now=NOW)


# -- idempotency and batches ------------------------------------------------------------------
def test_idempotent_replay_stores_once(session: Session, field: Field) -> None:
    body = visit_body(field.h1, at=field.point("h1"))
    first = submit_visit(
        session, payload=body, idempotency_key="phone-7:0001", now=NOW, recorder=RECORDER
    )
    # the replay comes later (a different "now") and in another key order: same answer
    again = submit_visit(session, payload=dict(reversed(list(body.items()))),
                         idempotency_key="phone-7:0001", now=NOW + dt.timedelta(hours=3), recorder=RECORDER)  # fmt: skip
    assert (first.replayed, again.replayed) == (False, True)
    assert again.visit == first.visit and again.status_code == first.status_code == 201
    # the same key in a body member is the same key
    third = submit_visit(session, payload=body | {"idempotency_key": "phone-7:0001"},
                         idempotency_key=None, now=NOW, recorder=RECORDER)  # fmt: skip
    assert third.visit["id"] == first.visit["id"]
    assert count(session, "SELECT count(*) FROM visit WHERE household_id = :h", h=field.h1) == 1
    record = session.execute(
        text(
            "SELECT scope, status_code, response FROM idempotency_record WHERE key = 'phone-7:0001'"
        )
    ).one()
    assert (record[0], record[1], record[2]) == ("visit", 201, first.visit)

    with pytest.raises(InvalidInput, match="already used with a different body"):
        submit_visit(session, payload=body | {"persons_seen": 4},
                     idempotency_key="phone-7:0001", now=NOW, recorder=RECORDER)  # fmt: skip
    with pytest.raises(InvalidInput, match="differ"):
        submit_visit(
            session,
            payload=body | {"idempotency_key": "a"},
            idempotency_key="b",
            now=NOW,
            recorder=RECORDER,
        )
    with pytest.raises(InvalidInput, match="201 characters; at most 200"):
        submit_visit(session, payload=body, idempotency_key="k" * 201, now=NOW, recorder=RECORDER)
    with pytest.raises(InvalidInput, match="non-blank"):
        submit_visit(session, payload=body, idempotency_key=" ", now=NOW, recorder=RECORDER)
    # a refused body remembers nothing under its key: corrected, it is stored
    far = visit_body(field.h1, at=field.point("h1"), distance_m=500.0)
    with pytest.raises(InvalidInput, match=r"500\.0 m"):
        submit_visit(
            session, payload=far, idempotency_key="phone-7:0002", now=NOW, recorder=RECORDER
        )
    fixed = submit_visit(session, payload=far | {"far_reason": "隔离户，电话核实"},
                         idempotency_key="phone-7:0002", now=NOW, recorder=RECORDER)  # fmt: skip
    assert not fixed.replayed


def test_batch_stores_good_items_and_reports_every_bad_one(session: Session, field: Field) -> None:
    at1, at3 = field.point("h1"), field.point("h3")
    items: list[Any] = [
        visit_body(field.h1, at=at1, idempotency_key="b-1"),  # 0 good
        visit_body(field.h1, at=at1, result="maybe"),  # 1 bad result
        "not an object",  # 2
        visit_body(field.h3, at=at3, distance_m=180.0),  # 3 far, no reason
        visit_body(field.h3, at=at3, idempotency_key="b-4"),  # 4 good
        visit_body(field.h1, at=at1, idempotency_key="b-1"),  # 5 same key, same body: replay
        visit_body(field.h1, at=at1, idempotency_key="b-1", note="x"),  # 6 same key, other body
        visit_body(field.h1, at=at1, idempotency_key="k" * 300),  # 7 key too long
        visit_body(10**12, at=at1),  # 8 unknown household
    ]
    answers = submit_visit_batch(session, payloads=items, now=NOW, recorder=RECORDER)
    assert len(answers) == len(items)
    good = {i: a for i, a in enumerate(answers) if isinstance(a, Submission)}
    bad = {i: str(a) for i, a in enumerate(answers) if isinstance(a, WanggeError)}
    assert sorted(good) == [0, 4, 5] and sorted(bad) == [1, 2, 3, 6, 7, 8]
    assert good[5].replayed and good[5].visit == good[0].visit
    for index, needle in {1: "result 'maybe'", 2: "JSON object", 3: "180.0 m", 6: "different body",
                          7: "at most 200", 8: "no such household"}.items():  # fmt: skip
        assert needle in bad[index], (index, bad[index])
    assert count(session, "SELECT count(*) FROM visit WHERE county_code = :c", c=COUNTY) == 2
    from db.paging import Page

    listed, matched = list_visits(
        session, household_id=field.h1, round_id=None, page=Page(limit=10, offset=0),
        scope=EVERYTHING, as_of=NOW.date(),
    )  # fmt: skip
    assert matched == 1 and listed[0] == good[0].visit


# -- concurrency, on a committed database --------------------------------------------------------
@pytest.fixture(scope="module")
def committed(pg) -> Iterator[tuple[Any, Field]]:
    """A database of its own where each thread commits (a rolled-back session
    cannot show what two transactions do to each other)."""
    engine = create_engine(pg.database("visits_concurrency"), pool_size=12, max_overflow=4)
    with session_scope(engine) as setup:
        built = build_field(setup)
    yield engine, built
    engine.dispose()


def run_together(n: int, work: Any) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at the same instant; their results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # reported below, in the test's thread
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_duplicates_store_one_visit(committed: tuple[Any, Field]) -> None:
    engine, built = committed
    body = visit_body(built.h2, at=built.point("h2"), note="concurrent-single")

    def submit(_: int) -> Submission:
        with session_scope(engine) as session:
            return submit_visit(
                session, payload=body, idempotency_key="dup-key-1", now=NOW, recorder=RECORDER
            )

    answers = run_together(8, submit)
    assert all(isinstance(a, Submission) for a in answers), answers
    assert len({a.visit["id"] for a in answers}) == 1
    assert all(a.visit == answers[0].visit and a.status_code == 201 for a in answers)
    assert sum(not a.replayed for a in answers) == 1
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM visit WHERE note = 'concurrent-single'")
        ).scalar_one()
        records = connection.execute(
            text("SELECT count(*) FROM idempotency_record WHERE key = 'dup-key-1'")
        ).scalar_one()
    assert (stored, records) == (1, 1)


def test_concurrent_batches_with_crossed_keys_neither_deadlock_nor_duplicate(
    committed: tuple[Any, Field],
) -> None:
    engine, built = committed
    items = [
        visit_body(built.h1, at=built.point("h1"), idempotency_key=f"cross-{k}", note="crossed")
        for k in range(6)
    ]

    def submit(i: int) -> list[Submission | WanggeError]:
        order = items if i % 2 == 0 else list(reversed(items))
        with session_scope(engine) as session:
            return submit_visit_batch(session, payloads=order, now=NOW, recorder=RECORDER)

    answers = run_together(6, submit)
    assert all(isinstance(a, list) for a in answers), answers
    by_key: dict[str, set[int]] = {}
    for i, batch in enumerate(answers):
        order = items if i % 2 == 0 else list(reversed(items))
        for item, answer in zip(order, batch, strict=True):
            assert isinstance(answer, Submission), answer
            by_key.setdefault(item["idempotency_key"], set()).add(answer.visit["id"])
    assert all(len(ids) == 1 for ids in by_key.values()) and len(by_key) == 6
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT count(*) FROM visit WHERE note = 'crossed'")
        ).scalar_one()
    assert stored == 6
