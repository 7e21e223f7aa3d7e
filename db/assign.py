"""Assignment of households to micro-grids by point-in-polygon in PostGIS.

Invariant (DESIGN.md): every located household belongs to exactly one
micro-grid in force; a point on a shared edge or vertex goes to the lowest
code, so the answer never depends on row order. Unlocated households keep a
null ``microgrid_code`` and are counted and listed, never dropped.

Two ways to find the covering micro-grid, chosen by size (both give the same
answer; ``bench/assignment.py`` measures them):

* **from the micro-grids** (bulk): a parallel nested loop that takes each
  micro-grid in force and fetches, through the household GIST index, the
  points its polygon covers, then keeps the lowest code per household. One
  index probe per micro-grid (about 30 hits each) instead of one per
  household: on 100,000 micro-grids and 2.7 M points about 3.6 s on 2 cores,
  where probing from every point takes about 110 s (a GIST probe costs
  20-40 µs, whatever it returns).
* **from the points** (pointwise): one probe of the area GIST index per
  household, for a handful of households (an import of a few rows, the
  households a boundary edit can move).

The result goes to a temporary table; the households are then written with
UPDATEs that touch only rows whose micro-grid changes. When most rows change
(a county's first assignment) the write dominates: every changed row is a new
row version with entries in each of the table's indexes (about 44 s for
2.7 M rows here, against 3.6 s for the computation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, text

# Temporary tables of one call (dropped before it returns):
_RESULT_NAME = "wangge_assignment"  # (id, code): the new micro-grid of households in scope
_SCOPE_NAME = "wangge_assignment_scope"  # (id): the households a filtered call reconsiders
_RESULT = f"pg_temp.{_RESULT_NAME}"
_SCOPE = f"pg_temp.{_SCOPE_NAME}"

_IN_FORCE = "a.level = 'microgrid' AND a.valid_to IS NULL"

# From the micro-grids. ``_ST_Covers`` is ST_Covers without its index support:
# with ST_Covers the planner may also probe the area index once per point
# (the slow plan it picks on its own); with the envelope condition alone, the
# only index usable is the points' one, probed once per micro-grid, and the
# outer scan of the micro-grids can be split among parallel workers. The
# envelope has the polygon's bounding box, so no covered point is missed
# (boundary points included: the index boxes are rounded outwards).
_COVERED_POINTS = (
    "area a JOIN {table} p ON p.geom @ ST_Envelope(a.geom) AND _ST_Covers(a.geom, p.geom)"
    f" WHERE {_IN_FORCE}"
)
# ``changed`` (the stored code differs) lets the write skip unchanged rows
# before it joins them to the table.
_BULK = text(
    f"CREATE TEMP TABLE {_RESULT_NAME} AS"
    " SELECT DISTINCT ON (p.id) p.id, a.code, p.microgrid_code IS DISTINCT FROM a.code AS changed"
    f" FROM {_COVERED_POINTS.format(table='household')} AND p.county_code = :county"
    " ORDER BY p.id, a.code"
)
_BUILDINGS = text(
    "SELECT DISTINCT ON (p.id) p.id, a.code"
    f" FROM {_COVERED_POINTS.format(table='building')} AND p.county_code = :county"
    " ORDER BY p.id, a.code"
)
_BUILDINGS_POINTWISE = text(
    "SELECT b.id, (SELECT a.code FROM area a"
    f" WHERE {_IN_FORCE} AND ST_Covers(a.geom, b.geom) ORDER BY a.code LIMIT 1)"
    " FROM building b WHERE b.county_code = :county AND b.geom IS NOT NULL"
)
# From the points: the lowest code among the micro-grids covering the point,
# null for an unlocated household or one outside every micro-grid; one row
# per household in scope.
_POINTWISE = text(
    f"CREATE TEMP TABLE {_RESULT_NAME} AS"
    " SELECT h.id, (SELECT a.code FROM area a"
    f" WHERE {_IN_FORCE} AND ST_Covers(a.geom, h.geom) ORDER BY a.code LIMIT 1) AS code"
    f" FROM {_SCOPE} s JOIN household h ON h.id = s.id"
)

# Scope of a filtered call: households of the county, with the given ids, and
# (for changed boundaries) those assigned to the changed codes or lying in
# their polygons now in force.
_SCOPE_CREATE = text(f"CREATE TEMP TABLE {_SCOPE_NAME} (id bigint NOT NULL)")
_SCOPE_BY_IDS = "h.id = ANY(:ids)"
_SCOPE_BY_CODES = (
    "h.id IN (SELECT h2.id FROM household h2 WHERE h2.county_code = :county"
    " AND h2.microgrid_code = ANY(:codes)"
    " UNION SELECT p.id FROM area a JOIN household p"
    " ON p.geom @ ST_Envelope(a.geom) AND _ST_Covers(a.geom, p.geom)"
    " WHERE a.code = ANY(:codes) AND a.valid_to IS NULL AND p.county_code = :county)"
)

# The writes, of changed rows only. From the points the result has a row for
# every household in scope; from the micro-grids only for the covered ones, so
# a household of the county without a result row has lost its micro-grid
# (unlocated, or outside every micro-grid).
_SET = (
    f"UPDATE household h SET microgrid_code = r.code FROM {_RESULT} r"
    " WHERE {changed}h.id = r.id AND h.microgrid_code IS DISTINCT FROM r.code{scope}"
)
_CLEAR = (
    "UPDATE household h SET microgrid_code = NULL"
    " WHERE h.county_code = :county AND h.microgrid_code IS NOT NULL{scope}"
    f" AND NOT EXISTS (SELECT 1 FROM {_RESULT} r WHERE r.id = h.id)"
)
_IN_SCOPE = f" AND h.id IN (SELECT s.id FROM {_SCOPE} s)"

# Planner settings for the duration of one call (restored afterwards): enough
# memory to hash and sort the county's households in memory, and no JIT,
# whose compilation (about 1 s per process here) buys nothing when the time
# goes into PostGIS functions.
_SETTINGS = {"work_mem": "256MB", "jit": "off"}
# The writes of a bulk assignment join millions of rows: hash joins, never a
# nested loop. Right after a large assignment, until ANALYZE runs, the planner
# still believes most micro-grid codes null and would otherwise rescan the
# result table once per household (quadratic: minutes instead of a second).
_BULK_WRITE_SETTINGS = {"enable_nestloop": "off"}


@dataclass(frozen=True)
class AssignmentCounts:
    """Households of a county with and without a micro-grid, and how many changed."""

    assigned: int
    unassigned: int
    changed: int = 0


def building_microgrids(connection: Connection, *, county_code: str) -> dict[int, str]:
    """Building id → micro-grid code by the same rule; unlocated buildings are absent.
    (Lets a bulk load write each household once, with its micro-grid.)"""
    params = {"county": county_code}
    with _local_settings(connection, _SETTINGS):
        microgrids = _count(connection, f"SELECT 1 FROM area a WHERE {_IN_FORCE}", limit=None)
        buildings = _count(
            connection,
            "SELECT 1 FROM building b WHERE b.county_code = :county AND b.geom IS NOT NULL",
            limit=microgrids // 2,
            **params,
        )
        query = _BUILDINGS_POINTWISE if buildings < microgrids // 2 else _BUILDINGS
        rows = connection.execute(query, params).all()
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
    polygons — exactly the households a boundary change can move. Both
    filters together: households that pass both. Only rows whose micro-grid
    changes are written; ``changed`` counts them.

    The micro-grid of a household is the micro-grid in force (``valid_to``
    null) whose polygon covers its point, the lowest code when several do (a
    point on a shared edge or vertex), null when none does or the household
    has no point.

    Runs in the caller's transaction and computes from its snapshot, like a
    single UPDATE would: a household whose point another transaction moves
    meanwhile keeps the micro-grid of whichever assignment commits last (the
    importer assigns the rows it writes in its own transaction).
    """
    params: dict[str, object] = {"county": county_code}
    with _local_settings(connection, _SETTINGS):
        _drop_temporary(connection)
        scoped = household_ids is not None or microgrid_codes is not None
        in_scope = None
        if scoped:
            in_scope = _fill_scope(
                connection,
                params=params,
                household_ids=household_ids,
                microgrid_codes=microgrid_codes,
            )
        if _from_points(connection, county_code=county_code, households=in_scope):
            if not scoped:  # a small county: all its households are the scope
                _fill_scope(connection, params=params, household_ids=None, microgrid_codes=None)
            connection.execute(_POINTWISE)
            connection.execute(text(f"ANALYZE {_RESULT}"))
            changed = connection.execute(text(_SET.format(changed="", scope="")), params).rowcount
        else:  # the whole county, even for a (large) scope: the writes keep to the scope
            connection.execute(_BULK, params)
            connection.execute(text(f"ANALYZE {_RESULT}"))
            scope = _IN_SCOPE if scoped else ""
            with _local_settings(connection, _BULK_WRITE_SETTINGS):
                changed = connection.execute(text(_CLEAR.format(scope=scope)), params).rowcount
                changed += connection.execute(
                    text(_SET.format(changed="r.changed AND ", scope=scope)), params
                ).rowcount
        _drop_temporary(connection)
    assigned, unassigned = assignment_counts(connection, county_code=county_code)
    return AssignmentCounts(assigned=assigned, unassigned=unassigned, changed=changed)


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


