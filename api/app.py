"""The FastAPI application: routes, error table, the web pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.inputs import RefuseNul
from api.routes import (
    areas,
    auth,
    basemap,
    cases,
    checkpoints,
    fieldwork,
    figures,
    geocode,
    health,
    imports,
    layers,
    microgrids,
    ogc,
    people,
    reports,
    tiles,
    visits,
)
from api.settings import BasemapSettings

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def create_app(*, basemap_settings: BasemapSettings | None = None) -> FastAPI:
    """The application; a basemap the settings do not fully describe is
    refused here, at start-up, with the reason (``InvalidInput``)."""
    # No /docs or /redoc: FastAPI's pages load Swagger UI from a CDN, and the
    # networks Wangge runs on have no internet. /openapi.json is served.
    app = FastAPI(
        title="Wangge 网格",
        version="0.1.0",
        description="GIS service for grid-based community epidemic control.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.basemap, app.state.basemap_archive = basemap.configured_basemap(
        basemap_settings or BasemapSettings()
    )
    install_error_handlers(app)
    app.add_middleware(RefuseNul)
    for module in (
        health, auth, areas, people, geocode, imports, visits, cases, checkpoints, layers, tiles,
        ogc, figures, reports, basemap, microgrids, fieldwork,
    ):  # fmt: skip
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/editor", include_in_schema=False)
    def editor() -> FileResponse:
        return FileResponse(WEB_DIR / "editor.html", media_type="text/html")

    @app.get("/m", include_in_schema=False)
    def phone() -> FileResponse:
        return FileResponse(WEB_DIR / "m.html", media_type="text/html")

    @app.get("/m-sw.js", include_in_schema=False)
    def phone_service_worker() -> FileResponse:
        # Served from the root so its scope covers /m; never cached by HTTP,
        # so a new version of the page reaches the phones.
        return FileResponse(
            WEB_DIR / "static" / "m-sw.js", media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
        )  # fmt: skip

    return app
