"""Screening rounds and door visits, with idempotent submission.

A **round** screens every household under one area (its ``area_code``) from
``start_date`` to ``end_date`` inclusive. Households count for a round by
their micro-grid (``household.microgrid_code``) lying in the round's area
subtree, walked down the hierarchy — never by code prefixes.

A **visit** is one grid worker at one household's door. Its date is the
China Standard Time (UTC+8, no daylight saving since 1991) date of
``visited_at``; a timestamp sent without an offset is read as China Standard
Time. ``distance_m`` is metres on the spheroid from the household's point to
where the phone was (``ST_Distance`` on ``geography``); a visit more than
:data:`FAR_VISIT_M` away is refused unless it carries a ``far_reason``.

Submissions may carry an idempotency key (phones queue visits offline and
resend them): under one key, the same body always gets the same answer and is
stored once, even when copies arrive at the same moment — requests with the
same key are serialised by a transaction-level advisory lock taken before the
key is looked up. Only stored visits are remembered under a key; a refused
body stores nothing, so it can be corrected and sent again.

**Scope.** Every function an account reaches takes its :class:`~db.access.Scope`
(area subtrees). A household, round or area outside it does not exist for the
caller: it is refused with the very words a missing one gets. A visit's
``worker`` is the recording account's name (:class:`Recorder`), never a member
of the body; ids, ``county_code`` and ``distance_m`` are the server's too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.access import (
    HOUSEHOLD_AREA,
    ROOTS_SUBTREE_CODES,
    Scope,
    area_in_scope,
    object_in_scope,
    round_in_scope,
)
from db.areas import IN_FORCE, SUBTREE_CODES
from db.models import VISIT_RESULTS
from db.paging import Page
from geo.crs import WGS84, lonlat_to_wgs84, parse_crs
from geo.errors import InvalidInput, LimitExceeded, NotFound, WanggeError
from geo.localtime import CHINA_TZ

FAR_VISIT_M = 100.0  # a visit further than this from its household needs a far_reason
MAX_FUTURE = dt.timedelta(minutes=5)  # phone clocks drift; beyond this a time is wrong
MAX_KEY_CHARS = 200  # idempotency_record.key is varchar(200)
MAX_BATCH_ITEMS = 1_000
IDEMPOTENCY_SCOPE = "visit"
STORED_STATUS = 201  # the answer remembered under a key is always a stored visit

_MAX_BIGINT = 2**63 - 1
_MAX_PERSONS_SEEN = 10_000
_TEXT_CAPS = {"note": 2_000, "far_reason": 1_000}
_VISIT_MEMBERS = (
    "household_id", "round_id", "result", "persons_seen", "note",
    "visited_at", "location", "far_reason", "crs", "idempotency_key", "temperatures",
)  # fmt: skip
_MAX_TEMPERATURES = 50  # readings per visit (a household's quarantined members)
_TEMPERATURE_RANGE_C = (30.0, 45.0)
# Members of a stored visit that only the server sets: a body naming one is
# refused (mass assignment), never silently obeyed or dropped.
SERVER_SET_MEMBERS = ("id", "county_code", "worker", "distance_m", "created_at")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

HouseholdRoundStatus = Literal["complete", "incomplete", "unvisited"]


# -- rounds ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoundRecord:
    """A screening round: every household under ``area_code``, dates inclusive."""

    id: int
    county_code: str
    area_code: str
    name: str
    start_date: dt.date
    end_date: dt.date


@dataclass(frozen=True)
class RoundFigures:
    """Households of a round's area (by micro-grid, hierarchy as of ``as_of``):
    ``households == complete + incomplete + unvisited``."""

    as_of: dt.date
    households: int
    complete: int  # at least one complete visit in the round
    incomplete: int  # visited in the round, no complete visit
    unvisited: int
    visits: int  # visits of those households in the round


ROUND_COLUMNS = "r.id, r.county_code, r.area_code, r.name, r.start_date, r.end_date"


def round_from_row(row: Any) -> RoundRecord:
    return RoundRecord(
        id=int(row[0]), county_code=row[1], area_code=row[2], name=row[3],
        start_date=row[4], end_date=row[5],
    )  # fmt: skip


def create_round(
    session: Session, *, area_code: str, name: str, start_date: dt.date, end_date: dt.date,
    scope: Scope,
) -> RoundRecord:  # fmt: skip
    """Store a round over ``area_code``. The area must be in force on
    ``start_date``, lie in ``scope`` (an area outside it is refused as a missing
    one is) and lie in a county (its ``county_code`` becomes the round's);
    ``end_date >= start_date``. Refusals are ``InvalidInput`` with the reason."""
    if end_date < start_date:
        raise InvalidInput(
            f"end_date {end_date.isoformat()} is before start_date {start_date.isoformat()}"
        )
    clean_name = name.strip()
    if not clean_name:
        raise InvalidInput("name is blank: give the round a name")
    if len(clean_name) > 200:
        raise InvalidInput(f"name has {len(clean_name)} characters; at most 200")
    area = session.execute(
        text(f"SELECT a.level, a.county_code FROM area a WHERE a.code = :code AND {IN_FORCE}"),
        {"code": area_code, "as_of": start_date},
    ).first()
    if area is None or not area_in_scope(session, code=area_code, scope=scope, as_of=start_date):
        raise InvalidInput(f"no area with code {area_code!r} on {start_date.isoformat()}")
    county = area[1] or (area_code if area[0] == "county" else None)
    if county is None:
        raise InvalidInput(
            f"area {area_code!r} ({area[0]}) lies in no county: a round covers a county or an area in one"
        )
    row = session.execute(
        text(
            "INSERT INTO screening_round AS r (county_code, area_code, name, start_date, end_date)"
            f" VALUES (:county, :area, :name, :start, :end) RETURNING {ROUND_COLUMNS}"
        ),
        {"county": county, "area": area_code, "name": clean_name, "start": start_date,
         "end": end_date},
    ).one()  # fmt: skip
    return round_from_row(row)


def get_round(session: Session, *, round_id: int) -> RoundRecord:
    """The round with this id; ``NotFound`` if none."""
    row = _find_round(session, round_id=round_id)
    if row is None:
        raise NotFound(f"no screening round with id {round_id}")
    return row


def _find_round(session: Session, *, round_id: int) -> RoundRecord | None:
    if not 0 < round_id <= _MAX_BIGINT:
        return None
    row = session.execute(
        text(f"SELECT {ROUND_COLUMNS} FROM screening_round r WHERE r.id = :id"), {"id": round_id}
    ).first()
    return None if row is None else round_from_row(row)


# Codes of :code and every area above it, as of :as_of (UNION: a bad cycle cannot loop).
_ANCESTOR_CODES = f"""
WITH RECURSIVE up(code, parent_code) AS (
    SELECT a.code, a.parent_code FROM area a WHERE a.code = :code AND {IN_FORCE}
  UNION
    SELECT a.code, a.parent_code FROM area a JOIN up u ON a.code = u.parent_code WHERE {IN_FORCE}
) SELECT code FROM up
"""


# The areas whose rounds a scope sees (db.access.round_in_scope): its subtrees,
# and every area above one of its roots.
_SCOPE_ROUND_AREAS = f"""
WITH RECURSIVE sub(code) AS (
    SELECT a.code FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}
  UNION
    SELECT a.code FROM area a JOIN sub s ON a.parent_code = s.code WHERE {IN_FORCE}
), up(code, parent_code) AS (
    SELECT a.code, a.parent_code FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}
  UNION
    SELECT a.code, a.parent_code FROM area a JOIN up u ON a.code = u.parent_code WHERE {IN_FORCE}
) SELECT code FROM sub UNION SELECT code FROM up
"""


def _round_area_visible(session: Session, *, code: str, scope: Scope, as_of: dt.date) -> bool:
    """Whether rounds over area ``code`` are visible to ``scope`` on ``as_of``."""
    if scope.everything:
        return True
    return bool(
        session.execute(
            text(f"SELECT :code IN ({_SCOPE_ROUND_AREAS})"),
            {"code": code, "roots": list(scope.roots), "as_of": as_of},
        ).scalar_one()
    )


def list_rounds(
    session: Session,
    *,
    within: str | None,
    active_on: dt.date | None,
    as_of: dt.date,
    page: Page,
    scope: Scope,
) -> tuple[list[RoundRecord], int]:
    """A page of rounds (newest start first, then highest id) and the number matched.

    Only rounds ``scope`` sees are listed or counted (as
    :func:`db.access.round_in_scope` decides on ``as_of``): those over an
    area of its subtrees or over an area above one of its roots.
    ``within`` keeps rounds whose area is that area, an ancestor or a
    descendant of it, in the hierarchy in force on ``active_on`` (when given)
    else ``as_of``; ``NotFound`` if ``within`` is not in force then, or is an
    area whose rounds the scope does not see (the same words).
    ``active_on`` keeps rounds whose dates cover that day.
    """
    clauses = ["TRUE"]
    params: dict[str, Any] = {"limit": page.limit, "offset": page.offset, "as_of": as_of}
    if not scope.everything:
        clauses.append(f"r.area_code IN ({_SCOPE_ROUND_AREAS})")
        params["roots"] = list(scope.roots)
    if within is not None:
        day = active_on or as_of
        found = session.execute(
            text(f"SELECT 1 FROM area a WHERE a.code = :code AND {IN_FORCE}"),
            {"code": within, "as_of": day},
        ).first()
        if found is None or not _round_area_visible(session, code=within, scope=scope, as_of=day):
            raise NotFound(f"no area with code {within!r} on {day.isoformat()}")
        related = session.execute(
            text(f"{_ANCESTOR_CODES} UNION SELECT code FROM ({SUBTREE_CODES}) AS d"),
            {"code": within, "within": within, "as_of": day},
        )
        clauses.append("r.area_code = ANY(:related)")
        params["related"] = sorted(str(c) for (c,) in related)
    if active_on is not None:
        clauses.append("r.start_date <= :active_on AND r.end_date >= :active_on")
        params["active_on"] = active_on
    where = " AND ".join(clauses)
    matched = int(
        session.execute(
            text(f"SELECT count(*) FROM screening_round r WHERE {where}"), params
        ).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {ROUND_COLUMNS} FROM screening_round r WHERE {where}"
            " ORDER BY r.start_date DESC, r.id DESC LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [round_from_row(r) for r in rows], matched


def round_figures(session: Session, *, round_id: int, as_of: dt.date, scope: Scope) -> RoundFigures:
    """Coverage of a round: its area's households (by micro-grid) split into
    complete, incomplete and unvisited — only those inside ``scope`` (a
    commander of one grid sees the county's round counted over that grid).
    The hierarchy is taken on ``as_of`` moved into the round's dates (or on
    ``start_date`` when the round's area is not in force that day); ``NotFound``
    if there is no such round. The caller checks the round is in scope."""
    found = get_round(session, round_id=round_id)
    day = min(max(as_of, found.start_date), found.end_date)
    in_force = session.execute(
        text(f"SELECT 1 FROM area a WHERE a.code = :within AND {IN_FORCE}"),
        {"within": found.area_code, "as_of": day},
    ).first()
    if in_force is None:
        day = found.start_date
    in_scope, scope_params = "", {}
    if not scope.everything:
        in_scope = f" AND h.microgrid_code IN ({ROOTS_SUBTREE_CODES})"
        scope_params = {"roots": list(scope.roots)}
    row = session.execute(
        text(
            "WITH st AS ("
            "  SELECT h.id, coalesce(bool_or(v.result = 'complete'), false) AS complete,"
            "         count(v.id) AS visits"
            "  FROM household h"
            "  LEFT JOIN visit v ON v.household_id = h.id AND v.round_id = :round_id"
            f" WHERE h.county_code = :county AND h.microgrid_code IN ({SUBTREE_CODES}){in_scope}"
            "  GROUP BY h.id)"
            " SELECT count(*), count(*) FILTER (WHERE complete),"
            " count(*) FILTER (WHERE visits > 0 AND NOT complete),"
            " count(*) FILTER (WHERE visits = 0), coalesce(sum(visits), 0) FROM st"
        ),
        {"round_id": round_id, "county": found.county_code, "within": found.area_code,
         "as_of": day} | scope_params,
    ).one()  # fmt: skip
    return RoundFigures(
        as_of=day, households=int(row[0]), complete=int(row[1]), incomplete=int(row[2]),
        unvisited=int(row[3]), visits=int(row[4]),
    )  # fmt: skip


def household_round_status(
    session: Session, *, round_id: int, household_ids: Sequence[int]
) -> dict[int, str]:
    """Each household asked for → ``'complete'`` (any complete visit in the
    round), ``'incomplete'`` (visited in the round, none complete) or
    ``'unvisited'``. Every id asked for is in the answer (unknown ids are
    unvisited); ``NotFound`` if the round does not exist."""
    get_round(session, round_id=round_id)
    if not household_ids:
        return {}
    rows = session.execute(
        text(
            "SELECT h.id, CASE WHEN bool_or(v.result = 'complete') THEN 'complete'"
            " WHEN count(v.id) > 0 THEN 'incomplete' ELSE 'unvisited' END"
            " FROM unnest(CAST(:ids AS bigint[])) AS h(id)"
            " LEFT JOIN visit v ON v.household_id = h.id AND v.round_id = :round_id"
            " GROUP BY h.id"
        ),
        {"ids": [int(i) for i in household_ids], "round_id": round_id},
    )
    return {int(i): str(status) for i, status in rows}


# -- visits: reading the body ------------------------------------------------------------------
@dataclass(frozen=True)
class VisitInput:
    """A visit as sent, checked: coordinates converted to WGS84 degrees,
    ``visited_at`` timezone-aware, ``far_reason`` stripped (None when blank)."""

    household_id: int
    round_id: int | None
    result: str
    persons_seen: int
    note: str | None
    visited_at: dt.datetime
    lon_4326: float
    lat_4326: float
    far_reason: str | None
    temperatures: tuple[tuple[int, float], ...] = ()  # (resident_id, °C) taken at the door

    @property
    def visit_date(self) -> dt.date:
        """The visit's date in China Standard Time."""
        return self.visited_at.astimezone(CHINA_TZ).date()


def parse_visit(payload: Any, *, now: dt.datetime) -> VisitInput:
    """Check one visit object as JSON decoded it; ``InvalidInput`` names the
    member and the rule broken. ``now`` (timezone-aware) is the default
    ``visited_at`` and the reference for "not in the future"."""
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"a visit is a JSON object, not {_json_type(payload)}")
    server_set = [name for name in SERVER_SET_MEMBERS if name in payload]
    if server_set:
        raise InvalidInput(
            f"{', '.join(server_set)}: set by the server, not by the client (the worker is the"
            " account that records the visit); leave it out"
        )
    unknown = sorted(str(k) for k in payload if k not in _VISIT_MEMBERS)
    if unknown:
        raise InvalidInput(
            f"unknown member(s) {', '.join(unknown)}; a visit has {', '.join(_VISIT_MEMBERS)}"
        )
    result = payload.get("result")
    if result not in VISIT_RESULTS:
        raise InvalidInput(f"result {result!r} is not one of {', '.join(VISIT_RESULTS)}")
    household_id = _id_member(payload, "household_id")
    if household_id is None:
        raise InvalidInput("household_id is required")
    persons_seen = _int_member(payload, "persons_seen", default=0)
    if not 0 <= persons_seen <= _MAX_PERSONS_SEEN:
        raise InvalidInput(f"persons_seen {persons_seen} must be between 0 and {_MAX_PERSONS_SEEN}")
    lon, lat = _location(payload.get("location"), crs_text=payload.get("crs", "wgs84"))
    return VisitInput(
        household_id=household_id, round_id=_id_member(payload, "round_id"), result=str(result),
        persons_seen=persons_seen, note=_text_member(payload, "note"),
        visited_at=_visited_at(payload.get("visited_at"), now=now), lon_4326=lon, lat_4326=lat,
        far_reason=(_text_member(payload, "far_reason") or "").strip() or None,
        temperatures=_temperatures(payload.get("temperatures")),
    )  # fmt: skip


