"""Geocoding against the standard address registry held in PostGIS.

The matching itself is pure (``geo.address``); this module builds the index
from the ``building`` table, caches it per county until the registry changes,
and turns a match into a household location: a building's point, or a
fallback area (community/township/county) that sends it to the review queue.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.address import AddressIndex, AddressMatch, RegistryAddress
from geo.errors import InvalidInput, NotFound

_LOCK = threading.Lock()
_INDEXES: dict[str, tuple[tuple[Any, ...], AddressIndex]] = {}


def registry_counties(session: Session) -> list[str]:
    """County codes that have a standard address registry."""
    return [
        c for (c,) in session.execute(text("SELECT DISTINCT county_code FROM building ORDER BY 1"))
    ]


def resolve_county(session: Session, *, county_code: str | None) -> str:
    """The county to geocode in: the one asked for, or the only one there is."""
    counties = registry_counties(session)
    if county_code is not None:
        if county_code not in counties:
            raise NotFound(
                f"county {county_code} has no standard address registry; have: {', '.join(counties) or 'none'}"
            )
        return county_code
    if len(counties) == 1:
        return counties[0]
    if not counties:
        raise NotFound(
            "no standard address registry is loaded: run `wangge import addresses` or `wangge demo`"
        )
    raise InvalidInput(
        f"several counties have a registry ({', '.join(counties)}): name one with county="
    )


def address_index(session: Session, *, county_code: str) -> AddressIndex:
    """The county's index, rebuilt only when its buildings changed."""
    stamp = tuple(
        session.execute(
            text("SELECT count(*), max(id), max(updated_at) FROM building WHERE county_code = :c"),
            {"c": county_code},
        ).one()
    )
    with _LOCK:
        cached = _INDEXES.get(county_code)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    rows = session.execute(
        text(
            "SELECT id, county, township, community, road, house_number, estate, building_no, village_group,"
            " ST_X(geom), ST_Y(geom) FROM building WHERE county_code = :c AND geom IS NOT NULL"
        ),
        {"c": county_code},
    )
    index = AddressIndex.build(
        [
            RegistryAddress(
                building_id=r[0],
                county=r[1],
                township=r[2],
                community=r[3],
                road=r[4],
                house_number=r[5],
                estate=r[6],
                building_no=r[7],
                village_group=r[8],
                lon=r[9],
                lat=r[10],
            )
            for r in rows
        ]
    )
    with _LOCK:
        _INDEXES[county_code] = (stamp, index)
    return index


@dataclass(frozen=True)
class Location:
    """Where a household is, as far as its address tells."""

    level: str  # building | community | township | county | none
    status: str  # matched | review | unmatched
    score: float | None
    building_id: int | None
    area_code: str | None  # the fallback area when not at a building
    review_reason: str | None  # ambiguous | unmatched | fallback
    candidates: list[dict[str, Any]]


def locate(session: Session, *, county_code: str, match: AddressMatch, as_of: dt.date) -> Location:
    """Turn a match into a location; anything short of one building goes to review."""
    candidates = [{"building_id": b, "score": round(s, 3)} for b, s in match.candidates]
    if match.status == "matched" and match.level == "building" and match.building_id is not None:
        return Location(
            "building", "matched", match.score, match.building_id, None, None, candidates
        )
    if match.status == "ambiguous":
        return Location("none", "review", match.score, None, None, "ambiguous", candidates)
    area = _fallback_area(session, county_code=county_code, match=match, as_of=as_of)
    if area is None:
        return Location("none", "review", match.score, None, None, "unmatched", candidates)
    level, code = area
    return Location(level, "review", match.score, None, code, "fallback", candidates)


def _fallback_area(
    session: Session, *, county_code: str, match: AddressMatch, as_of: dt.date
) -> tuple[str, str] | None:
    """The smallest named area of the match that exists in the county."""
    if match.level == "none":
        return None
    params = {
        "county": county_code,
        "as_of": as_of,
        "township": match.township,
        "community": match.community,
    }
    in_force = "valid_from <= :as_of AND (valid_to IS NULL OR valid_to > :as_of)"
    town = None
    if match.township:
        town = session.execute(
            text(
                f"SELECT code FROM area WHERE level = 'township' AND parent_code = :county AND name = :township AND {in_force}"
            ),
            params,
        ).scalar()
    if match.community:
        parent = (
            "parent_code = :town"
            if town
            else f"parent_code IN (SELECT code FROM area WHERE parent_code = :county AND {in_force})"
        )
        community = session.execute(
            text(
                f"SELECT code FROM area WHERE level = 'community' AND {parent} AND name = :community AND {in_force} ORDER BY code"
            ),
            params | {"town": town},
        ).all()
        if len(community) == 1:
            return "community", community[0][0]
    if town:
        return "township", town
    return "county", county_code
