"""Read API of the area hierarchy: GeoJSON Features and FeatureCollections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import ApiSettingsDep, AsOfDep, CrsDep, SessionDep
from api.responses import GeoJSONResponse
from db.areas import AreaRecord, BBox, child_areas, get_area, list_areas
from geo.crs import Crs
from geo.geojson import feature, geometry_to_geojson

router = APIRouter(prefix="/api/areas", tags=["areas"])


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
    request: Request,
    session: SessionDep,
    settings: ApiSettingsDep,
    as_of: AsOfDep,
    crs: CrsDep,
    level: Annotated[
        str | None, Query(description="city, county, township, community, grid or microgrid")
    ] = None,
    within: Annotated[str | None, Query(description="Only descendants of this area code")] = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> GeoJSONResponse:
    page = min(limit or settings.page_limit_default, settings.page_limit_max)
    records, matched = list_areas(
        session, as_of=as_of, level=level, within=within,
        bbox=BBox.parse(bbox) if bbox else None, limit=page, offset=offset,
    )  # fmt: skip
    links = []
    if offset + len(records) < matched:
        links.append(
            {
                "rel": "next",
                "href": str(request.url.include_query_params(offset=offset + page, limit=page)),
            }
        )
    body = collection(
        records, crs=crs, numberMatched=matched, numberReturned=len(records),
        limit=page, offset=offset, links=links,
    )  # fmt: skip
    return GeoJSONResponse(body)


@router.get("/{code}", response_class=GeoJSONResponse, summary="One area as a GeoJSON Feature")
def area(code: str, session: SessionDep, as_of: AsOfDep, crs: CrsDep) -> GeoJSONResponse:
    return GeoJSONResponse(area_feature(get_area(session, code=code, as_of=as_of), crs=crs))


@router.get("/{code}/children", response_class=GeoJSONResponse, summary="The children of an area")
def children(code: str, session: SessionDep, as_of: AsOfDep, crs: CrsDep) -> GeoJSONResponse:
    records = child_areas(session, code=code, as_of=as_of)
    body = collection(records, crs=crs, numberMatched=len(records), numberReturned=len(records))
    return GeoJSONResponse(body)