def _temperatures(value: Any) -> tuple[tuple[int, float], ...]:
    """``[{"resident_id": …, "temperature_c": …}, …]`` → (id, °C) pairs, one per person."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput(f"temperatures must be an array, not {_json_type(value)}")
    if len(value) > _MAX_TEMPERATURES:
        raise InvalidInput(f"temperatures has {len(value)} readings; at most {_MAX_TEMPERATURES}")
    readings: dict[int, float] = {}
    low, high = _TEMPERATURE_RANGE_C
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) != {"resident_id", "temperature_c"}:
            raise InvalidInput(f"temperatures[{index}] must be {{resident_id, temperature_c}}")
        resident_id = _id_member(item, "resident_id")
        reading = item["temperature_c"]
        if isinstance(reading, bool) or not isinstance(reading, int | float) or not low <= reading <= high:
            raise InvalidInput(
                f"temperatures[{index}].temperature_c {reading!r} is not a temperature between {low} and {high} °C"
            )
        if resident_id in readings:
            raise InvalidInput(f"temperatures: resident {resident_id} is given twice")
        assert resident_id is not None
        readings[resident_id] = round(float(reading), 1)
    return tuple(readings.items())


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "that")


def _int_member(payload: Mapping[str, Any], name: str, *, default: int) -> int:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, not {_json_type(value)}")
    return value


def _id_member(payload: Mapping[str, Any], name: str) -> int | None:
    if payload.get(name) is None:
        return None
    value = _int_member(payload, name, default=0)
    if not 0 < value <= _MAX_BIGINT:
        raise InvalidInput(f"{name} {value} is not a valid id (a positive whole number)")
    return value


def _text_member(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, not {_json_type(value)}")
    if len(value) > _TEXT_CAPS[name]:
        raise InvalidInput(f"{name} has {len(value)} characters; at most {_TEXT_CAPS[name]}")
    return value


def _visited_at(value: Any, *, now: dt.datetime) -> dt.datetime:
    if value is None:
        return now
    if not isinstance(value, str) or _DATE_ONLY.match(value.strip()):
        raise InvalidInput(
            f"visited_at {value!r} must be an ISO 8601 date and time, e.g. 2020-02-03T10:15:00+08:00"
        )
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(
            f"visited_at {value!r} is not an ISO 8601 date and time, e.g. 2020-02-03T10:15:00+08:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CHINA_TZ)
    if parsed > now + MAX_FUTURE:
        ahead_min = (parsed - now).total_seconds() / 60
        raise InvalidInput(
            f"visited_at {value!r} is {ahead_min:.0f} min in the future (at most"
            f" {MAX_FUTURE.total_seconds() / 60:.0f} min is allowed for clock drift)"
        )
    return parsed


def _location(value: Any, *, crs_text: Any) -> tuple[float, float]:
    """WGS84 lon/lat of a GeoJSON Point given in ``crs_text`` (default wgs84)."""
    if value is None:
        raise InvalidInput("location is required: a GeoJSON Point of where the visit was made")
    if not isinstance(value, Mapping) or value.get("type") != "Point":
        raise InvalidInput(
            'location must be a GeoJSON Point, {"type": "Point", "coordinates": [lon, lat]}'
        )
    coords = value.get("coordinates")
    if (
        not isinstance(coords, list)
        or len(coords) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        or not all(math.isfinite(c) for c in coords)
    ):
        raise InvalidInput(
            f"location coordinates {coords!r} must be [lon, lat] (or [lon, lat, alt]) as finite numbers"
        )
    crs = parse_crs(crs_text) if crs_text is not None else WGS84
    lon_in, lat_in = float(coords[0]), float(coords[1])
    if crs.kind != "epsg" and not (-180 <= lon_in <= 180 and -90 <= lat_in <= 90):
        raise InvalidInput(
            f"location [{lon_in}, {lat_in}] is out of range: longitude in [-180, 180],"
            " latitude in [-90, 90] (GeoJSON order is lon, lat)"
        )
    lons, lats = lonlat_to_wgs84([lon_in], [lat_in], crs=crs)
    lon, lat = float(lons[0]), float(lats[0])
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"location [{lon_in}, {lat_in}] in {crs.label} is not a place on Earth")
    return lon, lat


# -- visits: storing ------------------------------------------------------------------------
_VISIT_RETURNING = (
    "v.id, v.household_id, v.round_id, v.result, v.persons_seen, v.note, v.worker,"
    " v.visited_at, ST_X(v.geom), ST_Y(v.geom), v.distance_m, v.far_reason"
)


def _visit_json(row: Any) -> dict[str, Any]:
    """A stored visit as the API answers it (JSON-ready: it is also what an
    idempotency record keeps). Location GeoJSON, lon/lat to 6 decimals."""
    location = None
    if row[8] is not None:
        location = {"type": "Point", "coordinates": [round(row[8], 6), round(row[9], 6)]}
    return {
        "id": int(row[0]), "household_id": int(row[1]), "round_id": int(row[2]),
        "result": row[3], "persons_seen": int(row[4]), "note": row[5], "worker": row[6],
        "visited_at": row[7].astimezone(CHINA_TZ).isoformat(), "location": location,
        "distance_m": None if row[10] is None else round(float(row[10]), 2),
        "far_reason": row[11],
    }  # fmt: skip


@dataclass(frozen=True)
class Recorder:
    """Who records visits: the account's name (stored as each visit's
    ``worker``) and the scope it works in. ``today`` (China Standard Time) is
    the day the scope's hierarchy is read on."""

    worker: str
    scope: Scope
    today: dt.date


