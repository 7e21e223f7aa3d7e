"""Geocoding of one address, and the review queue of addresses not guessed.

``GET /api/geocode`` is a lookup against the standard address registry
(``read_aggregates``), limited to the account's areas: a building or
fallback area outside them is answered as no match at all. The review queue
names households (``read_personal``); resolving an item needs
``resolve_review`` and an item, building and point inside the account's areas.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import Point
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep, require_object_in_scope, scoped_within
from api.deps import ApiSettingsDep, AsOfDep, SessionDep
from api.paging import Limit, Offset, page_of, paged
from api.routes.areas import AREA_CODE_MAX, BIGINT_MAX, NO_NUL
from db.access import Scope, area_in_scope
from db.geocoder import Location, address_index, locate, registry_counties, resolve_county
from db.people import buildings_in_areas
from db.review import list_review, resolve_review
from geo.crs import parse_crs, to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.localtime import local_today

router = APIRouter(prefix="/api/geocode", tags=["geocoding"])


def _overlaps_scope(session: Session, principal: Principal, *, code: str, as_of: dt.date) -> bool:
    """Whether area ``code`` is in the scope, or holds one of its roots (a county
    a township's commander works in)."""
    scope = principal.scope
    if area_in_scope(session, code=code, scope=scope, as_of=as_of):
        return True
    inside = Scope(everything=False, roots=(code,))
    return any(area_in_scope(session, code=r, scope=inside, as_of=as_of) for r in scope.roots)


def scoped_county(
    session: Session, principal: Principal, *, county: str | None, as_of: dt.date,
    inside: bool,
) -> str:  # fmt: skip
    """The registry county a request works on. An admin: as ``resolve_county``.
    Others: the one named must be ``inside`` their scope (or, with
    ``inside=False``, at least overlap it), else it is answered as a county
    without a registry; none named, the one registry county that qualifies."""
    if principal.scope.everything:
        return resolve_county(session, county_code=county)

    def qualifies(code: str) -> bool:
        if inside:
            return area_in_scope(session, code=code, scope=principal.scope, as_of=as_of)
        return _overlaps_scope(session, principal, code=code, as_of=as_of)

    if county is not None:
        if county not in registry_counties(session) or not qualifies(county):
            raise NotFound(f"county {county} has no standard address registry in your areas")
        return county
    mine = [c for c in registry_counties(session) if qualifies(c)]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise NotFound("no standard address registry is loaded for your areas")
    raise InvalidInput(
        f"several counties have a registry ({', '.join(mine)}): name one with county="
    )


def _scoped_location(
    session: Session, principal: Principal, *, location: Location, as_of: dt.date
) -> Location:
    """The location with every building and area outside the scope taken out:
    an answer outside it reads as no match."""
    scope = principal.scope
    if scope.everything:
        return location
    ids = [int(c["building_id"]) for c in location.candidates]
    if location.building_id is not None:
        ids.append(location.building_id)
    visible = buildings_in_areas(session, building_ids=ids, roots=scope.roots, as_of=as_of)
    candidates = [c for c in location.candidates if int(c["building_id"]) in visible]
    outside = (location.building_id is not None and location.building_id not in visible) or (
        location.area_code is not None
        and not area_in_scope(session, code=location.area_code, scope=scope, as_of=as_of)
    )
    if outside:
        return Location("none", "review", None, None, None, "unmatched", candidates)
    return dataclasses.replace(location, candidates=candidates)


@router.get("", summary="Match one free-text address against the standard address registry")
def geocode(
    principal: PrincipalDep,
    session: SessionDep,
    as_of: AsOfDep,
    address: Annotated[
        str,
        Query(
            min_length=1,
            max_length=500,
            pattern=NO_NUL,
            description="Free text, e.g. 新兴县新城镇州背社区人民路12号",
        ),
    ],
    county: Annotated[
        str | None,
        Query(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="County code (default: the only county with a registry in your areas)",
        ),
    ] = None,
) -> dict[str, Any]:
    principal.require("read_aggregates")
    county_code = scoped_county(session, principal, county=county, as_of=as_of, inside=False)
    match = address_index(session, county_code=county_code).match(address)
    location = locate(session, county_code=county_code, match=match, as_of=as_of)
    location = _scoped_location(session, principal, location=location, as_of=as_of)
    return {"address": address, "county": county_code, **asdict(location)}


@router.get("/review", summary="Addresses waiting for a person to choose their building or point")
def review_queue(
    principal: PrincipalDep, request: Request, session: SessionDep, settings: ApiSettingsDep,
    as_of: AsOfDep,
    within: Annotated[str | None, Query(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="Area code (default: your area)")] = None,
    status: Annotated[Literal["open", "resolved"], Query()] = "open",
    limit: Limit = None, offset: Offset = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_personal")
    page = page_of(settings, limit=limit, offset=offset)
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    items, matched = list_review(session, as_of=as_of, within=scoped, status=status, page=page)
    return {"items": [asdict(i) for i in items]} | paged(
        request, page=page, matched=matched, returned=len(items)
    )


class GeoJSONPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: Annotated[
        list[Annotated[float, Field(allow_inf_nan=False)]], Field(min_length=2, max_length=2)
    ]


class Resolution(BaseModel):
    """Exactly one of ``building_id`` or ``point`` (with its ``crs``, default WGS84)."""

    model_config = ConfigDict(extra="forbid")
    building_id: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None = None
    point: GeoJSONPoint | None = None
    crs: str = "wgs84"


@router.post("/review/{review_id}/resolve", summary="Place the household at a building or a point")
def resolve(
    principal: PrincipalDep,
    review_id: Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Review item id")],
    body: Resolution,
    session: SessionDep,
) -> dict[str, Any]:
    principal.require("resolve_review")
    today = local_today()
    require_object_in_scope(
        session, principal, kind="review", object_id=review_id, noun="review item", as_of=today
    )
    point: Point | None = None
    if body.point is not None:
        lon, lat = body.point.coordinates
        crs = parse_crs(body.crs)
        if crs.is_wgs84 and not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise InvalidInput(f"point ({lon}, {lat}) is not a lon/lat position")
        converted = to_wgs84(Point(lon, lat), crs=crs)
        assert isinstance(converted, Point)
        point = converted
    roots = None if principal.scope.everything else principal.scope.roots
    item = resolve_review(
        session, review_id=review_id, building_id=body.building_id, point_4326=point,
        roots=roots, as_of=today,
    )  # fmt: skip
    return asdict(item)
