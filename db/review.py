"""The geocoding review queue: addresses the geocoder would not guess.

Resolving an item places its household at the chosen building (or point),
reassigns it to its micro-grid, and closes the item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import HOUSEHOLD_AREA
from db.areas import IN_FORCE, SUBTREE_CODES, require_area
from db.assign import assign_households
from db.paging import Page
from geo.errors import Conflict, InvalidInput, NotFound


@dataclass(frozen=True)
class ReviewItem:
    id: int
    household_id: int
    address: str
    reason: str
    candidates: list[dict[str, Any]]
    status: str
    area_code: str | None
    created_at: dt.datetime


def list_review(
    session: Session, *, as_of: dt.date, within: str | None, status: str, page: Page
) -> tuple[list[ReviewItem], int]:
    """Open (or resolved) items, oldest first; ``within`` keeps the households
    counted in that area's subtree: by their micro-grid, else their fallback
    area, else their county (as ``db.access`` places them)."""
    if status not in ("open", "resolved"):
        raise InvalidInput(f"status {status!r} is not one of open, resolved")
    clauses = ["g.status = :status"]
    params: dict[str, Any] = {
        "status": status,
        "as_of": as_of,
        "limit": page.limit,
        "offset": page.offset,
    }
    if within is not None:
        require_area(session, code=within, as_of=as_of)
        clauses.append(f"{HOUSEHOLD_AREA} IN ({SUBTREE_CODES})")
        params["within"] = within
    where = " AND ".join(clauses)
    source = "geocode_review g JOIN household h ON h.id = g.household_id"
    matched = int(
        session.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            "SELECT g.id, g.household_id, g.address, g.reason, g.candidates, g.status, h.area_code, g.created_at"
            f" FROM {source} WHERE {where} ORDER BY g.id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [ReviewItem(*row) for row in rows], matched


def resolve_review(
    session: Session,
    *,
    review_id: int,
    building_id: int | None,
    point_4326: Point | None,
    roots: Sequence[str] | None = None,
    as_of: dt.date | None = None,
) -> ReviewItem:
    """Place the item's household at ``building_id`` or at ``point_4326`` (WGS84).

    With ``roots`` (an account's areas) the place must lie in one of them (their
    polygons on ``as_of``, default today): a building elsewhere is answered as a
    missing one, a point elsewhere is refused — nobody moves a household out of
    their areas."""
    if (building_id is None) == (point_4326 is None):
        raise InvalidInput("give exactly one of building_id or point")
    if not 0 < review_id < 2**63:
        raise NotFound(f"no review item with id {review_id}")
    item = session.execute(
        text(
            "SELECT household_id, status, county_code FROM geocode_review WHERE id = :id FOR UPDATE"
        ),
        {"id": review_id},
    ).first()
    if item is None:
        raise NotFound(f"no review item with id {review_id}")
    household_id, status, county = item
    if status != "open":
        raise Conflict(f"review item {review_id} is already resolved")
    scope = None if roots is None else _Scope(roots=list(roots), as_of=as_of or dt.date.today())
    if building_id is not None:
        _place_at_building(
            session, household_id=household_id, building_id=building_id, county=county,
            scope=scope,
        )  # fmt: skip
    else:
        assert point_4326 is not None
        if scope is not None and not _point_in(session, point_4326=point_4326, scope=scope):
            raise InvalidInput(
                f"point ({point_4326.x:.6f}, {point_4326.y:.6f}) lies outside your areas"
            )
        _place_at_point(session, household_id=household_id, point_4326=point_4326)
    session.execute(
        text(
            "UPDATE geocode_review SET status = 'resolved', resolved_at = now(), resolved_building_id = :b,"
            " geom = ST_GeomFromWKB(:wkb, 4326) WHERE id = :id"
        ),
        {
            "id": review_id,
            "b": building_id,
            "wkb": None if point_4326 is None else shapely.to_wkb(point_4326),
        },
    )
    assign_households(session.connection(), county_code=county, household_ids=[household_id])
    resolved = session.execute(
        text(
            "SELECT g.id, g.household_id, g.address, g.reason, g.candidates, g.status, h.area_code, g.created_at"
            " FROM geocode_review g JOIN household h ON h.id = g.household_id WHERE g.id = :id"
        ),
        {"id": review_id},
    ).one()
    return ReviewItem(*resolved)


@dataclass(frozen=True)
class _Scope:
    roots: list[str]
    as_of: dt.date


# Does one of :roots (in force on :as_of) cover the geometry :geom_sql?
_IN_ROOTS = (
    "EXISTS (SELECT 1 FROM area a WHERE a.code = ANY(:roots) AND "
    + IN_FORCE
    + " AND ST_Covers(a.geom, {geom_sql}))"
)


def _point_in(session: Session, *, point_4326: Point, scope: _Scope) -> bool:
    sql = "SELECT " + _IN_ROOTS.format(geom_sql="ST_GeomFromWKB(:wkb, 4326)")
    params = {"wkb": shapely.to_wkb(point_4326), "roots": scope.roots, "as_of": scope.as_of}
    return bool(session.execute(text(sql), params).scalar_one())


def _place_at_building(
    session: Session, *, household_id: int, building_id: int, county: str, scope: _Scope | None
) -> None:
    if not 0 < building_id < 2**63:
        raise NotFound(f"no building {building_id} in county {county}")
    sql = "SELECT 1 FROM building b WHERE b.id = :b AND b.county_code = :c"
    params: dict[str, Any] = {"b": building_id, "c": county}
    if scope is not None:
        sql += " AND " + _IN_ROOTS.format(geom_sql="b.geom")
        params |= {"roots": scope.roots, "as_of": scope.as_of}
    found = session.execute(text(sql), params).first()
    if found is None:
        raise NotFound(f"no building {building_id} in county {county}")
    session.execute(
        text(
            "UPDATE household h SET building_id = b.id, geom = b.geom, geocode_level = 'building',"
            " geocode_status = 'manual', geocode_score = 1, area_code = NULL FROM building b"
            " WHERE b.id = :b AND h.id = :h"
        ),
        {"b": building_id, "h": household_id},
    )


def _place_at_point(session: Session, *, household_id: int, point_4326: Point) -> None:
    session.execute(
        text(
            "UPDATE household SET geom = ST_GeomFromWKB(:wkb, 4326), geocode_level = 'point',"
            " geocode_status = 'manual', geocode_score = 1, area_code = NULL WHERE id = :h"
        ),
        {"wkb": shapely.to_wkb(point_4326), "h": household_id},
    )
