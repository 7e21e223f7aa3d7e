"""Editing a grid's micro-grids: redraw, create, split, merge, delete, replace
all (a suggestion applied), each kept as a new boundary version and an edit
record, with the households that moved reassigned in the same transaction.

Versions. A micro-grid changed on day D is closed at D (``valid_to = D``) and
its new version is in force from D, so layers ``as_of`` an earlier day keep the
boundaries — and the coverage — of then (``db.layers`` re-places households in
the boundaries in force that day). A second change on the same day corrects
the version that started that day in place (``version + 1``), as the boundary
import does; the edit record keeps every change either way.

Concurrency. Every change names the version it changes (the ETag
``"<code>.v<version>"``, sent as ``If-Match``); edits of one grid are
serialised by a transaction-scoped advisory lock taken before the rows are
read, so of two editors of the same version exactly one wins and the other
gets ``PreconditionFailed`` (412).

Checks (``geo.microgrid_edit``): inside the grid, no overlap with a sibling
(after snapping to their edges), and the gap left in the grid reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.assign import assign_households
from geo.errors import InvalidInput, NotFound, PreconditionFailed
from geo.microgrid_edit import (
    ShapeCheck,
    check_shape,
    fit_shape,
    gap_of,
    split_shape,
)
from geo.partition import as_multipolygon

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Microgrid:
    """A micro-grid version in force today."""

    code: str
    name: str
    version: int
    parent_code: str
    county_code: str | None
    valid_from: dt.date
    geom_4326: MultiPolygon

    @property
    def etag(self) -> str:
        return etag_of(code=self.code, version=self.version)


@dataclass(frozen=True)
class Editor:
    """Who edits, why, and on which (China) calendar day the change takes effect."""

    author: str
    reason: str
    today: dt.date

    def checked(self) -> Editor:
        reason = self.reason.strip()
        if not reason:
            raise InvalidInput("give a reason for the change (reason)")
        if len(reason) > MAX_REASON_CHARS:
            raise InvalidInput(f"the reason is longer than {MAX_REASON_CHARS} characters")
        return Editor(author=self.author, reason=reason, today=self.today)


@dataclass(frozen=True)
class EditResult:
    """What an edit did: the micro-grids it left (code → ETag, households),
    those it ended, households reassigned, and the grid's gap."""

    action: str
    grid_code: str
    saved: dict[str, str]  # code → new ETag
    ended: tuple[str, ...]
    households: dict[str, int]  # code → households now in it
    households_moved: int
    gap_m2: float
    unassigned_in_grid: int
    edit_id: int
    detail: dict[str, Any] = field(default_factory=dict)


def etag_of(*, code: str, version: int) -> str:
    return f'"{code}.v{version}"'


def layout_etag(microgrids: Sequence[Microgrid]) -> str:
    """ETag of a grid's whole set of micro-grids (for replacing them all)."""
    digest = hashlib.sha256(
        ",".join(
            f"{m.code}.v{m.version}" for m in sorted(microgrids, key=lambda m: m.code)
        ).encode()
    ).hexdigest()[:16]
    return f'"layout.{digest}"'


_MICROGRID_COLUMNS = (
    "a.code, a.name, a.version, a.parent_code, a.county_code, a.valid_from, ST_AsBinary(a.geom)"
)


def _microgrid(row: Any) -> Microgrid:
    return Microgrid(
        code=str(row[0]), name=str(row[1]), version=int(row[2]), parent_code=str(row[3]),
        county_code=None if row[4] is None else str(row[4]), valid_from=row[5],
        geom_4326=as_multipolygon(shapely.from_wkb(bytes(row[6]))),
    )  # fmt: skip


def locked_microgrid(session: Session, *, code: str) -> Microgrid:
    """The micro-grid ``code`` in force now, its grid's edits serialised for
    the rest of the transaction. The lock is taken before the row is read, so
    the row read is the one the previous editor committed (a row lock alone
    would find the old version closed and miss the new one)."""
    _lock_grid(session, grid_code=current_microgrid(session, code=code).parent_code)
    return current_microgrid(session, code=code)


