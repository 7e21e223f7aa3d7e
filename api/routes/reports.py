"""Daily reports (一排查、一汇总、一上报): the Excel report and the situation map.

Aggregates (``read_aggregates``) of the account's areas, as the layers are:
``within`` must lie in them and defaults to the account's area; a round
named must be one the account may see. Nothing personal is in either.
"""

from __future__ import annotations

import datetime as dt
import html
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from api.auth import PrincipalDep, scoped_within
from api.deps import SessionDep
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from api.routes.layers import require_round_in_scope
from db.layers import compute_layer, require_layer
from db.reports import daily_report, report_levels
from geo.classify import classify
from geo.daily_report import daily_report_xlsx, report_filename
from geo.localtime import local_today
from geo.situation_map import inline_css_images, situation_html

router = APIRouter(prefix="/api/reports", tags=["reports"])

LEAFLET_DIR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor" / "leaflet-1.9.4"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

WithinQuery = Annotated[
    str | None,
    Query(max_length=AREA_CODE_MAX, pattern=NO_NUL,
          description="The area reported on (default: your area)"),
]  # fmt: skip
DateQuery = Annotated[
    dt.date | None, Query(alias="date", description="The report's day (default today, China time)")
]
RoundQuery = Annotated[
    int | None, Query(alias="round", description="Screening round id; default: the one in progress")
]


def _attachment(ascii_name: str, name: str) -> str:
    """Content-Disposition with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get(
    "/daily.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}, "description": "The report as an Excel workbook"}},
    summary="The daily report: one row per area at each level under `within`, rolled up",
)  # fmt: skip
def daily_xlsx(
    principal: PrincipalDep,
    session: SessionDep,
    within: WithinQuery = None,
    day: DateQuery = None,
    round_id: RoundQuery = None,
) -> Response:
    principal.require("read_aggregates")
    as_of = day or local_today()
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    require_round_in_scope(session, principal, round_id=round_id, as_of=as_of)
    report = daily_report(session, within=scoped, as_of=as_of, round_id=round_id)
    ascii_name, name = report_filename(report)
    return Response(
        daily_report_xlsx(report), media_type=XLSX_TYPE,
        headers={"Content-Disposition": _attachment(ascii_name, name), "Cache-Control": "no-store"},
    )  # fmt: skip


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JS and CSS (its images inlined) from the vendored copy."""

    def read_image(path: str) -> bytes | None:
        target = (LEAFLET_DIR / path).resolve()
        return (
            target.read_bytes() if target.is_relative_to(LEAFLET_DIR) and target.is_file() else None
        )

    css = inline_css_images((LEAFLET_DIR / "leaflet.css").read_text(), read_image=read_image)
    return (LEAFLET_DIR / "leaflet.js").read_text(), css


@router.get(
    "/situation.html",
    response_class=HTMLResponse,
    summary="A standalone situation map (coverage, with the figures table) that opens offline",
)
def situation(
    principal: PrincipalDep,
    session: SessionDep,
    within: WithinQuery = None,
    day: DateQuery = None,
    round_id: RoundQuery = None,
) -> HTMLResponse:
    principal.require("read_aggregates")
    as_of = day or local_today()
    scoped = scoped_within(session, principal, within=within, as_of=as_of)
    require_round_in_scope(session, principal, round_id=round_id, as_of=as_of)
    report = daily_report(session, within=scoped, as_of=as_of, round_id=round_id, max_depth=1)
    levels = report_levels(session, within=scoped, as_of=as_of)
    spec = require_layer("coverage")
    result = compute_layer(
        session, layer="coverage", as_of=as_of, level=levels[0] if levels else None,
        within=scoped, round_id=round_id,
    )  # fmt: skip
    classified = classify(
        [f.value for f in result.figures], method=spec.default_classify,
        breaks=spec.default_breaks, palette=spec.palette, unit=spec.unit,
    )  # fmt: skip
    rows = {row.code: row for row in report.rows}
    features: list[dict[str, Any]] = []
    for figure, colour in zip(result.figures, classified.colours, strict=True):
        row = rows.get(figure.code)
        features.append({
            "type": "Feature",
            "geometry": orjson.loads(figure.geometry_geojson),
            "properties": {
                "code": figure.code, "name": html.escape(figure.name), "colour": colour,
                "coverage_text": "—" if figure.value is None else f"{figure.value:.1f}%",
                "complete": figure.numerator, "round_households": figure.denominator,
                "active_cases": row.active_cases if row else 0,
                "quarantined": row.quarantined if row else 0,
            },
        })  # fmt: skip
    leaflet_js, leaflet_css = leaflet_assets()
    page = situation_html(
        report=report, features=features, legend=classified.legend,
        leaflet_js=leaflet_js, leaflet_css=leaflet_css,
    )  # fmt: skip
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
