"""Cases (病例): reports, their status history, and counts where people live.

What this module promises:

* A case counts where the person **lives** — the micro-grid of the resident's
  household, else of the case's own household — never where it was reported
  (``reported_by``, for example a hospital in another township).
* A case's status on a date is that of its latest ``case_status_change``
  effective on or before the date (a tie on the date: the one recorded last).
  The first change is the report itself, effective on ``reported_on``; a case
  does not exist before it. ``case_report.status`` is the latest status.
* Dates of the day are Asia/Shanghai local dates (:func:`local_today`).
* Personal data leaves masked: ID numbers ``4453**********1234``, phones
  ``138****5678`` (DESIGN.md, privacy).
* Bad references in an input (an unknown resident, household or county) are
  :class:`InvalidInput`; an unknown case asked for by id is :class:`NotFound`.
  A resident, household or county outside the caller's scope is refused in
  the very words a missing one gets (the caller checks a case's own id with
  :func:`db.access.object_in_scope`).
* ``county_code`` of a case of a known person comes from their record; ids,
  ``home_microgrid_code`` and times are the server's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import Scope, area_in_scope, object_in_scope
from db.areas import IN_FORCE, SUBTREE_CODES, require_area
from db.models import ACTIVE_CASE_STATUSES, CASE_STATUSES
from db.paging import Page
from geo.errors import InvalidInput, NotFound
from geo.registry import mask_id_number, mask_phone

# A status filter may also ask for every active status at once.
ACTIVE = "active"
MAX_TEXT_CHARS = 2_000


@dataclass(frozen=True)
class CaseReport:
    """A new case: exactly one of ``resident_id``, ``household_id`` or ``address``
    says who it is; ``county_code`` is required (and only used) with a bare address."""

    status: str
    reported_on: dt.date
    resident_id: int | None = None
    household_id: int | None = None
    address: str | None = None
    county_code: str | None = None
    onset_date: dt.date | None = None
    reported_by: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CasePerson:
    """The registered person of a case, masked."""

    resident_id: int
    name: str
    id_number: str | None  # masked
    phone: str | None  # masked


@dataclass(frozen=True)
class StatusChange:
    status: str
    effective_on: dt.date
    changed_at: dt.datetime
    note: str | None


@dataclass(frozen=True)
class CaseRecord:
    """A case as lists show it; ``status`` is its status on the date asked."""

    id: int
    county_code: str
    status: str
    reported_on: dt.date
    onset_date: dt.date | None
    reported_by: str | None
    person: CasePerson | None
    household_id: int | None
    home_microgrid_code: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRecord
    address: str | None  # the case's own address, else its household's
    note: str | None
    history: list[StatusChange] = field(default_factory=list)


# -- SQL fragments --------------------------------------------------------------------------
# Status ``st.status`` of case ``c`` on :as_of; a case not yet reported then has none (no row).
_STATUS_AS_OF = (
    " CROSS JOIN LATERAL (SELECT s.status FROM case_status_change s WHERE s.case_id = c.id"
    " AND s.effective_on <= :as_of ORDER BY s.effective_on DESC, s.id DESC LIMIT 1) st"
)
# Where the person lives: the resident's household, else the case's household.
_FROM = (
    "case_report c LEFT JOIN resident r ON r.id = c.resident_id"
    " LEFT JOIN household h ON h.id = coalesce(r.household_id, c.household_id)"
)
_COLUMNS = (
    "c.id, c.county_code, {status}, c.reported_on, c.onset_date, c.reported_by,"
    " r.id, r.name, r.id_number, r.phone, c.household_id, h.microgrid_code, c.updated_at,"
    " coalesce(c.address, h.address), c.note"
)
# Latest status of every case on :as_of, one row per case reported by then.
_LATEST = """
WITH latest AS (
    SELECT DISTINCT ON (s.case_id) s.case_id, s.status
    FROM case_status_change s WHERE s.effective_on <= :as_of
    ORDER BY s.case_id, s.effective_on DESC, s.id DESC
)
"""


def _record(row: Any) -> CaseRecord:
    person = None
    if row[6] is not None:
        person = CasePerson(
            resident_id=int(row[6]),
            name=row[7],
            id_number=mask_id_number(row[8]) if row[8] else None,
            phone=mask_phone(row[9]) if row[9] else None,
        )
    return CaseRecord(
        id=int(row[0]), county_code=row[1], status=row[2], reported_on=row[3], onset_date=row[4],
        reported_by=row[5], person=person, household_id=row[10], home_microgrid_code=row[11],
        updated_at=row[12],
    )  # fmt: skip


def _check_status(status: str) -> None:
    if status not in CASE_STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(CASE_STATUSES)}")


def _check_text(name: str, value: str | None) -> None:
    if value is None:
        return
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL character")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(f"{name} is longer than {MAX_TEXT_CHARS} characters")


# -- writes --------------------------------------------------------------------------------------
def report_case(
    session: Session, *, report: CaseReport, today: dt.date, scope: Scope
) -> CaseDetail:
    """Store a new case and its first status change (effective ``reported_on``).

    Its ``county_code`` comes from the resident's or household's record; a bare
    address needs ``county_code`` naming a county area in force on ``reported_on``.
    Refuses (``InvalidInput``, with the reason) an unknown status, resident or
    household, a report dated after ``today``, an onset after the report, and a
    county given that disagrees with the person's record. The resident,
    household or county must lie in ``scope`` (on ``today``; the county on
    ``reported_on``), or it is refused as a missing one.
    """
    _check_report(report, today=today)
    county_code = _case_county(session, report=report, scope=scope, today=today)
    case_id = int(
        session.execute(
            text(
                "INSERT INTO case_report (county_code, resident_id, household_id, address, status,"
                " reported_on, onset_date, reported_by, note)"
                " VALUES (:county, :resident, :household, :address, :status, :reported_on, :onset,"
                " :reported_by, :note) RETURNING id"
            ),
            {
                "county": county_code, "resident": report.resident_id,
                "household": report.household_id, "address": report.address,
                "status": report.status, "reported_on": report.reported_on,
                "onset": report.onset_date, "reported_by": report.reported_by, "note": report.note,
            },
        ).scalar_one()
    )  # fmt: skip
    _insert_change(
        session, case_id=case_id, status=report.status, effective_on=report.reported_on, note=None
    )
    return case_detail(session, case_id=case_id)


def _check_report(report: CaseReport, *, today: dt.date) -> None:
    _check_status(report.status)
    given = [
        name
        for name, value in (
            ("resident_id", report.resident_id),
            ("household_id", report.household_id),
            ("address", report.address),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            "say who the case is with exactly one of resident_id, household_id or address"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if report.address is not None and not report.address.strip():
        raise InvalidInput("address is empty")
    for name in ("address", "reported_by", "note", "county_code"):
        _check_text(name, getattr(report, name))
    if report.reported_on > today:
        raise InvalidInput(f"reported_on {report.reported_on} is after today ({today})")
    if report.onset_date is not None and report.onset_date > report.reported_on:
        raise InvalidInput(
            f"onset_date {report.onset_date} is after reported_on {report.reported_on}"
        )


def _case_county(session: Session, *, report: CaseReport, scope: Scope, today: dt.date) -> str:
    """The county the case belongs to, from the person's record (or the body, for
    an address); what it names must be in ``scope``."""

    def in_scope(kind: str, object_id: int) -> bool:
        return scope.everything or object_in_scope(
            session, kind=kind, object_id=object_id, scope=scope, as_of=today
        )

    if report.resident_id is not None:
        row = session.execute(
            text("SELECT county_code FROM resident WHERE id = :id"), {"id": report.resident_id}
        ).first()
        if row is None or not in_scope("resident", report.resident_id):
            raise InvalidInput(f"no resident with id {report.resident_id}")
        return _agreeing(str(row[0]), given=report.county_code, whose="the resident's")
    if report.household_id is not None:
        row = session.execute(
            text("SELECT county_code FROM household WHERE id = :id"), {"id": report.household_id}
        ).first()
        if row is None or not in_scope("household", report.household_id):
            raise InvalidInput(f"no household with id {report.household_id}")
        return _agreeing(str(row[0]), given=report.county_code, whose="the household's")
    if report.county_code is None:
        raise InvalidInput("a case known only by its address needs county_code")
    found = session.execute(
        text(f"SELECT 1 FROM area a WHERE a.code = :code AND a.level = 'county' AND {IN_FORCE}"),
        {"code": report.county_code, "as_of": report.reported_on},
    ).first()
    if found is None or not area_in_scope(
        session, code=report.county_code, scope=scope, as_of=report.reported_on
    ):
        raise InvalidInput(
            f"county_code {report.county_code!r} is not a county area"
            f" in force on {report.reported_on}"
        )
    return report.county_code


def _agreeing(county: str, *, given: str | None, whose: str) -> str:
    if given is not None and given != county:
        raise InvalidInput(f"county_code {given!r} disagrees with {whose} county {county!r}")
    return county


def _insert_change(
    session: Session, *, case_id: int, status: str, effective_on: dt.date, note: str | None
) -> None:
    session.execute(
        text(
            "INSERT INTO case_status_change (case_id, status, effective_on, note)"
            " VALUES (:case_id, :status, :effective_on, :note)"
        ),
        {"case_id": case_id, "status": status, "effective_on": effective_on, "note": note},
    )


def change_case_status(
    session: Session,
    *,
    case_id: int,
    status: str,
    effective_on: dt.date,
    note: str | None,
    today: dt.date,
) -> CaseDetail:
    """Record a status change (kept in the history) and set ``case_report.status``
    to the latest effective status. ``NotFound`` for an unknown case;
    ``InvalidInput`` for an unknown status or ``effective_on`` before the report
    or after ``today``. A change dated before an existing later one is kept in the
    history but leaves the current status to the later one."""
    _check_status(status)
    _check_text("note", note)
    row = session.execute(
        text("SELECT reported_on FROM case_report WHERE id = :id FOR UPDATE"), {"id": case_id}
    ).first()
    if row is None:
        raise NotFound(f"no case with id {case_id}")
    reported_on: dt.date = row[0]
    if effective_on < reported_on:
        raise InvalidInput(
            f"effective_on {effective_on} is before the case was reported ({reported_on})"
        )
    if effective_on > today:
        raise InvalidInput(f"effective_on {effective_on} is after today ({today})")
    _insert_change(session, case_id=case_id, status=status, effective_on=effective_on, note=note)
    session.execute(
        text(
            "UPDATE case_report c SET status = latest.status, updated_at = now() FROM"
            " (SELECT s.status FROM case_status_change s WHERE s.case_id = :id"
            "  ORDER BY s.effective_on DESC, s.id DESC LIMIT 1) AS latest WHERE c.id = :id"
        ),
        {"id": case_id},
    )
    return case_detail(session, case_id=case_id)


# -- reads ---------------------------------------------------------------------------------------
def case_detail(session: Session, *, case_id: int) -> CaseDetail:
    """One case with its current status, masked person, home micro-grid and
    full status history (oldest first); ``NotFound`` for an unknown id."""
    row = session.execute(
        text(f"SELECT {_COLUMNS.format(status='c.status')} FROM {_FROM} WHERE c.id = :id"),
        {"id": case_id},
    ).first()
    if row is None:
        raise NotFound(f"no case with id {case_id}")
    history = [
        StatusChange(status=s[0], effective_on=s[1], changed_at=s[2], note=s[3])
        for s in session.execute(
            text(
                "SELECT status, effective_on, changed_at, note FROM case_status_change"
                " WHERE case_id = :id ORDER BY effective_on, id"
            ),
            {"id": case_id},
        )
    ]
    return CaseDetail(case=_record(row), address=row[13], note=row[14], history=history)


def _status_filter(status: str | None) -> tuple[str, dict[str, Any]]:
    if status is None:
        return "TRUE", {}
    if status == ACTIVE:
        return "st.status = ANY(:statuses)", {"statuses": list(ACTIVE_CASE_STATUSES)}
    if status not in CASE_STATUSES:
        raise InvalidInput(
            f"status {status!r} is not one of {', '.join(CASE_STATUSES)} (or {ACTIVE})"
        )
    return "st.status = :status", {"status": status}


def list_cases(
    session: Session, *, as_of: dt.date, within: str | None, status: str | None, page: Page
) -> tuple[list[CaseRecord], int]:
    """Cases reported on or before ``as_of``, each with its status on that date,
    ordered by report date then id, and how many match.

    ``status`` filters on the status as of the date (``active``: suspected,
    confirmed or asymptomatic). ``within`` (an area in force on ``as_of``)
    keeps the cases whose person lives in a micro-grid of its subtree; asked
    for a county, it also keeps that county's cases with no micro-grid (a bare
    address, an unlocated household), which are never dropped.
    """
    clause, params = _status_filter(status)
    clauses = ["c.reported_on <= :as_of", clause]
    params |= {"as_of": as_of}
    if within is not None:
        require_area(session, code=within, as_of=as_of)
        clauses.append(
            f"(h.microgrid_code IN ({SUBTREE_CODES})"
            " OR (h.microgrid_code IS NULL AND c.county_code = :within))"
        )
        params["within"] = within
    where = " AND ".join(clauses)
    source = _FROM + _STATUS_AS_OF
    matched = int(
        session.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_COLUMNS.format(status='st.status')} FROM {source} WHERE {where}"
            " ORDER BY c.reported_on, c.id LIMIT :limit OFFSET :offset"
        ),
        params | {"limit": page.limit, "offset": page.offset},
    ).all()
    return [_record(r) for r in rows], matched


# -- figures by micro-grid ---------------------------------------------------------------------
def _by_microgrid(session: Session, *, as_of: dt.date, statuses: tuple[str, ...]) -> dict[str, int]:
    rows = session.execute(
        text(
            _LATEST + f"SELECT h.microgrid_code, count(*) FROM {_FROM}"
            " JOIN latest l ON l.case_id = c.id"
            " WHERE c.reported_on <= :as_of AND l.status = ANY(:statuses)"
            " AND h.microgrid_code IS NOT NULL GROUP BY h.microgrid_code"
        ),
        {"as_of": as_of, "statuses": list(statuses)},
    ).all()
    return {str(code): int(n) for code, n in rows}


def active_cases_by_microgrid(session: Session, *, as_of: dt.date) -> dict[str, int]:
    """Cases whose status on ``as_of`` is suspected, confirmed or asymptomatic,
    counted by the micro-grid where the person lives. Micro-grids with none are
    absent; cases with no micro-grid are left out here and counted by
    :func:`unplaced_cases`."""
    return _by_microgrid(session, as_of=as_of, statuses=ACTIVE_CASE_STATUSES)


def cases_total_by_microgrid(session: Session, *, as_of: dt.date) -> dict[str, int]:
    """Cumulative cases: reported on or before ``as_of`` and not ruled out as of
    then (recovered ones still count), by the micro-grid where the person lives.
    Cases with no micro-grid are counted by :func:`unplaced_cases`."""
    kept = tuple(s for s in CASE_STATUSES if s != "ruled_out")
    return _by_microgrid(session, as_of=as_of, statuses=kept)


def unplaced_cases(session: Session, *, as_of: dt.date, active_only: bool) -> int:
    """Cases reported by ``as_of`` (not ruled out; with ``active_only``, active)
    whose person has no micro-grid — a bare address or an unlocated household:
    the figure the per-micro-grid counts cannot show, so it is never lost."""
    statuses = ACTIVE_CASE_STATUSES if active_only else tuple(
        s for s in CASE_STATUSES if s != "ruled_out"
    )  # fmt: skip
    return int(
        session.execute(
            text(
                _LATEST + f"SELECT count(*) FROM {_FROM} JOIN latest l ON l.case_id = c.id"
                " WHERE c.reported_on <= :as_of AND l.status = ANY(:statuses)"
                " AND h.microgrid_code IS NULL"
            ),
            {"as_of": as_of, "statuses": list(statuses)},
        ).scalar_one()
    )