def current_microgrid(session: Session, *, code: str) -> Microgrid:
    """The micro-grid ``code`` in force now; ``NotFound`` if none."""
    row = session.execute(
        text(
            f"SELECT {_MICROGRID_COLUMNS} FROM area a WHERE a.code = :code"
            " AND a.level = 'microgrid' AND a.valid_to IS NULL"
        ),
        {"code": code},
    ).first()
    if row is None:
        raise NotFound(f"no micro-grid with code {code!r} in force")
    return _microgrid(row)


def grid_microgrids(session: Session, *, grid_code: str) -> list[Microgrid]:
    """The micro-grids in force in a grid, by code."""
    rows = session.execute(
        text(
            f"SELECT {_MICROGRID_COLUMNS} FROM area a WHERE a.parent_code = :grid"
            " AND a.level = 'microgrid' AND a.valid_to IS NULL ORDER BY a.code"
        ),
        {"grid": grid_code},
    ).all()
    return [_microgrid(r) for r in rows]


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    county_code: str | None
    geom_4326: MultiPolygon


def current_grid(session: Session, *, code: str) -> Grid:
    row = session.execute(
        text(
            "SELECT a.code, a.name, a.county_code, ST_AsBinary(a.geom) FROM area a"
            " WHERE a.code = :code AND a.level = 'grid' AND a.valid_to IS NULL"
        ),
        {"code": code},
    ).first()
    if row is None:
        raise NotFound(f"no grid with code {code!r} in force")
    return Grid(code=str(row[0]), name=str(row[1]), county_code=row[2],
                geom_4326=as_multipolygon(shapely.from_wkb(bytes(row[3]))))  # fmt: skip


def require_version(microgrid: Microgrid, *, if_match: str) -> None:
    """``PreconditionFailed`` unless ``if_match`` names the micro-grid's current version."""
    wanted = {tag.strip() for tag in if_match.split(",")}
    if microgrid.etag not in wanted and "*" not in wanted:
        raise PreconditionFailed(
            f"micro-grid {microgrid.code} was changed since you loaded it (now {microgrid.etag},"
            f" you sent {if_match}): reload it and edit again"
        )


# -- checks without saving -------------------------------------------------------------------
@dataclass(frozen=True)
class DraftCheck:
    shape: ShapeCheck
    households: int
    gap_m2: float  # of the grid, were the shape saved


def check_draft(
    session: Session, *, grid_code: str, shape_4326: BaseGeometry, code: str | None = None
) -> DraftCheck:
    """What saving ``shape_4326`` as micro-grid ``code`` (None: a new one) of the
    grid would meet: the fitted shape, its problems, and the households in it."""
    grid = current_grid(session, code=grid_code)
    siblings = {
        m.code: m.geom_4326 for m in grid_microgrids(session, grid_code=grid_code) if m.code != code
    }
    checked = check_shape(shape_4326, grid_4326=grid.geom_4326, siblings_4326=siblings)
    parts = list(siblings.values())
    households = 0
    if checked.geom_4326 is not None:
        households = _households_in(session, geom_4326=checked.geom_4326, county_code=grid.county_code)
        parts.append(checked.geom_4326)
    _gap, gap_m2 = gap_of(grid.geom_4326, parts_4326=parts)
    return DraftCheck(shape=checked, households=households, gap_m2=round(gap_m2, 1))


def _households_in(session: Session, *, geom_4326: BaseGeometry, county_code: str | None) -> int:
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM household h WHERE h.county_code = :county"
                " AND ST_Covers(ST_GeomFromWKB(:wkb, 4326), h.geom)"
            ),
            {"county": county_code, "wkb": shapely.to_wkb(geom_4326)},
        ).scalar_one()
    )


# -- edits -----------------------------------------------------------------------------------
def redraw(
    session: Session, *, code: str, shape_4326: BaseGeometry, if_match: str, editor: Editor
) -> EditResult:
    """Give micro-grid ``code`` a new boundary."""
    editor = editor.checked()
    target = locked_microgrid(session, code=code)
    require_version(target, if_match=if_match)
    grid = current_grid(session, code=target.parent_code)
    siblings = _siblings(session, grid_code=grid.code, excluding={code})
    geom = fit_shape(shape_4326, grid_4326=grid.geom_4326, siblings_4326=siblings)
    _write_version(session, microgrid=target, geom_4326=geom, today=editor.today)
    return _finish(session, action="redraw", grid=grid, changed=[code], ended=[], editor=editor)


