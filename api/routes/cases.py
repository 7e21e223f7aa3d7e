"""Cases: report one, change its status (history kept), read one, list them
by where the person lives and by status on a date. Persons leave masked.

Every route needs an account. Reporting and changing a status need
``manage_cases`` and the person, household, county or case in scope; reading
a case or the list needs ``read_personal`` (a wall viewer, or a commander
without personal access, gets 403). A case whose person lives outside the
scope does not exist for the caller (404, the words of a missing one), and
lists are cut to the scope (``within`` defaults to the account's area)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PrincipalDep, require_object_in_scope, scoped_within
from api.deps import ApiSettingsDep, SessionDep
from api.paging import page_of, paged
from db.cases import (
    CaseDetail,
    CaseReport,
    case_detail,
    change_case_status,
    list_cases,
    report_case,
)
from geo.localtime import local_today

router = APIRouter(prefix="/api/cases", tags=["cases"])

BIGINT_MAX = 2**63 - 1
CaseStatus = Literal["suspected", "confirmed", "asymptomatic", "recovered", "ruled_out"]
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
NoNul = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Text = Annotated[str, Field(max_length=2_000, pattern=NoNul)]
CaseId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Case id")]


class CaseIn(BaseModel):
    """A new case. Say who with exactly one of ``resident_id``, ``household_id``
    or ``address`` (then ``county_code`` too). It counts where the person lives,
    whatever ``reported_by`` says."""

    model_config = ConfigDict(extra="forbid")

    resident_id: Id | None = None
    household_id: Id | None = None
    address: Text | None = None
    county_code: Annotated[str, Field(max_length=12, pattern=NoNul)] | None = Field(
        default=None, description="Required with a bare address: the county the case belongs to"
    )
    status: CaseStatus
    reported_on: dt.date
    onset_date: dt.date | None = None
    reported_by: Text | None = Field(
        default=None, description="Where it was reported, e.g. a hospital in another town"
    )
    note: Text | None = None


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CaseStatus
    effective_on: dt.date
    note: Text | None = None


def _detail(detail: CaseDetail) -> dict[str, Any]:
    return asdict(detail.case) | {
        "address": detail.address,
        "note": detail.note,
        "history": [asdict(h) for h in detail.history],
    }


@router.post("", status_code=201, summary="Report a case (its first status is the report)")
def create_case(
    body: CaseIn, session: SessionDep, principal: PrincipalDep, response: Response
) -> dict[str, Any]:
    principal.require("manage_cases")
    report = CaseReport(**body.model_dump())
    detail = report_case(session, report=report, today=local_today(), scope=principal.scope)
    response.headers["Location"] = f"/api/cases/{detail.case.id}"
    return _detail(detail)


@router.post("/{case_id}/status", summary="Change a case's status from a date (history kept)")
def change_status(
    case_id: CaseId, body: StatusIn, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    principal.require("manage_cases")
    require_object_in_scope(
        session, principal, kind="case", object_id=case_id, noun="case", as_of=local_today()
    )
    detail = change_case_status(
        session, case_id=case_id, status=body.status, effective_on=body.effective_on,
        note=body.note, today=local_today(),
    )  # fmt: skip
    return _detail(detail)


@router.get("/{case_id}", summary="One case with its status history (person masked)")
def get_case(case_id: CaseId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require("read_personal")
    require_object_in_scope(
        session, principal, kind="case", object_id=case_id, noun="case", as_of=local_today()
    )
    return _detail(case_detail(session, case_id=case_id))


@router.get("", summary="Cases by where the person lives and by status on a date (paged)")
def cases(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: ApiSettingsDep,
    within: Annotated[str | None, Query(max_length=32, pattern=NoNul, description="Area code: cases whose person lives in it")] = None,
    status: Annotated[str | None, Query(max_length=16, description="Status on as_of: suspected, confirmed, asymptomatic, recovered, ruled_out, or active (the first three)")] = None,
    as_of: Annotated[dt.date | None, Query(description="Status on this date (default today, Asia/Shanghai)")] = None,
    limit: Annotated[int | None, Query(ge=1, description="Page size (capped by the server)")] = None,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_personal")
    page = page_of(settings, limit=limit, offset=offset)
    day = as_of or local_today()
    area = scoped_within(session, principal, within=within, as_of=day)
    records, matched = list_cases(session, as_of=day, within=area, status=status, page=page)
    return {"items": [asdict(r) for r in records]} | paged(
        request, page=page, matched=matched, returned=len(records)
    )
