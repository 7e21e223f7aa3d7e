"""OGC API – Features (Part 1: Core, GeoJSON, OpenAPI 3.0) under ``/ogc``,
so QGIS, GDAL (``OAPIF:http://host/ogc``) and other clients read Wangge.

Collections: one per area level present in the database, named by the level
(``city``, ``county``, ``township``, ``community``, ``grid``, ``microgrid``),
and ``checkpoints``. Area features have the area code as ``id``; checkpoints
their integer id. Coordinates are WGS84 lon/lat (CRS84), 6 decimals.

Items take ``bbox`` (``minLon,minLat,maxLon,maxLat`` or the 6-number 3D form,
CRS84; features whose geometry intersects it), ``limit`` (default 10; larger
than ``WANGGE_PAGE_LIMIT_MAX`` is lowered to it), ``offset`` and ``datetime``:
for areas one date or date-time (its date part) picks the boundaries in force
that day (default today); intervals are refused. Checkpoints have no validity
period, so ``datetime`` is checked but selects all of them. Invalid parameters
are 400, unknown collections and features 404, both ``application/problem+json``.
Every link is absolute, built from the URL the request came in on.

Access: every path needs a logged-in account with ``read_aggregates`` (send
``Authorization: Bearer <token>``; GDAL: ``GDAL_HTTP_HEADERS``). Items are
those of the account's areas — areas whose ancestor-or-self is one of them,
checkpoints whose point lies in one of them — and a feature outside them is
404 like a missing one; collection extents are computed over the same
features. A ``bbox`` larger than ``WANGGE_MAX_BBOX_KM2`` (its area on the
sphere, not in degrees²) is refused with 422 naming the cap; a ``limit``
above the page cap is lowered to it, as OGC API – Features allows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep
from api.deps import ApiSettingsDep, SessionDep
from api.responses import GeoJSONResponse
from api.settings import ApiSettings
from db.areas import BBox
from db.models import AREA_LEVELS
from db.ogc import (
    AreaItem,
    CheckpointItem,
    CollectionExtent,
    area_extents,
    area_item,
    area_level_exists,
    area_page,
    checkpoint_extent,
    checkpoint_item,
    checkpoint_page,
)
from geo.errors import NotFound
from geo.geojson import feature, geometry_to_geojson

router = APIRouter(prefix="/ogc", tags=["ogc"])

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CHECKPOINTS = "checkpoints"
DEFAULT_LIMIT = 10  # OGC API – Features' default page size
TITLES = {
    "city": ("市 City", "City (地级市) boundaries"),
    "county": ("县（区）County", "County and district (县、区) boundaries"),
    "township": ("乡镇（街道）Township", "Township and sub-district (乡镇、街道) boundaries"),
    "community": ("村（社区）Community", "Village and community (村、社区) boundaries"),
    "grid": ("网格 Grid", "Grids (网格) of 300–500 households, with land and sea grids"),
    "microgrid": ("微网格 Micro-grid", "Micro-grids (微网格) of 30–50 households"),
    CHECKPOINTS: ("卡口 Checkpoints", "Checkpoints (卡口) where people and vehicles are checked"),
}

FormatQuery = Annotated[
    str | None, Query(description="Output format: json (the only one served; GeoJSON for items)")
]


# ------------------------------------------------------------------ parameters


def _bad_request(detail: str) -> HTTPException:
    # OGC API – Features answers an invalid parameter with 400 (not 422).
    return HTTPException(status_code=400, detail=detail)


def _check_format(f: str | None) -> None:
    if f is not None and f.lower() not in ("json", "geojson"):
        raise _bad_request(f"f={f!r}: only f=json is served")


def _parse_limit(value: str | None, settings: ApiSettings) -> int:
    if value is None:
        return min(DEFAULT_LIMIT, settings.page_limit_max)
    try:
        limit = int(value)
    except ValueError:
        raise _bad_request(f"limit {value!r}: give a whole number from 1") from None
    if limit < 1:
        raise _bad_request(f"limit {value!r}: give a whole number from 1")
    # Larger than the cap is lowered to it (OGC allows a server to cap the page).
    return min(limit, settings.page_limit_max)


def _parse_offset(value: str | None) -> int:
    if value is None:
        return 0
    try:
        offset = int(value)
    except ValueError:
        raise _bad_request(f"offset {value!r}: give a whole number from 0") from None
    if offset < 0:
        raise _bad_request(f"offset {value!r}: give a whole number from 0")
    return offset


def _parse_bbox(value: str | None) -> BBox | None:
    """``minLon,minLat,maxLon,maxLat`` (or ``minLon,minLat,minZ,maxLon,maxLat,maxZ``) in CRS84."""
    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise _bad_request(
            f"bbox {value!r}: give four numbers minLon,minLat,maxLon,maxLat (or six with heights)"
        )
    min_lon, min_lat, max_lon, max_lat = numbers
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise _bad_request(f"bbox {value!r}: longitudes must lie in [-180, 180]")
    if not (-90 <= min_lat <= max_lat <= 90):
        raise _bad_request(f"bbox {value!r}: latitudes must lie in [-90, 90], the lower first")
    if min_lon > max_lon:
        raise _bad_request(f"bbox {value!r}: boxes across the antimeridian are not supported")
    return BBox(min_lon, min_lat, max_lon, max_lat)


def _parse_datetime(value: str | None) -> dt.date | None:
    """One RFC 3339 date or date-time (its date part); intervals are refused."""
    if value is None:
        return None
    if "/" in value:
        raise _bad_request(
            f"datetime {value!r}: intervals are not supported; give one date (YYYY-MM-DD)"
            " to get the boundaries in force that day"
        )
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        raise _bad_request(
            f"datetime {value!r}: give an RFC 3339 date (2020-02-01) or date-time (2020-02-01T08:00:00Z)"
        ) from None


# ----------------------------------------------------------------------- links


def _root(request: Request) -> str:
    """Absolute URL of /ogc on the host and port the request came in on."""
    return str(request.base_url).rstrip("/") + router.prefix


def _link(href: str, rel: str, media_type: str, title: str | None = None) -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": media_type}
    if title:
        out["title"] = title
    return out


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ collections


def _collection(request: Request, collection_id: str, extent: CollectionExtent) -> dict[str, Any]:
    title, description = TITLES[collection_id]
    url = f"{_root(request)}/collections/{collection_id}"
    body: dict[str, Any] = {
        "id": collection_id,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(url, "self", JSON, title),
            _link(f"{url}/items", "items", GEOJSON, f"{title}: items"),
        ],
    }
    extent_body: dict[str, Any] = {}
    if extent.bbox_4326 is not None:
        x0, y0, x1, y1 = extent.bbox_4326
        # Rounded outwards to 6 decimals, so the box still holds every feature.
        box = [_floor6(x0), _floor6(y0), _ceil6(x1), _ceil6(y1)]
        extent_body["spatial"] = {"bbox": [box], "crs": CRS84}
    if extent.first_day is not None:
        end = extent.last_day.isoformat() + "T00:00:00Z" if extent.last_day else None
        extent_body["temporal"] = {
            "interval": [[extent.first_day.isoformat() + "T00:00:00Z", end]],
            "trs": GREGORIAN,
        }
    if extent_body:
        body["extent"] = extent_body
    return body


def _floor6(value: float) -> float:
    return math.floor(round(value * 1e6, 3)) / 1e6


def _ceil6(value: float) -> float:
    return math.ceil(round(value * 1e6, 3)) / 1e6


def _area_level(session: Session, collection_id: str) -> str:
    """The area level a collection id names; ``NotFound`` for any other id."""
    if collection_id in AREA_LEVELS and area_level_exists(session, level=collection_id):
        return collection_id
    raise NotFound(f"no collection {collection_id!r}; GET /ogc/collections lists them")


# --------------------------------------------------------------------- features


def _area_feature(item: AreaItem) -> dict[str, Any]:
    return feature(
        feature_id=item.code,
        geometry=geometry_to_geojson(item.geom_4326),
        properties={
            "code": item.code,
            "name": item.name,
            "level": item.level,
            "kind": item.kind,
            "parent": item.parent_code,
            "households": item.households,
            "residents": item.residents,
            "area_km2": round(item.area_km2, 4),
            "valid_from": item.valid_from.isoformat(),
            "valid_to": item.valid_to.isoformat() if item.valid_to else None,
        },
    )


def _checkpoint_feature(item: CheckpointItem) -> dict[str, Any]:
    out = feature(
        geometry=geometry_to_geojson(item.geom_4326),
        properties={
            "name": item.name,
            "kind": item.kind,
            "active": item.active,
            "county_code": item.county_code,
            "note": item.note,
        },
    )
    out["id"] = item.id  # an integer: GDAL then uses it as the feature id
    return out


def _roots(principal: Principal) -> tuple[str, ...] | None:
    """The account's areas (None: everything), after checking it reads aggregates."""
    principal.require("read_aggregates")
    return None if principal.scope.everything else principal.scope.roots


