"""Read queries over the standard addresses, households and residents.

Personal data leaves this module masked (DESIGN.md, privacy): ID numbers as
``4453**********1234``, phones as ``138****5678``. Full values leave only
through :func:`reveal_identifiers`, which the API calls for an explicit,
audited request.

Households (and their residents) belong to the area their figures count in
— their micro-grid, else the area they were located to, else their county
(``db.access``): lists filter by exactly that, so a list and a by-id read
never disagree about which area a household lies in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import HOUSEHOLD_AREA, object_area
from db.areas import IN_FORCE, SUBTREE_CODES, BBox, require_area
from db.layers import (
    HOUSEHOLD_LAYER_STATUSES,
    boundaries_changed_since,
    default_round,
    households_with_status_sql,
)
from db.models import RESIDENT_CATEGORIES
from db.paging import Page
from db.visits import get_round
from geo.errors import InvalidInput, NotFound
from geo.registry import mask_id_number, mask_phone

HouseholdStatus = Literal["located", "unlocated", "review"]
QuarantineState = Literal["active", "released", "none"]
# Geocoding states, then the states behind a layer's number (db.layers).
HOUSEHOLD_STATUSES: tuple[str, ...] = ("located", "unlocated", "review", *HOUSEHOLD_LAYER_STATUSES)
QUARANTINE_STATES: tuple[str, ...] = ("active", "released", "none")


@dataclass(frozen=True)
class BuildingRecord:
    id: int
    code: str
    address: str
    parts: dict[str, str | None]
    households: int
    geom_4326: BaseGeometry | None


@dataclass(frozen=True)
class HouseholdRecord:
    id: int
    address: str | None
    building_id: int | None
    unit: str | None
    floor: int | None
    room: str | None
    microgrid_code: str | None
    area_code: str | None
    geocode_level: str
    geocode_status: str
    geocode_score: float | None
    residents: int
    geom_4326: BaseGeometry | None


@dataclass(frozen=True)
class ResidentRecord:
    """A resident as lists show them: masked identifiers, no address text."""

    id: int
    name: str
    sex: str | None
    birth_year: int | None
    id_number: str | None  # masked
    phone: str | None  # masked
    category: str
    tags: list[str]
    health_code: str | None
    household_id: int | None
    microgrid_code: str | None
    quarantine: str


@dataclass(frozen=True)
class ResidentDetail:
    resident: ResidentRecord
    hukou: str | None
    address: str | None
    quarantines: list[dict[str, Any]] = field(default_factory=list)
    temperatures: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _wkb(value: Any) -> BaseGeometry | None:
    return None if value is None else shapely.from_wkb(bytes(value))


# -- buildings ------------------------------------------------------------------------
def list_buildings(
    session: Session, *, as_of: dt.date, within: str | None, bbox: BBox | None, page: Page
) -> tuple[list[BuildingRecord], int]:
    """Standard addresses whose point lies in area ``within`` (its polygon on
    ``as_of``) and/or the box, ordered by code."""
    clauses, params = ["TRUE"], {"as_of": as_of, "limit": page.limit, "offset": page.offset}
    if within is not None:
        require_area(session, code=within, as_of=as_of)
        clauses.append(
            f"ST_Covers((SELECT a.geom FROM area a WHERE a.code = :within AND {IN_FORCE}), b.geom)"
        )
        params["within"] = within
    if bbox is not None:
        clauses.append("b.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params |= {"x0": bbox.min_lon, "y0": bbox.min_lat, "x1": bbox.max_lon, "y1": bbox.max_lat}
    where = " AND ".join(clauses)
    matched = int(
        session.execute(text(f"SELECT count(*) FROM building b WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            "SELECT b.id, b.code, b.address, b.county, b.township, b.community, b.road, b.house_number,"
            " b.estate, b.building_no, b.village_group,"
            " (SELECT count(*) FROM household h WHERE h.building_id = b.id), ST_AsBinary(b.geom)"
            f" FROM building b WHERE {where} ORDER BY b.code LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    names = (
        "county",
        "township",
        "community",
        "road",
        "house_number",
        "estate",
        "building_no",
        "village_group",
    )
    records = [
        BuildingRecord(
            id=r[0],
            code=r[1],
            address=r[2],
            parts=dict(zip(names, r[3:11], strict=True)),
            households=int(r[11]),
            geom_4326=_wkb(r[12]),
        )
        for r in rows
    ]
    return records, matched


# -- households -------------------------------------------------------------------------
def _household_scope(*, status: str | None) -> str:
    """Households of the subtree: assigned to a micro-grid in it, or else located
    only to an area in it (fallback), or else — for the county itself — not
    located at all."""
    scope = f"({HOUSEHOLD_AREA} IN ({SUBTREE_CODES}))"
    if status is None:
        return scope
    if status not in HOUSEHOLD_STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(HOUSEHOLD_STATUSES)}")
    return (
        scope
        + {
            "located": " AND h.microgrid_code IS NOT NULL",
            "unlocated": " AND h.microgrid_code IS NULL",
            "review": " AND h.geocode_status = 'review'",
        }[status]
    )


def list_households(
    session: Session,
    *,
    as_of: dt.date,
    within: str,
    status: str | None,
    page: Page,
    round_id: int | None = None,
) -> tuple[list[HouseholdRecord], int]:
    """The households behind an area's figures, ordered by id.

    For a layer's statuses (complete, incomplete, unvisited in the round —
    ``round_id`` or the default one —, quarantine_overdue on ``as_of``) they
    are exactly the households the layer counts for ``within`` on that date.
    """
    require_area(session, code=within, as_of=as_of)
    params: dict[str, object] = {
        "within": within, "as_of": as_of, "limit": page.limit, "offset": page.offset,
    }  # fmt: skip
    if status in HOUSEHOLD_LAYER_STATUSES:
        round_ref = (
            get_round(session, round_id=round_id)
            if round_id is not None
            else default_round(session, within=within, as_of=as_of)
        )
        params |= {
            "round_id": round_ref.id if round_ref else -1,
            "round_area": round_ref.area_code if round_ref else "",
        }
        recomputed = boundaries_changed_since(session, as_of=as_of)
        where = f"h.id IN ({households_with_status_sql(status=status, recomputed=recomputed)})"
    else:
        where = _household_scope(status=status)
    matched = int(
        session.execute(
            text(f"SELECT count(*) FROM household h WHERE {where}"), params
        ).scalar_one()
    )
    rows = session.execute(
        text(
            "SELECT h.id, h.address, h.building_id, h.unit, h.floor, h.room, h.microgrid_code, h.area_code,"
            " h.geocode_level, h.geocode_status, h.geocode_score,"
            " (SELECT count(*) FROM resident r WHERE r.household_id = h.id), ST_AsBinary(h.geom)"
            f" FROM household h WHERE {where} ORDER BY h.id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    records = [
        HouseholdRecord(
            id=r[0],
            address=r[1],
            building_id=r[2],
            unit=r[3],
            floor=r[4],
            room=r[5],
            microgrid_code=r[6],
            area_code=r[7],
            geocode_level=r[8],
            geocode_status=r[9],
            geocode_score=r[10],
            residents=int(r[11]),
            geom_4326=_wkb(r[12]),
        )
        for r in rows
    ]
    return records, matched


# -- residents --------------------------------------------------------------------------------
_QUARANTINE_STATE = """
CASE
  WHEN EXISTS (SELECT 1 FROM quarantine q WHERE q.resident_id = r.id AND q.start_date <= :today
               AND q.released_on IS NULL) THEN 'active'
  WHEN EXISTS (SELECT 1 FROM quarantine q WHERE q.resident_id = r.id) THEN 'released'
  ELSE 'none'