def record_visit(session: Session, *, visit: VisitInput, recorder: Recorder) -> dict[str, Any]:
    """Store one checked visit by ``recorder`` and return it as :func:`_visit_json` shapes it.

    The round is ``visit.round_id`` or else the household's active round on the
    visit's date (see :func:`active_round`). Refused with ``InvalidInput``: an
    unknown household or round — or one outside the recorder's scope, in the
    same words —, a household outside the round's area (its micro-grid not
    under the round's area on the visit date), a visit date outside the round's
    dates, or a visit further than :data:`FAR_VISIT_M` from the household
    without a ``far_reason`` (the message names the metres).
    """
    household = session.execute(
        text(
            "SELECT h.county_code, h.microgrid_code, CASE WHEN h.geom IS NULL THEN NULL ELSE"
            " ST_Distance(h.geom::geography,"
            " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) END"
            " FROM household h WHERE h.id = :id"
        ),
        {"id": visit.household_id, "lon": visit.lon_4326, "lat": visit.lat_4326},
    ).first()
    if household is None or not _household_in_scope(
        session, household_id=visit.household_id, recorder=recorder
    ):
        raise InvalidInput(f"household_id {visit.household_id}: no such household")
    county, microgrid, distance_m = household[0], household[1], household[2]
    round_id = _round_for(
        session, visit=visit, county=county, microgrid=microgrid, recorder=recorder
    )
    if distance_m is not None and distance_m > FAR_VISIT_M and visit.far_reason is None:
        raise InvalidInput(
            f"the visit was recorded {distance_m:.1f} m from household {visit.household_id},"
            f" more than {FAR_VISIT_M:.0f} m: give a far_reason to keep it",
            extra={"distance_m": round(float(distance_m), 2)},
        )
    row = session.execute(
        text(
            "INSERT INTO visit AS v (county_code, round_id, household_id, result, persons_seen,"
            " note, worker, visited_at, geom, distance_m, far_reason) VALUES (:county, :round_id,"
            " :household_id, :result, :persons_seen, :note, :worker, :visited_at,"
            " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :distance_m, :far_reason)"
            f" RETURNING {_VISIT_RETURNING}"
        ),
        {"county": county, "round_id": round_id, "household_id": visit.household_id,
         "result": visit.result, "persons_seen": visit.persons_seen, "note": visit.note,
         "worker": recorder.worker, "visited_at": visit.visited_at, "lon": visit.lon_4326,
         "lat": visit.lat_4326, "distance_m": distance_m, "far_reason": visit.far_reason},
    ).one()  # fmt: skip
    stored = _visit_json(row)
    if visit.temperatures:
        stored["temperatures"] = _record_temperatures(session, visit=visit, county=county)
    return stored


