"""Queries behind the OGC API – Features collections served under ``/ogc``.

One collection per area level present in the ``area`` table, and one of
checkpoints. Everything is WGS84 (EPSG:4326, which OGC calls CRS84 in lon/lat
order). A box filter keeps the features whose geometry *intersects* the box
(OGC API – Features Part 1, ``/req/core/fc-bbox-response``), not merely those
whose bounding box does; the box is built in EPSG:4326 so the GIST index on the
column stays usable. Pages are ordered by code (areas) or id (checkpoints) so
``offset`` paging is stable.

Household and resident figures count people where they live: a household
counts for its micro-grid and every ancestor of it, found by walking the
hierarchy down (as ``db.areas`` does), as of the date asked.

Scope: every query takes ``roots``, an account's areas (None: everything).
Areas are kept when an ancestor-or-self is a root (on the date asked);
checkpoints when their point lies in a root's polygon (as ``db.access``
decides); extents are computed over what the roots hold, so a collection's
box never outlines anything outside them.
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

from db.access import ROOTS_SUBTREE_CODES
from db.areas import IN_FORCE, BBox, area_figures
from db.models import AREA_LEVELS
from geo.errors import NotFound


@dataclass(frozen=True)
class CollectionExtent:
    """What a collection holds, over its whole history.

    ``bbox_4326`` is (min lon, min lat, max lon, max lat) of every version
    stored, ``None`` when the collection is empty. ``first_day`` and
    ``last_day`` bound the validity of its versions (``last_day`` is ``None``
    while a version is still in force, or for collections without validity).
    """

    count: int
    bbox_4326: tuple[float, float, float, float] | None
    first_day: dt.date | None = None
    last_day: dt.date | None = None


@dataclass(frozen=True)
class AreaItem:
    """An area version in force on the date asked, as an OGC feature needs it."""

    code: str
    name: str
    level: str
    kind: str
    parent_code: str | None
    valid_from: dt.date
    valid_to: dt.date | None
    area_km2: float
    households: int
    residents: int
    geom_4326: BaseGeometry


@dataclass(frozen=True)
class CheckpointItem:
    """A checkpoint (卡口): a point in EPSG:4326 and what it is."""

    id: int
    county_code: str
    name: str
    kind: str
    active: bool
    note: str | None
    geom_4326: BaseGeometry


_BOX = "ST_MakeEnvelope(:min_lon, :min_lat, :max_lon, :max_lat, 4326)"


def _box_params(bbox: BBox) -> dict[str, float]:
    return {
        "min_lon": bbox.min_lon,
        "min_lat": bbox.min_lat,
        "max_lon": bbox.max_lon,
        "max_lat": bbox.max_lat,
    }


def _bbox_of(values: Sequence[Any]) -> tuple[float, float, float, float] | None:
    if any(v is None for v in values):
        return None
    x0, y0, x1, y1 = (float(v) for v in values)
    return (x0, y0, x1, y1)


# --------------------------------------------------------------------------- areas


# Codes of :roots and of every area that was ever a descendant of them (any version):
# what a scoped extent is computed over.
_EVER_UNDER_ROOTS = """
WITH RECURSIVE sub(code) AS (
    SELECT unnest(CAST(:roots AS text[]))
  UNION
    SELECT a.code FROM area a JOIN sub s ON a.parent_code = s.code
) SELECT code FROM sub
"""

# A checkpoint (alias c) lies in the polygon of one of :roots on :as_of.
_CHECKPOINT_IN_ROOTS = (
    f"EXISTS (SELECT 1 FROM area a WHERE a.code = ANY(:roots) AND {IN_FORCE}"
    " AND ST_Covers(a.geom, c.geom))"
)


def area_levels(session: Session) -> list[str]:
    """The area levels that hold at least one area version, in hierarchy order."""
    found = {str(r[0]) for r in session.execute(text("SELECT DISTINCT level FROM area"))}
    return [level for level in AREA_LEVELS if level in found]


def area_extents(
    session: Session, *, roots: Sequence[str] | None = None
) -> dict[str, CollectionExtent]:
    """The area levels that hold at least one area version, in hierarchy order
    (city → microgrid), each with its extent over all versions stored — of the
    areas under ``roots`` only, when given (a level with none of them gets an
    empty extent: the collection exists, nothing of it is theirs)."""
    where, params = "", {}
    if roots is not None:
        where = f" WHERE a.code IN ({_EVER_UNDER_ROOTS})"
        params = {"roots": list(roots)}
    rows = session.execute(
        text(f"""
            SELECT s.level, s.n, ST_XMin(s.e), ST_YMin(s.e), ST_XMax(s.e), ST_YMax(s.e),
                   s.first_day, CASE WHEN s.open_ended THEN NULL ELSE s.last_day END
            FROM (SELECT a.level, count(*) AS n, ST_Extent(a.geom) AS e,
                         min(a.valid_from) AS first_day, max(a.valid_to) AS last_day,
                         bool_or(a.valid_to IS NULL) AS open_ended
                  FROM area a{where} GROUP BY a.level) s
        """),
        params,
    ).all()
    found = {
        str(row[0]): CollectionExtent(
            count=int(row[1]), bbox_4326=_bbox_of(row[2:6]), first_day=row[6], last_day=row[7]
        )
        for row in rows
    }
    empty = CollectionExtent(count=0, bbox_4326=None)
    return {level: found.get(level, empty) for level in area_levels(session)}


def area_level_exists(session: Session, *, level: str) -> bool:
    """Whether any version of any area of ``level`` is stored (cheap: index on level)."""
    found = session.execute(
        text("SELECT EXISTS (SELECT 1 FROM area a WHERE a.level = :level)"), {"level": level}
    ).scalar_one()
    return bool(found)


_AREA_SELECT = f"""
SELECT a.code, a.name, a.level, a.kind, a.parent_code, a.valid_from, a.valid_to,
       ST_Area(a.geom::geography) / 1e6 AS area_km2, ST_AsBinary(a.geom) AS wkb