def create(
    session: Session, *, grid_code: str, shape_4326: BaseGeometry, name: str | None, editor: Editor
) -> EditResult:
    """A new micro-grid in the grid (in a gap: it may not overlap a sibling)."""
    editor = editor.checked()
    grid = current_grid(session, code=grid_code)
    _lock_grid(session, grid_code=grid_code)
    siblings = _siblings(session, grid_code=grid_code, excluding=set())
    geom = fit_shape(shape_4326, grid_4326=grid.geom_4326, siblings_4326=siblings)
    code = _new_codes(session, grid_code=grid_code, count=1)[0]
    _insert(session, code=code, name=name or _default_name(code, grid=grid), grid=grid, geom_4326=geom,
            today=editor.today)  # fmt: skip
    return _finish(session, action="create", grid=grid, changed=[code], ended=[], editor=editor)


def split(
    session: Session, *, code: str, line_4326: BaseGeometry, if_match: str, editor: Editor
) -> EditResult:
    """Cut micro-grid ``code`` along a line: the largest piece keeps the code,
    each other piece becomes a new micro-grid."""
    editor = editor.checked()
    target = locked_microgrid(session, code=code)
    require_version(target, if_match=if_match)
    grid = current_grid(session, code=target.parent_code)
    if line_4326.geom_type != "LineString":
        raise InvalidInput("a split needs a LineString (the cut line)")
    pieces = split_shape(target.geom_4326, line_4326=line_4326)  # type: ignore[arg-type]
    _write_version(session, microgrid=target, geom_4326=pieces[0], today=editor.today)
    new_codes = _new_codes(session, grid_code=grid.code, count=len(pieces) - 1)
    for new_code, piece in zip(new_codes, pieces[1:], strict=True):
        _insert(session, code=new_code, name=_default_name(new_code, grid=grid), grid=grid, geom_4326=piece,
                today=editor.today)  # fmt: skip
    return _finish(session, action="split", grid=grid, changed=[code, *new_codes], ended=[],
                   editor=editor)  # fmt: skip


def merge(session: Session, *, codes: Sequence[str], if_match: str, editor: Editor) -> EditResult:
    """Join micro-grids of one grid that touch along an edge: the lowest code
    keeps the union, the others end. ``if_match`` lists every one's ETag."""
    editor = editor.checked()
    if len(set(codes)) < 2:
        raise InvalidInput("name two or more different micro-grids to merge (codes)")
    targets = [locked_microgrid(session, code=c) for c in sorted(set(codes))]
    for target in targets:
        require_version(target, if_match=if_match)
    parents = {t.parent_code for t in targets}
    if len(parents) != 1:
        raise InvalidInput(
            f"micro-grids {', '.join(codes)} are in different grids; merge within one grid"
        )
    union = shapely.union_all([t.geom_4326 for t in targets])
    if union.geom_type != "Polygon":
        raise InvalidInput(
            f"micro-grids {', '.join(t.code for t in targets)} do not touch along an edge: only neighbours merge"
        )
    grid = current_grid(session, code=parents.pop())
    keeper, *others = targets
    _write_version(session, microgrid=keeper, geom_4326=as_multipolygon(union), today=editor.today)
    for other in others:
        _end(session, microgrid=other, today=editor.today)
    return _finish(session, action="merge", grid=grid, changed=[keeper.code],
                   ended=[o.code for o in others], editor=editor)  # fmt: skip


def delete(
    session: Session, *, code: str, if_match: str, give_to: str | None, editor: Editor
) -> EditResult:
    """End micro-grid ``code``. With ``give_to`` (a neighbour that touches it)
    its area and households go to that neighbour; without, they become a gap
    of the grid and the households are listed as unassigned."""
    editor = editor.checked()
    target = locked_microgrid(session, code=code)
    require_version(target, if_match=if_match)
    grid = current_grid(session, code=target.parent_code)
    changed: list[str] = []
    if give_to is not None:
        heir = locked_microgrid(session, code=give_to)
        if heir.parent_code != target.parent_code or heir.code == code:
            raise InvalidInput(
                f"give_to {give_to!r} must be another micro-grid of grid {grid.code}"
            )
        union = shapely.union_all([heir.geom_4326, target.geom_4326])
        if union.geom_type != "Polygon":
            raise InvalidInput(f"micro-grid {give_to} does not touch {code} along an edge")
        _end(session, microgrid=target, today=editor.today)
        _write_version(
            session, microgrid=heir, geom_4326=as_multipolygon(union), today=editor.today
        )
        changed = [heir.code]
    else:
        _end(session, microgrid=target, today=editor.today)
    return _finish(session, action="delete", grid=grid, changed=changed, ended=[code],
                   editor=editor)  # fmt: skip


