"""Standard addresses, households and residents — paged, filterable, masked.

Buildings (standard addresses) are aggregates (``read_aggregates``);
households and residents are personal (``read_personal``: never the wall
viewer, a commander only when the account allows it). Everything is limited
to the account's areas: an object outside them answers exactly as a missing
one. Full ID and phone numbers leave only through the reveal, for roles with
``reveal``, with a reason, audited.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import (
    PrincipalDep,
    require_area_in_scope,
    require_object_in_scope,
    scoped_within,
)
from api.deps import ApiSettingsDep, AsOfDep, CrsDep, SessionDep
from api.paging import Limit, Offset, page_of, paged
from api.responses import GeoJSONResponse
from api.routes.areas import AREA_CODE_MAX, BIGINT_MAX, NO_NUL, AreaCodePath
from api.routes.layers import require_round_in_scope
from db.areas import BBox
from db.audit import append
from db.people import (
    BuildingRecord,
    HouseholdRecord,
    list_buildings,
    list_households,
    list_residents,
    resident_detail,
    reveal_identifiers,
)
from geo.crs import Crs
from geo.errors import InvalidInput
from geo.geojson import feature, geometry_to_geojson
from geo.localtime import local_today

router = APIRouter(prefix="/api", tags=["people"])

ResidentId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Resident id")]


def _point(geom: Any, *, crs: Crs) -> dict[str, Any] | None:
    return None if geom is None else geometry_to_geojson(geom, crs=crs)


def building_feature(record: BuildingRecord, *, crs: Crs) -> dict[str, Any]:
    return feature(
        feature_id=str(record.id), geometry=_point(record.geom_4326, crs=crs),
        properties={"id": record.id, "code": record.code, "address": record.address,
                    "households": record.households, **record.parts},
    )  # fmt: skip


def household_feature(record: HouseholdRecord, *, crs: Crs) -> dict[str, Any]:
    properties = {k: v for k, v in asdict(record).items() if k != "geom_4326"}
    return feature(
        feature_id=str(record.id), geometry=_point(record.geom_4326, crs=crs), properties=properties
    )


@router.get(
    "/buildings",
    response_class=GeoJSONResponse,
    summary="Standard addresses (buildings) with their points",
)
def buildings(
    principal: PrincipalDep, request: Request, session: SessionDep, settings: ApiSettingsDep,
    as_of: AsOfDep, crs: CrsDep,
    within: Annotated[str | None, Query(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="Area code: buildings whose point lies in it (default: your area)")] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> GeoJSONResponse:  # fmt: skip
    principal.require("read_aggregates")
    page = page_of(settings, limit=limit, offset=offset)
    box = BBox.parse(bbox, max_km2=settings.max_bbox_km2) if bbox else None
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    records, matched = list_buildings(session, as_of=as_of, within=scoped, bbox=box, page=page)
    body = {
        "type": "FeatureCollection",
        "features": [building_feature(r, crs=crs) for r in records],
    }
    return GeoJSONResponse(body | paged(request, page=page, matched=matched, returned=len(records)))


@router.get(
    "/areas/{code}/households", response_class=GeoJSONResponse,
    summary="The households behind an area's figures (located, unlocated, in review)",
)  # fmt: skip
def area_households(
    principal: PrincipalDep, code: AreaCodePath, request: Request, session: SessionDep,
    settings: ApiSettingsDep, as_of: AsOfDep, crs: CrsDep,
    status: Annotated[str | None, Query(
        description="located, unlocated, review; or a layer's: complete, incomplete, unvisited"
        " (in the round), quarantine_overdue (on as_of)")] = None,
    round_id: Annotated[int | None, Query(
        alias="round", description="Screening round for complete/incomplete/unvisited;"
        " default: the one in progress")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> GeoJSONResponse:  # fmt: skip
    principal.require("read_personal")
    page = page_of(settings, limit=limit, offset=offset)
    require_area_in_scope(session, principal, code=code, as_of=as_of)
    require_round_in_scope(session, principal, round_id=round_id, as_of=as_of)
    records, matched = list_households(
        session, as_of=as_of, within=code, status=status, page=page, round_id=round_id
    )
    body = {
        "type": "FeatureCollection",
        "features": [household_feature(r, crs=crs) for r in records],
    }
    return GeoJSONResponse(body | paged(request, page=page, matched=matched, returned=len(records)))


@router.get("/residents", summary="Residents living in an area (masked), filterable")
def residents(
    principal: PrincipalDep, request: Request, session: SessionDep, settings: ApiSettingsDep,
    as_of: AsOfDep,
    within: Annotated[str | None, Query(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="Area code: residents whose household lies in it (default: your area)")] = None,
    category: Annotated[str | None, Query(description="local_permanent, nonlocal_permanent, local_temporary, nonlocal_temporary")] = None,
    tag: Annotated[str | None, Query(max_length=64, pattern=NO_NUL, description="hubei_linked, abroad_14d, close_contact, fever, …")] = None,
    quarantine: Annotated[str | None, Query(description="active, released or none")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_personal")
    page = page_of(settings, limit=limit, offset=offset)
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    records, matched = list_residents(
        session, as_of=as_of, within=scoped, category=category, tag=tag, quarantine=quarantine,
        page=page,
    )  # fmt: skip
    return {"items": [asdict(r) for r in records]} | paged(
        request, page=page, matched=matched, returned=len(records)
    )


@router.get(
    "/residents/{resident_id}",
    summary="One resident (masked) with quarantines, temperatures and history",
)
def resident(
    principal: PrincipalDep, resident_id: ResidentId, session: SessionDep, as_of: AsOfDep
) -> dict[str, Any]:
    principal.require("read_personal")
    require_object_in_scope(
        session, principal, kind="resident", object_id=resident_id, noun="resident", as_of=as_of
    )
    detail = resident_detail(session, resident_id=resident_id, today=as_of)
    return asdict(detail)


class RevealRequest(BaseModel):
    """Why the full numbers are needed; recorded in the audit trail."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=4, max_length=500, description="Why the full numbers are needed")


REVEAL_PATH = "/residents/{resident_id}/reveal"


@router.post(
    REVEAL_PATH,
    summary="The full ID and phone numbers of one resident, with a reason (audited)",
)
def reveal(
    principal: PrincipalDep, resident_id: ResidentId, body: RevealRequest, session: SessionDep
) -> dict[str, Any]:
    principal.require("reveal")
    reason = body.reason.strip()
    if len(reason) < 4:
        raise InvalidInput("reason: say why the full numbers are needed (at least 4 characters)")
    require_object_in_scope(
        session, principal, kind="resident", object_id=resident_id, noun="resident",
        as_of=local_today(),
    )  # fmt: skip
    revealed = reveal_identifiers(session, resident_id=resident_id)
    account = principal.account
    append(
        session, action="reveal", user_id=account.id, user_name=account.name, role=account.role,
        method="POST", path=router.prefix + REVEAL_PATH, object_type="residents",
        object_id=str(resident_id), area_code=revealed.area_code, reason=reason,
    )  # fmt: skip
    return {
        "resident_id": revealed.resident_id,
        "id_number": revealed.id_number,
        "phone": revealed.phone,
    }
