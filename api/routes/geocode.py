"""Geocoding of one address, and the review queue of addresses not guessed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import Point

from api.deps import ApiSettingsDep, AsOfDep, SessionDep
from api.paging import Limit, Offset, page_of, paged
from db.geocoder import address_index, locate, resolve_county
from db.review import list_review, resolve_review
from geo.crs import parse_crs, to_wgs84
from geo.errors import InvalidInput

router = APIRouter(prefix="/api/geocode", tags=["geocoding"])


@router.get("", summary="Match one free-text address against the standard address registry")
def geocode(
    session: SessionDep,
    as_of: AsOfDep,
    address: Annotated[
        str,
        Query(
            min_length=1,
            max_length=500,
            description="Free text, e.g. 新兴县新城镇州背社区人民路12号",
        ),
    ],
    county: Annotated[
        str | None, Query(description="County code (default: the only county with a registry)")
    ] = None,
) -> dict[str, Any]:
    county_code = resolve_county(session, county_code=county)
    match = address_index(session, county_code=county_code).match(address)
    location = locate(session, county_code=county_code, match=match, as_of=as_of)
    return {"address": address, "county": county_code, **asdict(location)}


@router.get("/review", summary="Addresses waiting for a person to choose their building or point")
def review_queue(
    request: Request, session: SessionDep, settings: ApiSettingsDep, as_of: AsOfDep,
    within: Annotated[str | None, Query(description="Area code")] = None,
    status: Annotated[Literal["open", "resolved"], Query()] = "open",
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    page = page_of(settings, limit=limit, offset=offset)
    items, matched = list_review(session, as_of=as_of, within=within, status=status, page=page)
    return {"items": [asdict(i) for i in items]} | paged(
        request, page=page, matched=matched, returned=len(items)
    )


class GeoJSONPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: Annotated[list[float], Field(min_length=2, max_length=2)]


class Resolution(BaseModel):
    """Exactly one of ``building_id`` or ``point`` (with its ``crs``, default WGS84)."""

    model_config = ConfigDict(extra="forbid")
    building_id: int | None = None
    point: GeoJSONPoint | None = None
    crs: str = "wgs84"


@router.post("/review/{review_id}/resolve", summary="Place the household at a building or a point")
def resolve(review_id: int, body: Resolution, session: SessionDep) -> dict[str, Any]:
    point: Point | None = None
    if body.point is not None:
        lon, lat = body.point.coordinates
        crs = parse_crs(body.crs)
        if crs.is_wgs84 and not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidInput(f"point ({lon}, {lat}) is not a lon/lat position")
        converted = to_wgs84(Point(lon, lat), crs=crs)
        assert isinstance(converted, Point)
        point = converted
    item = resolve_review(
        session, review_id=review_id, building_id=body.building_id, point_4326=point
    )
    return asdict(item)
