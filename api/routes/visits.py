"""Screening rounds and door visits (visits idempotent, one at a time or in batches).

Every route needs an account. Rounds: creating one needs ``manage_rounds``
and its area in scope; reading them ``read_aggregates``, and a round exists
for the caller when its area is in scope or contains one of the scope's roots
(its figures count only households in scope). Visits: recording needs
``record_visits`` and the household (and round) in scope — an outside one is
refused in the words a missing one gets —; the visit's ``worker`` is the
account. Reading visits needs ``read_personal`` and lists only households in
scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from api.auth import PrincipalDep, require_object_in_scope
from api.deps import ApiSettingsDep, AsOfDep, SessionDep
from api.errors import status_for
from api.paging import Limit, Offset, page_of, paged
from db.visits import (
    Recorder,
    create_round,
    get_round,
    list_rounds,
    list_visits,
    round_figures,
    submit_visit,
    submit_visit_batch,
)
from geo.errors import InvalidInput, WanggeError
from geo.localtime import CHINA_TZ, local_today

router = APIRouter(prefix="/api", tags=["visits"])


class RoundIn(BaseModel):
    """A new screening round over an area (dates inclusive)."""

    model_config = ConfigDict(extra="forbid")

    area_code: str
    name: str
    start_date: dt.date
    end_date: dt.date


_VISIT_BODY_DOC = (
    "One visit object, or a JSON array of them (a batch answered item by item)."
    " Members: household_id (required), round_id (default: the household's active"
    " round on the visit date), result (complete, partial, nobody_home, refused, vacant),"
    " persons_seen (≥ 0, default 0), note, visited_at (ISO 8601; no offset means"
    " China Standard Time; default now; at most 5 min ahead), location (GeoJSON Point,"
    " required), crs (of location: wgs84 default, gcj02, bd09, EPSG:n), far_reason"
    " (required beyond 100 m), temperatures (readings taken at the door: [{resident_id,"
    " temperature_c}], residents of the household, stored as their temperature checks at"
    " visited_at), idempotency_key (batch items). The worker is the account"
    " sending it: a body naming worker (or id, county_code, distance_m, created_at) is refused."
)


@router.post(
    "/rounds", status_code=201, summary="Create a screening round over an area",
)  # fmt: skip
def post_round(session: SessionDep, principal: PrincipalDep, body: RoundIn) -> dict[str, Any]:
    principal.require("manage_rounds")
    record = create_round(
        session, area_code=body.area_code, name=body.name,
        start_date=body.start_date, end_date=body.end_date, scope=principal.scope,
    )  # fmt: skip
    return asdict(record)


@router.get("/rounds", summary="Screening rounds, by area (up and down the hierarchy) and date")
def rounds(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: ApiSettingsDep,
    as_of: AsOfDep,
    within: Annotated[str | None, Query(description="Area code: rounds over it, an ancestor or a descendant")] = None,
    active_on: Annotated[dt.date | None, Query(description="Only rounds whose dates cover this day")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_aggregates")
    page = page_of(settings, limit=limit, offset=offset)
    records, matched = list_rounds(
        session, within=within, active_on=active_on, as_of=as_of, page=page,
        scope=principal.scope,
    )  # fmt: skip
    return {"items": [asdict(r) for r in records]} | paged(
        request, page=page, matched=matched, returned=len(records)
    )


@router.get("/rounds/{round_id}", summary="One screening round with its coverage figures")
def round_detail(
    round_id: int, session: SessionDep, principal: PrincipalDep, as_of: AsOfDep
) -> dict[str, Any]:
    principal.require("read_aggregates")
    require_object_in_scope(
        session, principal, kind="round", object_id=round_id, noun="screening round", as_of=as_of
    )
    record = get_round(session, round_id=round_id)
    figures = round_figures(session, round_id=round_id, as_of=as_of, scope=principal.scope)
    return asdict(record) | {"figures": asdict(figures)}


@router.post(
    "/visits", status_code=201, response_model=None,
    summary="Record a visit (201), or a batch of visits (200 all stored, 207 some refused)",
)  # fmt: skip
def post_visits(
    session: SessionDep,
    principal: PrincipalDep,
    payload: Annotated[dict[str, Any] | list[Any], Body(description=_VISIT_BODY_DOC)],
    idempotency_key: Annotated[str | None, Header(description="One key per visit: a resend with the same key and body gets the same answer")] = None,
) -> JSONResponse:  # fmt: skip
    principal.require("record_visits")
    now = dt.datetime.now(dt.UTC)
    recorder = Recorder(
        worker=principal.account.name, scope=principal.scope, today=now.astimezone(CHINA_TZ).date()
    )
    if isinstance(payload, list):
        if idempotency_key is not None:
            raise InvalidInput(
                "a batch takes no Idempotency-Key header: give each item its own idempotency_key"
            )
        answers = submit_visit_batch(session, payloads=payload, now=now, recorder=recorder)
        results = [_batch_item(answer, index=i) for i, answer in enumerate(answers)]
        failed = any(isinstance(a, WanggeError) for a in answers)
        return JSONResponse({"results": results}, status_code=207 if failed else 200)
    submission = submit_visit(
        session, payload=payload, idempotency_key=idempotency_key, now=now, recorder=recorder
    )
    headers = {"Idempotent-Replayed": "true"} if submission.replayed else None
    return JSONResponse(submission.visit, status_code=submission.status_code, headers=headers)


def _batch_item(answer: Any, *, index: int) -> dict[str, Any]:
    """A stored visit with its index and status, or a problem object with its index."""
    if isinstance(answer, WanggeError):
        return {
            "type": "about:blank", "title": answer.title, "status": status_for(answer),
            "detail": str(answer), "index": index, **answer.extra,
        }  # fmt: skip
    visit: dict[str, Any] = answer.visit
    return visit | {"index": index, "status": answer.status_code, "replayed": answer.replayed}


@router.get("/visits", summary="Stored visits of a household and/or a round")
def visits(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: ApiSettingsDep,
    household_id: Annotated[int | None, Query(description="Visits of this household")] = None,
    round_id: Annotated[int | None, Query(alias="round", description="Visits in this round (id)")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_personal")
    page = page_of(settings, limit=limit, offset=offset)
    items, matched = list_visits(
        session, household_id=household_id, round_id=round_id, page=page,
        scope=principal.scope, as_of=local_today(),
    )  # fmt: skip
    return {"items": items} | paged(request, page=page, matched=matched, returned=len(items))
