"""Checkpoints (卡口) and the passages recorded at them.

What this module promises:

* A checkpoint is a WGS84 point (EPSG:4326); coordinates given in GCJ-02,
  BD-09 or an EPSG CRS are converted with ``geo.crs`` (iterative inverses).
  Its ``county_code`` is the county area in force that covers the point (the
  lowest code on a shared edge); a point in no county is refused.
* A passage's ``flagged`` is computed by the database: 37.3 °C or more, or a
  red or yellow health code. A passage of a known person (``resident_id``, or an
  ``id_number`` that a resident holds) is attributed to the micro-grid of that
  resident's household at the time it is recorded (``home_microgrid_code``).
* Times without a zone are Asia/Shanghai local times; "the date" of a passage is
  its Asia/Shanghai calendar date.
* ID and phone numbers leave masked (``4453**********1234``, ``138****5678``),
  also inside the reasons given for refusing a row.
* Scope: a checkpoint belongs to the areas that cover its point. An account
  places or moves one only inside its areas, and lists only those there. A
  passage names a known person only to those whose scope holds that person's
  home: a ``resident_id`` outside it is refused as a missing one, and the
  ``resident_id`` and ``home_microgrid_code`` of a person living outside it
  are answered as ``None`` (still stored, for the figures by home).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from db.access import HOUSEHOLD_AREA, ROOTS_SUBTREE_CODES, Scope
from db.areas import IN_FORCE, SUBTREE_CODES, BBox, require_area
from db.models import CHECKPOINT_KINDS, HEALTH_CODES, Passage
from db.paging import Page
from geo.crs import WGS84, Crs, lonlat_to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.localtime import CHINA_TZ, as_china_time
from geo.registry import check_id_number, check_phone, mask_id_number, mask_phone

DIRECTIONS: tuple[str, ...] = ("in", "out")
MIN_TEMPERATURE_C, MAX_TEMPERATURE_C = 30.0, 45.0
# Clocks of handheld devices drift: a passage a little in the future is accepted.
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
# Earlier times are typing errors (and year-1 times overflow when converted to UTC).
EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2999, 12, 31)
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 2_000
MAX_PLATE_CHARS = 16
_PHONE_NOISE = re.compile(r"[\s\-()（）]")


@dataclass(frozen=True)
class CheckpointRecord:
    id: int
    county_code: str
    name: str
    kind: str
    active: bool
    note: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    geom_4326: Point


@dataclass(frozen=True)
class CheckpointChanges:
    """A partial update: ``None`` leaves a field as it is, except ``note`` when
    ``set_note`` (then ``None`` clears it). ``location`` is (x, y) in ``crs``."""

    name: str | None = None
    kind: str | None = None
    location: tuple[float, float] | None = None
    crs: Crs = WGS84
    active: bool | None = None
    note: str | None = None
    set_note: bool = False


@dataclass(frozen=True)
class PassageInput:
    """One passage as received; ``passed_at`` without a zone is Asia/Shanghai time.
    ``temperature_c`` is kept to 0.1 °C (the database rounds half up, then flags)."""

    passed_at: dt.datetime
    direction: str | None = None
    resident_id: int | None = None
    id_number: str | None = None
    person_name: str | None = None
    plate: str | None = None
    phone: str | None = None
    temperature_c: float | None = None
    health_code: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class PassageRecord:
    """A stored passage, masked; ``passed_at`` in Asia/Shanghai time."""

    id: int
    checkpoint_id: int
    passed_at: dt.datetime
    direction: str | None
    resident_id: int | None
    person_name: str | None
    id_number: str | None  # masked
    phone: str | None  # masked
    plate: str | None
    temperature_c: float | None
    health_code: str | None
    origin: str | None
    flagged: bool
    home_microgrid_code: str | None


@dataclass(frozen=True)
class RowProblem:
    """Why the row at ``index`` (0-based, in the order received) was not stored."""

    index: int
    reason: str


@dataclass(frozen=True)
class PassageBatch:
    stored: list[PassageRecord] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)


# -- checkpoints --------------------------------------------------------------------------------
_CHECKPOINT_COLUMNS = (
    "k.id, k.county_code, k.name, k.kind, k.active, k.note, k.created_at, k.updated_at,"
    " ST_AsBinary(k.geom)"
)


def _checkpoint(row: Any) -> CheckpointRecord:
    geom = shapely.from_wkb(bytes(row[8]))
    assert isinstance(geom, Point)
    return CheckpointRecord(
        id=int(row[0]), county_code=row[1], name=row[2], kind=row[3], active=bool(row[4]),
        note=row[5], created_at=row[6], updated_at=row[7], geom_4326=geom,
    )  # fmt: skip


def _check_text(name: str, value: str | None, *, limit: int = MAX_TEXT_CHARS) -> str | None:
    """The text with surrounding spaces removed; the reason if it cannot be stored."""
    if value is None:
        return None
    if "\x00" in value:
        return f"{name} contains a NUL character"
    if len(value) > limit:
        return f"{name} is longer than {limit} characters"
    return None


def _require_text(name: str, value: str | None, *, limit: int = MAX_TEXT_CHARS) -> None:
    problem = _check_text(name, value, limit=limit)
    if problem is not None:
        raise InvalidInput(problem)


def _check_name(name: str) -> None:
    _require_text("name", name, limit=MAX_NAME_CHARS)
    if not name.strip():
        raise InvalidInput("name is empty")


def _check_kind(kind: str) -> None:
    if kind not in CHECKPOINT_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(CHECKPOINT_KINDS)}")


def wgs84_point(*, x: float, y: float, crs: Crs) -> Point:
    """The point (x, y) given in ``crs`` as WGS84 lon/lat; ``InvalidInput`` when it
    is not a finite lon/lat pair after conversion."""
    problem = f"location ({x}, {y}) in {crs.label} is not a point on Earth (lon/lat out of range)"
    if crs.kind != "epsg" and not _lonlat(x, y):  # GCJ-02 and BD-09 are lon/lat too
        raise InvalidInput(problem)
    lon, lat = (float(v[0]) for v in lonlat_to_wgs84(np.array([x]), np.array([y]), crs=crs))
    if not _lonlat(lon, lat):
        raise InvalidInput(problem)
    return Point(lon, lat)


def _lonlat(x: float, y: float) -> bool:
    return math.isfinite(x) and math.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90


def county_at(session: Session, *, point_4326: Point, as_of: dt.date) -> str:
    """Code of the county area in force on ``as_of`` that covers the point (the
    lowest code if two do); ``InvalidInput`` if none does."""
    code = session.execute(
        text(
            "SELECT a.code FROM area a WHERE a.level = 'county' AND "
            f"{IN_FORCE} AND ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
            " ORDER BY a.code LIMIT 1"
        ),
        {"lon": point_4326.x, "lat": point_4326.y, "as_of": as_of},
    ).scalar()
    if code is None:
        raise InvalidInput(
            f"location ({point_4326.x:.6f}, {point_4326.y:.6f}) (WGS84) lies in no county"
            f" Wangge holds on {as_of}"
        )
    return str(code)


# Does an area of the scope's roots (in force on :as_of) cover the point (:lon, :lat)?
_POINT_IN_ROOTS = (
    f"SELECT EXISTS (SELECT 1 FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}"
    " AND ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)))"
)
# The same for each checkpoint ``k`` of a list (the roots' polygons are few).
_CHECKPOINT_IN_ROOTS = (
    f"EXISTS (SELECT 1 FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}"
    " AND ST_Covers(a.geom, k.geom))"
)


def require_point_in_scope(
    session: Session, *, point_4326: Point, scope: Scope, as_of: dt.date
) -> None:
    """``InvalidInput`` unless one of the scope's areas (on ``as_of``) covers the point."""
    if scope.everything:
        return
    inside = session.execute(
        text(_POINT_IN_ROOTS),
        {"roots": list(scope.roots), "lon": point_4326.x, "lat": point_4326.y, "as_of": as_of},
    ).scalar_one()
    if not inside:
        raise InvalidInput(
            f"the point ({point_4326.x:.6f}, {point_4326.y:.6f}) (WGS84) is outside your areas"
        )