def replace_all(
    session: Session,
    *,
    grid_code: str,
    shapes_4326: Sequence[BaseGeometry],
    if_match: str,
    editor: Editor,
) -> EditResult:
    """Replace every micro-grid of the grid with ``shapes_4326`` (a suggestion,
    perhaps adjusted): each must fit the grid without overlapping the others.
    The old micro-grids end; the new ones get the lowest free codes."""
    editor = editor.checked()
    grid = current_grid(session, code=grid_code)
    _lock_grid(session, grid_code=grid_code)
    old = grid_microgrids(session, grid_code=grid_code)
    if layout_etag(old) not in {t.strip() for t in if_match.split(",")}:
        raise PreconditionFailed(
            f"the micro-grids of grid {grid_code} changed since you loaded them"
            f" (now {layout_etag(old)}): reload and apply again"
        )
    if not shapes_4326:
        raise InvalidInput("give at least one micro-grid")
    fitted: dict[str, MultiPolygon] = {}
    for index, shape in enumerate(shapes_4326):
        try:
            fitted[f"#{index + 1}"] = fit_shape(
                shape, grid_4326=grid.geom_4326, siblings_4326=fitted
            )
        except InvalidInput as error:
            raise InvalidInput(f"part #{index + 1}: {error}") from None
    for microgrid in old:
        _end(session, microgrid=microgrid, today=editor.today)
    session.flush()
    codes = _new_codes(session, grid_code=grid_code, count=len(fitted))
    for code, geom in zip(codes, fitted.values(), strict=True):
        _insert(session, code=code, name=_default_name(code, grid=grid), grid=grid, geom_4326=geom,
                today=editor.today)  # fmt: skip
    ended = [m.code for m in old if m.code not in codes]
    return _finish(session, action="replace", grid=grid, changed=codes, ended=ended, editor=editor)


# -- history ---------------------------------------------------------------------------------
def history(session: Session, *, code: str) -> dict[str, Any]:
    """Every version of area ``code`` (oldest first) and every edit that touched it."""
    versions = session.execute(
        text(
            "SELECT a.version, a.valid_from, a.valid_to, a.name, a.parent_code, a.source,"
            " ST_AsGeoJSON(a.geom, 6) FROM area a WHERE a.code = :code ORDER BY a.valid_from"
        ),
        {"code": code},
    ).all()
    if not versions:
        raise NotFound(f"no area with code {code!r}")
    edits = session.execute(
        text(
            "SELECT e.id, e.at, e.action, e.codes, e.effective_on, e.author, e.reason, e.detail"
            " FROM area_edit e WHERE :code = ANY(e.codes) ORDER BY e.at, e.id"
        ),
        {"code": code},
    ).all()
    return {
        "code": code,
        "versions": [
            {"version": v[0], "valid_from": v[1].isoformat(),
             "valid_to": None if v[2] is None else v[2].isoformat(), "name": v[3],
             "parent": v[4], "source": v[5], "geometry": json.loads(v[6])}
            for v in versions
        ],
        "edits": [
            {"id": e[0], "at": e[1].isoformat(), "action": e[2], "codes": list(e[3]),
             "effective_on": e[4].isoformat(), "author": e[5], "reason": e[6], "detail": e[7]}
            for e in edits
        ],
    }  # fmt: skip


# -- writing ---------------------------------------------------------------------------------
def _siblings(session: Session, *, grid_code: str, excluding: set[str]) -> dict[str, BaseGeometry]:
    return {
        m.code: m.geom_4326
        for m in grid_microgrids(session, grid_code=grid_code)
        if m.code not in excluding
    }