# -- helpers -------------------------------------------------------------------------
def _fill_scope(
    connection: Connection,
    *,
    params: dict[str, object],
    household_ids: Sequence[int] | None,
    microgrid_codes: Sequence[str] | None,
) -> int:
    """Create the scope table with the households a filtered call reconsiders;
    return how many."""
    clauses = ["h.county_code = :county"]
    if household_ids is not None:
        clauses.append(_SCOPE_BY_IDS)
        params["ids"] = [int(i) for i in household_ids]
    if microgrid_codes is not None:
        clauses.append(_SCOPE_BY_CODES)
        params["codes"] = [str(c) for c in microgrid_codes]
    connection.execute(_SCOPE_CREATE)
    inserted = connection.execute(
        text(f"INSERT INTO {_SCOPE} SELECT h.id FROM household h WHERE {' AND '.join(clauses)}"),
        params,
    ).rowcount
    connection.execute(text(f"ANALYZE {_SCOPE}"))
    return int(inserted)


def _from_points(connection: Connection, *, county_code: str, households: int | None) -> bool:
    """Whether to probe from the points: when the households to assign
    (``households``, or else the county's located ones) are fewer than half
    the micro-grids in force. A probe of either GIST index costs about the
    same, and probing from the micro-grids also pays for the points that
    share their bounding boxes; counts stop as soon as the answer is known."""
    if households is None:
        microgrids = _count(connection, f"SELECT 1 FROM area a WHERE {_IN_FORCE}", limit=None)
        households = _count(
            connection,
            "SELECT 1 FROM household h WHERE h.county_code = :county AND h.geom IS NOT NULL",
            limit=microgrids // 2,
            county=county_code,
        )
        return households < microgrids // 2
    enough = 2 * households + 1
    microgrids = _count(connection, f"SELECT 1 FROM area a WHERE {_IN_FORCE}", limit=enough)
    return microgrids >= enough


