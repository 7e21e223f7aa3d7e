"""Standard addresses, households and residents — paged, filterable, masked."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import ApiSettingsDep, AsOfDep, CrsDep, SessionDep
from api.paging import Limit, Offset, page_of, paged
from api.responses import GeoJSONResponse
from db.areas import BBox
from db.people import (
    BuildingRecord,
    HouseholdRecord,
    list_buildings,
    list_households,
    list_residents,
    resident_detail,
)
from geo.crs import Crs
from geo.geojson import feature, geometry_to_geojson

router = APIRouter(prefix="/api", tags=["people"])


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
    request: Request, session: SessionDep, settings: ApiSettingsDep, as_of: AsOfDep, crs: CrsDep,
    within: Annotated[str | None, Query(description="Area code: buildings whose point lies in it")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> GeoJSONResponse:  # fmt: skip
    page = page_of(settings, limit=limit, offset=offset)
    records, matched = list_buildings(
        session, as_of=as_of, within=within, bbox=BBox.parse(bbox) if bbox else None, page=page
    )
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
    code: str, request: Request, session: SessionDep, settings: ApiSettingsDep, as_of: AsOfDep, crs: CrsDep,
    status: Annotated[str | None, Query(
        description="located, unlocated, review; or a layer's: complete, incomplete, unvisited"
        " (in the round), quarantine_overdue (on as_of)")] = None,
    round_id: Annotated[int | None, Query(
        alias="round", description="Screening round for complete/incomplete/unvisited;"
        " default: the one in progress")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> GeoJSONResponse:  # fmt: skip
    page = page_of(settings, limit=limit, offset=offset)
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
    request: Request, session: SessionDep, settings: ApiSettingsDep, as_of: AsOfDep,
    within: Annotated[str, Query(description="Area code: residents whose household lies in it")],
    category: Annotated[str | None, Query(description="local_permanent, nonlocal_permanent, local_temporary, nonlocal_temporary")] = None,
    tag: Annotated[str | None, Query(description="hubei_linked, abroad_14d, close_contact, fever, …")] = None,
    quarantine: Annotated[str | None, Query(description="active, released or none")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    page = page_of(settings, limit=limit, offset=offset)
    records, matched = list_residents(
        session,
        as_of=as_of,
        within=within,
        category=category,
        tag=tag,
        quarantine=quarantine,
        page=page,
    )
    return {"items": [asdict(r) for r in records]} | paged(
        request, page=page, matched=matched, returned=len(records)
    )


@router.get(
    "/residents/{resident_id}",
    summary="One resident (masked) with quarantines, temperatures and history",
)
def resident(resident_id: int, session: SessionDep, as_of: AsOfDep) -> dict[str, Any]:
    detail = resident_detail(session, resident_id=resident_id, today=as_of)
    return asdict(detail)