# ----------------------------------------------------------------------- routes


@router.get("", summary="OGC API – Features landing page")
def landing_page(principal: PrincipalDep, request: Request, f: FormatQuery = None) -> JSONResponse:
    _roots(principal)
    _check_format(f)
    root = _root(request)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "title": "Wangge 网格 — OGC API – Features",
            "description": "Area boundaries of every level (city to micro-grid) and checkpoints.",
            "links": [
                _link(root, "self", JSON, "This document"),
                _link(f"{base}/openapi.json", "service-desc", OPENAPI, "The API definition"),
                _link(f"{root}/conformance", "conformance", JSON, "Conformance classes"),
                _link(f"{root}/collections", "data", JSON, "Collections"),
            ],
        }
    )


@router.get("/conformance", summary="Conformance classes implemented")
def conformance(principal: PrincipalDep, request: Request, f: FormatQuery = None) -> JSONResponse:
    _roots(principal)
    _check_format(f)
    return JSONResponse(
        {
            "conformsTo": CONFORMANCE,
            "links": [_link(f"{_root(request)}/conformance", "self", JSON)],
        }
    )


@router.get("/collections", summary="The feature collections")
def collections(
    principal: PrincipalDep, request: Request, session: SessionDep, f: FormatQuery = None
) -> JSONResponse:
    roots = _roots(principal)
    _check_format(f)
    found = area_extents(session, roots=roots) | {
        CHECKPOINTS: checkpoint_extent(session, roots=roots)
    }
    root = _root(request)
    return JSONResponse(
        {
            "links": [_link(f"{root}/collections", "self", JSON)],
            "collections": [_collection(request, cid, extent) for cid, extent in found.items()],
        }
    )