def create_checkpoint(
    session: Session,
    *,
    name: str,
    kind: str,
    x: float,
    y: float,
    crs: Crs,
    note: str | None,
    today: dt.date,
    scope: Scope,
) -> CheckpointRecord:
    """Store a checkpoint at (x, y) given in ``crs``, in the county covering it
    today; the point must lie in one of ``scope``'s areas (``InvalidInput``)."""
    _check_name(name)
    _check_kind(kind)
    _require_text("note", note)
    point = wgs84_point(x=x, y=y, crs=crs)
    require_point_in_scope(session, point_4326=point, scope=scope, as_of=today)
    county = county_at(session, point_4326=point, as_of=today)
    checkpoint_id = session.execute(
        text(
            "INSERT INTO checkpoint (county_code, name, kind, geom, note)"
            " VALUES (:county, :name, :kind, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :note)"
            " RETURNING id"
        ),
        {"county": county, "name": name.strip(), "kind": kind, "lon": point.x, "lat": point.y,
         "note": note},
    ).scalar_one()  # fmt: skip
    return get_checkpoint(session, checkpoint_id=int(checkpoint_id))


def get_checkpoint(session: Session, *, checkpoint_id: int) -> CheckpointRecord:
    """One checkpoint; ``NotFound`` for an unknown id."""
    row = session.execute(
        text(f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoint k WHERE k.id = :id"),
        {"id": checkpoint_id},
    ).first()
    if row is None:
        raise NotFound(f"no checkpoint with id {checkpoint_id}")
    return _checkpoint(row)


def list_checkpoints(
    session: Session,
    *,
    as_of: dt.date,
    within: str | None,
    kind: str | None,
    bbox: BBox | None,
    active: bool | None,
    page: Page,
    scope: Scope,
) -> tuple[list[CheckpointRecord], int]:
    """Checkpoints whose point lies in area ``within`` (its polygon on ``as_of``)
    and/or the WGS84 box, of ``kind``, ordered by id; and how many match. Only
    checkpoints whose point one of ``scope``'s areas covers are listed or
    counted (the caller checks that ``within`` is in scope)."""
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {"as_of": as_of}
    if not scope.everything:
        clauses.append(_CHECKPOINT_IN_ROOTS)
        params["roots"] = list(scope.roots)
    if within is not None:
        require_area(session, code=within, as_of=as_of)
        clauses.append(
            f"ST_Covers((SELECT a.geom FROM area a WHERE a.code = :within AND {IN_FORCE}), k.geom)"
        )
        params["within"] = within
    if kind is not None:
        _check_kind(kind)
        clauses.append("k.kind = :kind")
        params["kind"] = kind
    if active is not None:
        clauses.append("k.active = :active")
        params["active"] = active
    if bbox is not None:
        clauses.append("k.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params |= {"x0": bbox.min_lon, "y0": bbox.min_lat, "x1": bbox.max_lon, "y1": bbox.max_lat}
    where = " AND ".join(clauses)
    matched = int(
        session.execute(
            text(f"SELECT count(*) FROM checkpoint k WHERE {where}"), params
        ).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoint k WHERE {where}"
            " ORDER BY k.id LIMIT :limit OFFSET :offset"
        ),
        params | {"limit": page.limit, "offset": page.offset},
    ).all()
    return [_checkpoint(r) for r in rows], matched


def update_checkpoint(
    session: Session, *, checkpoint_id: int, changes: CheckpointChanges, today: dt.date,
    scope: Scope,
) -> CheckpointRecord:  # fmt: skip
    """Apply a partial update. A new location is converted from ``changes.crs``
    and the county re-derived from it (refused if it lies in no county, or
    outside ``scope``'s areas). ``NotFound`` for an unknown id (the caller
    checks the checkpoint itself is in scope); ``InvalidInput`` for a bad value
    or nothing to change."""
    sets: list[str] = []
    params: dict[str, Any] = {"id": checkpoint_id}
    if changes.name is not None:
        _check_name(changes.name)
        sets.append("name = :name")
        params["name"] = changes.name.strip()
    if changes.kind is not None:
        _check_kind(changes.kind)
        sets.append("kind = :kind")
        params["kind"] = changes.kind
    if changes.active is not None:
        sets.append("active = :active")
        params["active"] = changes.active
    if changes.set_note:
        _require_text("note", changes.note)
        sets.append("note = :note")
        params["note"] = changes.note
    if changes.location is not None:
        point = wgs84_point(x=changes.location[0], y=changes.location[1], crs=changes.crs)
        require_point_in_scope(session, point_4326=point, scope=scope, as_of=today)
        params |= {"lon": point.x, "lat": point.y}
        params["county"] = county_at(session, point_4326=point, as_of=today)
        sets += ["geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)", "county_code = :county"]
    if not sets:
        raise InvalidInput("nothing to change: give name, kind, location, active or note")
    updated = session.execute(
        text(f"UPDATE checkpoint SET {', '.join(sets)}, updated_at = now() WHERE id = :id"),
        params,
    )
    if getattr(updated, "rowcount", 0) == 0:
        raise NotFound(f"no checkpoint with id {checkpoint_id}")
    return get_checkpoint(session, checkpoint_id=checkpoint_id)


# -- passages --------------------------------------------------------------------------------------
def normalize_id_number(value: str) -> str:
    """Full-width digits, spaces and a lower-case x as people type them, made canonical."""
    return unicodedata.normalize("NFKC", value).replace(" ", "").upper()


def normalize_phone(value: str) -> str:
    """Digits only, without spaces, dashes, brackets or a +86/0086 prefix."""
    digits = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", value))
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            return digits[len(prefix) :]
    return digits


def _row_problem(row: PassageInput, *, now: dt.datetime) -> str | None:
    """Why the row cannot be stored, judged on its own; ``None`` if it can."""
    if row.resident_id is None and not any(
        (v or "").strip() for v in (row.id_number, row.person_name, row.plate)
    ):
        return "say who passed: resident_id, id_number, person_name or plate"
    if as_china_time(row.passed_at) > now + FUTURE_TOLERANCE:
        return f"passed_at {row.passed_at.isoformat()} is in the future"
    if as_china_time(row.passed_at) < local_day_bounds(EARLIEST_DAY)[0]:
        return f"passed_at {row.passed_at.isoformat()} is before {EARLIEST_DAY}"
    if row.direction is not None and row.direction not in DIRECTIONS:
        return f"direction {row.direction!r} is not one of in, out"
    if row.health_code is not None and row.health_code not in HEALTH_CODES:
        return f"health_code {row.health_code!r} is not one of {', '.join(HEALTH_CODES)}"
    if row.temperature_c is not None and not (
        MIN_TEMPERATURE_C <= row.temperature_c <= MAX_TEMPERATURE_C
    ):
        return f"temperature_c {row.temperature_c} is outside {MIN_TEMPERATURE_C}–{MAX_TEMPERATURE_C} °C"
    if row.id_number is not None:
        _, problems = check_id_number(row.id_number, today=now.astimezone(CHINA_TZ).date())
        if problems:
            return "; ".join(str(p) for p in problems)
    if row.phone is not None:
        _, problems = check_phone(row.phone)
        if problems:
            return "; ".join(str(p) for p in problems)
    for name, value, limit in (
        ("person_name", row.person_name, MAX_NAME_CHARS),
        ("plate", row.plate, MAX_PLATE_CHARS),
        ("origin", row.origin, MAX_TEXT_CHARS),
    ):
        problem = _check_text(name, value, limit=limit)
        if problem:
            return problem
    return None


@dataclass(frozen=True)
class _Known:
    resident_id: int
    id_number: str | None
    microgrid_code: str | None


def _known_residents(
    session: Session, *, rows: Sequence[PassageInput]
) -> tuple[dict[int, _Known], dict[str, _Known]]:
    """The residents the rows name, by id and by ID number, with their home micro-grid."""
    ids = sorted({r.resident_id for r in rows if r.resident_id is not None})
    numbers = sorted({normalize_id_number(r.id_number) for r in rows if r.id_number})
    if not ids and not numbers:
        return {}, {}
    found = [
        _Known(resident_id=int(r[0]), id_number=r[1], microgrid_code=r[2])
        for r in session.execute(
            text(
                "SELECT r.id, r.id_number, h.microgrid_code FROM resident r"
                " LEFT JOIN household h ON h.id = r.household_id"
                " WHERE r.id = ANY(:ids) OR r.id_number = ANY(:numbers)"
            ),
            {"ids": ids, "numbers": numbers},
        )
    ]
    by_id = {k.resident_id: k for k in found}
    by_number = {k.id_number: k for k in found if k.id_number}
    return by_id, by_number


def _attribute(
    row: PassageInput, *, by_id: dict[int, _Known], by_number: dict[str, _Known]
) -> _Known | str | None:
    """The resident the row is about (``None``: not a registered person), or the reason it is refused."""
    number = normalize_id_number(row.id_number) if row.id_number else None
    if row.resident_id is not None:
        known = by_id.get(row.resident_id)
        if known is None:
            return f"no resident with id {row.resident_id}"
        if number is not None and known.id_number is not None and known.id_number != number:
            return f"id_number {mask_id_number(number)} is not that of resident {row.resident_id}"
        return known
    return by_number.get(number) if number is not None else None


def _blank(value: str | None) -> str | None:
    return None if value is None else (value.strip() or None)


def _cleaned(row: PassageInput) -> PassageInput:
    """Blank texts are absent ones."""
    return replace(
        row,
        direction=_blank(row.direction),
        id_number=_blank(row.id_number),
        person_name=_blank(row.person_name),
        plate=_blank(row.plate),
        phone=_blank(row.phone),
        health_code=_blank(row.health_code),
        origin=_blank(row.origin),
    )


# Which of the residents :ids live in the scope (where db.access places a resident).
_RESIDENTS_IN_SCOPE = (
    "SELECT r.id FROM resident r LEFT JOIN household h ON h.id = r.household_id"
    f" WHERE r.id = ANY(:ids) AND coalesce({HOUSEHOLD_AREA}, r.county_code)"
    f" IN ({ROOTS_SUBTREE_CODES})"
)
_CODES_IN_SCOPE = (
    f"SELECT c FROM unnest(CAST(:codes AS text[])) AS c WHERE c IN ({ROOTS_SUBTREE_CODES})"
)


def _residents_in_scope(
    session: Session, *, ids: Sequence[int], scope: Scope, as_of: dt.date
) -> set[int]:
    if not ids:
        return set()
    if scope.everything:
        return set(ids)
    rows = session.execute(
        text(_RESIDENTS_IN_SCOPE), {"ids": list(ids), "roots": list(scope.roots), "as_of": as_of}
    )
    return {int(i) for (i,) in rows}


def _as_seen_by(
    session: Session, records: list[PassageRecord], *, scope: Scope, as_of: dt.date
) -> list[PassageRecord]:
    """The passages as ``scope`` may see them: a person whose home lies outside
    it is not named (``resident_id``, ``home_microgrid_code`` → ``None``)."""
    if scope.everything or not records:
        return records
    ids = sorted({r.resident_id for r in records if r.resident_id is not None})
    codes = sorted({r.home_microgrid_code for r in records if r.home_microgrid_code})
    shown_ids = _residents_in_scope(session, ids=ids, scope=scope, as_of=as_of)
    shown_codes: set[str] = set()
    if codes:
        shown_codes = {
            str(c)
            for (c,) in session.execute(
                text(_CODES_IN_SCOPE),
                {"codes": codes, "roots": list(scope.roots), "as_of": as_of},
            )
        }
    return [
        replace(
            r,
            resident_id=r.resident_id if r.resident_id in shown_ids else None,
            home_microgrid_code=(
                r.home_microgrid_code if r.home_microgrid_code in shown_codes else None
            ),
        )
        for r in records
    ]


def record_passages(
    session: Session,
    *,
    checkpoint_id: int,
    rows: Sequence[tuple[int, PassageInput]],
    now: dt.datetime,
    scope: Scope,
) -> PassageBatch:
    """Store the good rows of ``(index, passage)`` at the checkpoint and report
    every bad one with its index and reason. Known persons get ``resident_id``
    and their home micro-grid (answered only when ``scope`` holds their home;
    a ``resident_id`` outside it is refused as an unknown one).
    ``NotFound`` for an unknown checkpoint (the caller checks it is in scope)."""
    today = now.astimezone(CHINA_TZ).date()
    county = get_checkpoint(session, checkpoint_id=checkpoint_id).county_code
    rejected: list[RowProblem] = []
    checked: list[tuple[int, PassageInput]] = []
    for index, given in rows:
        row = _cleaned(given)
        problem = _row_problem(row, now=now)
        if problem is None:
            checked.append((index, row))
        else:
            rejected.append(RowProblem(index=index, reason=problem))
    by_id, by_number = _known_residents(session, rows=[r for _, r in checked])
    named = _residents_in_scope(session, ids=sorted(by_id), scope=scope, as_of=today)
    by_id = {i: known for i, known in by_id.items() if i in named}
    values: list[dict[str, Any]] = []
    for index, row in checked:
        known = _attribute(row, by_id=by_id, by_number=by_number)
        if isinstance(known, str):
            rejected.append(RowProblem(index=index, reason=known))
            continue
        values.append(_passage_values(row, checkpoint_id=checkpoint_id, county=county, known=known))
    ids: list[int] = []
    if values:
        ids = [
            int(i)
            for i in session.scalars(
                insert(Passage).returning(Passage.id, sort_by_parameter_order=True), values
            )
        ]
    rejected.sort(key=lambda p: p.index)
    stored = _as_seen_by(session, _passages_by_id(session, ids=ids), scope=scope, as_of=today)
    return PassageBatch(stored=stored, rejected=rejected)


def _passage_values(
    row: PassageInput, *, checkpoint_id: int, county: str, known: _Known | None
) -> dict[str, Any]:
    return {
        "county_code": county,
        "checkpoint_id": checkpoint_id,
        "passed_at": as_china_time(row.passed_at),
        "direction": row.direction,
        "resident_id": known.resident_id if known else None,
        "person_name": row.person_name,
        "id_number": normalize_id_number(row.id_number) if row.id_number else None,
        "phone": normalize_phone(row.phone) if row.phone else None,
        "plate": row.plate.upper() if row.plate else None,
        "temperature_c": row.temperature_c,
        "health_code": row.health_code,
        "origin": row.origin,
        "home_microgrid_code": known.microgrid_code if known else None,
    }


_PASSAGE_COLUMNS = (
    "p.id, p.checkpoint_id, p.passed_at, p.direction, p.resident_id, p.person_name, p.id_number,"
    " p.phone, p.plate, p.temperature_c, p.health_code, p.origin, p.flagged, p.home_microgrid_code"
)


def _passage(row: Any) -> PassageRecord:
    return PassageRecord(
        id=int(row[0]), checkpoint_id=int(row[1]), passed_at=row[2].astimezone(CHINA_TZ),
        direction=row[3], resident_id=row[4], person_name=row[5],
        id_number=mask_id_number(row[6]) if row[6] else None,
        phone=mask_phone(row[7]) if row[7] else None, plate=row[8],
        temperature_c=None if row[9] is None else float(row[9]), health_code=row[10],
        origin=row[11], flagged=bool(row[12]), home_microgrid_code=row[13],
    )  # fmt: skip


def _passages_by_id(session: Session, *, ids: list[int]) -> list[PassageRecord]:
    if not ids:
        return []
    rows = session.execute(
        text(f"SELECT {_PASSAGE_COLUMNS} FROM passage p WHERE p.id = ANY(:ids) ORDER BY p.id"),
        {"ids": ids},
    ).all()
    return [_passage(r) for r in rows]


def local_day_bounds(on: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants [start, end) of the Asia/Shanghai calendar date ``on``;
    ``InvalidInput`` outside 2000-01-01 … 2999-12-31."""
    if not EARLIEST_DAY <= on <= LATEST_DAY:
        raise InvalidInput(f"date {on} is outside {EARLIEST_DAY} … {LATEST_DAY}")
    start = dt.datetime.combine(on, dt.time(), tzinfo=CHINA_TZ)
    return start, dt.datetime.combine(on + dt.timedelta(days=1), dt.time(), tzinfo=CHINA_TZ)


def list_passages(
    session: Session,
    *,
    checkpoint_id: int,
    on: dt.date | None,
    flagged: bool | None,
    page: Page,
    scope: Scope,
    today: dt.date,
) -> tuple[list[PassageRecord], int]:
    """Passages at the checkpoint (on the Asia/Shanghai date ``on``; flagged or
    not), masked, ordered by time then id; ``NotFound`` for an unknown checkpoint
    (the caller checks it is in scope). People whose home lies outside
    ``scope`` (hierarchy of ``today``) are not named."""
    get_checkpoint(session, checkpoint_id=checkpoint_id)
    clauses: list[str] = ["p.checkpoint_id = :checkpoint"]
    params: dict[str, Any] = {"checkpoint": checkpoint_id}
    if on is not None:
        start, end = local_day_bounds(on)
        clauses.append("p.passed_at >= :start AND p.passed_at < :end")
        params |= {"start": start, "end": end}
    if flagged is not None:
        clauses.append("p.flagged = :flagged")
        params["flagged"] = flagged
    where = " AND ".join(clauses)
    matched = int(
        session.execute(text(f"SELECT count(*) FROM passage p WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_PASSAGE_COLUMNS} FROM passage p WHERE {where}"
            " ORDER BY p.passed_at, p.id LIMIT :limit OFFSET :offset"
        ),
        params | {"limit": page.limit, "offset": page.offset},
    ).all()
    return _as_seen_by(session, [_passage(r) for r in rows], scope=scope, as_of=today), matched


def flagged_passages_by_microgrid(
    session: Session, *, county_code: str | None, on: dt.date
) -> dict[str, int]:
    """Flagged passages whose Asia/Shanghai date is ``on``, counted by the home
    micro-grid of the person (passages of unknown people are not counted).

    With ``county_code``, only people living in that county count: home
    micro-grids in the county's subtree of areas in force on ``on``, wherever
    the checkpoint was; an unknown county gives ``{}``.
    """
    start, end = local_day_bounds(on)
    params: dict[str, Any] = {"start": start, "end": end}
    scope = ""
    if county_code is not None:
        scope = f" AND p.home_microgrid_code IN ({SUBTREE_CODES})"
        params |= {"within": county_code, "as_of": on}
    rows = session.execute(
        text(
            "SELECT p.home_microgrid_code, count(*) FROM passage p"
            " WHERE p.flagged AND p.passed_at >= :start AND p.passed_at < :end"
            f" AND p.home_microgrid_code IS NOT NULL{scope} GROUP BY p.home_microgrid_code"
        ),
        params,
    ).all()
    return {str(code): int(n) for code, n in rows}
