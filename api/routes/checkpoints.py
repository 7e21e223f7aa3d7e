"""Checkpoints (GeoJSON points) and the passages recorded at them (masked).

Every route needs an account. A checkpoint exists for the caller when one of
their areas covers its point (404, the words of a missing one, otherwise).
Adding or changing one needs ``manage_checkpoints`` and the point inside the
caller's areas (422 "outside your areas"); reading them ``read_aggregates``,
lists cut to the scope. Recording passages needs ``record_passages``, reading
them ``read_personal``."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from api.auth import (
    Principal,
    PrincipalDep,
    require_area_in_scope,
    require_object_in_scope,
)
from api.deps import ApiSettingsDep, CrsDep, SessionDep
from api.paging import page_of, paged
from api.responses import GeoJSONResponse
from api.routes.cases import BIGINT_MAX, NoNul
from db.areas import BBox
from db.checkpoints import (
    CheckpointChanges,
    CheckpointRecord,
    PassageBatch,
    PassageInput,
    create_checkpoint,
    get_checkpoint,
    list_checkpoints,
    list_passages,
    record_passages,
    update_checkpoint,
)
from geo.crs import Crs, parse_crs
from geo.errors import InvalidInput
from geo.geojson import feature, geometry_to_geojson
from geo.localtime import CHINA_TZ, local_today

router = APIRouter(prefix="/api/checkpoints", tags=["checkpoints"])

Text = Annotated[str, Field(max_length=2_000, pattern=NoNul)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NoNul)]
CheckpointKind = Literal["highway_exit", "village_entrance", "estate_gate", "port"]
CheckpointId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="Checkpoint id")]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]
MAX_PASSAGES_PER_REQUEST = 5_000


class GeoJSONPoint(BaseModel):
    """A GeoJSON Point: [x, y] (lon, lat in the CRS given), an altitude ignored."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: Annotated[list[Coordinate], Field(min_length=2, max_length=3)]


class CheckpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: CheckpointKind
    location: GeoJSONPoint
    crs: Annotated[str, Field(max_length=32)] = Field(
        default="wgs84",
        description="CRS of location: wgs84 (default), cgcs2000, gcj02, bd09 or EPSG:n",
    )
    note: Text | None = None


class CheckpointPatch(BaseModel):
    """Fields to change; ``crs`` says in which CRS a new ``location`` is given."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: CheckpointKind | None = None
    location: GeoJSONPoint | None = None
    crs: Annotated[str, Field(max_length=32)] = "wgs84"
    active: bool | None = None
    note: Text | None = None


class PassageIn(BaseModel):
    """One person or vehicle through the checkpoint. Say who with at least one of
    ``resident_id``, ``id_number``, ``person_name`` or ``plate``. ``passed_at``
    without a zone is Asia/Shanghai time."""

    model_config = ConfigDict(extra="forbid")

    passed_at: dt.datetime
    direction: Literal["in", "out"] | None = None
    resident_id: Annotated[int, Field(ge=1, le=BIGINT_MAX)] | None = None
    id_number: Annotated[str, Field(max_length=40, pattern=NoNul)] | None = None
    person_name: Annotated[str, Field(max_length=200, pattern=NoNul)] | None = None
    plate: Annotated[str, Field(max_length=16, pattern=NoNul)] | None = None
    phone: Annotated[str, Field(max_length=40, pattern=NoNul)] | None = None
    temperature_c: Annotated[float, Field(ge=30.0, le=45.0, allow_inf_nan=False)] | None = None
    health_code: Literal["green", "yellow", "red"] | None = None
    origin: Text | None = None


_PASSAGE_SCHEMA = PassageIn.model_json_schema()
_PASSAGES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_PASSAGE_SCHEMA, {"type": "array", "items": _PASSAGE_SCHEMA}]}
            }
        },
    }
}


def checkpoint_feature(record: CheckpointRecord, *, crs: Crs | None = None) -> dict[str, Any]:
    properties = {k: v for k, v in asdict(record).items() if k != "geom_4326"}
    properties |= {
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }
    return feature(
        feature_id=str(record.id),
        geometry=geometry_to_geojson(record.geom_4326, crs=crs),
        properties=properties,
    )


def _xy(point: GeoJSONPoint) -> tuple[float, float]:
    return point.coordinates[0], point.coordinates[1]


def _require_checkpoint(session: Session, principal: Principal, checkpoint_id: int) -> None:
    """404, as for a missing one, unless the checkpoint lies in the caller's areas."""
    require_object_in_scope(
        session, principal, kind="checkpoint", object_id=checkpoint_id, noun="checkpoint",
        as_of=local_today(),
    )  # fmt: skip