@router.get("/collections/{collection_id}", summary="One feature collection")
def collection(
    principal: PrincipalDep,
    collection_id: str,
    request: Request,
    session: SessionDep,
    f: FormatQuery = None,
) -> JSONResponse:
    roots = _roots(principal)
    _check_format(f)
    if collection_id == CHECKPOINTS:
        extent = checkpoint_extent(session, roots=roots)
    else:
        extent = area_extents(session, roots=roots)[_area_level(session, collection_id)]
    return JSONResponse(_collection(request, collection_id, extent))


@router.get(
    "/collections/{collection_id}/items",
    response_class=GeoJSONResponse,
    summary="The features of a collection, filtered and paged",
)
def items(
    principal: PrincipalDep,
    collection_id: str,
    request: Request,
    session: SessionDep,
    settings: ApiSettingsDep,
    bbox: Annotated[
        str | None,
        Query(description="minLon,minLat,maxLon,maxLat in CRS84: features intersecting it"),
    ] = None,
    limit: Annotated[
        str | None,
        Query(description="Page size, from 1 (default 10; capped at WANGGE_PAGE_LIMIT_MAX)"),
    ] = None,
    offset: Annotated[str | None, Query(description="Features to skip (default 0)")] = None,
    datetime: Annotated[
        str | None,
        Query(description="Areas: the boundaries in force on this date (default today)"),
    ] = None,
    f: FormatQuery = None,
) -> GeoJSONResponse:
    roots = _roots(principal)
    _check_format(f)
    box, as_of = _parse_bbox(bbox), _parse_datetime(datetime)
    if box is not None:
        box.require_area_at_most(settings.max_bbox_km2)
    page, start = _parse_limit(limit, settings), _parse_offset(offset)
    features: list[dict[str, Any]]
    if collection_id == CHECKPOINTS:
        checkpoints, matched = checkpoint_page(
            session, bbox=box, limit=page, offset=start, roots=roots, as_of=dt.date.today()
        )
        features = [_checkpoint_feature(c) for c in checkpoints]
    else:
        level = _area_level(session, collection_id)
        areas, matched = area_page(
            session, level=level, as_of=as_of or dt.date.today(), bbox=box, limit=page,
            offset=start, roots=roots,
        )  # fmt: skip
        features = [_area_feature(a) for a in areas]
    links = [
        _link(str(request.url), "self", GEOJSON, "This page"),
        _link(f"{_root(request)}/collections/{collection_id}", "collection", JSON),
    ]
    if start + len(features) < matched:
        next_url = request.url.include_query_params(offset=start + page, limit=page)
        links.append(_link(str(next_url), "next", GEOJSON, "Next page"))
    if start > 0:
        prev_url = request.url.include_query_params(offset=max(start - page, 0), limit=page)
        links.append(_link(str(prev_url), "prev", GEOJSON, "Previous page"))
    return GeoJSONResponse(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
            "timeStamp": _timestamp(),
            "links": links,
        }
    )


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    summary="One feature",
)
def item(
    principal: PrincipalDep,
    collection_id: str,
    feature_id: str,
    request: Request,
    session: SessionDep,
    datetime: Annotated[
        str | None,
        Query(description="Areas: the boundary in force on this date (default today)"),
    ] = None,
    f: FormatQuery = None,
) -> GeoJSONResponse:
    roots = _roots(principal)
    _check_format(f)
    as_of = _parse_datetime(datetime)
    if collection_id == CHECKPOINTS:
        if not (feature_id.isascii() and feature_id.isdigit()) or int(feature_id) >= 2**63:
            raise NotFound(f"no checkpoint with id {feature_id!r}")
        found = checkpoint_item(
            session, checkpoint_id=int(feature_id), roots=roots, as_of=dt.date.today()
        )
        body = _checkpoint_feature(found)
    else:
        level = _area_level(session, collection_id)
        day = as_of or dt.date.today()
        if "\x00" in feature_id:  # PostgreSQL text cannot hold NUL: no such area
            raise NotFound(f"no {level} with code {feature_id!r} on {day.isoformat()}")
        body = _area_feature(
            area_item(session, level=level, code=feature_id, as_of=day, roots=roots)
        )
    collection_url = f"{_root(request)}/collections/{collection_id}"
    body["links"] = [
        _link(str(request.url), "self", GEOJSON, "This feature"),
        _link(collection_url, "collection", JSON, TITLES[collection_id][0]),
    ]
    return GeoJSONResponse(body)
