"""Choropleth layers: one figure per area at a level, as of a date.

Every figure counts people and households where they live (DESIGN.md): a
household counts for the micro-grid it belongs to on the date asked and for
every ancestor of that micro-grid; a person, a case, a quarantine, a
temperature and a flagged passage count at the person's home.

Membership on a date. While no micro-grid boundary of the county has changed
since the date, a household belongs to its assigned ``microgrid_code`` (kept
by ``db.assign``). When one has, membership is recomputed from the boundaries
in force on that date with the assignment's own rule (the lowest code among
the micro-grids covering the point), so "as of" a date before a redraw
answers with the boundaries and figures of then.

Days are China's calendar days (geo.localtime).

Each layer is computed per micro-grid as (numerator, denominator) and summed
up the hierarchy, so a parent's figure is always the sum of its children's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.areas import IN_FORCE, SUBTREE_CODES, require_area
from db.models import ACTIVE_CASE_STATUSES, AREA_LEVELS
from db.visits import ROUND_COLUMNS, RoundRecord, get_round, round_from_row
from geo.errors import InvalidInput, NotFound
from geo.localtime import CHINA_TZ_NAME

_LOCAL_DAY = "((({column}) AT TIME ZONE '" + CHINA_TZ_NAME + "')::date)"


def local_day(column: str) -> str:
    """SQL for the Asia/Shanghai calendar day of a ``timestamptz`` column."""
    return _LOCAL_DAY.format(column=column)


@dataclass(frozen=True)
class LayerSpec:
    """What a layer counts. ``value`` is ``rate`` (100 × numerator ÷
    denominator, in %) or ``count`` (the numerator); an area whose
    ``base`` (households or residents) is zero has no data."""

    id: str
    title: str
    description: str
    numerator: str
    denominator: str
    value: str  # "rate" | "count"
    base: str  # "households" | "residents" | "round"
    palette: str
    default_classify: str
    default_breaks: tuple[float, ...] = ()
    needs_round: bool = False

    @property
    def unit(self) -> str:
        return "%" if self.value == "rate" else ""


LAYERS: dict[str, LayerSpec] = {
    spec.id: spec
    for spec in (
        LayerSpec(
            "coverage", "排查覆盖率 Coverage",
            "Households with a complete visit in the round ÷ households in the round's area, in %.",
            "households with a complete visit", "households", "rate", "round", "RdYlGn",
            "fixed", (60.0, 80.0, 95.0), needs_round=True,
        ),
        LayerSpec(
            "incomplete", "未完成户 Incomplete",
            "Households visited in the round but not yet completely (someone missing, nobody home, refused).",
            "households visited, not complete", "households", "count", "round", "YlOrRd",
            "quantiles", needs_round=True,
        ),
        LayerSpec(
            "unvisited", "未走访户 Unvisited",
            "Households of the round's area with no visit in the round yet.",
            "households not visited", "households", "count", "round", "YlOrRd",
            "quantiles", needs_round=True,
        ),
        LayerSpec(
            "cases", "现有病例 Active cases",
            "Suspected, confirmed and asymptomatic cases on the date, where the person lives.",
            "active cases", "residents", "count", "residents", "OrRd", "natural_breaks",
        ),
        LayerSpec(
            "cases_total", "累计病例 Cases, cumulative",
            "Cases reported on or before the date and not ruled out, where the person lives.",
            "cases reported", "residents", "count", "residents", "OrRd", "natural_breaks",
        ),
        LayerSpec(
            "quarantine", "隔离人员 Under quarantine",
            "People under home or central quarantine on the date, counted where they live.",
            "people under quarantine", "residents", "count", "residents", "Purples", "quantiles",
        ),
        LayerSpec(
            "quarantine_overdue", "漏测体温 Overdue checks",
            "People under quarantine with no temperature check on the date.",
            "under quarantine, not checked", "people under quarantine", "count", "residents",
            "YlOrRd", "quantiles",
        ),
        LayerSpec(
            "fever", "发热 Fever",
            "People with a temperature of 37.3 °C or more on the date.",
            "people with fever", "people checked", "count", "residents", "YlOrRd", "natural_breaks",
        ),
        LayerSpec(
            "checkpoint_flags", "卡口预警 Checkpoint flags",
            "Flagged passages (fever, red or yellow code) on the date, by the person's home micro-grid.",
            "flagged passages", "passages of residents", "count", "residents", "YlOrRd",
            "natural_breaks",
        ),
    )
}  # fmt: skip

# Statuses of households behind a layer's number (GET /api/areas/{code}/households).
HOUSEHOLD_LAYER_STATUSES: tuple[str, ...] = (
    "complete",
    "incomplete",
    "unvisited",
    "quarantine_overdue",
)


@dataclass(frozen=True)
class AreaFigure:
    """One area's figure: ``value`` None means no data."""

    code: str
    name: str
    level: str
    parent_code: str | None
    households: int
    residents: int
    numerator: int
    denominator: int
    value: float | None
    geometry_geojson: str