def _record_temperatures(
    session: Session, *, visit: VisitInput, county: str
) -> list[dict[str, Any]]:
    """Store the temperatures taken at the door as the residents' checks at
    the visit's time; each resident must live in the visited household."""
    ids = [resident_id for resident_id, _ in visit.temperatures]
    living = {
        int(r)
        for (r,) in session.execute(
            text("SELECT id FROM resident WHERE household_id = :h AND id = ANY(:ids)"),
            {"h": visit.household_id, "ids": ids},
        )
    }
    strangers = [str(i) for i in ids if i not in living]
    if strangers:
        raise InvalidInput(
            f"temperatures: resident(s) {', '.join(strangers)} do not live in household {visit.household_id}"
        )
    session.execute(
        text(
            "INSERT INTO temperature_check (county_code, resident_id, checked_at, temperature_c)"
            " SELECT :county, t.id, :at, t.c FROM unnest(CAST(:ids AS bigint[]),"
            " CAST(:temps AS numeric[])) AS t(id, c)"
        ),
        {"county": county, "at": visit.visited_at, "ids": ids,
         "temps": [c for _, c in visit.temperatures]},
    )  # fmt: skip
    return [{"resident_id": i, "temperature_c": c} for i, c in visit.temperatures]


def _household_in_scope(session: Session, *, household_id: int, recorder: Recorder) -> bool:
    if recorder.scope.everything:
        return True
    return object_in_scope(
        session, kind="household", object_id=household_id, scope=recorder.scope,
        as_of=recorder.today,
    )  # fmt: skip


