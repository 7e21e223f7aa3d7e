"""Uploads: ``POST /api/imports/boundaries`` (multipart)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from api.deps import ApiSettingsDep, SessionDep
from db.boundaries import BoundaryImportRequest, import_boundary_file
from geo.errors import InvalidInput, LimitExceeded

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
    session: SessionDep,
    settings: ApiSettingsDep,
    files: Annotated[
        list[UploadFile],
        File(
            description="GeoJSON, GeoPackage, a zipped Shapefile, or the .shp with its .shx/.dbf/.prj"
        ),
    ],
    level: Annotated[str, Form(description="city, county, township, community, grid or microgrid")],
    parent: Annotated[str | None, Form(description="Code of the parent area")] = None,
    crs: Annotated[str | None, Form(description="wgs84, cgcs2000, gcj02, bd09 or EPSG:n")] = None,
    code_field: Annotated[str | None, Form()] = None,
    name_field: Annotated[str | None, Form()] = None,
    kind: Annotated[str, Form(description="land, or sea for grids of vessels")] = "land",
    valid_from: Annotated[dt.date | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
) -> JSONResponse:
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