@dataclass(frozen=True)
class LayerResult:
    spec: LayerSpec
    level: str
    within: str | None
    as_of: dt.date
    round: RoundRecord | None
    membership: str  # "assigned" | "recomputed"
    figures: tuple[AreaFigure, ...]
    unlocated_households: int


# -- membership -------------------------------------------------------------------------
def boundaries_changed_since(session: Session, *, as_of: dt.date) -> bool:
    """True when any micro-grid version in force on ``as_of`` is no longer the
    current one, or one in force now was not then: the assigned codes are then
    not the membership of that date."""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM area a WHERE a.level = 'microgrid'"
                " AND ((a.valid_from > :as_of) OR (a.valid_to IS NOT NULL AND a.valid_to > :as_of"
                " AND a.valid_from <= :as_of)))"
            ),
            {"as_of": as_of},
        ).scalar_one()
    )


# ``member_in(household_id, microgrid_code)``: the households of the micro-grids in ``mg``.
_MEMBER_ASSIGNED = """
member_in AS (
    SELECT h.id AS household_id, h.microgrid_code
    FROM household h JOIN mg ON h.microgrid_code = mg.code
)"""
# Recomputed: the households the polygons of ``mg`` cover, each given the
# lowest code among ALL micro-grids covering it then (a point on the edge
# with a micro-grid outside ``mg`` may belong to that one), as db.assign does.
_MEMBER_RECOMPUTED = f"""
candidate AS (
    SELECT DISTINCT h.id, h.geom FROM mg
    JOIN area a ON a.code = mg.code AND {IN_FORCE}
    JOIN household h ON h.geom @ ST_Envelope(a.geom) AND _ST_Covers(a.geom, h.geom)
),
member AS (
    SELECT c.id AS household_id,
           (SELECT a2.code FROM area a2 WHERE a2.level = 'microgrid' AND a2.valid_from <= :as_of
              AND (a2.valid_to IS NULL OR a2.valid_to > :as_of) AND ST_Covers(a2.geom, c.geom)
            ORDER BY a2.code LIMIT 1) AS microgrid_code
    FROM candidate c
),
member_in AS (SELECT m.* FROM member m JOIN mg ON mg.code = m.microgrid_code)"""


def _tree_sql(*, roots_where: str) -> str:
    """CTEs ``roots`` (areas in force on :as_of meeting ``roots_where``) and
    ``mg`` (root, code): every micro-grid under each root, itself included."""
    return f"""
roots AS (
    SELECT a.code, a.name, a.level, a.parent_code, a.geom FROM area a
    WHERE {IN_FORCE} AND {roots_where}
),
tree(root, code, level) AS (
    SELECT r.code, r.code, r.level FROM roots r
  UNION ALL
    SELECT t.root, a.code, a.level FROM area a JOIN tree t ON a.parent_code = t.code
    WHERE {IN_FORCE}
),
mg AS (SELECT root, code FROM tree WHERE level = 'microgrid')"""


def _roots_at_level(*, within: str | None) -> str:
    scope = f" AND a.code IN ({SUBTREE_CODES})" if within is not None else ""
    return f"a.level = :level{scope}"


def _membership_sql(*, recomputed: bool) -> str:
    return _MEMBER_RECOMPUTED if recomputed else _MEMBER_ASSIGNED


# -- per-household and per-micro-grid facts ----------------------------------------------
# Visits of the round up to the end of :as_of, per household.
_ROUND_VISITS = f"""
round_mg AS MATERIALIZED (
    SELECT mg.code FROM mg WHERE mg.code IN (
        WITH RECURSIVE sub(code) AS (
            SELECT a.code FROM area a WHERE a.code = :round_area AND {IN_FORCE}
          UNION ALL
            SELECT a.code FROM area a JOIN sub s ON a.parent_code = s.code WHERE {IN_FORCE}
        ) SELECT code FROM sub)
),
rv AS (
    SELECT v.household_id, bool_or(v.result = 'complete') AS complete
    FROM visit v
    WHERE v.round_id = :round_id AND {local_day("v.visited_at")} <= :as_of
    GROUP BY v.household_id
),
round_households AS (
    SELECT m.household_id, m.microgrid_code,
           CASE WHEN rv.complete THEN 'complete' WHEN rv.household_id IS NOT NULL THEN 'incomplete'
                ELSE 'unvisited' END AS status
    FROM member_in m JOIN round_mg r ON r.code = m.microgrid_code
    LEFT JOIN rv ON rv.household_id = m.household_id
)"""

