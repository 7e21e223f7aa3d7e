"""A grid worker's door visits for today in one micro-grid, highest priority
first, each household with its reasons:

1. ``fever`` — someone there had a temperature of 37.3 °C or more today or
   yesterday (a follow-up);
2. ``quarantine_overdue`` — someone there is under quarantine today and has
   no temperature check today;
3. ``incomplete`` — visited in the round, but not completely;
4. ``unvisited`` — not yet visited in the round.

Reasons 2–4 select exactly the households the layers count
(``db.layers.households_with_status_sql``), so the phone's list and the wall
map agree. Days are China's calendar days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.layers import (
    boundaries_changed_since,
    default_round,
    households_with_status_sql,
    local_day,
)

TASK_REASONS = ("fever", "quarantine_overdue", "incomplete", "unvisited")  # priority order
REASON_LABELS = {
    "fever": "发热随访 fever follow-up",
    "quarantine_overdue": "隔离人员今日未测体温 quarantine: no temperature today",
    "incomplete": "上次走访未完成 visit incomplete",
    "unvisited": "本轮未走访 not yet visited this round",
}

_FEVER_SQL = f"""
SELECT DISTINCT r.household_id FROM temperature_check t JOIN resident r ON r.id = t.resident_id
JOIN household h ON h.id = r.household_id
WHERE h.microgrid_code = :within AND t.fever
  AND {local_day("t.checked_at")} BETWEEN CAST(:as_of AS date) - 1 AND :as_of
"""


@dataclass(frozen=True)
class QuarantinedPerson:
    """Someone of the household under quarantine today (name masked to its first character)."""

    resident_id: int
    name_masked: str
    checked_today: bool


@dataclass(frozen=True)
class Task:
    household_id: int
    reasons: tuple[str, ...]
    priority: int  # 1 (first) … 4
    address: str | None
    building_id: int | None
    unit: str | None
    floor: int | None
    lon: float
    lat: float
    quarantined: tuple[QuarantinedPerson, ...]


def todays_tasks(
    session: Session, *, microgrid: str, today: dt.date, round_id: int | None = None
) -> tuple[list[Task], int | None]:
    """The micro-grid's tasks on ``today`` (priority, then building, unit,
    floor, id) and the round they come from (None: no round in progress).
    Households without a point are left out (they cannot be walked to)."""
    round_record = None
    if round_id is None:
        round_record = default_round(session, within=microgrid, as_of=today)
        round_id = None if round_record is None else round_record.id
    reasons: dict[int, list[str]] = {}
    params: dict[str, Any] = {"within": microgrid, "as_of": today}
    for household_id in session.execute(text(_FEVER_SQL), params).scalars():
        reasons.setdefault(int(household_id), []).append("fever")
    recomputed = boundaries_changed_since(session, as_of=today)
    statuses = ["quarantine_overdue"] + (
        ["incomplete", "unvisited"] if round_id is not None else []
    )
    round_area = _round_area(session, round_id=round_id)
    for status in statuses:
        sql = households_with_status_sql(status=status, recomputed=recomputed)
        rows = session.execute(text(sql), params | {"round_id": round_id, "round_area": round_area})
        for (household_id,) in rows:
            reasons.setdefault(int(household_id), []).append(status)
    tasks = _tasks(session, reasons=reasons, today=today)
    tasks.sort(
        key=lambda t: (t.priority, t.building_id or 0, t.unit or "", t.floor or 0, t.household_id)
    )
    return tasks, round_id


def _round_area(session: Session, *, round_id: int | None) -> str | None:
    if round_id is None:
        return None
    return session.execute(
        text("SELECT area_code FROM screening_round WHERE id = :id"), {"id": round_id}
    ).scalar_one_or_none()


def _tasks(session: Session, *, reasons: dict[int, list[str]], today: dt.date) -> list[Task]:
    if not reasons:
        return []
    rows = session.execute(
        text(
            "SELECT h.id, h.address, h.building_id, h.unit, h.floor, ST_X(h.geom), ST_Y(h.geom)"
            " FROM household h WHERE h.id = ANY(:ids) AND h.geom IS NOT NULL"
        ),
        {"ids": list(reasons)},
    ).all()
    people = _quarantined(session, household_ids=list(reasons), today=today)
    tasks = []
    for household_id, address, building_id, unit, floor, lon, lat in rows:
        ordered = tuple(r for r in TASK_REASONS if r in reasons[int(household_id)])
        tasks.append(
            Task(
                household_id=int(household_id), reasons=ordered,
                priority=TASK_REASONS.index(ordered[0]) + 1, address=address,
                building_id=building_id, unit=unit, floor=floor, lon=float(lon), lat=float(lat),
                quarantined=tuple(people.get(int(household_id), [])),
            )
        )  # fmt: skip
    return tasks


def _quarantined(
    session: Session, *, household_ids: list[int], today: dt.date
) -> dict[int, list[QuarantinedPerson]]:
    rows = session.execute(
        text(
            "SELECT r.household_id, r.id, r.name, EXISTS (SELECT 1 FROM temperature_check t"
            f" WHERE t.resident_id = r.id AND {local_day('t.checked_at')} = :today)"
            " FROM resident r WHERE r.household_id = ANY(:ids) AND EXISTS (SELECT 1 FROM quarantine q"
            " WHERE q.resident_id = r.id AND q.start_date <= :today"
            " AND (q.released_on IS NULL OR q.released_on > :today)) ORDER BY r.id"
        ),
        {"ids": household_ids, "today": today},
    ).all()
    found: dict[int, list[QuarantinedPerson]] = {}
    for household_id, resident_id, name, checked in rows:
        masked = (str(name)[:1] + "*" * max(len(str(name)) - 1, 1)) if name else "*"
        found.setdefault(int(household_id), []).append(
            QuarantinedPerson(
                resident_id=int(resident_id), name_masked=masked, checked_today=bool(checked)
            )
        )
    return found