@router.post("", status_code=201, response_class=GeoJSONResponse, summary="Add a checkpoint")
def create(body: CheckpointIn, session: SessionDep, principal: PrincipalDep) -> GeoJSONResponse:
    principal.require("manage_checkpoints")
    x, y = _xy(body.location)
    record = create_checkpoint(
        session, name=body.name, kind=body.kind, x=x, y=y, crs=parse_crs(body.crs),
        note=body.note, today=local_today(), scope=principal.scope,
    )  # fmt: skip
    return GeoJSONResponse(
        checkpoint_feature(record),
        status_code=201,
        headers={"Location": f"/api/checkpoints/{record.id}"},
    )


@router.get("", response_class=GeoJSONResponse, summary="Checkpoints (FeatureCollection, paged)")
def checkpoints(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: ApiSettingsDep,
    crs: CrsDep,
    within: Annotated[str | None, Query(max_length=32, pattern=NoNul, description="Area code: checkpoints whose point lies in it")] = None,
    kind: Annotated[str | None, Query(max_length=32, description="highway_exit, village_entrance, estate_gate or port")] = None,
    bbox: Annotated[str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive (false) ones")] = None,
    as_of: Annotated[dt.date | None, Query(description="Boundaries of `within` on this date (default today)")] = None,
    limit: Annotated[int | None, Query(ge=1, description="Page size (capped by the server)")] = None,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> GeoJSONResponse:  # fmt: skip
    principal.require("read_aggregates")
    page = page_of(settings, limit=limit, offset=offset)
    day = as_of or local_today()
    if within is not None:
        require_area_in_scope(session, principal, code=within, as_of=day)
    records, matched = list_checkpoints(
        session, as_of=day, within=within, kind=kind,
        bbox=BBox.parse(bbox) if bbox else None, active=active, page=page,
        scope=principal.scope,
    )  # fmt: skip
    body = {
        "type": "FeatureCollection",
        "features": [checkpoint_feature(r, crs=crs) for r in records],
    }
    return GeoJSONResponse(body | paged(request, page=page, matched=matched, returned=len(records)))


@router.get("/{checkpoint_id}", response_class=GeoJSONResponse, summary="One checkpoint (Feature)")
def one(
    checkpoint_id: CheckpointId, session: SessionDep, principal: PrincipalDep, crs: CrsDep
) -> GeoJSONResponse:
    principal.require("read_aggregates")
    _require_checkpoint(session, principal, checkpoint_id)
    record = get_checkpoint(session, checkpoint_id=checkpoint_id)
    return GeoJSONResponse(checkpoint_feature(record, crs=crs))


@router.patch(
    "/{checkpoint_id}", response_class=GeoJSONResponse, summary="Change a checkpoint's fields"
)
def patch(
    checkpoint_id: CheckpointId, body: CheckpointPatch, session: SessionDep,
    principal: PrincipalDep,
) -> GeoJSONResponse:  # fmt: skip
    principal.require("manage_checkpoints")
    _require_checkpoint(session, principal, checkpoint_id)
    given = body.model_fields_set
    for name in ("name", "kind", "location", "active"):
        if name in given and getattr(body, name) is None:
            raise InvalidInput(f"{name} cannot be null")
    if "crs" in given and "location" not in given:
        raise InvalidInput("crs says in which CRS a new location is given: give location too")
    changes = CheckpointChanges(
        name=body.name, kind=body.kind, active=body.active,
        location=_xy(body.location) if body.location else None, crs=parse_crs(body.crs),
        note=body.note, set_note="note" in given,
    )  # fmt: skip
    record = update_checkpoint(
        session, checkpoint_id=checkpoint_id, changes=changes, today=local_today(),
        scope=principal.scope,
    )  # fmt: skip
    return GeoJSONResponse(checkpoint_feature(record))


def _reason(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def _parse_rows(payload: Any) -> tuple[list[tuple[int, PassageInput]], list[dict[str, Any]]]:
    """Each element checked on its own: the good ones with their index, the bad ones' reasons."""
    items = payload if isinstance(payload, list) else [payload]
    good: list[tuple[int, PassageInput]] = []
    bad: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            row = PassageIn.model_validate(item)
        except ValidationError as error:
            bad.append({"index": index, "reason": _reason(error)})
            continue
        good.append((index, PassageInput(**row.model_dump())))
    return good, bad


@router.post(
    "/{checkpoint_id}/passages", status_code=201, openapi_extra=_PASSAGES_BODY,
    summary="Record passages: one object, or an array (good rows stored, bad ones reported)",
)  # fmt: skip
def post_passages(
    checkpoint_id: CheckpointId, session: SessionDep, principal: PrincipalDep,
    payload: Annotated[Any, Body()],
) -> JSONResponse:  # fmt: skip
    principal.require("record_passages")
    _require_checkpoint(session, principal, checkpoint_id)
    if isinstance(payload, list) and not payload:
        raise InvalidInput("the array holds no passage")
    if isinstance(payload, list) and len(payload) > MAX_PASSAGES_PER_REQUEST:
        raise InvalidInput(f"at most {MAX_PASSAGES_PER_REQUEST} passages per request")
    good, bad = _parse_rows(payload)
    batch = record_passages(
        session, checkpoint_id=checkpoint_id, rows=good, now=dt.datetime.now(CHINA_TZ),
        scope=principal.scope,
    )  # fmt: skip
    rejected = sorted(bad + [asdict(p) for p in batch.rejected], key=lambda p: p["index"])
    if not isinstance(payload, list):
        if rejected:
            raise InvalidInput(f"passage refused: {rejected[0]['reason']}")
        return JSONResponse(_passage(batch, 0), status_code=201)
    if not batch.stored:
        raise InvalidInput(
            f"no passage stored: all {len(rejected)} rows refused", extra={"rejected": rejected}
        )
    body = {
        "stored": len(batch.stored),
        "items": [_passage(batch, i) for i in range(len(batch.stored))],
        "rejected": rejected,
    }
    return JSONResponse(body, status_code=201)


def _passage(batch: PassageBatch, position: int) -> dict[str, Any]:
    record = asdict(batch.stored[position])
    return record | {"passed_at": batch.stored[position].passed_at.isoformat()}


@router.get("/{checkpoint_id}/passages", summary="Passages at a checkpoint (masked, paged)")
def passages(
    checkpoint_id: CheckpointId, request: Request, session: SessionDep, principal: PrincipalDep,
    settings: ApiSettingsDep,
    date: Annotated[dt.date | None, Query(description="Asia/Shanghai date of the passages (default: all)")] = None,
    flagged: Annotated[bool | None, Query(description="Only flagged (true) or unflagged (false) ones")] = None,
    limit: Annotated[int | None, Query(ge=1, description="Page size (capped by the server)")] = None,
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
) -> dict[str, Any]:  # fmt: skip
    principal.require("read_personal")
    _require_checkpoint(session, principal, checkpoint_id)
    page = page_of(settings, limit=limit, offset=offset)
    records, matched = list_passages(
        session, checkpoint_id=checkpoint_id, on=date, flagged=flagged, page=page,
        scope=principal.scope, today=local_today(),
    )  # fmt: skip
    items = [asdict(r) | {"passed_at": r.passed_at.isoformat()} for r in records]
    return {"items": items} | paged(request, page=page, matched=matched, returned=len(records))
