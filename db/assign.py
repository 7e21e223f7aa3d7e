"""Assignment of households to micro-grids by point-in-polygon in PostGIS.

Invariant (DESIGN.md): every located household belongs to exactly one
micro-grid in force; a point on a shared edge or vertex goes to the lowest
code, so the answer never depends on row order. Unlocated households keep a
null ``microgrid_code`` and are counted and listed, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text


def _covering_microgrid(point_sql: str) -> str:
    """SQL for the one micro-grid in force that covers ``point_sql`` (lowest code on a tie)."""
    return (
        "(SELECT a.code FROM area a WHERE a.level = 'microgrid' AND a.valid_to IS NULL"
        f" AND ST_Covers(a.geom, {point_sql}) ORDER BY a.code LIMIT 1)"
    )


@dataclass(frozen=True)
class AssignmentCounts:
    """Households of a county with and without a micro-grid, and how many changed."""

    assigned: int
    unassigned: int
    changed: int = 0


def building_microgrids(connection: Connection, *, county_code: str) -> dict[int, str]:
    """Building id → micro-grid code by the same rule; unlocated buildings are absent.
    (Lets a bulk load write each household once, with its micro-grid.)"""
    rows = connection.execute(
        text(
            f"SELECT b.id, {_covering_microgrid('b.geom')} FROM building b"
            " WHERE b.county_code = :county AND b.geom IS NOT NULL"
        ),
        {"county": county_code},
    )
    return {int(building_id): str(code) for building_id, code in rows if code is not None}


def assign_households(
    connection: Connection,
    *,
    county_code: str,
    household_ids: Sequence[int] | None = None,
    microgrid_codes: Sequence[str] | None = None,
) -> AssignmentCounts:
    """(Re)assign households of a county from their points.

    Without filters every household of the county is considered; with
    ``household_ids`` only those; with ``microgrid_codes`` (boundaries that
    changed) the households now assigned to them or lying in their current
    polygons — exactly the households a boundary change can move. Only rows
    whose micro-grid changes are written.
    """
    clauses = ["h.county_code = :county"]
    params: dict[str, object] = {"county": county_code}
    if household_ids is not None:
        clauses.append("h.id = ANY(:ids)")
        params["ids"] = list(household_ids)
    if microgrid_codes is not None:
        clauses.append(
            "(h.microgrid_code = ANY(:codes) OR EXISTS (SELECT 1 FROM area c"
            " WHERE c.code = ANY(:codes) AND c.valid_to IS NULL AND ST_Covers(c.geom, h.geom)))"
        )
        params["codes"] = list(microgrid_codes)
    result = connection.execute(
        text(
            "UPDATE household h SET microgrid_code = m.code FROM ("
            f" SELECT h.id, CASE WHEN h.geom IS NULL THEN NULL ELSE {_covering_microgrid('h.geom')} END AS code"
            f" FROM household h WHERE {' AND '.join(clauses)}"
            ") m WHERE h.id = m.id AND h.microgrid_code IS DISTINCT FROM m.code"
        ),
        params,
    )
    assigned, unassigned = assignment_counts(connection, county_code=county_code)
    return AssignmentCounts(assigned=assigned, unassigned=unassigned, changed=result.rowcount)


def assignment_counts(connection: Connection, *, county_code: str) -> tuple[int, int]:
    """(assigned, unassigned) households of the county."""
    row = connection.execute(
        text(
            "SELECT count(microgrid_code), count(*) - count(microgrid_code)"
            " FROM household WHERE county_code = :county"
        ),
        {"county": county_code},
    ).one()
    return int(row[0]), int(row[1])
