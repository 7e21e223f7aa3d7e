"""Read queries over the area hierarchy. Every query can be asked "as of" a date.

Household and resident figures count people where they live: a household
counts for its micro-grid and every ancestor of it, found by walking the
hierarchy down from the areas asked for (never by code prefixes, which an
imported hierarchy need not follow).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from db.models import AREA_LEVELS
from geo.bbox import box_area_km2, require_box_area
from geo.errors import InvalidInput, NotFound

IN_FORCE = "a.valid_from <= :as_of AND (a.valid_to IS NULL OR a.valid_to > :as_of)"


@dataclass(frozen=True)
class AreaRecord:
    """An area version in force on the date asked, with its figures."""

    code: str
    name: str
    level: str
    kind: str
    parent_code: str | None
    synthetic: bool
    version: int
    valid_from: dt.date
    valid_to: dt.date | None
    area_km2: float
    children: int
    households: int
    residents: int
    geom_4326: BaseGeometry


@dataclass(frozen=True)
class BBox:
    """A lon/lat box in WGS84 degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @property
    def area_km2(self) -> float:
        """The box's area in km² on the sphere (geo.bbox), not in degrees²."""
        return box_area_km2(self.min_lon, self.min_lat, self.max_lon, self.max_lat)

    def require_area_at_most(self, max_km2: float) -> BBox:
        """The box itself; ``InvalidInput`` naming the cap when it covers more than ``max_km2``."""
        require_box_area(self.min_lon, self.min_lat, self.max_lon, self.max_lat, max_km2=max_km2)
        return self

    @classmethod
    def parse(cls, text_value: str, *, max_km2: float | None = None) -> BBox:
        """Parse ``minLon,minLat,maxLon,maxLat``; refuse anything else with the
        reason, and a box larger than ``max_km2`` (when given) naming the cap."""
        parts = text_value.split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InvalidInput(
                f"bbox {text_value!r}: give four numbers minLon,minLat,maxLon,maxLat"
            ) from None
        if len(values) != 4:
            raise InvalidInput(
                f"bbox {text_value!r}: give four numbers minLon,minLat,maxLon,maxLat"
            )
        box = cls(*values)
        if not (
            -180 <= box.min_lon < box.max_lon <= 180 and -90 <= box.min_lat < box.max_lat <= 90
        ):
            raise InvalidInput(
                f"bbox {text_value!r}: needs min < max, longitudes in [-180, 180], latitudes in [-90, 90]"
            )
        return box if max_km2 is None else box.require_area_at_most(max_km2)


# Figures for a set of "root" areas: walk down to their micro-grids (as of the
# date), then count households and residents assigned there.
_FIGURES_SQL = f"""
WITH RECURSIVE tree(root, code) AS (
    SELECT a.code, a.code FROM area a WHERE a.code = ANY(:codes) AND {IN_FORCE}
  UNION ALL
    SELECT t.root, a.code FROM area a JOIN tree t ON a.parent_code = t.code WHERE {IN_FORCE}
),
hh AS (
    SELECT t.root, count(h.id) AS households
    FROM tree t JOIN household h ON h.microgrid_code = t.code
    GROUP BY t.root
),
rs AS (
    SELECT t.root, count(r.id) AS residents
    FROM tree t JOIN household h ON h.microgrid_code = t.code JOIN resident r ON r.household_id = h.id
    GROUP BY t.root
)
SELECT c.code, coalesce(hh.households, 0), coalesce(rs.residents, 0)
FROM unnest(CAST(:codes AS text[])) AS c(code)
LEFT JOIN hh ON hh.root = c.code LEFT JOIN rs ON rs.root = c.code
"""

_SELECT = f"""
SELECT a.code, a.name, a.level, a.kind, a.parent_code, a.synthetic, a.version,
       a.valid_from, a.valid_to,
       ST_Area(a.geom::geography) / 1e6 AS area_km2,
       (SELECT count(*) FROM area a2 WHERE a2.parent_code = a.code
          AND a2.valid_from <= :as_of AND (a2.valid_to IS NULL OR a2.valid_to > :as_of)) AS children,
       ST_AsBinary(a.geom) AS wkb
FROM area a
WHERE {IN_FORCE}
"""

# Codes of the area :within and every area below it, as of :as_of.
SUBTREE_CODES = f"""
WITH RECURSIVE sub(code) AS (
    SELECT a.code FROM area a WHERE a.code = :within AND {IN_FORCE}
  UNION ALL
    SELECT a.code FROM area a JOIN sub s ON a.parent_code = s.code WHERE {IN_FORCE}
) SELECT code FROM sub
"""
_DESCENDANTS = f"a.code IN ({SUBTREE_CODES}) AND a.code <> :within"


def get_area(session: Session, *, code: str, as_of: dt.date) -> AreaRecord:
    """The version of area ``code`` in force on ``as_of``; ``NotFound`` if none."""
    rows = session.execute(
        text(_SELECT + " AND a.code = :code"), {"code": code, "as_of": as_of}
    ).all()
    if not rows:
        raise NotFound(f"no area with code {code!r} on {as_of.isoformat()}")
    return _with_figures(session, rows=rows, as_of=as_of)[0]


@dataclass(frozen=True)
class AreaRef:
    """An area's code, name and level (no figures, no geometry)."""

    code: str
    name: str
    level: str


