"""The micro-grid editor's API: a grid's micro-grids with their ETags, a
draft checked before saving, and the edits — redraw, create, split, merge,
delete, replace all (a suggestion applied) — each refusing a stale version
(``If-Match`` → 412, none → 428), plus each area's history.

Editing needs ``edit_microgrids`` (grid leaders, admins) and an area inside
the account's own; geometry comes in as GeoJSON in ``crs`` (WGS84 default,
GCJ-02, BD-09 or EPSG:n) and is stored in WGS84.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep, require_area_in_scope
from api.deps import CrsDep, SessionDep
from api.responses import GeoJSONResponse
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from db import microgrids as edits
from db.microgrids import Editor, EditResult
from geo.crs import Crs, to_wgs84
from geo.errors import InvalidInput, PreconditionRequired
from geo.geojson import geometry_to_geojson
from geo.localtime import local_today
from geo.suggest import Building, suggest_microgrids

router = APIRouter(prefix="/api", tags=["micro-grid editor"])

IfMatch = Annotated[
    str | None,
    Header(description="The ETag of the version you edit (from GET …/microgrids); required"),
]
MAX_SHAPES = 500


class ShapeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    reason: str = Field(max_length=edits.MAX_REASON_CHARS)
    name: str | None = Field(default=None, max_length=100)


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    code: str | None = Field(
        default=None,
        max_length=AREA_CODE_MAX,
        description="the micro-grid redrawn (none: a new one)",
    )


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: dict[str, Any] = Field(description="GeoJSON LineString drawn across the micro-grid")
    reason: str = Field(max_length=edits.MAX_REASON_CHARS)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[Annotated[str, Field(max_length=AREA_CODE_MAX)]] = Field(
        min_length=2, max_length=20
    )
    reason: str = Field(max_length=edits.MAX_REASON_CHARS)


class ReplaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometries: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SHAPES)
    reason: str = Field(max_length=edits.MAX_REASON_CHARS)


def _geometry(
    value: dict[str, Any], *, crs: Crs, kinds: tuple[str, ...], what: str
) -> BaseGeometry:
    """A GeoJSON geometry of one of ``kinds``, in WGS84; ``InvalidInput`` naming the problem."""
    if value.get("type") not in kinds:
        raise InvalidInput(
            f"{what} must be a GeoJSON {' or '.join(kinds)} (got type {value.get('type')!r})"
        )
    try:
        geom = shape(value)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise InvalidInput(f"{what} is not valid GeoJSON: {error}") from None
    if geom.is_empty:
        raise InvalidInput(f"{what} is empty")
    return geom if crs.is_wgs84 else to_wgs84(geom, crs=crs)


def _editor(principal: Principal, *, reason: str) -> Editor:
    return Editor(author=principal.account.name, reason=reason, today=local_today())


def _may_edit(session: Session, principal: Principal, *, code: str) -> None:
    """403 without the capability; 404, as for a missing area, outside the account's areas."""
    principal.require("edit_microgrids")
    require_area_in_scope(session, principal, code=code, as_of=local_today())


def _if_match(value: str | None) -> str:
    if not value:
        raise PreconditionRequired(
            "send If-Match with the ETag of the version you edit (GET /api/areas/{grid}/microgrids)"
        )
    return value


def _result(result: EditResult) -> dict[str, Any]:
    return {
        "action": result.action, "grid": result.grid_code, "saved": result.saved,
        "ended": list(result.ended), "households": result.households,
        "households_moved": result.households_moved, "gap_m2": result.gap_m2,
        "unassigned_in_grid": result.unassigned_in_grid, "edit_id": result.edit_id,
    }  # fmt: skip


def _band(households: int, *, low: int, high: int) -> str:
    return "below" if households < low else "above" if households > high else "within"


@router.get("/areas/{grid}/microgrids", response_class=GeoJSONResponse,
            summary="A grid's micro-grids for the editor: each with its ETag and households")  # fmt: skip