def _count(connection: Connection, rows_sql: str, *, limit: int | None, **params: object) -> int:
    """How many rows ``rows_sql`` returns, counted up to ``limit``."""
    if limit is not None:
        rows_sql += " LIMIT :limit"
        params["limit"] = limit
    return int(
        connection.execute(text(f"SELECT count(*) FROM ({rows_sql}) s"), params).scalar_one()
    )


def _drop_temporary(connection: Connection) -> None:
    connection.execute(text(f"DROP TABLE IF EXISTS {_RESULT}, {_SCOPE}"))


@contextmanager
def _local_settings(connection: Connection, settings: dict[str, str]) -> Iterator[None]:
    """Apply ``settings`` for the enclosed statements, then put back what was there."""
    names = list(settings)
    previous = connection.execute(
        text("SELECT " + ", ".join(f"current_setting('{name}')" for name in names))
    ).one()
    _set_local(connection, settings)
    yield  # on an error the transaction (or savepoint) is aborted, and its settings with it
    _set_local(connection, dict(zip(names, (str(v) for v in previous), strict=True)))


def _set_local(connection: Connection, settings: dict[str, str]) -> None:
    names = list(settings)
    connection.execute(
        text("SELECT " + ", ".join(f"set_config('{n}', :v{i}, true)" for i, n in enumerate(names))),
        {f"v{i}": settings[n] for i, n in enumerate(names)},
    )
