"""The wall map's basemap: what to draw under the areas, and the tiles of a
PMTiles archive when that is the basemap.

``GET /api/basemap`` (any account) says which basemap the operator chose
(``api.settings.BasemapSettings``). ``GET /basemap/{z}/{x}/{y}`` serves a
raster PMTiles archive's tiles: background imagery like the page's own
static files, so it needs no token (Leaflet's image requests carry none) and
stays out of the API schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.auth import PrincipalDep
from api.settings import BasemapSettings
from geo.basemap import BasemapConfig, PmtilesArchive, basemap_config
from geo.errors import NotFound

router = APIRouter(tags=["basemap"])

TILE_MAX_AGE_S = 86_400  # an archive changes only when the operator replaces it and restarts


def configured_basemap(
    settings: BasemapSettings,
) -> tuple[BasemapConfig, PmtilesArchive | None]:
    """The basemap the settings choose, with its archive opened when it is
    PMTiles; ``InvalidInput`` with the reason when the settings are incomplete."""
    archive = (
        PmtilesArchive(settings.pmtiles)
        if settings.kind == "pmtiles" and settings.pmtiles is not None
        else None
    )
    config = basemap_config(
        kind=settings.kind, crs=settings.crs, tianditu_key=settings.tianditu_key,
        url=settings.url, archive=archive, attribution=settings.attribution,
        max_zoom=settings.max_zoom,
    )  # fmt: skip
    return config, archive


@router.get("/api/basemap", summary="The basemap to draw under the wall map")
def basemap(principal: PrincipalDep, request: Request) -> dict[str, Any]:
    config: BasemapConfig = request.app.state.basemap
    return config.client()


@router.get("/basemap/{z}/{x}/{y}", include_in_schema=False)
def basemap_tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=30)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
) -> Response:
    archive: PmtilesArchive | None = request.app.state.basemap_archive
    if archive is None:
        raise NotFound("no PMTiles basemap is configured (WANGGE_BASEMAP_KIND=pmtiles)")
    data = archive.tile(z=z, x=x, y=y)
    if data is None:
        raise NotFound(f"the basemap has no tile {z}/{x}/{y}")
    return Response(
        data, media_type=archive.media_type,
        headers={"Cache-Control": f"public, max-age={TILE_MAX_AGE_S}"},
    )  # fmt: skip