_CASE_STATUS_ON = """(SELECT s.status FROM case_status_change s WHERE s.case_id = c.id
    AND s.effective_on <= :as_of ORDER BY s.effective_on DESC, s.id DESC LIMIT 1)"""

_CASES = f"""
cases_on AS (
    SELECT coalesce(r.household_id, c.household_id) AS household_id, {_CASE_STATUS_ON} AS status
    FROM case_report c LEFT JOIN resident r ON r.id = c.resident_id
    WHERE c.reported_on <= :as_of
)"""

_QUARANTINED = """
quarantined AS (
    SELECT DISTINCT q.resident_id FROM quarantine q
    WHERE q.start_date <= :as_of AND (q.released_on IS NULL OR q.released_on > :as_of)
)"""

_CHECKED_TODAY = f"""
checked AS (
    SELECT t.resident_id, bool_or(t.fever) AS fever FROM temperature_check t
    WHERE {local_day("t.checked_at")} = :as_of GROUP BY t.resident_id
)"""

_RESIDENTS = """
people AS (
    SELECT m.microgrid_code, r.id AS resident_id FROM member_in m
    JOIN resident r ON r.household_id = m.household_id
)"""

# metric(microgrid_code, num, den) per layer, from the CTEs above.
_METRIC: dict[str, tuple[tuple[str, ...], str]] = {
    "coverage": (
        (_ROUND_VISITS,),
        "SELECT microgrid_code, count(*) FILTER (WHERE status = 'complete') AS num, count(*) AS den"
        " FROM round_households GROUP BY 1",
    ),
    "incomplete": (
        (_ROUND_VISITS,),
        "SELECT microgrid_code, count(*) FILTER (WHERE status = 'incomplete') AS num, count(*) AS den"
        " FROM round_households GROUP BY 1",
    ),
    "unvisited": (
        (_ROUND_VISITS,),
        "SELECT microgrid_code, count(*) FILTER (WHERE status = 'unvisited') AS num, count(*) AS den"
        " FROM round_households GROUP BY 1",
    ),
    "cases": (
        (_CASES, _RESIDENTS),
        "SELECT m.microgrid_code, count(*) AS num, 0 AS den FROM cases_on c"
        " JOIN member_in m ON m.household_id = c.household_id"
        " WHERE c.status = ANY(:active_statuses) GROUP BY 1",
    ),
    "cases_total": (
        (_CASES, _RESIDENTS),
        "SELECT m.microgrid_code, count(*) AS num, 0 AS den FROM cases_on c"
        " JOIN member_in m ON m.household_id = c.household_id"
        " WHERE c.status <> 'ruled_out' GROUP BY 1",
    ),
    "quarantine": (
        (_QUARANTINED, _RESIDENTS),
        "SELECT p.microgrid_code, count(*) AS num, 0 AS den FROM people p"
        " JOIN quarantined q ON q.resident_id = p.resident_id GROUP BY 1",
    ),
    "quarantine_overdue": (
        (_QUARANTINED, _CHECKED_TODAY, _RESIDENTS),
        "SELECT p.microgrid_code, count(*) FILTER (WHERE c.resident_id IS NULL) AS num,"
        " count(*) AS den FROM people p JOIN quarantined q ON q.resident_id = p.resident_id"
        " LEFT JOIN checked c ON c.resident_id = p.resident_id GROUP BY 1",
    ),
    "fever": (
        (_CHECKED_TODAY, _RESIDENTS),
        "SELECT p.microgrid_code, count(*) FILTER (WHERE c.fever) AS num, count(*) AS den"
        " FROM people p JOIN checked c ON c.resident_id = p.resident_id GROUP BY 1",
    ),
    "checkpoint_flags": (
        (),
        "SELECT mg.code AS microgrid_code, count(*) FILTER (WHERE p.flagged) AS num,"
        " count(*) AS den FROM passage p JOIN mg ON mg.code = p.home_microgrid_code"
        f" WHERE {local_day('p.passed_at')} = :as_of GROUP BY 1",
    ),
}

