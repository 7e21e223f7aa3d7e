"""Uploads (multipart): boundaries (``import_boundaries``: admins), the
standard address registry and the resident register (``import_registry``,
for a county inside the account's areas — any other county answers as a
missing area), and the rejected rows of a resident import (``import_registry``:
an admin, or an account whose areas hold the import's county).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep, require_area_in_scope
from api.deps import ApiSettingsDep, SessionDep
from api.routes.areas import AREA_CODE_MAX, BIGINT_MAX, NO_NUL
from api.routes.geocode import scoped_county
from db.access import area_in_scope
from db.addresses import import_addresses, read_address_rows
from db.areas import counties_of_points
from db.boundaries import BoundaryImportRequest, import_boundary_file
from db.people import import_county
from db.registry import ResidentImportRequest, import_residents, rejected_file
from geo.crs import lonlat_to_wgs84, parse_crs
from geo.errors import InvalidInput, LimitExceeded, NotFound
from geo.localtime import local_today

router = APIRouter(prefix="/api/imports", tags=["imports"])
CHUNK_BYTES = 1 << 20


@router.post(
    "/boundaries",
    summary="Check a boundary file and import it whole, or not at all",
    responses={
        201: {"description": "Imported"},
        200: {"description": "Dry run: checked, nothing written"},
        422: {"description": "Rejected: the report lists every reason (application/problem+json)"},
        413: {"description": "Over the upload, inflation or vertex cap"},
    },
)
async def import_boundaries(
    principal: PrincipalDep,
    session: SessionDep,
    settings: ApiSettingsDep,
    files: Annotated[
        list[UploadFile],
        File(
            description="GeoJSON, GeoPackage, a zipped Shapefile, or the .shp with its .shx/.dbf/.prj"
        ),
    ],
    level: Annotated[str, Form(description="city, county, township, community, grid or microgrid")],
    parent: Annotated[
        str | None,
        Form(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="Code of the parent area"),
    ] = None,
    crs: Annotated[str | None, Form(description="wgs84, cgcs2000, gcj02, bd09 or EPSG:n")] = None,
    code_field: Annotated[str | None, Form()] = None,
    name_field: Annotated[str | None, Form()] = None,
    kind: Annotated[str, Form(description="land, or sea for grids of vessels")] = "land",
    valid_from: Annotated[dt.date | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    principal.require("import_boundaries")
    request = BoundaryImportRequest.build(
        level=level, parent_code=parent, crs=crs, code_field=code_field, name_field=name_field,
        kind=kind, valid_from=valid_from, dry_run=dry_run,
        max_vertices=settings.max_vertices_per_feature,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wangge-upload-") as folder:
        main = await _save_uploads(files, folder=Path(folder), max_bytes=settings.max_upload_bytes)
        report = import_boundary_file(
            session, path=main, request=request, display_name=main.name,
            max_bytes=settings.max_upload_bytes, max_inflated_bytes=settings.max_inflated_bytes,
        )  # fmt: skip
    body: dict[str, Any] = report.as_dict()
    return JSONResponse(body, status_code=201 if report.applied else 200)


async def _save_uploads(files: list[UploadFile], *, folder: Path, max_bytes: int) -> Path:
    """Stream the parts to disk, counting bytes as they come (a client's
    Content-Length is not trusted); return the part to read."""
    total = 0
    saved: list[Path] = []
    for upload in files:
        name = Path(upload.filename or "upload").name or "upload"
        target = folder / name
        with target.open("wb") as handle:
            while chunk := await upload.read(CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise LimitExceeded(f"the upload is over the cap of {max_bytes:,} bytes")
                handle.write(chunk)
        saved.append(target)
    if not saved:
        raise InvalidInput("no file in the upload")
    shapefiles = [p for p in saved if p.suffix.lower() == ".shp"]
    return shapefiles[0] if shapefiles else saved[0]


@router.post(
    "/addresses",
    summary="Load the standard address registry (CSV, XLSX or GeoJSON points); all rows or none",
    responses={
        201: {"description": "Imported"},
        200: {"description": "Dry run"},
        422: {"description": "Rejected rows, with reasons"},
    },
)
async def import_address_registry(
    principal: PrincipalDep,
    session: SessionDep,
    settings: ApiSettingsDep,
    file: Annotated[
        UploadFile, File(description="CSV, XLSX or GeoJSON points, one building per row")
    ],
    crs: Annotated[str, Form(description="wgs84, cgcs2000, gcj02, bd09 or EPSG:n")] = "wgs84",
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
    principal.require("import_registry")
    source_crs = parse_crs(crs)
    with tempfile.TemporaryDirectory(prefix="wangge-upload-") as folder:
        path = await _save_uploads([file], folder=Path(folder), max_bytes=settings.max_upload_bytes)
        if not principal.scope.everything:
            # Every county the rows fall in must be inside the account's areas,
            # checked before anything is written.
            _, rows, _ = read_address_rows(path, display_name=path.name)
            lon, lat = lonlat_to_wgs84(
                np.array([r.lon for r in rows], dtype=float),
                np.array([r.lat for r in rows], dtype=float),
                crs=source_crs,
            )
            today = local_today()
            for county in counties_of_points(session, lon=lon.tolist(), lat=lat.tolist()):
                if not area_in_scope(session, code=county, scope=principal.scope, as_of=today):
                    raise NotFound(f"no area with code {county!r} on {today.isoformat()}")
        report = import_addresses(
            session, path=path, crs=source_crs, dry_run=dry_run, display_name=path.name
        )
    return JSONResponse(report.as_dict(), status_code=201 if report.applied else 200)


@router.post(
    "/residents",
    summary="Import households and residents from a registry file (CSV UTF-8/GBK or XLSX)",
    responses={
        201: {"description": "Written (all rows, or the good rows in per-row mode)"},
        200: {"description": "validate mode: checked, nothing written"},
        422: {
            "description": "all-or-nothing met rejected rows: nothing written; the report lists them"
        },
    },
)
async def import_resident_registry(
    principal: PrincipalDep,
    session: SessionDep,
    settings: ApiSettingsDep,
    file: Annotated[UploadFile, File(description="The register as the office keeps it")],
    mode: Annotated[
        str, Form(description="validate, all-or-nothing or per-row")
    ] = "all-or-nothing",
    crs: Annotated[
        str, Form(description="CRS of 经度/纬度 columns: wgs84, gcj02, bd09, …")
    ] = "wgs84",
    county: Annotated[
        str | None,
        Form(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="County code (default: the only one with a registry in your areas)",
        ),
    ] = None,
    rejected_format: Annotated[str, Form(description="csv or xlsx")] = "csv",
) -> JSONResponse:
    principal.require("import_registry")
    if county is not None:
        require_area_in_scope(session, principal, code=county, as_of=local_today())
    county = scoped_county(session, principal, county=county, as_of=local_today(), inside=True)
    request = ResidentImportRequest.build(
        mode=mode, crs=parse_crs(crs), county_code=county, rejected_format=rejected_format
    )
    with tempfile.TemporaryDirectory(prefix="wangge-upload-") as folder:
        path = await _save_uploads([file], folder=Path(folder), max_bytes=settings.max_upload_bytes)
        report, _ = import_residents(session, path=path, request=request, display_name=path.name)
    body = json.loads(json.dumps(report.as_dict(), default=str))
    return JSONResponse(body, status_code=201 if report.applied else 200)


MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


ImportId = Annotated[int, PathParam(ge=1, le=BIGINT_MAX, description="Import id")]


def _rejected_rows(principal: Principal, session: Session, *, import_id: int, fmt: str) -> Response:
    principal.require("import_registry")
    missing = f"import {import_id} has no rejected rows file"
    if not principal.scope.everything:
        county = import_county(session, batch_id=import_id)
        if county is None or not area_in_scope(
            session, code=county, scope=principal.scope, as_of=local_today()
        ):
            raise NotFound(missing)
    content, stored_fmt, name = rejected_file(session, batch_id=import_id)
    if fmt != stored_fmt:
        raise NotFound(f"import {import_id} kept its rejected rows as .{stored_fmt}, not .{fmt}")
    filename = f"{Path(name).stem}.rejected.{stored_fmt}"
    return Response(
        content, media_type=MEDIA_TYPES[stored_fmt],
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )  # fmt: skip


# Two paths, not one with {fmt}: api.audit records reads of exactly these
# (the rows hold the register's personal data).
@router.get("/{import_id}/rejected.csv", summary="The rejected rows of an import (CSV)")
def rejected_csv(principal: PrincipalDep, import_id: ImportId, session: SessionDep) -> Response:
    return _rejected_rows(principal, session, import_id=import_id, fmt="csv")


@router.get("/{import_id}/rejected.xlsx", summary="The rejected rows of an import (XLSX)")
def rejected_xlsx(principal: PrincipalDep, import_id: ImportId, session: SessionDep) -> Response:
    return _rejected_rows(principal, session, import_id=import_id, fmt="xlsx")
