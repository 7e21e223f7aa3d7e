"""Checkpoints and passages on real PostGIS (db/checkpoints.py): GCJ-02 input
lands on its WGS84 truth, the county comes from the point, ``flagged`` follows
the database's rule, known people are attributed to their home micro-grid, bad
rows are reported by index, and flagged counts use Asia/Shanghai dates."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from db.access import Scope
from db.areas import BBox
from db.checkpoints import (
    CheckpointChanges,
    PassageInput,
    create_checkpoint,
    flagged_passages_by_microgrid,
    get_checkpoint,
    list_checkpoints,
    list_passages,
    record_passages,
    update_checkpoint,
)
from db.paging import Page
from geo.crs import GCJ02, WGS84, parse_crs, wgs84_to_bd09, wgs84_to_gcj02
from geo.errors import InvalidInput, NotFound
from tests.db.test_cases import (
    COUNTY,
    MG_A1,
    MG_B1,
    MG_O1,
    OTHER_COUNTY,
    TOWN_A,
    TOWN_B,
    County,
    build_county,
    id_number,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2020, 3, 1)
NOW = dt.datetime(2020, 3, 1, 12, 0, tzinfo=SHANGHAI)
PAGE = Page(limit=100, offset=0)
TRUTH = (113.03, 22.04)  # WGS84, in town A
EVERYTHING = Scope(everything=True, roots=())


@pytest.fixture
def county(session) -> County:
    return build_county(session)


@pytest.fixture
def checkpoint(session, county) -> int:
    return create_checkpoint(
        session, name="A 镇高速出口", kind="highway_exit", x=TRUTH[0], y=TRUTH[1], crs=WGS84,
        note=None, today=TODAY, scope=EVERYTHING,
    ).id  # fmt: skip


def distance_m(session, checkpoint_id: int, lon: float, lat: float) -> float:
    return float(
        session.execute(
            text(
                "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography)"
                " FROM checkpoint WHERE id = :id"
            ),
            {"id": checkpoint_id, "x": lon, "y": lat},
        ).scalar_one()
    )


def passage(**fields) -> PassageInput:
    fields.setdefault("passed_at", dt.datetime(2020, 2, 1, 9, 0, tzinfo=SHANGHAI))
    return PassageInput(**fields)


def store(session, checkpoint_id: int, *rows: PassageInput):
    return record_passages(
        session, checkpoint_id=checkpoint_id, rows=list(enumerate(rows)), now=NOW, scope=EVERYTHING
    )


@pytest.mark.parametrize("crs_name", ["gcj02", "bd09"])
def test_gcj02_and_bd09_input_lands_within_a_metre_of_its_truth(session, county, crs_name) -> None:
    forward = wgs84_to_gcj02 if crs_name == "gcj02" else wgs84_to_bd09
    x, y = (float(v) for v in forward(TRUTH[0], TRUTH[1]))
    record = create_checkpoint(
        session, name="村口", kind="village_entrance", x=x, y=y, crs=parse_crs(crs_name),
        note="24 小时值守", today=TODAY, scope=EVERYTHING,
    )  # fmt: skip
    assert distance_m(session, record.id, *TRUTH) < 1.0
    assert distance_m(session, record.id, x, y) > 100  # the offset was really removed
    assert record.county_code == COUNTY and record.active and record.note == "24 小时值守"


def test_a_point_in_no_county_is_refused(session, county) -> None:
    with pytest.raises(InvalidInput, match="lies in no county"):
        create_checkpoint(
            session,
            name="海上",
            kind="port",
            x=112.5,
            y=21.5,
            crs=WGS84,
            note=None,
            today=TODAY,
            scope=EVERYTHING,
        )
    with pytest.raises(InvalidInput, match="not a point on Earth"):
        create_checkpoint(
            session,
            name="x",
            kind="port",
            x=200.0,
            y=22.0,
            crs=WGS84,
            note=None,
            today=TODAY,
            scope=EVERYTHING,
        )
    with pytest.raises(InvalidInput, match="kind 'bridge'"):
        create_checkpoint(
            session,
            name="x",
            kind="bridge",
            x=113.0,
            y=22.0,
            crs=WGS84,
            note=None,
            today=TODAY,
            scope=EVERYTHING,
        )
    with pytest.raises(InvalidInput, match="name is empty"):
        create_checkpoint(
            session,
            name=" ",
            kind="port",
            x=113.0,
            y=22.0,
            crs=WGS84,
            note=None,
            today=TODAY,
            scope=EVERYTHING,
        )


def test_update_moves_renames_and_clears(session, county, checkpoint) -> None:
    x, y = (float(v) for v in wgs84_to_gcj02(114.05, 22.05))
    moved = update_checkpoint(
        session, checkpoint_id=checkpoint,
        changes=CheckpointChanges(name="新名", location=(x, y), crs=GCJ02, active=False,
                                  note=None, set_note=True),
        today=TODAY, scope=EVERYTHING,
    )  # fmt: skip
    assert (moved.name, moved.active, moved.note, moved.county_code) == (
        "新名", False, None, OTHER_COUNTY,
    )  # fmt: skip
    assert distance_m(session, checkpoint, 114.05, 22.05) < 1.0
    kept = update_checkpoint(
        session, checkpoint_id=checkpoint, changes=CheckpointChanges(note="夜间关闭", active=True),
        today=TODAY, scope=EVERYTHING,
    )  # fmt: skip
    assert (kept.note, kept.active) == (None, True)  # a note only changes with set_note
    with pytest.raises(InvalidInput, match="nothing to change"):
        update_checkpoint(
            session,
            checkpoint_id=checkpoint,
            changes=CheckpointChanges(),
            today=TODAY,
            scope=EVERYTHING,
        )
    with pytest.raises(InvalidInput, match="lies in no county"):
        update_checkpoint(
            session, checkpoint_id=checkpoint,
            changes=CheckpointChanges(location=(0.0, 0.0)), today=TODAY, scope=EVERYTHING,
        )  # fmt: skip
    with pytest.raises(NotFound):
        update_checkpoint(
            session,
            checkpoint_id=999_999_999,
            changes=CheckpointChanges(active=True),
            today=TODAY,
            scope=EVERYTHING,
        )
    with pytest.raises(NotFound):
        get_checkpoint(session, checkpoint_id=999_999_999)


def test_list_filters(session, county, checkpoint) -> None:
    gate = create_checkpoint(
        session, name="B 小区门", kind="estate_gate", x=113.15, y=22.05, crs=WGS84, note=None,
        today=TODAY, scope=EVERYTHING,
    ).id  # fmt: skip

    def ids(**filters) -> list[int]:
        args = {"within": None, "kind": None, "bbox": None, "active": None} | filters
        records, matched = list_checkpoints(
            session, as_of=TODAY, page=PAGE, scope=EVERYTHING, **args
        )
        assert matched == len(records)
        return [r.id for r in records]

    assert ids(within=COUNTY) == [checkpoint, gate]
    assert ids(within=TOWN_A) == [checkpoint]
    assert ids(within=TOWN_B) == [gate]
    assert ids(within=COUNTY, kind="estate_gate") == [gate]
    assert ids(bbox=BBox(113.1, 22.0, 113.2, 22.1)) == [gate]
    update_checkpoint(
        session,
        checkpoint_id=gate,
        changes=CheckpointChanges(active=False),
        today=TODAY,
        scope=EVERYTHING,
    )
    assert ids(within=COUNTY, active=True) == [checkpoint]
    with pytest.raises(InvalidInput, match="kind 'gate'"):
        ids(kind="gate")
    with pytest.raises(NotFound):
        ids(within="nope")


def test_flagged_is_computed_by_the_database(session, county, checkpoint) -> None:
    batch = store(
        session, checkpoint,
        passage(person_name="甲", temperature_c=37.2),
        passage(person_name="乙", temperature_c=37.3),
        passage(person_name="丙", health_code="yellow", temperature_c=36.5),
        passage(person_name="丁", health_code="red"),
        passage(person_name="戊", health_code="green", temperature_c=36.8),
        passage(plate="粤W12345"),
    )  # fmt: skip
    assert batch.rejected == []
    assert [p.flagged for p in batch.stored] == [False, True, True, True, False, False]
    assert [p.temperature_c for p in batch.stored][:2] == [37.2, 37.3]


def test_known_people_are_attributed_to_their_home_microgrid(session, county, checkpoint) -> None:
    visitor = id_number("11010119800101123")
    batch = store(
        session, checkpoint,
        passage(resident_id=county.bob, temperature_c=38.0),
        passage(id_number=county.alice_id_number.lower(), phone="138-0013-8000"),
        passage(id_number=visitor, person_name="外地访客"),
        passage(id_number=county.dave_id_number, health_code="red"),
    )  # fmt: skip
    assert batch.rejected == []
    stored = batch.stored
    assert [(p.resident_id, p.home_microgrid_code) for p in stored] == [
        (county.bob, MG_B1), (county.alice, MG_A1), (None, None), (county.dave, MG_O1),
    ]  # fmt: skip
    assert (
        stored[1].id_number
        == county.alice_id_number[:4] + "**********" + county.alice_id_number[-4:]
    )
    assert stored[1].phone == "138****8000"
    raw_number = session.execute(
        text("SELECT id_number FROM passage WHERE id = :id"), {"id": stored[1].id}
    ).scalar_one()
    assert raw_number == county.alice_id_number  # stored canonical, leaves masked
    assert all(county.alice_id_number not in repr(p) for p in stored)


def test_bad_rows_are_reported_by_index_and_good_ones_stored(session, county, checkpoint) -> None:
    bad_digit = county.alice_id_number[:17] + ("0" if county.alice_id_number[17] != "0" else "1")
    batch = store(
        session, checkpoint,
        passage(person_name="好"),  # 0
        passage(),  # 1: who?
        passage(resident_id=999_999_999),  # 2
        passage(id_number=bad_digit),  # 3
        passage(person_name="x", passed_at=dt.datetime(2020, 3, 2, 12, 0, tzinfo=SHANGHAI)),  # 4
        passage(resident_id=county.alice, id_number=county.bob_id_number),  # 5
        passage(person_name="x", phone="12345"),  # 6
        passage(person_name="x", temperature_c=46.0),  # 7
        passage(person_name="x", health_code="blue"),  # 8
        passage(plate="粤W54321", direction="in"),  # 9
        passage(person_name="x", direction="up"),  # 10
        passage(person_name="x\x00y"),  # 11
    )  # fmt: skip
    assert [p.person_name or p.plate for p in batch.stored] == ["好", "粤W54321"]
    reasons = {p.index: p.reason for p in batch.rejected}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]
    assert "say who passed" in reasons[1]
    assert "no resident with id 999999999" in reasons[2]
    assert "check digit" in reasons[3] and bad_digit not in reasons[3]
    assert "in the future" in reasons[4]
    assert f"is not that of resident {county.alice}" in reasons[5]
    assert "not a mobile number" in reasons[6]
    assert "temperature_c 46.0" in reasons[7]
    assert "health_code 'blue'" in reasons[8]
    assert "direction 'up'" in reasons[10]
    assert "NUL" in reasons[11]
    with pytest.raises(NotFound):
        store(session, 999_999_999, passage(person_name="x"))


def test_naive_times_are_shanghai_and_days_are_shanghai_days(session, county, checkpoint) -> None:
    late = dt.datetime(2020, 2, 1, 23, 30)  # naive: Shanghai time, 15:30 UTC
    early = dt.datetime(2020, 2, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 on 2 Feb in Shanghai
    batch = store(
        session, checkpoint,
        passage(resident_id=county.alice, passed_at=late, temperature_c=38.5),
        passage(resident_id=county.alice, passed_at=early, health_code="yellow"),
        passage(resident_id=county.bob, passed_at=early, health_code="green"),  # not flagged
        passage(resident_id=county.dave, passed_at=early, health_code="red"),  # lives elsewhere
        passage(person_name="无名", passed_at=early, health_code="red"),  # unknown: no home
    )  # fmt: skip
    assert batch.stored[0].passed_at.isoformat() == "2020-02-01T23:30:00+08:00"
    feb1, feb2 = dt.date(2020, 2, 1), dt.date(2020, 2, 2)
    assert flagged_passages_by_microgrid(session, county_code=None, on=feb1) == {MG_A1: 1}
    assert flagged_passages_by_microgrid(session, county_code=None, on=feb2) == {MG_A1: 1, MG_O1: 1}
    assert flagged_passages_by_microgrid(session, county_code=COUNTY, on=feb2) == {MG_A1: 1}
    assert flagged_passages_by_microgrid(session, county_code=OTHER_COUNTY, on=feb2) == {MG_O1: 1}
    assert flagged_passages_by_microgrid(session, county_code="nope", on=feb2) == {}
    on_feb2, matched = list_passages(
        session,
        checkpoint_id=checkpoint,
        on=feb2,
        flagged=None,
        page=PAGE,
        scope=EVERYTHING,
        today=TODAY,
    )
    assert matched == 4 and all(p.passed_at.date() == feb2 for p in on_feb2)
    flagged, matched = list_passages(
        session,
        checkpoint_id=checkpoint,
        on=feb2,
        flagged=True,
        page=PAGE,
        scope=EVERYTHING,
        today=TODAY,
    )
    assert matched == 3 == len(flagged) and all(p.flagged for p in flagged)
    page, matched = list_passages(
        session,
        checkpoint_id=checkpoint,
        on=None,
        flagged=None,
        page=Page(limit=2, offset=1),
        scope=EVERYTHING,
        today=TODAY,
    )
    assert matched == 5 and len(page) == 2
    with pytest.raises(NotFound):
        list_passages(
            session,
            checkpoint_id=999_999_999,
            on=None,
            flagged=None,
            page=PAGE,
            scope=EVERYTHING,
            today=TODAY,
        )


def test_flagged_counts_equal_a_recount(session, county, checkpoint) -> None:
    people = [county.alice, county.bob, county.dave]
    rows = [
        passage(
            resident_id=people[i % 3],
            passed_at=dt.datetime(2020, 2, 1, tzinfo=SHANGHAI) + dt.timedelta(hours=5 * i),
            temperature_c=36.0 + (i % 7) * 0.3, health_code=("green", "yellow", "red", None)[i % 4],
        )
        for i in range(40)
    ]  # fmt: skip
    store(session, checkpoint, *rows)
    seen = 0
    for day in (dt.date(2020, 2, d) for d in range(1, 10)):
        expected: dict[str, int] = {}
        for (code,) in session.execute(
            text(
                "SELECT h.microgrid_code FROM passage p JOIN resident r ON r.id = p.resident_id"
                " JOIN household h ON h.id = r.household_id"
                " WHERE (p.temperature_c >= 37.3 OR p.health_code IN ('red', 'yellow'))"
                " AND (p.passed_at AT TIME ZONE 'Asia/Shanghai')::date = :day"
            ),
            {"day": day},
        ):
            expected[code] = expected.get(code, 0) + 1
        assert flagged_passages_by_microgrid(session, county_code=None, on=day) == expected
        seen += sum(expected.values())
    assert seen > 10  # the recount is not vacuous
