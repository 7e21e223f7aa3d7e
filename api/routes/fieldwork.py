"""The grid worker's day: today's door visits in a micro-grid (``/api/tasks``)
and the walking route through them (``/api/routes/visits``, also as GPX).

Both read personal data (addresses, who is under quarantine, names masked to
their first character): ``read_personal`` and a micro-grid in the account's
areas; both are audited as personal reads.
"""

from __future__ import annotations

from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep, require_area_in_scope
from api.deps import SessionDep
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from db.areas import area_ref
from db.tasks import REASON_LABELS, TASK_REASONS, Task, todays_tasks
from geo.errors import InvalidInput
from geo.localtime import local_today
from geo.route import Route, Stop, plan_route

router = APIRouter(prefix="/api", tags=["field work"])

MicrogridQuery = Annotated[
    str, Query(max_length=AREA_CODE_MAX, pattern=NO_NUL, description="The micro-grid walked")
]
FromQuery = Annotated[
    str | None,
    Query(alias="from", max_length=60, description="Where the walk starts: lon,lat (WGS84)"),
]
ROUTE_TIME_LIMIT_S = 1.0  # the solver's budget per route (DESIGN.md: 500 stops within 2 s)


def _tasks(session: Session, principal: Principal, *, microgrid: str) -> tuple[list[Task], int | None]:
    principal.require("read_personal")
    today = local_today()
    require_area_in_scope(session, principal, code=microgrid, as_of=today)
    area = area_ref(session, code=microgrid, as_of=today)  # NotFound for a code in force nowhere
    if area.level != "microgrid":
        raise InvalidInput(f"{microgrid} is a {area.level}: name one of its micro-grids")
    return todays_tasks(session, microgrid=microgrid, today=today)


def _task_feature(task: Task, *, order: int | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "household_id": task.household_id, "reason": task.reasons[0],
        "reasons": list(task.reasons), "labels": [REASON_LABELS[r] for r in task.reasons],
        "priority": task.priority, "address": task.address, "building_id": task.building_id,
        "unit": task.unit, "floor": task.floor,
        "quarantined": [
            {"resident_id": p.resident_id, "name": p.name_masked, "checked_today": p.checked_today}
            for p in task.quarantined
        ],
    }  # fmt: skip
    if order is not None:
        properties = {"order": order} | properties
    return {
        "type": "Feature", "id": task.household_id,
        "geometry": {"type": "Point", "coordinates": [round(task.lon, 6), round(task.lat, 6)]},
        "properties": properties,
    }  # fmt: skip


@router.get("/tasks", summary="Today's door visits in a micro-grid, highest priority first")
def tasks(principal: PrincipalDep, session: SessionDep, microgrid: MicrogridQuery) -> dict[str, Any]:
    found, round_id = _tasks(session, principal, microgrid=microgrid)
    return {
        "type": "FeatureCollection", "microgrid": microgrid, "as_of": local_today().isoformat(),
        "round": round_id,
        "counts": {reason: sum(reason in t.reasons for t in found) for reason in TASK_REASONS},
        "features": [_task_feature(t) for t in found],
    }  # fmt: skip


def parse_start(value: str | None) -> tuple[float, float] | None:
    """``lon,lat`` → a WGS84 pair; ``InvalidInput`` naming what is wrong."""
    if value is None:
        return None
    parts = value.split(",")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(f"from {value!r}: give lon,lat in WGS84 degrees, e.g. 112.23,22.70") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"from {value!r}: lon must be within ±180 and lat within ±90")
    return lon, lat


def _route(
    session: Session, principal: Principal, *, microgrid: str, start: str | None
) -> tuple[list[Task], Route, tuple[float, float] | None]:
    found, _round = _tasks(session, principal, microgrid=microgrid)
    start_lonlat = parse_start(start)
    stops = [
        Stop(household_id=t.household_id, lon=t.lon, lat=t.lat, building_id=t.building_id,
             unit=t.unit, floor=t.floor, reason=t.reasons[0])
        for t in found
    ]  # fmt: skip
    return found, plan_route(stops, start_lonlat=start_lonlat, time_limit_s=ROUTE_TIME_LIMIT_S), start_lonlat


@router.get("/routes/visits", summary="Today's door visits in walking order, with the walking line")
def visit_route(
    principal: PrincipalDep, session: SessionDep, microgrid: MicrogridQuery, start: FromQuery = None
) -> dict[str, Any]:
    found, route, start_lonlat = _route(session, principal, microgrid=microgrid, start=start)
    return {
        "type": "FeatureCollection", "microgrid": microgrid, "as_of": local_today().isoformat(),
        "features": [_task_feature(found[i], order=n + 1) for n, i in enumerate(route.order)],
        "route": {
            "geometry": {"type": "LineString",
                         "coordinates": [[round(x, 6), round(y, 6)] for x, y in route.line_lonlat]},
            "distance_m": round(route.distance_m, 1), "duration_s": round(route.duration_s),
            "start": None if start_lonlat is None else list(start_lonlat), "solver": route.solver,
        },
    }  # fmt: skip


@router.get(
    "/routes/visits.gpx", response_class=Response,
    responses={200: {"content": {"application/gpx+xml": {}}}},
    summary="The same route as GPX 1.1 (waypoints and a route), for any navigation app",
)  # fmt: skip
def visit_route_gpx(
    principal: PrincipalDep, session: SessionDep, microgrid: MicrogridQuery, start: FromQuery = None
) -> Response:
    found, route, start_lonlat = _route(session, principal, microgrid=microgrid, start=start)
    ordered = [found[i] for i in route.order]
    return Response(
        gpx(ordered, microgrid=microgrid, start_lonlat=start_lonlat), media_type="application/gpx+xml",
        headers={"Content-Disposition": f'attachment; filename="route-{microgrid}.gpx"'},
    )  # fmt: skip


def gpx(ordered: list[Task], *, microgrid: str, start_lonlat: tuple[float, float] | None) -> str:
    """GPX 1.1: a waypoint per household and one route through them, in order."""

    def point(tag: str, lon: float, lat: float, name: str, desc: str = "") -> str:
        extra = f"<desc>{escape(desc)}</desc>" if desc else ""
        return f'<{tag} lat="{lat:.7f}" lon="{lon:.7f}"><name>{escape(name)}</name>{extra}</{tag}>'

    labels = [f"{n}. {t.address or t.household_id}" for n, t in enumerate(ordered, start=1)]
    reasons = ["; ".join(REASON_LABELS[r] for r in t.reasons) for t in ordered]
    waypoints = [point("wpt", t.lon, t.lat, label, why) for t, label, why in zip(ordered, labels, reasons, strict=True)]
    route_points = [point("rtept", t.lon, t.lat, label) for t, label in zip(ordered, labels, strict=True)]
    if start_lonlat is not None:
        route_points.insert(0, point("rtept", start_lonlat[0], start_lonlat[1], "起点 start"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="Wangge" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<metadata><name>{escape(microgrid)} {local_today().isoformat()}</name></metadata>"
        + "".join(waypoints)
        + f"<rte><name>{escape(microgrid)}</name>" + "".join(route_points) + "</rte></gpx>\n"
    )
