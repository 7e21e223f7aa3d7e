"""Read API of the area hierarchy: GeoJSON Features and FeatureCollections.

Aggregates (``read_aggregates``), within the account's areas: an area outside
them answers exactly as a missing one (404, same words).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api.auth import PrincipalDep, require_area_in_scope, scoped_within
from api.deps import ApiSettingsDep, AsOfDep, CrsDep, SessionDep
from api.paging import Limit, Offset, page_of, paged
from api.responses import GeoJSONResponse
from db.areas import AreaRecord, BBox, child_areas, get_area, list_areas
from geo.crs import Crs
from geo.geojson import feature, geometry_to_geojson

router = APIRouter(prefix="/api/areas", tags=["areas"])

# Shared by the read routes: what PostgreSQL can hold (no NUL in text, ids in
# bigint), refused as 422 before any query rather than failing in one.
NO_NUL = r"^[^\x00]*$"
BIGINT_MAX = 2**63 - 1
AREA_CODE_MAX = 32
AreaCodePath = Annotated[
    str, Path(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="Area code")
]


def area_feature(record: AreaRecord, *, crs: Crs) -> dict[str, Any]:
    """An area as a GeoJSON Feature; figures count people where they live."""
    return feature(
        feature_id=record.code,
        geometry=geometry_to_geojson(record.geom_4326, crs=crs),
        properties={
            "code": record.code,
            "name": record.name,
            "level": record.level,
            "kind": record.kind,
            "parent": record.parent_code,
            "children": record.children,
            "area_km2": round(record.area_km2, 4),
            "households": record.households,
            "residents": record.residents,
            "synthetic": record.synthetic,
            "version": record.version,
            "valid_from": record.valid_from.isoformat(),
            "valid_to": record.valid_to.isoformat() if record.valid_to else None,
        },
    )


def collection(records: list[AreaRecord], *, crs: Crs, **members: Any) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [area_feature(r, crs=crs) for r in records],
        "crs_name": crs.label,
        **members,
    }


@router.get("", response_class=GeoJSONResponse, summary="Areas, filtered and paged")
def areas(
    principal: PrincipalDep,
    request: Request,
    session: SessionDep,
    settings: ApiSettingsDep,
    as_of: AsOfDep,
    crs: CrsDep,
    level: Annotated[
        str | None, Query(description="city, county, township, community, grid or microgrid")
    ] = None,
    within: Annotated[
        str | None,
        Query(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="Only descendants of this area code (default: your area, itself included)",
        ),
    ] = None,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat (WGS84)")
    ] = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> GeoJSONResponse:
    principal.require("read_aggregates")
    page = page_of(settings, limit=limit, offset=offset)
    box = BBox.parse(bbox, max_km2=settings.max_bbox_km2) if bbox else None
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    records, matched = list_areas(
        session, as_of=as_of, level=level, within=scoped, bbox=box,
        include_within=within is None, limit=page.limit, offset=page.offset,
    )  # fmt: skip
    body = collection(records, crs=crs)
    return GeoJSONResponse(body | paged(request, page=page, matched=matched, returned=len(records)))


@router.get("/{code}", response_class=GeoJSONResponse, summary="One area as a GeoJSON Feature")
def area(
    principal: PrincipalDep, code: AreaCodePath, session: SessionDep, as_of: AsOfDep, crs: CrsDep
) -> GeoJSONResponse:
    principal.require("read_aggregates")
    require_area_in_scope(session, principal, code=code, as_of=as_of)
    return GeoJSONResponse(area_feature(get_area(session, code=code, as_of=as_of), crs=crs))


@router.get("/{code}/children", response_class=GeoJSONResponse, summary="The children of an area")
def children(
    principal: PrincipalDep, code: AreaCodePath, session: SessionDep, as_of: AsOfDep, crs: CrsDep
) -> GeoJSONResponse:
    principal.require("read_aggregates")
    require_area_in_scope(session, principal, code=code, as_of=as_of)
    records = child_areas(session, code=code, as_of=as_of)
    body = collection(records, crs=crs, numberMatched=len(records), numberReturned=len(records))
    return GeoJSONResponse(body)