def _ancestors(session: Session, *, microgrid: str | None, day: dt.date) -> list[str]:
    if microgrid is None:
        return []
    rows = session.execute(text(_ANCESTOR_CODES), {"code": microgrid, "as_of": day})
    return [str(code) for (code,) in rows]


def active_round(
    session: Session, *, county_code: str, microgrid_code: str | None, day: dt.date
) -> int | None:
    """The id of the round a household (by its micro-grid) is screened in on
    ``day``: one whose area contains the micro-grid (hierarchy of ``day``) and
    whose dates cover ``day``; of several, the latest ``start_date``, then the
    highest id. None when there is none."""
    codes = _ancestors(session, microgrid=microgrid_code, day=day)
    if not codes:
        return None
    found = session.execute(
        text(
            "SELECT r.id FROM screening_round r WHERE r.county_code = :county"
            " AND r.area_code = ANY(:codes) AND r.start_date <= :day AND r.end_date >= :day"
            " ORDER BY r.start_date DESC, r.id DESC LIMIT 1"
        ),
        {"county": county_code, "codes": codes, "day": day},
    ).scalar_one_or_none()
    return None if found is None else int(found)


def _round_for(
    session: Session, *, visit: VisitInput, county: str, microgrid: str | None, recorder: Recorder
) -> int:
    """The visit's round. The active round of a household in scope is always
    visible to the recorder (its area contains the household's micro-grid); a
    round named in the body must be in scope, or it is refused as a missing one."""
    day = visit.visit_date
    if visit.round_id is None:
        found = active_round(session, county_code=county, microgrid_code=microgrid, day=day)
        if found is None:
            where = f"micro-grid {microgrid}" if microgrid else "no micro-grid (not located)"
            raise InvalidInput(
                f"household {visit.household_id} ({where}) has no active screening round on"
                f" {day.isoformat()}: give round_id, or create a round covering its area and date"
            )
        return found
    chosen = _find_round(session, round_id=visit.round_id)
    if chosen is None or not round_in_scope(
        session, round_id=chosen.id, scope=recorder.scope, as_of=recorder.today
    ):
        raise InvalidInput(f"round_id {visit.round_id}: no such screening round")
    if not chosen.start_date <= day <= chosen.end_date:
        raise InvalidInput(
            f"the visit's date {day.isoformat()} (China Standard Time) is outside round"
            f" {chosen.id} ({chosen.start_date.isoformat()} to {chosen.end_date.isoformat()})"
        )
    if chosen.area_code not in _ancestors(session, microgrid=microgrid, day=day):
        where = f"micro-grid {microgrid}" if microgrid else "no micro-grid (not located)"
        raise InvalidInput(
            f"household {visit.household_id} ({where}) is not in round {chosen.id}'s area"
            f" {chosen.area_code} on {day.isoformat()}"
        )
    return chosen.id