FROM area a
WHERE a.level = :level AND {IN_FORCE}
"""


def area_page(
    session: Session,
    *,
    level: str,
    as_of: dt.date,
    bbox: BBox | None,
    limit: int,
    offset: int,
    roots: Sequence[str] | None = None,
) -> tuple[list[AreaItem], int]:
    """A page of the areas of ``level`` in force on ``as_of`` (ordered by code),
    and how many match in all; ``bbox`` keeps those whose geometry intersects it,
    ``roots`` those under (or equal to) one of these areas."""
    where = ""
    params: dict[str, object] = {"level": level, "as_of": as_of}
    if bbox is not None:
        where = f" AND ST_Intersects(a.geom, {_BOX})"
        params |= _box_params(bbox)
    if roots is not None:
        where += f" AND a.code IN ({ROOTS_SUBTREE_CODES})"
        params["roots"] = list(roots)
    matched = int(
        session.execute(
            text(f"SELECT count(*) FROM area a WHERE a.level = :level AND {IN_FORCE}{where}"),
            params,
        ).scalar_one()
    )
    rows = session.execute(
        text(_AREA_SELECT + where + " ORDER BY a.code LIMIT :limit OFFSET :offset"),
        params | {"limit": limit, "offset": offset},
    ).all()
    return _area_items(session, rows=rows, as_of=as_of), matched


def area_item(
    session: Session, *, level: str, code: str, as_of: dt.date, roots: Sequence[str] | None = None
) -> AreaItem:
    """Area ``code`` of ``level`` in force on ``as_of``; ``NotFound`` if there is
    none — or if it lies outside ``roots`` (the same answer)."""
    sql = _AREA_SELECT + " AND a.code = :code"
    params: dict[str, object] = {"level": level, "code": code, "as_of": as_of}
    if roots is not None:
        sql += f" AND a.code IN ({ROOTS_SUBTREE_CODES})"
        params["roots"] = list(roots)
    rows = session.execute(text(sql), params).all()
    if not rows:
        raise NotFound(f"no {level} with code {code!r} on {as_of.isoformat()}")
    return _area_items(session, rows=rows, as_of=as_of)[0]


def _area_items(session: Session, *, rows: Sequence[Row[Any]], as_of: dt.date) -> list[AreaItem]:
    figures = area_figures(session, codes=[str(row[0]) for row in rows], as_of=as_of)
    items = []
    for row in rows:
        code, name, level, kind, parent, vfrom, vto, km2, wkb = row  # type: ignore[misc]
        households, residents = figures.get(code, (0, 0))
        items.append(
            AreaItem(
                code=code, name=name, level=level, kind=kind, parent_code=parent,
                valid_from=vfrom, valid_to=vto, area_km2=float(km2), households=households,
                residents=residents, geom_4326=shapely.from_wkb(bytes(wkb)),
            )
        )  # fmt: skip
    return items


# --------------------------------------------------------------------- checkpoints


def _checkpoint_scope(
    roots: Sequence[str] | None, as_of: dt.date | None
) -> tuple[str, dict[str, object]]:
    """The WHERE condition (or "") keeping the checkpoints in ``roots``' polygons."""
    if roots is None:
        return "", {}
    return _CHECKPOINT_IN_ROOTS, {"roots": list(roots), "as_of": as_of or dt.date.today()}