END
"""

_RESIDENT_COLUMNS = (
    "r.id, r.name, r.sex, extract(year FROM r.birth_date)::int, r.id_number, r.phone, r.category,"
    f" r.tags, r.health_code, r.household_id, h.microgrid_code, {_QUARANTINE_STATE}"
)


def _resident(row: Any) -> ResidentRecord:
    return ResidentRecord(
        id=row[0], name=row[1], sex=row[2], birth_year=row[3],
        id_number=mask_id_number(row[4]) if row[4] else None,
        phone=mask_phone(row[5]) if row[5] else None,
        category=row[6], tags=list(row[7] or []), health_code=row[8], household_id=row[9],
        microgrid_code=row[10], quarantine=row[11],
    )  # fmt: skip


def list_residents(
    session: Session,
    *,
    as_of: dt.date,
    within: str | None,
    category: str | None,
    tag: str | None,
    quarantine: str | None,
    page: Page,
) -> tuple[list[ResidentRecord], int]:
    """Residents living in the area (by their household), masked, ordered by id;
    every resident with a household when ``within`` is None."""
    clauses = ["TRUE"]
    if within is not None:
        require_area(session, code=within, as_of=as_of)
        clauses.append(
            f"h.id IN (SELECT h.id FROM household h WHERE {_household_scope(status=None)})"
        )
    params: dict[str, Any] = {"within": within, "as_of": as_of, "today": as_of}
    if category is not None:
        if category not in RESIDENT_CATEGORIES:
            raise InvalidInput(
                f"category {category!r} is not one of {', '.join(RESIDENT_CATEGORIES)}"
            )
        clauses.append("r.category = :category")
        params["category"] = category
    if tag is not None:
        clauses.append(":tag = ANY(r.tags)")
        params["tag"] = tag
    if quarantine is not None:
        if quarantine not in QUARANTINE_STATES:
            raise InvalidInput(
                f"quarantine {quarantine!r} is not one of {', '.join(QUARANTINE_STATES)}"
            )
        clauses.append(f"({_QUARANTINE_STATE}) = :quarantine")
        params["quarantine"] = quarantine
    where = " AND ".join(clauses)
    source = "resident r JOIN household h ON h.id = r.household_id"
    matched = int(
        session.execute(text(f"SELECT count(*) FROM {source} WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_RESIDENT_COLUMNS} FROM {source} WHERE {where} ORDER BY r.id LIMIT :limit OFFSET :offset"
        ),
        params | {"limit": page.limit, "offset": page.offset},
    ).all()
    return [_resident(r) for r in rows], matched


def resident_detail(session: Session, *, resident_id: int, today: dt.date) -> ResidentDetail:
    """One resident with quarantines, the last 14 days of temperatures and the change history."""
    row = session.execute(
        text(
            f"SELECT {_RESIDENT_COLUMNS}, r.hukou, h.address FROM resident r"
            " LEFT JOIN household h ON h.id = r.household_id WHERE r.id = :id"
        ),
        {"id": resident_id, "today": today},
    ).first()
    if row is None:
        raise NotFound(f"no resident with id {resident_id}")
    quarantines = [
        dict(q._mapping)
        for q in session.execute(
            text(
                "SELECT kind, site_name, start_date, planned_end, extended_to, released_on, note"
                " FROM quarantine WHERE resident_id = :id ORDER BY start_date"
            ),
            {"id": resident_id},
        )
    ]
    temperatures = [
        {"checked_at": t.checked_at, "temperature_c": float(t.temperature_c), "fever": t.fever}
        for t in session.execute(
            text(
                "SELECT checked_at, temperature_c, fever FROM temperature_check WHERE resident_id = :id"
                " AND checked_at >= CAST(:today AS date) - 13 ORDER BY checked_at"
            ),
            {"id": resident_id, "today": today},
        )
    ]
    history = [
        dict(h._mapping)
        for h in session.execute(
            text(
                "SELECT changed_at, source, changes FROM resident_history WHERE resident_id = :id ORDER BY changed_at, id"
            ),
            {"id": resident_id},
        )
    ]
    return ResidentDetail(
        resident=_resident(row), hukou=row[12], address=row[13],
        quarantines=quarantines, temperatures=temperatures, history=history,
    )  # fmt: skip


# -- reveal -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RevealedIdentifiers:
    """A resident's full ID and phone numbers — for an audited reveal only —
    and the area the resident is counted in (for the audit row)."""

    resident_id: int
    id_number: str | None
    phone: str | None
    area_code: str | None


def reveal_identifiers(session: Session, *, resident_id: int) -> RevealedIdentifiers:
    """The unmasked identifiers of one resident; ``NotFound`` if there is none.
    The caller audits the reveal in the same transaction."""
    row = session.execute(
        text("SELECT r.id_number, r.phone FROM resident r WHERE r.id = :id"), {"id": resident_id}
    ).first()
    if row is None:
        raise NotFound(f"no resident with id {resident_id}")
    return RevealedIdentifiers(
        resident_id=resident_id, id_number=row[0], phone=row[1],
        area_code=object_area(session, kind="resident", object_id=resident_id),
    )  # fmt: skip


# -- scope helpers ----------------------------------------------------------------------------
def buildings_in_areas(
    session: Session, *, building_ids: Sequence[int], roots: Sequence[str], as_of: dt.date
) -> set[int]:
    """The buildings among ``building_ids`` whose point lies in one of the areas
    ``roots`` (their polygons on ``as_of``)."""
    ids = [int(b) for b in building_ids if 0 < int(b) < 2**63]
    if not ids or not roots:
        return set()
    rows = session.execute(
        text(
            "SELECT b.id FROM building b WHERE b.id = ANY(:ids) AND EXISTS (SELECT 1 FROM area a"
            f" WHERE a.code = ANY(:roots) AND {IN_FORCE} AND ST_Covers(a.geom, b.geom))"
        ),
        {"ids": ids, "roots": list(roots), "as_of": as_of},
    )
    return {int(r[0]) for r in rows}


def import_county(session: Session, *, batch_id: int) -> str | None:
    """The county an import batch was for (from its report); None if there is no such batch."""
    if not 0 < batch_id < 2**63:
        return None
    row = session.execute(
        text("SELECT report ->> 'county_code' FROM import_batch WHERE id = :id"), {"id": batch_id}
    ).first()
    return None if row is None or row[0] is None else str(row[0])