# Denominators that are not the layer's own den but a base count.
_BASE = """
base AS MATERIALIZED (
    SELECT m.microgrid_code, count(DISTINCT m.household_id) AS households, count(r.id) AS residents
    FROM member_in m LEFT JOIN resident r ON r.household_id = m.household_id GROUP BY 1
)"""


def _layer_sql(*, layer: str, level: str, within: str | None, recomputed: bool) -> str:
    ctes, metric = _METRIC[layer]
    parts = [
        _tree_sql(roots_where=_roots_at_level(within=within)),
        _membership_sql(recomputed=recomputed),
        *ctes,
        _BASE,
        # Computed once each: the CTEs above estimate one row, and inlined into
        # the final join the planner re-ran them per micro-grid (33 s instead
        # of 0.1 s for a county of 3,000 households).
        f"metric AS MATERIALIZED ({metric})",
    ]
    return (
        "WITH RECURSIVE "
        + ",".join(parts)
        + """
SELECT ro.code, ro.name, ro.level, ro.parent_code,
       coalesce(sum(b.households), 0)::bigint, coalesce(sum(b.residents), 0)::bigint,
       coalesce(sum(x.num), 0)::bigint, coalesce(sum(x.den), 0)::bigint,
       ST_AsGeoJSON(ro.geom, 6)
FROM roots ro
LEFT JOIN mg ON mg.root = ro.code
LEFT JOIN base b ON b.microgrid_code = mg.code
LEFT JOIN metric x ON x.microgrid_code = mg.code
GROUP BY ro.code, ro.name, ro.level, ro.parent_code, ro.geom
ORDER BY ro.code
"""
    )


# -- rounds --------------------------------------------------------------------------------
def default_round(session: Session, *, within: str | None, as_of: dt.date) -> RoundRecord | None:
    """The round a map of ``within`` on ``as_of`` shows when none is asked for:
    among rounds started by then over ``within``, an ancestor of it or a part
    of it, one in progress first, then the latest started (then highest id)."""
    related = ""
    if within is not None:
        related = f"""AND (r.area_code IN ({SUBTREE_CODES}) OR r.area_code IN (
            WITH RECURSIVE up(code, parent) AS (
                SELECT a.code, a.parent_code FROM area a WHERE a.code = :within AND {IN_FORCE}
              UNION ALL
                SELECT a.code, a.parent_code FROM area a JOIN up u ON a.code = u.parent
                WHERE {IN_FORCE}
            ) SELECT code FROM up))"""
    row = session.execute(
        text(
            f"SELECT {ROUND_COLUMNS} FROM screening_round r WHERE r.start_date <= :as_of {related}"
            " ORDER BY (r.end_date >= :as_of) DESC, r.start_date DESC, r.id DESC LIMIT 1"
        ),
        {"within": within, "as_of": as_of},
    ).first()
    return round_from_row(row) if row else None


# -- the layer -----------------------------------------------------------------------------
def default_level(session: Session, *, within: str | None, as_of: dt.date) -> str:
    """The level below ``within`` (its children's), or ``township`` for the whole map."""
    if within is None:
        return "township"
    row = session.execute(
        text(f"SELECT a.level FROM area a WHERE a.code = :code AND {IN_FORCE}"),
        {"code": within, "as_of": as_of},
    ).first()
    if row is None:
        raise NotFound(f"no area with code {within!r} on {as_of.isoformat()}")
    index = AREA_LEVELS.index(row[0])
    return AREA_LEVELS[min(index + 1, len(AREA_LEVELS) - 1)]


def compute_layer(
    session: Session,
    *,
    layer: str,
    as_of: dt.date,
    level: str | None = None,
    within: str | None = None,
    round_id: int | None = None,
) -> LayerResult:
    """Figures of ``layer`` for every area at ``level`` under ``within`` (itself
    included when it is at that level) on ``as_of``, with the boundaries then
    in force. Round layers use ``round_id`` or the default round; with no round
    every area has no data."""
    spec = require_layer(layer)
    if within is not None:
        require_area(session, code=within, as_of=as_of)
    level = level or default_level(session, within=within, as_of=as_of)
    if level not in AREA_LEVELS:
        raise InvalidInput(f"level {level!r} is not one of {', '.join(AREA_LEVELS)}")
    round_ref = None
    if spec.needs_round:
        round_ref = (
            get_round(session, round_id=round_id)
            if round_id is not None
            else default_round(session, within=within, as_of=as_of)
        )
    recomputed = boundaries_changed_since(session, as_of=as_of)
    params = {
        "as_of": as_of,
        "level": level,
        "within": within,
        "round_id": round_ref.id if round_ref else -1,
        "round_area": round_ref.area_code if round_ref else "",
        "active_statuses": list(ACTIVE_CASE_STATUSES),
    }
    rows = session.execute(
        text(_layer_sql(layer=layer, level=level, within=within, recomputed=recomputed)), params
    ).all()
    figures = tuple(_figure(spec, row) for row in rows)
    return LayerResult(
        spec=spec, level=level, within=within, as_of=as_of, round=round_ref,
        membership="recomputed" if recomputed else "assigned", figures=figures,
        unlocated_households=_unlocated(session, within=within, as_of=as_of),
    )  # fmt: skip


