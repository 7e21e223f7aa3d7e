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

Sized for a city's register (a million rows: ``bench/ingest.py``): rows are
checked column-wise (``geo.registry.check_columns``), an address written
exactly as the registry's standard address of one building is located without
the parser (``_StandardAddresses``), and every table is written with COPY and
set-based SQL. An import holds a SHARE ROW EXCLUSIVE lock on ``resident`` from
its first write to its commit: imports run one at a time and other writes to
residents wait (reads do not), so a resident found new stays new until it is
inserted.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from psycopg import Connection as PgConnection
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.assign import assign_households, building_microgrids
from db.geocoder import Location, address_index, locate, resolve_county
from db.households import address_household_key, building_household_key
from geo.address import AddressIndex, normalise
from geo.crs import WGS84, Crs, lonlat_to_wgs84
from geo.errors import InvalidInput, NotFound
from geo.registry import (
    AcceptedRows,
    RowRejection,
    check_columns,
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


class _Stopwatch:
    """Wall time per phase, added into ``out`` (when given) as the import goes."""

    def __init__(self, out: dict[str, float] | None) -> None:
        self.out = out
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        if self.out is not None:
            self.out[phase] = self.out.get(phase, 0.0) + now - self.last
        self.last = now


_GC_LOCK = threading.Lock()
_GC_PAUSES = [0, False]  # imports running, and whether the collector was on before the first


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the import: a million rows
    make tens of millions of objects, none of them in a cycle, and every full
    collection would walk them all again (seconds per import)."""
    with _GC_LOCK:
        if _GC_PAUSES[0] == 0:
            _GC_PAUSES[1] = gc.isenabled()
            gc.disable()
        _GC_PAUSES[0] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES[0] -= 1
            if _GC_PAUSES[0] == 0 and _GC_PAUSES[1]:
                gc.enable()


def import_residents(
    session: Session,
    *,
    path: Path,
    request: ResidentImportRequest,
    display_name: str | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[ResidentImportReport, bytes | None]:
    """Check, geocode and (by mode) write a registry file in the caller's
    transaction. Returns the report and the rejected rows file (or None).

    ``timings``, when given, receives the seconds spent in each phase (read,
    check, geocode, households, residents, history, quarantines, assign,
    batch): for the benchmark, not part of the report."""
    watch = _Stopwatch(timings)
    with _collector_paused():
        table = read_table(path, display_name=display_name)
        watch.lap("read")
        checked = check_columns(table, today=request.today)
        watch.lap("check")
        county = resolve_county(session, county_code=request.county_code)
        report = ResidentImportReport(
            file=table.name, encoding=table.encoding, mode=request.mode, county_code=county,
            rows=len(table.rows), accepted=len(checked.accepted),
            rejected=[{"row": r.row, "reasons": list(r.reasons)} for r in checked.rejected],
            unknown_headers=list(checked.mapping.unknown), notes=list(table.notes),
        )  # fmt: skip
        placement = _place(session, rows=checked.accepted, county=county, request=request)
        report.geocoding = placement.geocoding
        rejected_file = _rejected_file(
            checked.rejected, headers=table.headers, fmt=request.rejected_format
        )
        watch.lap("geocode")
        if request.mode == "validate":
            return report, rejected_file
        if request.mode == "all-or-nothing" and checked.rejected:
            raise ResidentImportRejected(report)
        _write(
            session, rows=checked.accepted, placement=placement, county=county, report=report,
            watch=watch,
        )  # fmt: skip
        report.applied = True
        report.batch_id = _record_batch(
            session,
            path=path,
            report=report,
            rejected_file=rejected_file,
            fmt=request.rejected_format,
        )
        watch.lap("batch")
    if rejected_file is not None:
        report.rejected_file = f"/api/imports/{report.batch_id}/rejected.{request.rejected_format}"
    return report, rejected_file


# -- locating -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geocoded:
    location: Location
    unit: str | None
    room: str | None


@dataclass(frozen=True)
class _Household:
    """What a household key stands for: its first row's address and location."""

    address: str | None
    location: Location
    unit: str | None
    room: str | None
    lon: float | None
    lat: float | None


@dataclass(frozen=True)
class _Placement:
    """Each accepted row's household key, the households by key (in the order
    of their first row), and the geocoding counts of the report."""

    keys: list[str]
    households: dict[str, _Household]
    geocoding: dict[str, int]


def _label(location: Location) -> str:
    """How a row was located, as the report counts it."""
    return location.level if location.status == "matched" else location.review_reason or "none"


def _place(
    session: Session, *, rows: AcceptedRows, county: str, request: ResidentImportRequest
) -> _Placement:
    """Each row's household key and location: its coordinates if the file has
    them (converted from the file's CRS), else its address geocoded (each
    distinct address once)."""
    addresses: list[str] = list(map(_EMPTY.get, rows["address"], rows["address"]))
    distinct = list(dict.fromkeys(addresses))
    geocoded = _geocode(session, texts=distinct, county=county, as_of=request.today)
    points = _coordinates(rows["lon"], rows["lat"], crs=request.crs)
    if points is not None:
        return _place_rows(rows=rows, addresses=addresses, geocoded=geocoded, points=points)
    # No coordinates: a row's household is its address's, worked out once per address.
    key_of: dict[str, str] = {}
    households: dict[str, _Household] = {}
    for address in distinct:  # in the order of their first row
        found = geocoded[address]
        key = _household_key(found, address=address, point=None)
        key_of[address] = key
        if key not in households:
            households[key] = _Household(
                address, found.location, found.unit, found.room, None, None
            )
    counts: Counter[str] = Counter()
    for address, count in Counter(addresses).items():
        counts[_label(geocoded[address].location)] += count
    return _Placement(
        keys=list(map(key_of.__getitem__, addresses)),
        households=households,
        geocoding=dict(counts),
    )


_EMPTY: dict[str | None, str] = {None: ""}


def _place_rows(
    *,
    rows: AcceptedRows,
    addresses: list[str],
    geocoded: dict[str, _Geocoded],
    points: list[tuple[float, float] | None],
) -> _Placement:
    """``_place`` row by row, for a file with coordinates (which win over the address)."""
    keys: list[str] = []
    households: dict[str, _Household] = {}
    counts: Counter[str] = Counter()
    for address, written, point in zip(addresses, rows["address"], points, strict=True):
        found = geocoded[address]
        location = found.location
        if point is not None:
            location = Location("point", "matched", 1.0, location.building_id, None, None, [])
        key = _household_key(found, address=address, point=point, building_id=location.building_id)
        lon, lat = point or (None, None)
        households.setdefault(key, _Household(written, location, found.unit, found.room, lon, lat))
        keys.append(key)
        counts[_label(location)] += 1
    return _Placement(keys=keys, households=households, geocoding=dict(counts))


def _household_key(
    found: _Geocoded,
    *,
    address: str,
    point: tuple[float, float] | None,
    building_id: int | None = None,
) -> str:
    building_id = found.location.building_id if building_id is None else building_id
    if building_id is not None:
        return building_household_key(building_id=building_id, unit=found.unit, room=found.room)
    return address_household_key(normalised_address=normalise(address) or f"{point}")


def _geocode(
    session: Session, *, texts: list[str], county: str, as_of: dt.date
) -> dict[str, _Geocoded]:
    """Each distinct address text, located: by its standard address when it is
    written exactly so (``_StandardAddresses``), else by the address index."""
    index = address_index(session, county_code=county)

    def full(text_: str) -> _Geocoded:
        match = index.match(text_)
        parsed = match.parsed
        return _Geocoded(
            location=locate(session, county_code=county, match=match, as_of=as_of),
            unit=parsed.unit if parsed else None,
            room=parsed.room if parsed else None,
        )

    standard = None
    if len(texts) >= _STANDARD_MIN_ADDRESSES:
        standard = _StandardAddresses.of(session, county=county, index=index)
    if standard is None:
        return {t: full(t) for t in texts}
    return standard.locate_all(texts, full=full)


# Where an address may be found without parsing: after a building's standard
# address, the unit and room as a registry writes them (2单元302室, 302室).
_UNIT_ROOM = re.compile(r"(?:([1-9][0-9]*)单元)?([1-9][0-9]*)室")
_DIGITS = frozenset("0123456789")
# Below this many distinct addresses, matching them all costs less than
# loading the standard addresses (about 0.2 s per 100,000 buildings).
_STANDARD_MIN_ADDRESSES = 500
# Addresses located both ways before the shortcut is trusted for an import.
_STANDARD_SAMPLE = 64


class _StandardAddresses:
    """The county's standard addresses (``building.address``) that name one
    located building, for the shortcut of ``locate_all``.

    Cached per county until the buildings change (as ``address_index`` is)."""

    _cache: ClassVar[dict[str, tuple[tuple[Any, ...], _StandardAddresses]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, buildings: dict[str, int], index: AddressIndex) -> None:
        self.buildings = buildings
        self.index = index

    @classmethod
    def of(cls, session: Session, *, county: str, index: AddressIndex) -> _StandardAddresses:
        stamp = tuple(
            session.execute(
                text(
                    "SELECT count(*), max(id), max(updated_at) FROM building WHERE county_code = :c"
                ),
                {"c": county},
            ).one()
        )
        with cls._lock:
            cached = cls._cache.get(county)
            if cached is not None and cached[0] == stamp and cached[1].index is index:
                return cached[1]
        rows = session.execute(
            text(
                "SELECT address, min(id) FROM building"
                " WHERE county_code = :c AND geom IS NOT NULL AND address IS NOT NULL"
                " GROUP BY address HAVING count(*) = 1"
            ),
            {"c": county},
        )
        standard = cls({str(address): int(building_id) for address, building_id in rows}, index)
        with cls._lock:
            cls._cache[county] = (stamp, standard)
        return standard

    def shortcut(self, text_: str) -> _Geocoded | None:
        """The building, unit and room of an address written as a standard
        address plus a plain unit/room, without parsing; ``None`` when the text
        is not so written or could be read two ways."""
        building_id = self.buildings.get(text_)
        unit = room = None
        match = _UNIT_ROOM.search(text_)
        if match is not None and match.end() == len(text_):
            base = text_[: match.start()]
            if not base or base[-1] in _DIGITS:
                return None  # the unit or room may have taken digits of the address
            suffixed = self.buildings.get(base)
            if suffixed is None:
                pass
            elif building_id is not None:
                return None  # a standard address itself, and one plus a room
            else:
                building_id = suffixed
                unit = f"{match.group(1)}单元" if match.group(1) else None
                room = f"{match.group(2)}室"
        if building_id is None:
            return None
        candidates = [{"building_id": building_id, "score": 1.0}]
        location = Location("building", "matched", 1.0, building_id, None, None, candidates)
        return _Geocoded(location=location, unit=unit, room=room)

    def locate_all(
        self, texts: list[str], *, full: Callable[[str], _Geocoded]
    ) -> dict[str, _Geocoded]:
        """Every text located: by the shortcut where it applies, else by ``full``.

        A sample of the shortcut's answers is first checked against ``full``:
        for a registry whose standard addresses the index reads otherwise (it
        would not give them back with certainty), the shortcut is not taken."""
        short = {t: self.shortcut(t) for t in texts}
        found = [t for t in texts if short[t] is not None]
        step = max(1, len(found) // _STANDARD_SAMPLE)
        checked = {t: full(t) for t in found[::step][:_STANDARD_SAMPLE]}
        trusted = all(checked[t] == short[t] for t in checked)
        out: dict[str, _Geocoded] = {}
        for t in texts:
            quick = short[t]
            out[t] = quick if trusted and quick is not None else checked.get(t) or full(t)
        return out


def _coordinates(
    lons: list[float | None], lats: list[float | None], *, crs: Crs
) -> list[tuple[float, float] | None] | None:
    """Each row's point in WGS84, or ``None`` when no row has coordinates."""
    has = [lon is not None and lat is not None for lon, lat in zip(lons, lats, strict=True)]
    if not any(has):
        return None
    lon = np.array([x if h else np.nan for x, h in zip(lons, has, strict=True)], dtype=float)
    lat = np.array([y if h else np.nan for y, h in zip(lats, has, strict=True)], dtype=float)
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


_NULL = "\\N"
_NULLS: dict[Any, str] = {None: _NULL}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_BATCH = 20_000  # rows per write: the server inserts one batch while the next is built


def _texts(values: Sequence[str | None]) -> list[str]:
    """A text column in COPY's text format: ``\\N`` for null, specials escaped."""
    present = "\x00".join(filter(None, values))
    if any(ch in present for ch in "\\\t\n\r"):
        return [_NULL if v is None else v.translate(_ESCAPES) for v in values]
    return list(map(_NULLS.get, values, values))  # type: ignore[arg-type]


def _plain(values: Sequence[Any], convert: Callable[[Any], str] = str) -> list[str]:
    """Numbers or dates (``None`` for null) in COPY's text format."""
    return [_NULL if v is None else convert(v) for v in values]


def _copy(session: Session, *, table: str, columns: dict[str, list[str]]) -> None:
    """COPY the columns (each already in COPY's text format) into ``table``."""
    names = list(columns)
    data = list(columns.values())
    count = len(data[0]) if data else 0
    with (
        _pg(session).cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for start in range(0, count, _COPY_BATCH):
            part = zip(*(column[start : start + _COPY_BATCH] for column in data), strict=True)
            copy.write("\n".join(map("\t".join, part)) + "\n")


def _write(
    session: Session,
    *,
    rows: AcceptedRows,
    placement: _Placement,
    county: str,
    report: ResidentImportReport,
    watch: _Stopwatch,
) -> None:
    session.flush()
    # From here to the commit no other transaction writes residents (see the module docstring).
    session.execute(text("LOCK TABLE resident IN SHARE ROW EXCLUSIVE MODE"))
    _W[:] = [watch]
    ids, to_assign = _write_households(session, placement=placement, county=county, report=report)
    watch.lap("households")
    household_ids = list(map(ids.__getitem__, placement.keys))
    _write_residents(
        session, rows=rows, household_ids=household_ids, county=county, report=report, watch=watch
    )
    report.quarantines_created = _write_quarantines(session, county=county)
    watch.lap("quarantines")
    if to_assign:
        assign_households(session.connection(), county_code=county, household_ids=to_assign)
    watch.lap("assign")


# A large import writes each new household with its micro-grid, that of its
# building (``db.assign.building_microgrids``, the same rule), rather than
# updating every household it has just written; from this many households.
_MICROGRIDS_WITH_HOUSEHOLDS = 5_000


_W: list[_Stopwatch] = []

def _write_households(
    session: Session, *, placement: _Placement, county: str, report: ResidentImportReport
) -> tuple[dict[str, int], list[int]]:
    """Create the households not yet known. Returns the id of every household
    key of the file, and the new households still to assign to a micro-grid."""
    session.execute(
        text(
            "CREATE TEMP TABLE household_stage (address_key text, address text, building_id bigint, unit text,"
            " room text, lon float8, lat float8, level text, status text, score float8, area_code text,"
            " reason text, candidates jsonb, microgrid_code text) ON COMMIT DROP"
        )
    )
    households = placement.households
    microgrids: dict[int, str] = {}
    if len(households) >= _MICROGRIDS_WITH_HOUSEHOLDS:
        microgrids = building_microgrids(session.connection(), county_code=county)
    _W[0].lap('h.microgrids')
    cols = _household_columns(households, microgrids)
    _W[0].lap("h.format")
    _copy(session, table="household_stage", columns=cols)
    _W[0].lap("h.copy")
    created = session.execute(
        text(
            """
            INSERT INTO household (county_code, building_id, unit, room, address, geom, geocode_level,
                                   geocode_status, geocode_score, area_code, address_key, microgrid_code)
            SELECT :county, s.building_id, s.unit, s.room, s.address,
                   CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)
                        ELSE (SELECT b.geom FROM building b WHERE b.id = s.building_id) END,
                   s.level, s.status, s.score, s.area_code, s.address_key, s.microgrid_code
            FROM household_stage s
            WHERE NOT EXISTS (SELECT 1 FROM household h
                              WHERE h.county_code = :county_code AND h.address_key = s.address_key)
            RETURNING id, address_key, (microgrid_code IS NULL) AS unassigned
            """
        ),
        {"county": county, "county_code": county},
    ).all()
    report.households_created = len(created)
    _W[0].lap('h.insert')
    ids = {key: int(hid) for hid, key, _ in created}
    if not microgrids:
        to_assign = [int(hid) for hid, _, _ in created]
    else:  # those at a building have its micro-grid (or none, as it has)
        to_assign = [
            int(hid)
            for hid, key, unassigned in created
            if unassigned and _own_point(households[key])
        ]
    known = [key for key in households if key not in ids]
    if known:
        ids.update(
            (key, int(hid))
            for key, hid in session.execute(
                text("SELECT address_key, id FROM household WHERE county_code = :county"
                     " AND address_key = ANY(:keys)"),
                {"county": county, "keys": known},
            )
        )  # fmt: skip
    _W[0].lap('h.known')
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
    return ids, to_assign


def _own_point(household: _Household) -> bool:
    """Whether the household's point is not its building's (coordinates, or no building)."""
    return household.lon is not None or household.location.building_id is None


def _household_columns(
    households: dict[str, _Household], microgrids: dict[int, str]
) -> dict[str, list[str]]:
    """The household stage rows, one per key, as COPY columns."""
    values = list(households.values())
    locations = [h.location for h in values]
    at_building = [
        None if h.lon is not None or h.location.building_id is None
        else microgrids.get(h.location.building_id)
        for h in values
    ]  # fmt: skip
    return {
        "address_key": _texts(list(households)),
        "address": _texts([h.address for h in values]),
        "building_id": _plain([loc.building_id for loc in locations]),
        "unit": _texts([h.unit for h in values]),
        "room": _texts([h.room for h in values]),
        "lon": _plain([h.lon for h in values], repr),
        "lat": _plain([h.lat for h in values], repr),
        "level": _texts([loc.level for loc in locations]),
        "status": _texts([loc.status for loc in locations]),
        "score": _plain([loc.score for loc in locations], repr),
        "area_code": _texts([loc.area_code for loc in locations]),
        "reason": _texts([loc.review_reason for loc in locations]),
        # Only addresses sent to review keep their candidates (the review queue's).
        "candidates": _texts(
            [json.dumps(loc.candidates) if loc.status == "review" else None for loc in locations]
        ),
        "microgrid_code": _texts(at_building),
    }


def _write_residents(
    session: Session,
    *,
    rows: AcceptedRows,
    household_ids: list[int],
    county: str,
    report: ResidentImportReport,
    watch: _Stopwatch,
) -> None:
    session.execute(
        text(
            "CREATE TEMP TABLE resident_stage (id_number text, name text, phone text, sex text,"
            " birth_date date, category text, hukou text, health_code text, tags text[], household_id bigint,"
            " quarantine_kind text, quarantine_start date, quarantine_end date, quarantine_site text)"
            " ON COMMIT DROP"
        )
    )
    _W[0].lap("r.create")
    tag_texts = {t: "{" + ",".join(t) + "}" for t in set(rows["tags"])}
    _copy(
        session,
        table="resident_stage",
        columns={
            "id_number": _texts(rows["id_number"]),
            "name": _texts(rows["name"]),
            "phone": _texts(rows["phone"]),
            "sex": _texts(rows["sex"]),
            "birth_date": list(map(dt.date.isoformat, rows["birth_date"])),
            "category": _texts(rows["category"]),
            "hukou": _texts(rows["hukou"]),
            "health_code": _texts(rows["health_code"]),
            "tags": list(map(tag_texts.__getitem__, rows["tags"])),
            "household_id": list(map(str, household_ids)),
            "quarantine_kind": _texts(rows["quarantine_kind"]),
            "quarantine_start": _plain(rows["quarantine_start"], dt.date.isoformat),
            "quarantine_end": _plain(rows["quarantine_planned_end"], dt.date.isoformat),
            "quarantine_site": _texts(rows["quarantine_site"]),
        },
    )
    _W[0].lap("r.copy")
    session.execute(text("ANALYZE resident_stage"))
    _W[0].lap("r.analyze")
    before = {
        row[0]: row[1:]
        for row in session.execute(
            text(f"SELECT r.id_number, r.id, {', '.join('r.' + c for c in TRACKED)} FROM resident r"
                 " JOIN resident_stage s ON s.id_number = r.id_number")
        )
    }  # fmt: skip
    _W[0].lap("r.before")
    params = {"county": county, "source": report.file}
    # New residents: inserted, each with its "created" history row, in one statement.
    new_only = " WHERE NOT EXISTS (SELECT 1 FROM resident r WHERE r.id_number = s.id_number)"
    report.created = (
        session.connection()
        .execute(
            text(
                f"""
            WITH created AS (
                INSERT INTO resident (county_code, household_id, name, id_number, phone, sex, birth_date,
                                      category, tags, hukou, health_code, source)
                SELECT :county, s.household_id, s.name, s.id_number, s.phone, s.sex, s.birth_date,
                       s.category, s.tags, s.hukou, s.health_code, :source
                FROM resident_stage s{new_only if before else ""}
                RETURNING id
            )
            INSERT INTO resident_history (resident_id, source, changes)
            SELECT id, :source, CAST(:created AS jsonb) FROM created
            """
            ),
            params | {"created": json.dumps({"created": True})},
        )
        .rowcount
    )
    watch.lap("residents")
    if before:
        _update_residents(session, before=before, rows=rows, params=params, report=report)
    report.unchanged = len(rows) - report.created - report.updated
    watch.lap("history")


def _update_residents(
    session: Session,
    *,
    before: dict[str, Any],
    rows: AcceptedRows,
    params: dict[str, Any],
    report: ResidentImportReport,
) -> None:
    """Update the residents already known, keeping each change in their history."""
    written = session.execute(
        text(
            """
            INSERT INTO resident AS r (county_code, household_id, name, id_number, phone, sex, birth_date,
                                       category, tags, hukou, health_code, source)
            SELECT :county, s.household_id, s.name, s.id_number, s.phone, s.sex, s.birth_date,
                   s.category, s.tags, s.hukou, s.health_code, :source
            FROM resident_stage s WHERE EXISTS (SELECT 1 FROM resident e WHERE e.id_number = s.id_number)
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
        params,
    ).all()
    rows_by_id = dict(zip(rows["id_number"], rows["row"], strict=True))
    history = []
    for rid, id_number, inserted, *after in written:
        if inserted:  # not reached while the lock is held; kept for safety
            report.created += 1
            history.append((rid, json.dumps({"created": True})))
            continue
        report.updated += 1
        changes = _changes(before[id_number][1:], after)
        history.append((rid, json.dumps(changes, ensure_ascii=False, default=str)))
        report.updated_rows.append(
            {
                "row": rows_by_id[id_number],
                "id_number": mask_id_number(id_number),
                "changed": sorted(changes),
            }
        )
    _copy(
        session,
        table="resident_history",
        columns={
            "resident_id": [str(rid) for rid, _ in history],
            "source": _texts([params["source"]] * len(history)),
            "changes": _texts([changes for _, changes in history]),
        },
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