# -- idempotent submission ---------------------------------------------------------------------
@dataclass(frozen=True)
class Submission:
    """The answer to one visit submitted: the stored visit (JSON-ready), its
    status code, and whether it was replayed from an idempotency record."""

    visit: dict[str, Any]
    status_code: int
    replayed: bool


def check_idempotency_key(key: Any) -> str:
    """The key as given if it is 1–200 characters of text; ``InvalidInput`` otherwise."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"idempotency key {key!r} must be non-blank text")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidInput(f"idempotency key has {len(key)} characters; at most {MAX_KEY_CHARS}")
    return key


def request_sha256(payload: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of a visit body: keys sorted, no
    spaces, UTF-8, without its ``idempotency_key`` member — so the same visit
    sent alone (key in the header) or in a batch (key in the item) matches."""
    body = payload
    if isinstance(payload, Mapping):
        body = {k: v for k, v in payload.items() if k != "idempotency_key"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _lock_key(session: Session, *, key: str) -> None:
    """Serialise, until this transaction ends, every submission under ``key``."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:scope || ':' || :key, 0))"),
        {"scope": IDEMPOTENCY_SCOPE, "key": key},
    )


def _submit_one(
    session: Session, *, payload: Any, key: str | None, now: dt.datetime, recorder: Recorder
) -> Submission:
    """Store (or replay) one visit; the caller holds the lock on ``key``.

    The body is checked — its form, and (before a key is looked up) its
    household and round being in the recorder's scope — so a replay never
    answers what the recorder could not have stored."""
    visit = parse_visit(payload, now=now)
    if key is None:
        return Submission(
            visit=record_visit(session, visit=visit, recorder=recorder),
            status_code=STORED_STATUS,
            replayed=False,
        )
    if not _household_in_scope(session, household_id=visit.household_id, recorder=recorder):
        raise InvalidInput(f"household_id {visit.household_id}: no such household")
    if visit.round_id is not None and not round_in_scope(
        session, round_id=visit.round_id, scope=recorder.scope, as_of=recorder.today
    ):
        raise InvalidInput(f"round_id {visit.round_id}: no such screening round")
    digest = request_sha256(payload)
    stored = session.execute(
        text(
            "SELECT request_sha256, status_code, response FROM idempotency_record"
            " WHERE scope = :scope AND key = :key"
        ),
        {"scope": IDEMPOTENCY_SCOPE, "key": key},
    ).first()
    if stored is not None:
        if stored[0] != digest:
            raise InvalidInput(
                f"idempotency key {key!r} was already used with a different body;"
                " send a new key for a new visit"
            )
        if stored[2].get("worker") != recorder.worker:
            raise InvalidInput(
                f"idempotency key {key!r} was already used by another account;"
                " send a new key for a new visit"
            )
        return Submission(visit=dict(stored[2]), status_code=int(stored[1]), replayed=True)
    answer = record_visit(session, visit=visit, recorder=recorder)
    session.execute(
        text(
            "INSERT INTO idempotency_record (scope, key, request_sha256, status_code, response)"
            " VALUES (:scope, :key, :digest, :status, CAST(:response AS jsonb))"
        ),
        {"scope": IDEMPOTENCY_SCOPE, "key": key, "digest": digest, "status": STORED_STATUS,
         "response": json.dumps(answer, ensure_ascii=False)},
    )  # fmt: skip
    return Submission(visit=answer, status_code=STORED_STATUS, replayed=False)


def _payload_key(payload: Any, *, header_key: str | None) -> str | None:
    body_key = payload.get("idempotency_key") if isinstance(payload, Mapping) else None
    if header_key is not None and body_key is not None and body_key != header_key:
        raise InvalidInput(
            f"the Idempotency-Key header {header_key!r} and the body's idempotency_key"
            f" {body_key!r} differ; give one key"
        )
    key = header_key if header_key is not None else body_key
    return None if key is None else check_idempotency_key(key)


def submit_visit(
    session: Session, *, payload: Any, idempotency_key: str | None, now: dt.datetime,
    recorder: Recorder,
) -> Submission:  # fmt: skip
    """Store one visit by ``recorder`` (see :func:`record_visit`), idempotently
    when a key is given (``idempotency_key``, or the body's ``idempotency_key``
    member): the same key and body from the same account answer what was
    stored the first time, stored once; the same key with another body, or
    from another account, is ``InvalidInput``."""
    key = _payload_key(payload, header_key=idempotency_key)
    if key is not None:
        _lock_key(session, key=key)
    return _submit_one(session, payload=payload, key=key, now=now, recorder=recorder)


def submit_visit_batch(
    session: Session, *, payloads: Sequence[Any], now: dt.datetime, recorder: Recorder
) -> list[Submission | WanggeError]:
    """Store each visit of a batch on its own: one answer per item, in order —
    its :class:`Submission`, or the error that refused it (nothing of a refused
    item is stored; every other item is). Items carry their own
    ``idempotency_key``; the locks of all keys are taken first, in sorted
    order, so two batches never wait on each other in a cycle.
    ``LimitExceeded`` beyond :data:`MAX_BATCH_ITEMS` items."""
    if len(payloads) > MAX_BATCH_ITEMS:
        raise LimitExceeded(
            f"a batch has {len(payloads)} visits; send at most {MAX_BATCH_ITEMS} at a time"
        )
    keys: list[str | WanggeError | None] = []
    for payload in payloads:
        try:
            keys.append(_payload_key(payload, header_key=None))
        except WanggeError as error:
            keys.append(error)
    for key in sorted({k for k in keys if isinstance(k, str)}):
        _lock_key(session, key=key)
    answers: list[Submission | WanggeError] = []
    for payload, item_key in zip(payloads, keys, strict=True):
        if isinstance(item_key, WanggeError):
            answers.append(item_key)
            continue
        savepoint = session.begin_nested()
        try:
            answers.append(
                _submit_one(session, payload=payload, key=item_key, now=now, recorder=recorder)
            )
        except WanggeError as error:
            savepoint.rollback()
            answers.append(error)
        else:
            savepoint.commit()
    return answers


def list_visits(
    session: Session, *, household_id: int | None, round_id: int | None, page: Page,
    scope: Scope, as_of: dt.date,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """A page of stored visits (by ``visited_at`` then id), filtered by
    household and/or round, and the number matched — only visits of
    households in ``scope`` (the area a household counts in, as
    :mod:`db.access` places it, in the hierarchy of ``as_of``): a household
    outside it lists nothing, as a missing one does."""
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {"limit": page.limit, "offset": page.offset}
    if not scope.everything:
        clauses.append(
            "EXISTS (SELECT 1 FROM household h WHERE h.id = v.household_id AND"
            f" {HOUSEHOLD_AREA} IN ({ROOTS_SUBTREE_CODES}))"
        )
        params |= {"roots": list(scope.roots), "as_of": as_of}
    for column, value in (("household_id", household_id), ("round_id", round_id)):
        if value is not None:
            if not 0 < value <= _MAX_BIGINT:
                raise InvalidInput(f"{column} {value} is not a valid id (a positive whole number)")
            clauses.append(f"v.{column} = :{column}")
            params[column] = value
    where = " AND ".join(clauses)
    matched = int(
        session.execute(text(f"SELECT count(*) FROM visit v WHERE {where}"), params).scalar_one()
    )
    rows = session.execute(
        text(
            f"SELECT {_VISIT_RETURNING} FROM visit v WHERE {where}"
            " ORDER BY v.visited_at, v.id LIMIT :limit OFFSET :offset"
        ),
        params,
    ).all()
    return [_visit_json(r) for r in rows], matched