def _lock_grid(session: Session, *, grid_code: str) -> None:
    """Serialise edits that add micro-grids to one grid (new codes, overlaps)."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('microgrids:' || :g))"), {"g": grid_code}
    )


def _write_version(
    session: Session, *, microgrid: Microgrid, geom_4326: MultiPolygon, today: dt.date
) -> None:
    params = {"code": microgrid.code, "wkb": shapely.to_wkb(geom_4326), "day": today}
    if microgrid.valid_from >= today:  # started today: correct it in place
        session.execute(
            text(
                "UPDATE area SET geom = ST_GeomFromWKB(:wkb, 4326), version = version + 1,"
                " source = 'editor' WHERE code = :code AND valid_to IS NULL"
            ),
            params,
        )
        return
    session.execute(
        text("UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL"), params
    )
    session.execute(
        text(
            "INSERT INTO area (code, name, level, kind, parent_code, county_code, synthetic,"
            " version, valid_from, source, geom)"
            " SELECT code, name, level, kind, parent_code, county_code, synthetic, version + 1,"
            " :day, 'editor', ST_GeomFromWKB(:wkb, 4326)"
            " FROM area WHERE code = :code AND valid_to = :day"
        ),
        params,
    )


def _insert(
    session: Session, *, code: str, name: str, grid: Grid, geom_4326: MultiPolygon, today: dt.date
) -> None:
    session.execute(
        text(
            "INSERT INTO area (code, name, level, kind, parent_code, county_code, synthetic,"
            " version, valid_from, source, geom)"
            " VALUES (:code, :name, 'microgrid', (SELECT kind FROM area WHERE code = :grid"
            " AND valid_to IS NULL), :grid, :county, false,"
            " coalesce((SELECT max(version) FROM area WHERE code = CAST(:code AS varchar)), 0) + 1,"
            " :day, 'editor', ST_GeomFromWKB(:wkb, 4326))"
        ),
        {
            "code": code,
            "name": name,
            "grid": grid.code,
            "county": grid.county_code,
            "day": today,
            "wkb": shapely.to_wkb(geom_4326),
        },
    )


def _end(session: Session, *, microgrid: Microgrid, today: dt.date) -> None:
    """End the micro-grid from ``today``; a version that started today is removed."""
    if microgrid.valid_from >= today:
        session.execute(
            text("DELETE FROM area WHERE code = :code AND valid_to IS NULL"),
            {"code": microgrid.code},
        )
    else:
        session.execute(
            text("UPDATE area SET valid_to = :day WHERE code = :code AND valid_to IS NULL"),
            {"code": microgrid.code, "day": today},
        )


def _new_codes(session: Session, *, grid_code: str, count: int) -> list[str]:
    """The next ``count`` codes under the grid: its code and a two-digit (then
    longer) serial above every one used before — in any boundary version, or
    in an edit (a micro-grid made and ended on one day leaves no version)."""
    rows = session.execute(
        text(
            "SELECT code FROM area WHERE code LIKE :prefix AND level = 'microgrid'"
            " UNION SELECT unnest(codes) FROM area_edit WHERE grid_code = :grid"
        ),
        {"prefix": grid_code + "%", "grid": grid_code},
    ).all()
    serials = [
        int(code[len(grid_code) :])
        for (code,) in rows
        if code.startswith(grid_code) and code[len(grid_code) :].isdigit()
    ]
    start = max(serials, default=0) + 1
    return [f"{grid_code}{n:02d}" for n in range(start, start + count)]


def _default_name(code: str, *, grid: Grid) -> str:
    """The demo's and the offices' way: the grid's name and the serial, 第n号微网格."""
    serial = code[len(grid.code) :]
    return f"{grid.name}{int(serial) if serial.isdigit() else serial}号微网格"