def require_layer(layer: str) -> LayerSpec:
    spec = LAYERS.get(layer)
    if spec is None:
        raise NotFound(f"no layer {layer!r}; layers: {', '.join(LAYERS)}")
    return spec


def _figure(spec: LayerSpec, row: Sequence[object]) -> AreaFigure:
    code, name, level, parent, households, residents, num, den, geojson = row
    base = {"households": households, "residents": residents, "round": den}[spec.base]
    value: float | None
    if not base:
        value = None
    elif spec.value == "rate":
        value = round(100.0 * int(num) / int(den), 2)  # type: ignore[call-overload]
    else:
        value = float(num)  # type: ignore[arg-type]
    return AreaFigure(
        code=str(code), name=str(name), level=str(level),
        parent_code=None if parent is None else str(parent),
        households=int(households), residents=int(residents),  # type: ignore[call-overload]
        numerator=int(num), denominator=int(den),  # type: ignore[call-overload]
        value=value, geometry_geojson=str(geojson),
    )  # fmt: skip


def _unlocated(session: Session, *, within: str | None, as_of: dt.date) -> int:
    """Households of the county (or of ``within`` when it is located to an
    area in it) with no micro-grid: counted beside the map, never dropped."""
    if within is None:
        sql = "SELECT count(*) FROM household h WHERE h.microgrid_code IS NULL"
    else:
        sql = (
            "SELECT count(*) FROM household h WHERE h.microgrid_code IS NULL AND"
            f" (h.area_code IN ({SUBTREE_CODES}) OR h.county_code = :within)"
        )
    return int(session.execute(text(sql), {"within": within, "as_of": as_of}).scalar_one())


# -- the households behind a number --------------------------------------------------------
def households_with_status_sql(*, status: str, recomputed: bool) -> str:
    """SQL selecting ``household_id`` of the households under :within on
    :as_of with ``status`` (one of HOUSEHOLD_LAYER_STATUSES) — the same rows the
    layers count. Parameters: :within, :as_of, :round_id, :round_area."""
    if status not in HOUSEHOLD_LAYER_STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(HOUSEHOLD_LAYER_STATUSES)}")
    head = "WITH RECURSIVE " + ",".join(
        [_tree_sql(roots_where="a.code = :within"), _membership_sql(recomputed=recomputed)]
    )
    if status == "quarantine_overdue":
        return (
            head + "," + ",".join([_QUARANTINED, _CHECKED_TODAY, _RESIDENTS])
            + " SELECT DISTINCT r.household_id FROM people p"
            " JOIN quarantined q ON q.resident_id = p.resident_id"
            " JOIN resident r ON r.id = p.resident_id"
            " LEFT JOIN checked c ON c.resident_id = p.resident_id WHERE c.resident_id IS NULL"
        )  # fmt: skip
    return (
        head + "," + _ROUND_VISITS
        + f" SELECT household_id FROM round_households WHERE status = '{status}'"
    )  # fmt: skip