def checkpoint_extent(
    session: Session, *, roots: Sequence[str] | None = None, as_of: dt.date | None = None
) -> CollectionExtent:
    """How many checkpoints are stored (in ``roots``' areas on ``as_of``, when
    given) and the box around them."""
    condition, params = _checkpoint_scope(roots, as_of)
    where = f" WHERE {condition}" if condition else ""
    row = session.execute(
        text(f"""
            SELECT s.n, ST_XMin(s.e), ST_YMin(s.e), ST_XMax(s.e), ST_YMax(s.e)
            FROM (SELECT count(*) AS n, ST_Extent(c.geom) AS e FROM checkpoint c{where}) s
        """),
        params,
    ).one()
    return CollectionExtent(count=int(row[0]), bbox_4326=_bbox_of(row[1:5]))


_CHECKPOINT_SELECT = """
SELECT c.id, c.county_code, c.name, c.kind, c.active, c.note, ST_AsBinary(c.geom)
FROM checkpoint c
"""


def checkpoint_page(
    session: Session,
    *,
    bbox: BBox | None,
    limit: int,
    offset: int,
    roots: Sequence[str] | None = None,
    as_of: dt.date | None = None,
) -> tuple[list[CheckpointItem], int]:
    """A page of checkpoints (ordered by id) and how many match in all;
    ``bbox`` keeps those inside it or on its edge, ``roots`` those in one of
    these areas (their polygons on ``as_of``, default today)."""
    condition, params = _checkpoint_scope(roots, as_of)
    conditions = [condition] if condition else []
    if bbox is not None:
        conditions.append(f"ST_Intersects(c.geom, {_BOX})")
        params |= _box_params(bbox)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    matched = int(
        session.execute(text("SELECT count(*) FROM checkpoint c" + where), params).scalar_one()
    )
    rows = session.execute(
        text(_CHECKPOINT_SELECT + where + " ORDER BY c.id LIMIT :limit OFFSET :offset"),
        params | {"limit": limit, "offset": offset},
    ).all()
    return [_checkpoint_item(row) for row in rows], matched


def checkpoint_item(
    session: Session,
    *,
    checkpoint_id: int,
    roots: Sequence[str] | None = None,
    as_of: dt.date | None = None,
) -> CheckpointItem:
    """Checkpoint ``checkpoint_id``; ``NotFound`` if there is none — or if it
    lies outside ``roots`` (the same answer)."""
    condition, params = _checkpoint_scope(roots, as_of)
    sql = _CHECKPOINT_SELECT + " WHERE c.id = :id" + (f" AND {condition}" if condition else "")
    row = session.execute(text(sql), params | {"id": checkpoint_id}).first()
    if row is None:
        raise NotFound(f"no checkpoint with id {checkpoint_id}")
    return _checkpoint_item(row)


def _checkpoint_item(row: Row[Any]) -> CheckpointItem:
    cid, county, name, kind, active, note, wkb = tuple(row)
    return CheckpointItem(
        id=int(cid), county_code=county, name=name, kind=kind, active=bool(active), note=note,
        geom_4326=shapely.from_wkb(bytes(wkb)),
    )  # fmt: skip