def grid_microgrids(
    grid: str, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    low: Annotated[int, Query(alias="min", ge=1)] = 30,
    high: Annotated[int, Query(alias="max", ge=1)] = 50,
) -> GeoJSONResponse:  # fmt: skip
    _may_edit(session, principal, code=grid)
    microgrids = edits.grid_microgrids(session, grid_code=grid)
    counts = edits.household_counts(session, codes=[m.code for m in microgrids])
    the_grid = edits.current_grid(session, code=grid)
    return GeoJSONResponse({
        "type": "FeatureCollection",
        "grid": {"code": the_grid.code, "name": the_grid.name,
                 "geometry": geometry_to_geojson(the_grid.geom_4326, crs=crs)},
        "layout_etag": edits.layout_etag(microgrids),
        "band": {"min": low, "max": high},
        "features": [
            {"type": "Feature", "id": m.code,
             "geometry": geometry_to_geojson(m.geom_4326, crs=crs),
             "properties": {"code": m.code, "name": m.name, "version": m.version, "etag": m.etag,
                            "valid_from": m.valid_from.isoformat(), "households": counts[m.code],
                            "band": _band(counts[m.code], low=low, high=high)}}
            for m in microgrids
        ],
        "buildings": [
            {"type": "Feature", "id": b.key,
             "geometry": geometry_to_geojson(Point(b.lon, b.lat), crs=crs),
             "properties": {"households": b.households}}
            for b in edits.grid_building_points(session, grid_code=grid)
        ],
        "unassigned": [
            {"type": "Feature", "id": h["id"], "geometry": geometry_to_geojson(h["point"], crs=crs),
             "properties": {"household_id": h["id"]}}
            for h in edits.unassigned_households(session, grid_code=grid)
        ],
    })  # fmt: skip


@router.post("/areas/{grid}/check-microgrid", summary="Check a drawn micro-grid without saving it")
def check_microgrid(
    grid: str, body: DraftIn, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    low: Annotated[int, Query(alias="min", ge=1)] = 30,
    high: Annotated[int, Query(alias="max", ge=1)] = 50,
) -> dict[str, Any]:  # fmt: skip
    _may_edit(session, principal, code=grid)
    draft = _geometry(body.geometry, crs=crs, kinds=("Polygon", "MultiPolygon"), what="geometry")
    checked = edits.check_draft(session, grid_code=grid, shape_4326=draft, code=body.code)
    result = checked.shape
    return {
        "ok": result.ok, "problems": list(result.problems), "households": checked.households,
        "band": _band(checked.households, low=low, high=high), "area_m2": result.area_m2,
        "outside_m2": result.outside_m2, "overlaps_m2": result.overlaps_m2, "gap_m2": checked.gap_m2,
        "overlaps": {code: geometry_to_geojson(g, crs=crs) for code, g in result.overlaps_4326.items()},
        "geometry": None if result.geom_4326 is None else geometry_to_geojson(result.geom_4326, crs=crs),
    }  # fmt: skip


@router.put("/areas/{code}/geometry", summary="Redraw a micro-grid (If-Match required)",
            responses={412: {"description": "stale ETag"}, 428: {"description": "no If-Match"}})  # fmt: skip
def put_geometry(
    code: str, body: ShapeIn, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    response: Response, if_match: IfMatch = None,
) -> dict[str, Any]:  # fmt: skip
    _may_edit(session, principal, code=code)
    tag = _if_match(if_match)
    geom = _geometry(body.geometry, crs=crs, kinds=("Polygon", "MultiPolygon"), what="geometry")
    result = edits.redraw(session, code=code, shape_4326=geom, if_match=tag,
                          editor=_editor(principal, reason=body.reason))  # fmt: skip
    response.headers["ETag"] = result.saved[code]
    return _result(result)


@router.post("/areas/{grid}/microgrids", status_code=201, summary="Draw a new micro-grid in a grid")
def create_microgrid(
    grid: str, body: ShapeIn, principal: PrincipalDep, session: SessionDep, crs: CrsDep
) -> dict[str, Any]:
    _may_edit(session, principal, code=grid)
    geom = _geometry(body.geometry, crs=crs, kinds=("Polygon", "MultiPolygon"), what="geometry")
    result = edits.create(session, grid_code=grid, shape_4326=geom, name=body.name,
                          editor=_editor(principal, reason=body.reason))  # fmt: skip
    return _result(result)


@router.put("/areas/{grid}/microgrids", summary="Replace all of a grid's micro-grids (a suggestion applied)",
            responses={412: {"description": "stale layout ETag"}, 428: {"description": "no If-Match"}})  # fmt: skip
def replace_microgrids(
    grid: str, body: ReplaceIn, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    if_match: IfMatch = None,
) -> dict[str, Any]:  # fmt: skip
    _may_edit(session, principal, code=grid)
    tag = _if_match(if_match)
    shapes = [
        _geometry(g, crs=crs, kinds=("Polygon", "MultiPolygon"), what=f"geometries[{i}]")
        for i, g in enumerate(body.geometries)
    ]
    result = edits.replace_all(session, grid_code=grid, shapes_4326=shapes, if_match=tag,
                               editor=_editor(principal, reason=body.reason))  # fmt: skip
    return _result(result)