# -- per household (hexagons) ---------------------------------------------------------------
# facts(household_id, num, den) per layer: what one household adds to the
# numerator and denominator of its area's figure.
_HOUSEHOLD_FACTS: dict[str, tuple[tuple[str, ...], str]] = {
    "coverage": ((_ROUND_VISITS,),
                 "SELECT household_id, (status = 'complete')::int AS num, 1 AS den FROM round_households"),
    "incomplete": ((_ROUND_VISITS,),
                   "SELECT household_id, (status = 'incomplete')::int AS num, 1 AS den FROM round_households"),
    "unvisited": ((_ROUND_VISITS,),
                  "SELECT household_id, (status = 'unvisited')::int AS num, 1 AS den FROM round_households"),
    "cases": ((_CASES,),
              "SELECT m.household_id, count(*) AS num, 0 AS den FROM cases_on c"
              " JOIN member_in m ON m.household_id = c.household_id"
              " WHERE c.status = ANY(:active_statuses) GROUP BY 1"),
    "cases_total": ((_CASES,),
                    "SELECT m.household_id, count(*) AS num, 0 AS den FROM cases_on c"
                    " JOIN member_in m ON m.household_id = c.household_id"
                    " WHERE c.status <> 'ruled_out' GROUP BY 1"),
    "quarantine": ((_QUARANTINED,),
                   "SELECT r.household_id, count(*) AS num, 0 AS den FROM quarantined q"
                   " JOIN resident r ON r.id = q.resident_id"
                   " JOIN member_in m ON m.household_id = r.household_id GROUP BY 1"),
    "quarantine_overdue": ((_QUARANTINED, _CHECKED_TODAY),
                           "SELECT r.household_id, count(*) FILTER (WHERE c.resident_id IS NULL) AS num,"
                           " count(*) AS den FROM quarantined q JOIN resident r ON r.id = q.resident_id"
                           " JOIN member_in m ON m.household_id = r.household_id"
                           " LEFT JOIN checked c ON c.resident_id = q.resident_id GROUP BY 1"),
    "fever": ((_CHECKED_TODAY,),
              "SELECT r.household_id, count(*) FILTER (WHERE c.fever) AS num, count(*) AS den"
              " FROM checked c JOIN resident r ON r.id = c.resident_id"
              " JOIN member_in m ON m.household_id = r.household_id GROUP BY 1"),
    "checkpoint_flags": ((),
                         "SELECT r.household_id, count(*) FILTER (WHERE p.flagged) AS num,"
                         " count(*) AS den FROM passage p JOIN resident r ON r.id = p.resident_id"
                         " JOIN member_in m ON m.household_id = r.household_id"
                         f" WHERE {local_day('p.passed_at')} = :as_of GROUP BY 1"),
}  # fmt: skip


@dataclass(frozen=True)
class HouseholdFacts:
    """Every household under the area on the date with its point (WGS84
    lon/lat) and what it adds to the layer's numerator and denominator."""

    lon: tuple[float, ...]
    lat: tuple[float, ...]
    numerator: tuple[int, ...]
    denominator: tuple[int, ...]
    round: RoundRecord | None


def household_facts(
    session: Session,
    *,
    layer: str,
    as_of: dt.date,
    within: str | None,
    round_id: int | None = None,
) -> HouseholdFacts:
    """Per-household contributions to ``layer`` under ``within`` on ``as_of``
    (the same households and counts as ``compute_layer``); under every top
    area when ``within`` is None. A household with nothing to count still
    appears (numerator 0): it is in the population."""
    spec = require_layer(layer)
    if within is not None:
        require_area(session, code=within, as_of=as_of)
    roots_where = "a.code = :within" if within is not None else "a.parent_code IS NULL"
    round_ref = None
    if spec.needs_round:
        round_ref = (
            get_round(session, round_id=round_id)
            if round_id is not None
            else default_round(session, within=within, as_of=as_of)
        )
    recomputed = boundaries_changed_since(session, as_of=as_of)
    ctes, facts = _HOUSEHOLD_FACTS[layer]
    sql = (
        "WITH RECURSIVE "
        + ",".join(
            [_tree_sql(roots_where=roots_where), _membership_sql(recomputed=recomputed),
             *ctes, f"facts AS ({facts})"]
        )
        + " SELECT ST_X(h.geom), ST_Y(h.geom), coalesce(f.num, 0), coalesce(f.den, 0)"
        " FROM member_in m JOIN household h ON h.id = m.household_id"
        " LEFT JOIN facts f ON f.household_id = m.household_id"
        + (" WHERE f.household_id IS NOT NULL" if spec.base == "round" else "")
        + " ORDER BY m.household_id"
    )  # fmt: skip
    params = {
        "as_of": as_of, "within": within,
        "round_id": round_ref.id if round_ref else -1,
        "round_area": round_ref.area_code if round_ref else "",
        "active_statuses": list(ACTIVE_CASE_STATUSES),
    }  # fmt: skip
    rows = session.execute(text(sql), params).all()
    return HouseholdFacts(
        lon=tuple(float(r[0]) for r in rows), lat=tuple(float(r[1]) for r in rows),
        numerator=tuple(int(r[2]) for r in rows), denominator=tuple(int(r[3]) for r in rows),
        round=round_ref,
    )  # fmt: skip