def _finish(
    session: Session,
    *,
    action: str,
    grid: Grid,
    changed: Sequence[str],
    ended: Sequence[str],
    editor: Editor,
) -> EditResult:
    """Reassign the households the edit can move, measure the grid's gap, and
    record the edit."""
    session.flush()
    moved = 0
    if grid.county_code is not None:
        moved = assign_households(
            session.connection(), county_code=grid.county_code,
            microgrid_codes=[*changed, *ended],
        ).changed  # fmt: skip
    now = grid_microgrids(session, grid_code=grid.code)
    _gap, gap_m2 = gap_of(grid.geom_4326, parts_4326=[m.geom_4326 for m in now])
    households = household_counts(session, codes=[m.code for m in now])
    unassigned = _unassigned_in(session, grid=grid)
    detail = {"households_moved": moved, "gap_m2": round(gap_m2, 1),
              "unassigned_in_grid": unassigned, "ended": list(ended)}  # fmt: skip
    edit_id = int(
        session.execute(
            text(
                "INSERT INTO area_edit (county_code, grid_code, action, codes, effective_on,"
                " author, reason, detail) VALUES (:county, :grid, :action, :codes, :day, :author,"
                " :reason, CAST(:detail AS jsonb)) RETURNING id"
            ),
            {
                "county": grid.county_code,
                "grid": grid.code,
                "action": action,
                "codes": [*changed, *ended],
                "day": editor.today,
                "author": editor.author,
                "reason": editor.reason,
                "detail": json.dumps(detail),
            },
        ).scalar_one()
    )
    by_code = {m.code: m for m in now}
    return EditResult(
        action=action, grid_code=grid.code,
        saved={c: by_code[c].etag for c in changed if c in by_code}, ended=tuple(ended),
        households=households, households_moved=moved, gap_m2=round(gap_m2, 1),
        unassigned_in_grid=unassigned, edit_id=edit_id, detail=detail,
    )  # fmt: skip


def household_counts(session: Session, *, codes: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        text(
            "SELECT c.code, count(h.id) FROM unnest(CAST(:codes AS text[])) AS c(code)"
            " LEFT JOIN household h ON h.microgrid_code = c.code GROUP BY c.code"
        ),
        {"codes": list(codes)},
    ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def _unassigned_in(session: Session, *, grid: Grid) -> int:
    """Located households inside the grid that no micro-grid holds."""
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM household h WHERE h.county_code = :county"
                " AND h.microgrid_code IS NULL AND h.geom IS NOT NULL"
                " AND ST_Covers(ST_GeomFromWKB(:wkb, 4326), h.geom)"
            ),
            {"county": grid.county_code, "wkb": shapely.to_wkb(grid.geom_4326)},
        ).scalar_one()
    )


def unassigned_households(session: Session, *, grid_code: str) -> list[dict[str, Any]]:
    """The located households in the grid that no micro-grid holds: id and point."""
    grid = current_grid(session, code=grid_code)
    rows = session.execute(
        text(
            "SELECT h.id, ST_AsBinary(h.geom) FROM household h WHERE h.county_code = :county"
            " AND h.microgrid_code IS NULL AND h.geom IS NOT NULL"
            " AND ST_Covers(ST_GeomFromWKB(:wkb, 4326), h.geom) ORDER BY h.id"
        ),
        {"county": grid.county_code, "wkb": shapely.to_wkb(grid.geom_4326)},
    ).all()
    return [{"id": int(r[0]), "point": shapely.from_wkb(bytes(r[1]))} for r in rows]


@dataclass(frozen=True)
class BuildingPoint:
    """A place households share: a building (``key`` its id) or, for a
    household with no building, its own point (``key`` minus its id)."""

    key: int
    lon: float
    lat: float
    households: int


def grid_building_points(session: Session, *, grid_code: str) -> list[BuildingPoint]:
    """The buildings (and lone household points) inside the grid, with their
    located households counted — what a suggestion partitions."""
    grid = current_grid(session, code=grid_code)
    rows = session.execute(
        text(
            "SELECT coalesce(h.building_id, -h.id) AS key, ST_X(ST_PointOnSurface(ST_Collect(h.geom))),"
            " ST_Y(ST_PointOnSurface(ST_Collect(h.geom))), count(*)"
            " FROM household h WHERE h.county_code = :county AND h.geom IS NOT NULL"
            " AND ST_Covers(ST_GeomFromWKB(:wkb, 4326), h.geom)"
            " GROUP BY 1 ORDER BY 1"
        ),
        {"county": grid.county_code, "wkb": shapely.to_wkb(grid.geom_4326)},
    ).all()
    return [BuildingPoint(key=int(r[0]), lon=float(r[1]), lat=float(r[2]), households=int(r[3]))
            for r in rows]  # fmt: skip
