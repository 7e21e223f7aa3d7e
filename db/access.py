"""Where an account may look: area subtrees, and the area each object lives in.

An object outside the caller's scope does not exist for them. These queries
answer "is this area (or household, resident, case, checkpoint, round)
inside the subtrees of these roots?" — by walking up the hierarchy from the
object's area, never by code prefixes (an imported hierarchy need not
follow them). The API turns a "no" into a 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.areas import IN_FORCE


@dataclass(frozen=True)
class Scope:
    """The area subtrees an account may see; ``everything`` for an admin."""

    everything: bool
    roots: tuple[str, ...]

    @classmethod
    def of(cls, *, role: str, areas: Sequence[str]) -> Scope:
        return cls(everything=role == "admin" and not areas, roots=tuple(areas))


# Is :code, or an ancestor of it (on :as_of), one of :roots?
_UNDER_ROOTS = f"""
WITH RECURSIVE up(code, parent_code) AS (
    SELECT a.code, a.parent_code FROM area a WHERE a.code = :code AND {IN_FORCE}
  UNION ALL
    SELECT a.code, a.parent_code FROM area a JOIN up u ON a.code = u.parent_code WHERE {IN_FORCE}
) SELECT EXISTS (SELECT 1 FROM up WHERE code = ANY(:roots))
"""

# The area each kind of object is counted in: a household's micro-grid, else
# the area it was located to, else its county (unlocated households count for
# the county); a resident's household's; a case's person's household's, else
# its household's, else its county.
HOUSEHOLD_AREA = "coalesce(h.microgrid_code, h.area_code, h.county_code)"

# Codes of the areas :roots and of every area below them, as of :as_of.
ROOTS_SUBTREE_CODES = f"""
WITH RECURSIVE sub(code) AS (
    SELECT a.code FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}
  UNION
    SELECT a.code FROM area a JOIN sub s ON a.parent_code = s.code WHERE {IN_FORCE}
) SELECT code FROM sub
"""
OBJECT_AREA_SQL: dict[str, str] = {
    "household": f"SELECT {HOUSEHOLD_AREA} FROM household h WHERE h.id = :id",
    "resident": (
        f"SELECT coalesce({HOUSEHOLD_AREA}, r.county_code) FROM resident r"
        " LEFT JOIN household h ON h.id = r.household_id WHERE r.id = :id"
    ),
    "case": (
        f"SELECT coalesce({HOUSEHOLD_AREA}, c.county_code) FROM case_report c"
        " LEFT JOIN resident r ON r.id = c.resident_id"
        " LEFT JOIN household h ON h.id = coalesce(r.household_id, c.household_id)"
        " WHERE c.id = :id"
    ),
    "visit": (
        f"SELECT {HOUSEHOLD_AREA} FROM visit v JOIN household h ON h.id = v.household_id"
        " WHERE v.id = :id"
    ),
    "review": (
        f"SELECT {HOUSEHOLD_AREA} FROM geocode_review g JOIN household h ON h.id = g.household_id"
        " WHERE g.id = :id"
    ),
}
_MAX_ID = 2**63 - 1


def area_in_scope(session: Session, *, code: str, scope: Scope, as_of: dt.date) -> bool:
    """Whether area ``code`` (in force on ``as_of``) lies in one of the scope's subtrees."""
    if scope.everything:
        return True
    if not scope.roots:
        return False
    return bool(
        session.execute(
            text(_UNDER_ROOTS), {"code": code, "roots": list(scope.roots), "as_of": as_of}
        ).scalar_one()
    )


def object_area(session: Session, *, kind: str, object_id: int) -> str | None:
    """The area object ``kind``/``object_id`` is counted in; None if there is no such object."""
    if not 0 < object_id <= _MAX_ID:
        return None
    row = session.execute(text(OBJECT_AREA_SQL[kind]), {"id": object_id}).first()
    return None if row is None or row[0] is None else str(row[0])


def object_in_scope(
    session: Session, *, kind: str, object_id: int, scope: Scope, as_of: dt.date
) -> bool:
    """Whether the object exists and lives in the scope (False for both "no" cases:
    the caller cannot tell a missing object from one outside their areas)."""
    area = object_area(session, kind=kind, object_id=object_id)
    if area is None:
        return False
    return area_in_scope(session, code=area, scope=scope, as_of=as_of)


def checkpoint_in_scope(
    session: Session, *, checkpoint_id: int, scope: Scope, as_of: dt.date
) -> bool:
    """A checkpoint is in scope when its point lies in one of the scope's areas."""
    if not 0 < checkpoint_id <= _MAX_ID:
        return False
    if scope.everything:
        return (
            session.execute(
                text("SELECT 1 FROM checkpoint WHERE id = :id"), {"id": checkpoint_id}
            ).first()
            is not None
        )
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM checkpoint c JOIN area a ON a.code = ANY(:roots)"
                f" AND {IN_FORCE} AND ST_Covers(a.geom, c.geom) WHERE c.id = :id)"
            ),
            {"id": checkpoint_id, "roots": list(scope.roots), "as_of": as_of},
        ).scalar_one()
    )


def round_in_scope(session: Session, *, round_id: int, scope: Scope, as_of: dt.date) -> bool:
    """A round is visible to those working inside its area and to those above
    a part of it: its area is in the scope, or one of the scope's roots lies
    inside its area."""
    if not 0 < round_id <= _MAX_ID:
        return False
    row = session.execute(
        text("SELECT area_code FROM screening_round WHERE id = :id"), {"id": round_id}
    ).first()
    if row is None:
        return False
    if area_in_scope(session, code=str(row[0]), scope=scope, as_of=as_of):
        return True
    return any(
        area_in_scope(session, code=root, scope=Scope(everything=False, roots=(str(row[0]),)),
                      as_of=as_of)
        for root in scope.roots
    )  # fmt: skip
