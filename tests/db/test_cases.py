"""Cases on real PostGIS (db/cases.py): they count where the person lives (not
where they were reported), their status on a date is the latest change effective
by then, and every figure equals an independent recount from the raw rows.

``build_county`` makes the tiny county the case and checkpoint tests share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import Scope
from db.cases import (
    CaseReport,
    active_cases_by_microgrid,
    case_detail,
    cases_total_by_microgrid,
    change_case_status,
    list_cases,
    report_case,
    unplaced_cases,
)
from db.paging import Page
from geo.demo import id_check_digit
from geo.errors import InvalidInput, NotFound

COUNTY, TOWN_A, TOWN_B = "990100", "990100001", "990100002"
MG_A1, MG_A2, MG_B1 = "990100001001", "990100001002", "990100002001"
OTHER_COUNTY, MG_O1 = "990200", "990200001001"
FIRST_DAY = dt.date(2020, 1, 1)
TODAY = dt.date(2020, 3, 1)
PAGE = Page(limit=100, offset=0)
EVERYTHING = Scope(everything=True, roots=())


def id_number(first17: str) -> str:
    """A valid GB 11643 ID number from its first 17 digits."""
    return first17 + id_check_digit(first17)


@dataclass(frozen=True)
class County:
    """Ids of the rows ``build_county`` made."""

    household_a1: int  # in MG_A1 (town A)
    household_b1: int  # in MG_B1 (town B)
    household_unlocated: int
    household_other: int  # in OTHER_COUNTY's MG_O1
    alice: int  # lives in household_a1
    bob: int  # lives in household_b1
    carol: int  # no household
    dave: int  # lives in OTHER_COUNTY
    alice_id_number: str
    bob_id_number: str
    dave_id_number: str
    alice_phone: str


def _area(
    session: Session, code: str, level: str, parent: str | None, bounds: tuple, county: str
) -> None:
    session.execute(
        text(
            "INSERT INTO area (code, name, level, parent_code, county_code, valid_from, geom)"
            " VALUES (:code, :name, :level, :parent, :county, :day,"
            " ST_Multi(ST_GeomFromText(:wkt, 4326)))"
        ),
        {"code": code, "name": f"测试 {code}", "level": level, "parent": parent,
         "county": county, "day": FIRST_DAY, "wkt": box(*bounds).wkt},
    )  # fmt: skip


def _household(
    session: Session, *, county: str, xy: tuple[float, float] | None, microgrid: str | None
) -> int:
    geom = "NULL" if xy is None else "ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
    return int(
        session.execute(
            text(
                "INSERT INTO household (county_code, geom, microgrid_code, address, geocode_level,"
                f" geocode_status) VALUES (:county, {geom}, :mg, :address, :level, :status) RETURNING id"
            ),
            {"county": county, "x": xy[0] if xy else None, "y": xy[1] if xy else None,
             "mg": microgrid, "address": f"测试路 {microgrid or '未定位'} 号",
             "level": "point" if xy else "none", "status": "matched" if xy else "unmatched"},
        ).scalar_one()
    )  # fmt: skip


def _resident(
    session: Session,
    *,
    county: str,
    household: int | None,
    name: str,
    number: str,
    phone: str | None = None,
) -> int:
    return int(
        session.execute(
            text(
                "INSERT INTO resident (county_code, household_id, name, id_number, phone, category)"
                " VALUES (:county, :household, :name, :number, :phone, 'local_permanent') RETURNING id"
            ),
            {"county": county, "household": household, "name": name, "number": number,
             "phone": phone},
        ).scalar_one()
    )  # fmt: skip


def build_county(session: Session) -> County:
    """County 990100: town A (micro-grids A1 west, A2 east) and town B (micro-grid
    B1), 113.0–113.2 E, 22.0–22.1 N; county 990200 beside it, 114.0–114.1 E."""
    _area(session, COUNTY, "county", None, (113.0, 22.0, 113.2, 22.1), COUNTY)
    _area(session, TOWN_A, "township", COUNTY, (113.0, 22.0, 113.1, 22.1), COUNTY)
    _area(session, TOWN_B, "township", COUNTY, (113.1, 22.0, 113.2, 22.1), COUNTY)
    _area(session, MG_A1, "microgrid", TOWN_A, (113.0, 22.0, 113.05, 22.1), COUNTY)
    _area(session, MG_A2, "microgrid", TOWN_A, (113.05, 22.0, 113.1, 22.1), COUNTY)
    _area(session, MG_B1, "microgrid", TOWN_B, (113.1, 22.0, 113.2, 22.1), COUNTY)
    _area(session, OTHER_COUNTY, "county", None, (114.0, 22.0, 114.1, 22.1), OTHER_COUNTY)
    _area(session, MG_O1, "microgrid", OTHER_COUNTY, (114.0, 22.0, 114.1, 22.1), OTHER_COUNTY)
    a1 = _household(session, county=COUNTY, xy=(113.02, 22.05), microgrid=MG_A1)
    b1 = _household(session, county=COUNTY, xy=(113.15, 22.05), microgrid=MG_B1)
    unlocated = _household(session, county=COUNTY, xy=None, microgrid=None)
    other = _household(session, county=OTHER_COUNTY, xy=(114.05, 22.05), microgrid=MG_O1)
    numbers = [id_number(f"4453211990010{i}00{i}") for i in range(1, 4)]
    phone = "13800138000"
    return County(
        household_a1=a1, household_b1=b1, household_unlocated=unlocated, household_other=other,
        alice=_resident(session, county=COUNTY, household=a1, name="张丽", number=numbers[0], phone=phone),
        bob=_resident(session, county=COUNTY, household=b1, name="李强", number=numbers[1]),
        carol=_resident(session, county=COUNTY, household=None, name="王芳", number=id_number("44532119950505123")),
        dave=_resident(session, county=OTHER_COUNTY, household=other, name="陈伟", number=numbers[2]),
        alice_id_number=numbers[0], bob_id_number=numbers[1], dave_id_number=numbers[2],
        alice_phone=phone,
    )  # fmt: skip


@pytest.fixture
def county(session: Session) -> County:
    return build_county(session)


def report(session: Session, **fields) -> int:
    fields.setdefault("status", "confirmed")
    fields.setdefault("reported_on", dt.date(2020, 2, 1))
    return report_case(session, report=CaseReport(**fields), today=TODAY, scope=EVERYTHING).case.id


def recount(session: Session, *, as_of: dt.date, statuses: tuple[str, ...]) -> dict[str, int]:
    """Independently of db.cases: per case, its changes in Python, then its home."""
    changes: dict[int, list[tuple[dt.date, int, str]]] = {}
    for case_id, effective_on, change_id, status in session.execute(
        text("SELECT case_id, effective_on, id, status FROM case_status_change")
    ):
        changes.setdefault(case_id, []).append((effective_on, change_id, status))
    counts: dict[str, int] = {}
    for case_id, resident_household, case_household, reported_on in session.execute(
        text(
            "SELECT c.id, r.household_id, c.household_id, c.reported_on FROM case_report c"
            " LEFT JOIN resident r ON r.id = c.resident_id"
        )
    ):
        known = sorted(c for c in changes[case_id] if c[0] <= as_of)
        if reported_on > as_of or not known or known[-1][2] not in statuses:
            continue
        household = resident_household if resident_household is not None else case_household
        if household is None:
            continue
        code = session.execute(
            text("SELECT microgrid_code FROM household WHERE id = :id"), {"id": household}
        ).scalar()
        if code is not None:
            counts[code] = counts.get(code, 0) + 1
    return counts


ACTIVE = ("suspected", "confirmed", "asymptomatic")
NOT_RULED_OUT = ("suspected", "confirmed", "asymptomatic", "recovered")


def test_a_case_counts_where_the_person_lives_not_where_reported(session, county) -> None:
    case_id = report(
        session, resident_id=county.alice, reported_by="县人民医院 (in town B, 990100002)"
    )
    detail = case_detail(session, case_id=case_id)
    assert detail.case.home_microgrid_code == MG_A1
    assert detail.case.county_code == COUNTY
    assert detail.case.reported_by.startswith("县人民医院")
    assert [h.status for h in detail.history] == ["confirmed"]
    day = dt.date(2020, 2, 2)
    assert active_cases_by_microgrid(session, as_of=day) == {MG_A1: 1}
    assert cases_total_by_microgrid(session, as_of=day) == {MG_A1: 1}
    in_a, matched_a = list_cases(session, as_of=day, within=TOWN_A, status=None, page=PAGE)
    in_b, matched_b = list_cases(session, as_of=day, within=TOWN_B, status=None, page=PAGE)
    assert (matched_a, [c.id for c in in_a]) == (1, [case_id])
    assert (matched_b, in_b) == (0, [])
    assert list_cases(session, as_of=day, within=MG_A2, status=None, page=PAGE)[1] == 0


def test_status_as_of_a_date_before_and_after_a_change(session, county) -> None:
    case_id = report(session, resident_id=county.bob, status="suspected")
    change_case_status(
        session, case_id=case_id, status="confirmed", effective_on=dt.date(2020, 2, 5),
        note="核酸阳性", today=TODAY,
    )  # fmt: skip
    detail = change_case_status(
        session, case_id=case_id, status="recovered", effective_on=dt.date(2020, 2, 20),
        note=None, today=TODAY,
    )  # fmt: skip
    assert detail.case.status == "recovered"
    assert [(h.status, h.effective_on.day) for h in detail.history] == [
        ("suspected", 1), ("confirmed", 5), ("recovered", 20),
    ]  # fmt: skip

    def status_on(day: dt.date) -> list[str]:
        return [
            c.status for c in list_cases(session, as_of=day, within=None, status=None, page=PAGE)[0]
        ]

    assert status_on(dt.date(2020, 1, 31)) == []  # not reported yet
    assert status_on(dt.date(2020, 2, 4)) == ["suspected"]
    assert status_on(dt.date(2020, 2, 5)) == ["confirmed"]
    assert status_on(dt.date(2020, 2, 19)) == ["confirmed"]
    assert status_on(dt.date(2020, 2, 20)) == ["recovered"]
    confirmed = list_cases(
        session, as_of=dt.date(2020, 2, 10), within=None, status="confirmed", page=PAGE
    )
    assert confirmed[1] == 1
    assert (
        list_cases(session, as_of=dt.date(2020, 2, 3), within=None, status="confirmed", page=PAGE)[
            1
        ]
        == 0
    )
    assert (
        list_cases(session, as_of=dt.date(2020, 2, 3), within=None, status="active", page=PAGE)[1]
        == 1
    )
    assert active_cases_by_microgrid(session, as_of=dt.date(2020, 2, 10)) == {MG_B1: 1}
    assert active_cases_by_microgrid(session, as_of=dt.date(2020, 2, 20)) == {}
    assert cases_total_by_microgrid(session, as_of=dt.date(2020, 2, 20)) == {MG_B1: 1}
    assert cases_total_by_microgrid(session, as_of=dt.date(2020, 1, 31)) == {}


def test_ruled_out_leaves_the_cumulative_figure_from_its_date(session, county) -> None:
    case_id = report(session, resident_id=county.alice, status="suspected")
    change_case_status(
        session, case_id=case_id, status="ruled_out", effective_on=dt.date(2020, 2, 3),
        note=None, today=TODAY,
    )  # fmt: skip
    assert cases_total_by_microgrid(session, as_of=dt.date(2020, 2, 2)) == {MG_A1: 1}
    assert cases_total_by_microgrid(session, as_of=dt.date(2020, 2, 3)) == {}


def test_a_backdated_change_is_kept_but_the_latest_stays_current(session, county) -> None:
    case_id = report(session, resident_id=county.alice, status="suspected")
    change_case_status(
        session, case_id=case_id, status="recovered", effective_on=dt.date(2020, 2, 20),
        note=None, today=TODAY,
    )  # fmt: skip
    detail = change_case_status(
        session, case_id=case_id, status="confirmed", effective_on=dt.date(2020, 2, 4),
        note="late entry", today=TODAY,
    )  # fmt: skip
    assert detail.case.status == "recovered"
    assert [h.status for h in detail.history] == ["suspected", "confirmed", "recovered"]
    # Same-day changes: the one recorded last wins.
    change_case_status(
        session, case_id=case_id, status="confirmed", effective_on=dt.date(2020, 2, 20),
        note="correction", today=TODAY,
    )  # fmt: skip
    assert case_detail(session, case_id=case_id).case.status == "confirmed"
    assert active_cases_by_microgrid(session, as_of=dt.date(2020, 2, 20)) == {MG_A1: 1}


def test_household_and_address_cases(session, county) -> None:
    in_household = report(session, household_id=county.household_b1)
    unlocated = report(session, household_id=county.household_unlocated)
    address = report(session, address="某镇某村 12 号", county_code=COUNTY)
    homeless = report(session, resident_id=county.carol)  # a resident with no household
    day = dt.date(2020, 2, 2)
    assert active_cases_by_microgrid(session, as_of=day) == {MG_B1: 1}
    assert unplaced_cases(session, as_of=day, active_only=True) == 3
    detail = case_detail(session, case_id=address)
    assert (detail.case.county_code, detail.address, detail.case.person) == (
        COUNTY,
        "某镇某村 12 号",
        None,
    )
    # The county lists every case of its own, placed or not; a town only placed ones.
    in_county = list_cases(session, as_of=day, within=COUNTY, status=None, page=PAGE)[0]
    assert sorted(c.id for c in in_county) == sorted([in_household, unlocated, address, homeless])
    in_b = list_cases(session, as_of=day, within=TOWN_B, status=None, page=PAGE)[0]
    assert [c.id for c in in_b] == [in_household]


def test_figures_equal_an_independent_recount(session, county) -> None:
    people = [county.alice, county.bob, county.carol, county.dave]
    statuses = ["suspected", "confirmed", "asymptomatic", "recovered", "ruled_out"]
    for i in range(24):
        case_id = report(
            session, resident_id=people[i % 4], status=statuses[i % 3],
            reported_on=dt.date(2020, 2, 1 + i % 5),
        )  # fmt: skip
        for step in range(i % 4):
            change_case_status(
                session, case_id=case_id, status=statuses[(i + step * 2) % 5],
                effective_on=dt.date(2020, 2, 6 + (i * 7 + step * 3) % 15), note=None, today=TODAY,
            )  # fmt: skip
    seen = set()
    for day in (
        dt.date(2020, 1, 31),
        dt.date(2020, 2, 3),
        dt.date(2020, 2, 12),
        dt.date(2020, 2, 29),
    ):
        active = active_cases_by_microgrid(session, as_of=day)
        assert active == recount(session, as_of=day, statuses=ACTIVE)
        total = cases_total_by_microgrid(session, as_of=day)
        assert total == recount(session, as_of=day, statuses=NOT_RULED_OUT)
        seen |= {(k, v) for k, v in active.items()} | {(k, v) for k, v in total.items()}
    assert {code for code, _ in seen} == {MG_A1, MG_B1, MG_O1}  # the recount is not vacuous
    assert max(n for _, n in seen) > 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "exactly one of resident_id, household_id or address"),
        ({"resident_id": "alice", "household_id": "a1"}, "(got resident_id, household_id)"),
        ({"resident_id": 999_999_999}, "no resident with id 999999999"),
        ({"household_id": 999_999_999}, "no household with id 999999999"),
        ({"address": "某村"}, "needs county_code"),
        ({"address": "某村", "county_code": TOWN_A}, f"county_code {TOWN_A!r} is not a county"),
        ({"address": "  "}, "address is empty"),
        (
            {"resident_id": "alice", "county_code": OTHER_COUNTY},
            "disagrees with the resident's county",
        ),
        ({"resident_id": "alice", "status": "cured"}, "status 'cured' is not one of"),
        ({"resident_id": "alice", "reported_on": dt.date(2020, 3, 2)}, "is after today"),
        (
            {"resident_id": "alice", "onset_date": dt.date(2020, 2, 2)},
            "onset_date 2020-02-02 is after",
        ),
        ({"resident_id": "alice", "note": "a\x00b"}, "NUL"),
    ],
)
def test_bad_reports_are_refused_with_the_reason(session, county, fields, reason) -> None:
    named = {"alice": county.alice, "a1": county.household_a1}
    fields = {k: named.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    with pytest.raises(InvalidInput, match=reason.replace("(", r"\(").replace(")", r"\)")):
        report(session, **fields)
    assert session.execute(text("SELECT count(*) FROM case_report")).scalar_one() == 0


def test_bad_status_changes_are_refused(session, county) -> None:
    case_id = report(session, resident_id=county.alice)
    with pytest.raises(InvalidInput, match="before the case was reported"):
        change_case_status(
            session, case_id=case_id, status="recovered", effective_on=dt.date(2020, 1, 31),
            note=None, today=TODAY,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="after today"):
        change_case_status(
            session, case_id=case_id, status="recovered", effective_on=dt.date(2020, 3, 2),
            note=None, today=TODAY,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="status 'gone'"):
        change_case_status(
            session, case_id=case_id, status="gone", effective_on=dt.date(2020, 2, 2),
            note=None, today=TODAY,
        )  # fmt: skip
    with pytest.raises(NotFound, match="no case with id 999999999"):
        change_case_status(
            session, case_id=999_999_999, status="recovered", effective_on=dt.date(2020, 2, 2),
            note=None, today=TODAY,
        )  # fmt: skip
    with pytest.raises(NotFound):
        case_detail(session, case_id=999_999_999)
    assert len(case_detail(session, case_id=case_id).history) == 1


def test_person_is_masked(session, county) -> None:
    detail = case_detail(session, case_id=report(session, resident_id=county.alice))
    person = detail.case.person
    assert person is not None and person.name == "张丽"
    assert person.id_number == county.alice_id_number[:4] + "*" * 10 + county.alice_id_number[-4:]
    assert person.phone == "138****8000"
    assert county.alice_id_number not in repr(detail) and county.alice_phone not in repr(detail)
