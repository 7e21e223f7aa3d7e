"""Import of the resident registry (人员登记表): households and residents
from CSV (UTF-8 or GBK/GB18030) or XLSX, geocoded against the standard
address registry and assigned to micro-grids.

Modes:
- ``validate`` checks every row and geocodes, and writes nothing;
- ``all-or-nothing`` writes only a file without a rejected row;
- ``per-row`` writes the good rows and returns every rejected row with its
  reasons as a file to download, fix and import again — nothing is lost.

A resident already known by ID number is updated (and the change kept in
``resident_history``), never duplicated; households are keyed by building and
unit/room (or normalised address), so a file imported twice creates nothing
twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from psycopg import Connection as PgConnection
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.assign import assign_households
from db.geocoder import Location, address_index, locate, resolve_county
from db.households import address_household_key, building_household_key
from geo.address import normalise
from geo.crs import WGS84, Crs, lonlat_to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.registry import (
    ResidentRow,
    RowRejection,
    check_table,
    mask_id_number,
    mask_phone,
    rejected_rows_file,
)
from geo.tabular import read_table

Mode = Literal["validate", "all-or-nothing", "per-row"]
MODES: tuple[str, ...] = ("validate", "all-or-nothing", "per-row")
# Fields of a resident that an import may change; history records each change.
TRACKED = ("name", "phone", "category", "hukou", "health_code", "household_id")


@dataclass(frozen=True)
class ResidentImportRequest:
    mode: Mode
    crs: Crs = WGS84
    county_code: str | None = None
    today: dt.date = field(default_factory=dt.date.today)
    rejected_format: Literal["csv", "xlsx"] = "csv"

    @classmethod
    def build(
        cls, *, mode: str, crs: Crs = WGS84, county_code: str | None = None,
        today: dt.date | None = None, rejected_format: str = "csv",
    ) -> ResidentImportRequest:  # fmt: skip
        if mode not in MODES:
            raise InvalidInput(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if rejected_format not in ("csv", "xlsx"):
            raise InvalidInput(f"rejected file format {rejected_format!r} is not csv or xlsx")
        return cls(
            mode=mode,  # type: ignore[arg-type]
            crs=crs, county_code=county_code, today=today or dt.date.today(),
            rejected_format=rejected_format,  # type: ignore[arg-type]
        )  # fmt: skip


@dataclass
class ResidentImportReport:
    """What the file held and what the import did; JSON-ready via ``as_dict``."""

    file: str
    encoding: str | None
    mode: str
    county_code: str
    rows: int = 0
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    unknown_headers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    geocoding: dict[str, int] = field(default_factory=dict)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    updated_rows: list[dict[str, Any]] = field(default_factory=list)
    households_created: int = 0
    review_queued: int = 0
    quarantines_created: int = 0
    applied: bool = False
    batch_id: int | None = None
    rejected_file: str | None = None  # where the rejected rows can be downloaded

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        done = (
            f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged residents;"
            f" {self.households_created} new households; {self.review_queued} addresses to review"
            if self.applied
            else "nothing written"
        )
        located = ", ".join(f"{k} {v}" for k, v in sorted(self.geocoding.items()))
        return (
            f"{self.file} ({self.encoding or 'xlsx'}): {self.rows} rows, {self.accepted} accepted,"
            f" {len(self.rejected)} rejected [{self.mode}]; located: {located or '-'}; {done}"
        )


class ResidentImportRejected(InvalidInput):
    """``all-or-nothing`` met a rejected row: nothing was written."""

    title = "Registry file rejected"

    def __init__(self, report: ResidentImportReport) -> None:
        first = report.rejected[0]
        super().__init__(
            f"{report.file}: {len(report.rejected)} row(s) rejected, nothing written;"
            f" first: row {first['row']}: {'; '.join(first['reasons'])}",
            extra={"report": report.as_dict()},
        )
        self.report = report


@dataclass(frozen=True)
class _Placed:
    """A checked row with its household key and location."""

    resident: ResidentRow
    key: str
    location: Location
    unit: str | None
    room: str | None
    lon: float | None
    lat: float | None


def import_residents(
    session: Session, *, path: Path, request: ResidentImportRequest, display_name: str | None = None
) -> tuple[ResidentImportReport, bytes | None]:
    """Check, geocode and (by mode) write a registry file in the caller's
    transaction. Returns the report and the rejected rows file (or None)."""
    table = read_table(path, display_name=display_name)
    checked = check_table(table, today=request.today)
    county = resolve_county(session, county_code=request.county_code)
    report = ResidentImportReport(
        file=table.name, encoding=table.encoding, mode=request.mode, county_code=county,
        rows=len(table.rows), accepted=len(checked.accepted),
        rejected=[{"row": r.row, "reasons": list(r.reasons)} for r in checked.rejected],
        unknown_headers=list(checked.mapping.unknown), notes=list(table.notes),
    )  # fmt: skip
    placed = _place(session, rows=checked.accepted, county=county, request=request)
    report.geocoding = dict(
        Counter(
            p.location.level
            if p.location.status == "matched"
            else p.location.review_reason or "none"
            for p in placed
        )
    )
    rejected_file = _rejected_file(
        checked.rejected, headers=table.headers, fmt=request.rejected_format
    )
    if request.mode == "validate":
        return report, rejected_file
    if request.mode == "all-or-nothing" and checked.rejected:
        raise ResidentImportRejected(report)
    _write(session, placed=placed, county=county, report=report)
    report.applied = True
    report.batch_id = _record_batch(
        session, path=path, report=report, rejected_file=rejected_file, fmt=request.rejected_format
    )
    if rejected_file is not None:
        report.rejected_file = f"/api/imports/{report.batch_id}/rejected.{request.rejected_format}"
    return report, rejected_file


# -- locating -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geocoded:
    location: Location
    unit: str | None
    room: str | None
    normalised: str


def _place(
    session: Session, *, rows: Sequence[ResidentRow], county: str, request: ResidentImportRequest
) -> list[_Placed]:
    """Each row's household key and location: its coordinates if the file has
    them (converted from the file's CRS), else its address geocoded (each
    distinct address once)."""
    index = address_index(session, county_code=county)
    seen: dict[str, _Geocoded] = {}

    def geocode(text_: str) -> _Geocoded:
        if text_ not in seen:
            match = index.match(text_)
            parsed = match.parsed
            seen[text_] = _Geocoded(
                location=locate(session, county_code=county, match=match, as_of=request.today),
                unit=parsed.unit if parsed else None,
                room=parsed.room if parsed else None,
                normalised=normalise(text_),
            )
        return seen[text_]

    placed = []
    for row, point in zip(rows, _coordinates(rows, crs=request.crs), strict=True):
        found = geocode(row.address or "")
        location = found.location
        if point is not None:  # coordinates in the file win over the address
            location = Location("point", "matched", 1.0, location.building_id, None, None, [])
        if location.building_id is not None:
            key = building_household_key(
                building_id=location.building_id, unit=found.unit, room=found.room
            )
        else:
            key = address_household_key(normalised_address=found.normalised or f"{point}")
        lon, lat = point or (None, None)
        placed.append(_Placed(row, key, location, found.unit, found.room, lon, lat))
    return placed


def _coordinates(rows: Sequence[ResidentRow], *, crs: Crs) -> list[tuple[float, float] | None]:
    has = [r.lon is not None and r.lat is not None for r in rows]
    if not any(has):
        return [None] * len(rows)
    lon = np.array([r.lon if h else np.nan for r, h in zip(rows, has, strict=True)], dtype=float)
    lat = np.array([r.lat if h else np.nan for r, h in zip(rows, has, strict=True)], dtype=float)
    x, y = lonlat_to_wgs84(lon, lat, crs=crs)
    return [
        (float(a), float(b)) if h else None
        for a, b, h in zip(x.tolist(), y.tolist(), has, strict=True)
    ]


# -- writing ----------------------------------------------------------------------------------
def _pg(session: Session) -> PgConnection[Any]:
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def _copy(
    session: Session, *, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    with (
        _pg(session).cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _write(
    session: Session, *, placed: list[_Placed], county: str, report: ResidentImportReport
) -> None:
    session.flush()
    household_ids = _write_households(session, placed=placed, county=county, report=report)
    _write_residents(session, placed=placed, county=county, report=report)
    report.quarantines_created = _write_quarantines(session, county=county)
    if household_ids:
        assign_households(session.connection(), county_code=county, household_ids=household_ids)


def _write_households(
    session: Session, *, placed: list[_Placed], county: str, report: ResidentImportReport
) -> list[int]:
    """Create the households not yet known; returns the new ids (to assign)."""
    session.execute(
        text(
            "CREATE TEMP TABLE household_stage (address_key text, address text, building_id bigint, unit text,"
            " room text, lon float8, lat float8, level text, status text, score float8, area_code text,"
            " reason text, candidates jsonb) ON COMMIT DROP"
        )
    )
    distinct: dict[str, _Placed] = {}
    for p in placed:
        distinct.setdefault(p.key, p)
    _copy(
        session, table="household_stage",
        columns=("address_key", "address", "building_id", "unit", "room", "lon", "lat", "level", "status",
                 "score", "area_code", "reason", "candidates"),
        rows=(
            (k, p.resident.address, p.location.building_id, p.unit, p.room, p.lon, p.lat, p.location.level,
             p.location.status, p.location.score, p.location.area_code, p.location.review_reason,
             json.dumps(p.location.candidates))
            for k, p in distinct.items()
        ),
    )  # fmt: skip
    created = session.execute(
        text(
            """
            INSERT INTO household (county_code, building_id, unit, room, address, geom, geocode_level,
                                   geocode_status, geocode_score, area_code, address_key)
            SELECT :county, s.building_id, s.unit, s.room, s.address,
                   CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)
                        ELSE (SELECT b.geom FROM building b WHERE b.id = s.building_id) END,
                   s.level, s.status, s.score, s.area_code, s.address_key
            FROM household_stage s
            ON CONFLICT (county_code, address_key) DO NOTHING
            RETURNING id
            """
        ),
        {"county": county},
    ).all()
    report.households_created = len(created)
    queued = session.execute(
        text(
            """
            INSERT INTO geocode_review (county_code, household_id, address, reason, candidates)
            SELECT :county, h.id, coalesce(s.address, ''), s.reason, s.candidates
            FROM household_stage s JOIN household h ON h.county_code = :county AND h.address_key = s.address_key
            WHERE s.status = 'review' AND h.geocode_status = 'review'
            ON CONFLICT (household_id) WHERE status = 'open' DO NOTHING
            RETURNING id
            """
        ),
        {"county": county},
    ).all()
    report.review_queued = len(queued)
    return [hid for (hid,) in created]


def _write_residents(
    session: Session, *, placed: list[_Placed], county: str, report: ResidentImportReport
) -> None:
    session.execute(
        text(
            "CREATE TEMP TABLE resident_stage (row int, id_number text, name text, phone text, sex text,"
            " birth_date date, category text, hukou text, health_code text, tags text[], address_key text,"
            " quarantine_kind text, quarantine_start date, quarantine_end date, quarantine_site text,"
            " note text) ON COMMIT DROP"
        )
    )
    _copy(
        session, table="resident_stage",
        columns=("row", "id_number", "name", "phone", "sex", "birth_date", "category", "hukou", "health_code",
                 "tags", "address_key", "quarantine_kind", "quarantine_start", "quarantine_end",
                 "quarantine_site", "note"),
        rows=(
            (r.row, r.id_number, r.name, r.phone, r.sex, r.birth_date, r.category, r.hukou, r.health_code,
             list(r.tags), p.key, r.quarantine_kind, r.quarantine_start, r.quarantine_planned_end,
             r.quarantine_site, r.note)
            for p in placed for r in (p.resident,)
        ),
    )  # fmt: skip
    session.execute(
        text("UPDATE resident_stage s SET address_key = h.id::text FROM household h"
             " WHERE h.county_code = :county AND h.address_key = s.address_key"),
        {"county": county},
    )  # fmt: skip
    before = {
        row[0]: row[1:]
        for row in session.execute(
            text(f"SELECT r.id_number, r.id, {', '.join('r.' + c for c in TRACKED)} FROM resident r"
                 " JOIN resident_stage s ON s.id_number = r.id_number")
        )
    }  # fmt: skip
    written = session.execute(
        text(
            """
            INSERT INTO resident AS r (county_code, household_id, name, id_number, phone, sex, birth_date,
                                       category, tags, hukou, health_code, source)
            SELECT :county, s.address_key::bigint, s.name, s.id_number, s.phone, s.sex, s.birth_date,
                   s.category, s.tags, s.hukou, s.health_code, :source
            FROM resident_stage s
            ON CONFLICT (id_number) DO UPDATE SET
                household_id = excluded.household_id, name = excluded.name, phone = excluded.phone,
                category = excluded.category, hukou = coalesce(excluded.hukou, r.hukou),
                health_code = coalesce(excluded.health_code, r.health_code),
                tags = ARRAY(SELECT DISTINCT t FROM unnest(r.tags || excluded.tags) t ORDER BY t),
                source = excluded.source, updated_at = now()
            WHERE (r.household_id, r.name, r.phone, r.category, r.hukou, r.health_code)
                  IS DISTINCT FROM
                  (excluded.household_id, excluded.name, excluded.phone, excluded.category,
                   coalesce(excluded.hukou, r.hukou), coalesce(excluded.health_code, r.health_code))
               OR NOT (excluded.tags <@ r.tags)
            RETURNING r.id, r.id_number, (xmax = 0) AS inserted,
                      r.name, r.phone, r.category, r.hukou, r.health_code, r.household_id
            """
        ),
        {"county": county, "source": report.file},
    ).all()
    rows_by_id = {p.resident.id_number: p.resident.row for p in placed}
    history = []
    for rid, id_number, inserted, *after in written:
        if inserted:
            report.created += 1
            history.append((rid, report.file, json.dumps({"created": True})))
            continue
        report.updated += 1
        changes = _changes(before[id_number][1:], after)
        history.append((rid, report.file, json.dumps(changes, ensure_ascii=False, default=str)))
        report.updated_rows.append(
            {
                "row": rows_by_id[id_number],
                "id_number": mask_id_number(id_number),
                "changed": sorted(changes),
            }
        )
    report.unchanged = len(placed) - report.created - report.updated
    _copy(
        session,
        table="resident_history",
        columns=("resident_id", "source", "changes"),
        rows=history,
    )


def _changes(old: Sequence[Any], new: Sequence[Any]) -> dict[str, Any]:
    """Changed tracked fields as {field: [old, new]}; phones masked (history is read by many)."""
    out: dict[str, Any] = {}
    for name, a, b in zip(TRACKED, old, new, strict=True):
        if a != b:
            if name == "phone":
                a, b = (mask_phone(a) if a else None), (mask_phone(b) if b else None)
            out[name] = [a, b]
    return out or {"tags": "added"}


def _write_quarantines(session: Session, *, county: str) -> int:
    created = session.execute(
        text(
            """
            INSERT INTO quarantine (county_code, resident_id, kind, site_name, start_date, planned_end)
            SELECT :county, r.id, s.quarantine_kind, s.quarantine_site, s.quarantine_start, s.quarantine_end
            FROM resident_stage s JOIN resident r ON r.id_number = s.id_number
            WHERE s.quarantine_kind IS NOT NULL AND s.quarantine_start IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.resident_id = r.id AND q.start_date = s.quarantine_start)
            RETURNING id
            """
        ),
        {"county": county},
    ).all()
    return len(created)


def _rejected_file(
    rejections: list[RowRejection], *, headers: Sequence[str], fmt: str
) -> bytes | None:
    if not rejections:
        return None
    with tempfile.TemporaryDirectory(prefix="wangge-rejected-") as folder:
        path = Path(folder) / f"rejected.{fmt}"
        rejected_rows_file(rejections, headers=headers, path=path, fmt=fmt)  # type: ignore[arg-type]
        return path.read_bytes()


def _record_batch(
    session: Session,
    *,
    path: Path,
    report: ResidentImportReport,
    rejected_file: bytes | None,
    fmt: str,
) -> int:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return int(
        session.execute(
            text(
                "INSERT INTO import_batch (kind, file_name, file_sha256, mode, rows_total, rows_applied,"
                " rows_rejected, report, rejected_file, rejected_format)"
                " VALUES ('residents', :name, :sha, :mode, :total, :applied, :rejected, :report, :file, :fmt)"
                " RETURNING id"
            ),
            {
                "name": report.file,
                "sha": digest,
                "mode": report.mode,
                "total": report.rows,
                "applied": report.accepted,
                "rejected": len(report.rejected),
                "report": json.dumps(report.as_dict(), ensure_ascii=False, default=str),
                "file": rejected_file,
                "fmt": fmt if rejected_file else None,
            },
        ).scalar_one()
    )


def rejected_file(session: Session, *, batch_id: int) -> tuple[bytes, str, str]:
    """The rejected rows file of an import: (bytes, format, original file name)."""
    row = session.execute(
        text("SELECT rejected_file, rejected_format, file_name FROM import_batch WHERE id = :id"),
        {"id": batch_id},
    ).first()
    if row is None or row[0] is None:
        raise NotFound(f"import {batch_id} has no rejected rows file")
    return bytes(row[0]), row[1], row[2]