@router.post("/areas/{code}/split", summary="Split a micro-grid along a drawn line (If-Match required)",
             responses={412: {"description": "stale ETag"}, 428: {"description": "no If-Match"}})  # fmt: skip
def split_microgrid(
    code: str, body: SplitIn, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    if_match: IfMatch = None,
) -> dict[str, Any]:  # fmt: skip
    _may_edit(session, principal, code=code)
    tag = _if_match(if_match)
    line = _geometry(body.line, crs=crs, kinds=("LineString",), what="line")
    result = edits.split(session, code=code, line_4326=line, if_match=tag,
                         editor=_editor(principal, reason=body.reason))  # fmt: skip
    return _result(result)


@router.post("/areas/merge", summary="Merge micro-grids that touch (If-Match: every one's ETag)",
             responses={412: {"description": "stale ETag"}, 428: {"description": "no If-Match"}})  # fmt: skip
def merge_microgrids(
    body: MergeIn, principal: PrincipalDep, session: SessionDep, if_match: IfMatch = None
) -> dict[str, Any]:
    for code in body.codes:
        _may_edit(session, principal, code=code)
    tag = _if_match(if_match)
    result = edits.merge(session, codes=body.codes, if_match=tag,
                         editor=_editor(principal, reason=body.reason))  # fmt: skip
    return _result(result)


@router.delete("/areas/{code}", summary="Delete a micro-grid (If-Match required)",
               responses={412: {"description": "stale ETag"}, 428: {"description": "no If-Match"}})  # fmt: skip
def delete_microgrid(
    code: str, principal: PrincipalDep, session: SessionDep,
    reason: Annotated[str, Query(max_length=edits.MAX_REASON_CHARS, description="why")],
    give_to: Annotated[
        str | None,
        Query(max_length=AREA_CODE_MAX, pattern=NO_NUL,
              description="a neighbouring micro-grid that takes its area and households (none: they become unassigned)"),
    ] = None,
    if_match: IfMatch = None,
) -> dict[str, Any]:  # fmt: skip
    _may_edit(session, principal, code=code)
    if give_to is not None:
        _may_edit(session, principal, code=give_to)
    tag = _if_match(if_match)
    result = edits.delete(session, code=code, if_match=tag, give_to=give_to,
                          editor=_editor(principal, reason=reason))  # fmt: skip
    return _result(result)


@router.get(
    "/areas/{code}/history", summary="Every boundary version of an area and every edit of it"
)
def area_history(code: str, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    principal.require("read_aggregates")
    require_area_in_scope(session, principal, code=code, as_of=local_today())
    return edits.history(session, code=code)


@router.post("/areas/{grid}/suggest-microgrids", response_class=GeoJSONResponse,
             summary="Suggest a partition of a grid into micro-grids of min–max households (a preview)")  # fmt: skip
def suggest(
    grid: str, principal: PrincipalDep, session: SessionDep, crs: CrsDep,
    low: Annotated[int, Query(alias="min", ge=1, le=10_000)] = 30,
    high: Annotated[int, Query(alias="max", ge=1, le=10_000)] = 50,
) -> GeoJSONResponse:  # fmt: skip
    _may_edit(session, principal, code=grid)
    if low > high:
        raise InvalidInput(f"min ({low}) is more than max ({high})")
    the_grid = edits.current_grid(session, code=grid)
    buildings = [
        Building(building_id=b.key, lon=b.lon, lat=b.lat, households=b.households)
        for b in edits.grid_building_points(session, grid_code=grid)
    ]
    suggestion = suggest_microgrids(the_grid.geom_4326, buildings, min_households=low,
                                    max_households=high)  # fmt: skip
    microgrids = edits.grid_microgrids(session, grid_code=grid)
    return GeoJSONResponse({
        "type": "FeatureCollection",
        "grid": grid, "band": {"min": low, "max": high},
        "layout_etag": edits.layout_etag(microgrids),
        "reasons": list(suggestion.reasons),
        "within_band": sum(p.within_band for p in suggestion.parts),
        "features": [
            {"type": "Feature", "id": i + 1,
             "geometry": geometry_to_geojson(p.geom_4326, crs=crs),
             "properties": {"part": i + 1, "households": p.households,
                            "buildings": len(p.building_ids), "within_band": p.within_band,
                            "band": _band(p.households, low=low, high=high)}}
            for i, p in enumerate(suggestion.parts)
        ],
    })  # fmt: skip