def area_ref(session: Session, *, code: str, as_of: dt.date) -> AreaRef:
    """The area in force on ``as_of``; ``NotFound`` if none."""
    row = session.execute(
        text(f"SELECT a.code, a.name, a.level FROM area a WHERE a.code = :code AND {IN_FORCE}"),
        {"code": code, "as_of": as_of},
    ).first()
    if row is None:
        raise NotFound(f"no area with code {code!r} on {as_of.isoformat()}")
    return AreaRef(code=str(row[0]), name=str(row[1]), level=str(row[2]))


def require_area(session: Session, *, code: str, as_of: dt.date) -> None:
    """``NotFound`` unless ``code`` is in force on ``as_of`` (cheap: no figures)."""
    area_ref(session, code=code, as_of=as_of)


def counties_of_points(session: Session, *, lon: Sequence[float], lat: Sequence[float]) -> set[str]:
    """The counties (boundaries in force, the lowest code where two cover a
    point — the rule of the address import) that the WGS84 points fall in;
    points in no county add nothing."""
    if not lon:
        return set()
    rows = session.execute(
        text(
            "SELECT DISTINCT (SELECT a.code FROM area a WHERE a.level = 'county' AND a.valid_to IS NULL"
            " AND ST_Covers(a.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)) ORDER BY a.code LIMIT 1)"
            " FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[])) AS p(x, y)"
        ),
        {"lon": list(lon), "lat": list(lat)},
    )
    return {str(r[0]) for r in rows if r[0] is not None}


def child_areas(session: Session, *, code: str, as_of: dt.date) -> list[AreaRecord]:
    """The areas whose parent is ``code`` on ``as_of``, ordered by code."""
    require_area(session, code=code, as_of=as_of)
    rows = session.execute(
        text(_SELECT + " AND a.parent_code = :code ORDER BY a.code"), {"code": code, "as_of": as_of}
    ).all()
    return _with_figures(session, rows=rows, as_of=as_of)


def list_areas(
    session: Session,
    *,
    as_of: dt.date,
    level: str | None = None,
    within: str | None = None,
    bbox: BBox | None = None,
    include_within: bool = False,
    limit: int,
    offset: int,
) -> tuple[list[AreaRecord], int]:
    """A page of areas in force on ``as_of`` and the number matched in all.

    ``within`` keeps descendants of that area (any depth), and the area itself
    too with ``include_within`` (an account's whole area); ``bbox`` keeps areas
    whose geometry meets the box (the box is built in EPSG:4326 so the GIST
    index on the column stays usable).
    """
    where, params = _filters(level=level, within=within, bbox=bbox, include_within=include_within)
    params |= {"as_of": as_of, "limit": limit, "offset": offset}
    if within is not None:
        require_area(session, code=within, as_of=as_of)
    count_sql = f"SELECT count(*) FROM area a WHERE {IN_FORCE}{where}"
    matched = int(session.execute(text(count_sql), params).scalar_one())
    rows = session.execute(
        text(_SELECT + where + " ORDER BY a.code LIMIT :limit OFFSET :offset"), params
    ).all()
    return _with_figures(session, rows=rows, as_of=as_of), matched


def _filters(
    *, level: str | None, within: str | None, bbox: BBox | None, include_within: bool = False
) -> tuple[str, dict[str, object]]:
    clauses: list[str] = []
    params: dict[str, object] = {}
    if level is not None:
        if level not in AREA_LEVELS:
            raise InvalidInput(f"level {level!r} is not one of {', '.join(AREA_LEVELS)}")
        clauses.append("a.level = :level")
        params["level"] = level
    if within is not None:
        clauses.append(f"a.code IN ({SUBTREE_CODES})" if include_within else _DESCENDANTS)
        params["within"] = within
    if bbox is not None:
        clauses.append("a.geom && ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326)")
        params |= {
            "min_lon": bbox.min_lon,
            "min_lat": bbox.min_lat,
            "max_lon": bbox.max_lon,
            "max_lat": bbox.max_lat,
        }
    return "".join(f" AND {c}" for c in clauses), params


def area_figures(
    session: Session, *, codes: Sequence[str], as_of: dt.date
) -> dict[str, tuple[int, int]]:
    """(households, residents) of each area in ``codes``, counted where they
    live: in the micro-grids under the area on ``as_of``."""
    if not codes:
        return {}
    result = session.execute(text(_FIGURES_SQL), {"codes": list(codes), "as_of": as_of})
    return {str(code): (int(h), int(r)) for code, h, r in result}


def _with_figures(
    session: Session, *, rows: Sequence[Row[Any]], as_of: dt.date
) -> list[AreaRecord]:
    figures = area_figures(session, codes=[str(row[0]) for row in rows], as_of=as_of)
    records = []
    for row in rows:
        (code, name, level, kind, parent, synthetic, version, vfrom, vto, km2, kids, wkb) = row  # type: ignore[misc]
        households, residents = figures.get(code, (0, 0))
        records.append(
            AreaRecord(
                code=code, name=name, level=level, kind=kind, parent_code=parent,
                synthetic=synthetic, version=version, valid_from=vfrom, valid_to=vto,
                area_km2=float(km2), children=int(kids), households=households,
                residents=residents, geom_4326=shapely.from_wkb(bytes(wkb)),
            )
        )  # fmt: skip
    return records
