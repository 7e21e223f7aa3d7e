"""The geocoding review queue: addresses the geocoder would not guess.

Resolving an item places its household at the chosen building (or point),
reassigns it to its micro-grid, and closes the item.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.areas import SUBTREE_CODES, require_area
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
    known to lie in that area (fallback area or micro-grid) or its county."""
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
        clauses.append(
            f"(h.area_code IN ({SUBTREE_CODES}) OR h.microgrid_code IN ({SUBTREE_CODES}) OR h.county_code = :within)"
        )
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
    session: Session, *, review_id: int, building_id: int | None, point_4326: Point | None
) -> ReviewItem:
    """Place the item's household at ``building_id`` or at ``point_4326`` (WGS84)."""
    if (building_id is None) == (point_4326 is None):
        raise InvalidInput("give exactly one of building_id or point")
    item = session.execute(
        text(
            "SELECT household_id, status, county_code FROM geocode_review WHERE id = :id FOR UPDATE"
        ),
        {"id": review_id},
    ).first()
    if item is None:
        raise NotFound(f"no review item {review_id}")
    household_id, status, county = item
    if status != "open":
        raise Conflict(f"review item {review_id} is already resolved")
    if building_id is not None:
        _place_at_building(
            session, household_id=household_id, building_id=building_id, county=county
        )
    else:
        assert point_4326 is not None
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


def _place_at_building(
    session: Session, *, household_id: int, building_id: int, county: str
) -> None:
    found = session.execute(
        text("SELECT 1 FROM building WHERE id = :b AND county_code = :c"),
        {"b": building_id, "c": county},
    ).first()
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
