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
residents wait (reads do not). So a resident found new stays new until it is
inserted, and so does a household (only imports and the demo loader, which
writes residents too, create households): new rows are plain inserts, not
upserts, which costs the server a third less.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hashlib
import json
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

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

    ``timings``, when given, receives the wall seconds of each phase, for the
    benchmark: read, check, geocode, households_stage, households (insert,
    review queue), residents_stage, residents (the new ones with their
    history rows), updates (the known ones), quarantines, assign, batch."""
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
class _Geocoded(NamedTuple):
    location: Location
    unit: str | None
    room: str | None


class _Household(NamedTuple):
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
        # "b<building>|<unit>|<room>": the unit/room part is worked out once per pair.
        return f"b{building_id}|{_unit_room_key(found.unit, found.room)}"
    return address_household_key(normalised_address=normalise(address) or f"{point}")


@functools.lru_cache(maxsize=65_536)
def _unit_room_key(unit: str | None, room: str | None) -> str:
    """The part of ``building_household_key`` after the building."""
    key = building_household_key(building_id=0, unit=unit, room=room)
    prefix = "b0|"
    assert key.startswith(prefix), key
    return key[len(prefix) :]


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

    if len(texts) < _STANDARD_MIN_ADDRESSES:
        return {t: full(t) for t in texts}
    standard = _StandardAddresses.of(session, county=county, index=index)
    return standard.locate_all(texts, full=full)


# After a standard address, the unit and room as a registry writes them (2单元302室, 302室).
_UNIT_ROOM = re.compile(r"(?:([1-9][0-9]*)单元)?([1-9][0-9]*)室$")
_DIGITS = frozenset("0123456789")
# Below this many distinct addresses, matching them all costs less than
# loading the standard addresses (about 0.2 s per 100,000 buildings).
_STANDARD_MIN_ADDRESSES = 500
# Answers of each shortcut checked against the index before it is trusted for an import.
_STANDARD_SAMPLE = 64


class _StandardAddresses:
    """The county's standard addresses (``building.address`` of its located
    buildings), for the shortcuts of ``locate_all``.

    Cached per county until the buildings change (as ``address_index`` is)."""

    _cache: ClassVar[dict[str, tuple[tuple[Any, ...], _StandardAddresses]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, unique: dict[str, int], shared: frozenset[str], index: AddressIndex) -> None:
        self.unique = unique  # address → its one building
        self.shared = shared  # addresses of two or more buildings
        self.index = index
        self._locations: dict[int, Location] = {}

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
        unique: dict[str, int] = {}
        shared: set[str] = set()
        for address, building_id, count in session.execute(
            text(
                "SELECT address, min(id), count(*) FROM building"
                " WHERE county_code = :c AND geom IS NOT NULL AND address IS NOT NULL"
                " GROUP BY address"
            ),
            {"c": county},
        ):
            if count == 1:
                unique[str(address)] = int(building_id)
            else:
                shared.add(str(address))
        standard = cls(unique, frozenset(shared), index)
        with cls._lock:
            cls._cache[county] = (stamp, standard)
        return standard

    def _at_building(self, building_id: int, unit: str | None, room: str | None) -> _Geocoded:
        location = self._locations.get(building_id)
        if location is None:
            candidates = [{"building_id": building_id, "score": 1.0}]
            location = Location("building", "matched", 1.0, building_id, None, None, candidates)
            self._locations[building_id] = location
        return _Geocoded(location, unit, room)

    def locate_all(
        self, texts: list[str], *, full: Callable[[str], _Geocoded]
    ) -> dict[str, _Geocoded]:
        """Every text located, by the index (``full``) or by one of two shortcuts:

        * a text that is the standard address of one building, alone or
          followed by a unit and room (``2单元302室``, ``302室``), is that
          building, at that unit and room, matched with certainty;
        * texts that are one shared standard address (of several buildings)
          followed by a unit and room are located as the first of them is.

        A text that could be read two ways (a standard address itself, and
        another one with a room) goes to the index. Each shortcut is first
        checked on a sample against the index and not taken for this import
        when any answer differs (a registry whose addresses the index reads
        otherwise)."""
        quick: dict[str, _Geocoded] = {}
        by_base: dict[str, list[str]] = {}
        for t in texts:
            bare = self.unique.get(t)
            found = _UNIT_ROOM.search(t) if t.endswith("室") else None
            if found is not None:
                base = t[: found.start()]
                if not base or base[-1] in _DIGITS or bare is not None or t in self.shared:
                    continue  # the room may have taken digits of the address, or two readings
                unit = f"{found.group(1)}单元" if found.group(1) else None
                room = f"{found.group(2)}室"
                building_id = self.unique.get(base)
                if building_id is not None:
                    quick[t] = self._at_building(building_id, unit, room)
                elif base in self.shared:
                    by_base.setdefault(base, []).append(t)
            elif bare is not None:
                quick[t] = self._at_building(bare, None, None)
        out: dict[str, _Geocoded] = {}
        if not self._agrees(quick, full=full, out=out):
            quick = {}
        # Shared addresses: the index answers for the first text of each; the
        # others with the same address differ only in their unit and room.
        derived: dict[str, _Geocoded] = {}
        for group in by_base.values():
            first = out[group[0]] = full(group[0])
            suffix = _UNIT_ROOM.search(group[0])
            assert suffix is not None
            if (first.unit, first.room) != _unit_room(suffix):
                continue
            for t in group[1:]:
                found = _UNIT_ROOM.search(t)
                assert found is not None
                derived[t] = _Geocoded(first.location, *_unit_room(found))
        if not self._agrees(derived, full=full, out=out):
            derived = {}
        for t in texts:
            if t not in out:
                out[t] = quick.get(t) or derived.get(t) or full(t)
        return out

    @staticmethod
    def _agrees(
        answers: dict[str, _Geocoded],
        *,
        full: Callable[[str], _Geocoded],
        out: dict[str, _Geocoded],
    ) -> bool:
        """Whether a sample of ``answers`` is what the index answers (kept in ``out``)."""
        sample = list(answers)[:: max(1, len(answers) // _STANDARD_SAMPLE)][:_STANDARD_SAMPLE]
        for t in sample:
            out[t] = full(t)
        return all(out[t] == answers[t] for t in sample)


def _unit_room(found: re.Match[str]) -> tuple[str | None, str]:
    """The unit and room a ``_UNIT_ROOM`` match names, spelled as the index spells them."""
    return (f"{found.group(1)}单元" if found.group(1) else None), f"{found.group(2)}室"


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


def _lines(columns: Sequence[list[str]]) -> list[str]:
    """Rows of COPY's text format (no line end) from columns already in it."""
    return list(map("\t".join, zip(*columns, strict=True)))


def _copy(session: Session, *, table: str, columns: dict[str, list[str]]) -> None:
    """COPY the columns (each already in COPY's text format) into ``table``."""
    _copy_lines(session, table=table, names=list(columns), lines=_lines(list(columns.values())))


def _copy_lines(session: Session, *, table: str, names: list[str], lines: list[str]) -> None:
    """COPY rows already in COPY's text format into ``table``'s columns ``names``."""
    with (
        _pg(session).cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy,
    ):
        for start in range(0, len(lines), _COPY_BATCH):
            copy.write("\n".join(lines[start : start + _COPY_BATCH]) + "\n")


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
    # No JIT for these statements: compiling costs more than it saves on inserts.
    jit = session.execute(text("SELECT current_setting('jit'), set_config('jit', 'off', true)"))
    previous_jit = str(jit.one()[0])
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Rows are put in COPY's format in a thread, while this one waits for
        # the server (known households, micro-grids, the households' insert).
        household_columns = pool.submit(_household_columns, placement.households)
        resident_lines = pool.submit(_resident_lines, rows)
        ids, to_assign = _write_households(
            session, placement=placement, columns=household_columns, county=county,
            report=report, watch=watch,
        )  # fmt: skip
        watch.lap("households")
        before = _known(
            session,
            sql=f"SELECT id_number, id, {', '.join(TRACKED)} FROM resident WHERE id_number = ANY(:keys)",
            # ID numbers are unique in every county, not in each.
            exists_sql="SELECT EXISTS (SELECT 1 FROM resident)",
            county=county,
            keys=rows["id_number"],
        )
        lines = resident_lines.result()
    known = map(_FLAGS.__getitem__, map(before.__contains__, rows["id_number"]))
    household_ids = map(str, map(ids.__getitem__, placement.keys))
    lines = list(map("{}\t{}\t{}".format, lines, household_ids, known))
    _write_residents(
        session, rows=rows, lines=lines, before=before, county=county, report=report, watch=watch
    )
    report.quarantines_created = _write_quarantines(session, rows=rows, county=county)
    watch.lap("quarantines")
    if to_assign:
        assign_households(session.connection(), county_code=county, household_ids=to_assign)
    watch.lap("assign")
    session.execute(text("SELECT set_config('jit', :jit, true)"), {"jit": previous_jit})


_FLAGS = {True: "t", False: "f"}


# A large import writes each new household with its micro-grid, that of its
# building (``db.assign.building_microgrids``, the same rule), rather than
# updating every household it has just written; from this many households.
_MICROGRIDS_WITH_HOUSEHOLDS = 5_000


def _write_households(
    session: Session,
    *,
    placement: _Placement,
    columns: Future[dict[str, list[str]]],
    county: str,
    report: ResidentImportReport,
    watch: _Stopwatch,
) -> tuple[dict[str, int], list[int]]:
    """Create the households not yet known. Returns the id of every household
    key of the file, and the new households still to assign to a micro-grid."""
    households = placement.households
    known = _known(
        session,
        sql="SELECT address_key, id FROM household WHERE county_code = :county AND address_key = ANY(:keys)",
        exists_sql="SELECT EXISTS (SELECT 1 FROM household WHERE county_code = :county)",
        county=county,
        keys=list(households),
    )
    ids = {key: int(found[0]) for key, found in known.items()}
    session.execute(
        text(
            "CREATE TEMP TABLE household_stage (address_key text, address text, building_id bigint, unit text,"
            " room text, lon float8, lat float8, level text, status text, score float8, area_code text,"
            " microgrid_code text, known boolean) ON COMMIT DROP"
        )
    )
    microgrids: dict[int, str] = {}
    if len(households) - len(ids) >= _MICROGRIDS_WITH_HOUSEHOLDS:
        microgrids = building_microgrids(session.connection(), county_code=county)
    stage = columns.result()
    stage["microgrid_code"] = _texts(
        [
            None if h.lon is not None or h.location.building_id is None
            else microgrids.get(h.location.building_id)
            for h in households.values()
        ]
    )  # fmt: skip
    stage["known"] = ["t" if key in ids else "f" for key in households]
    _copy(session, table="household_stage", columns=stage)
    watch.lap("households_stage")
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
            WHERE NOT s.known
            RETURNING id, address_key, (microgrid_code IS NULL) AS unassigned
            """
        ),
        {"county": county},
    ).all()
    report.households_created = len(created)
    ids.update((str(key), int(hid)) for hid, key, _ in created)
    if not microgrids:
        to_assign = [int(hid) for hid, _, _ in created]
    else:  # those at a building have its micro-grid (or none, as it has)
        to_assign = [
            int(hid)
            for hid, key, unassigned in created
            if unassigned and _own_point(households[key])
        ]
    # Addresses to review, by household id; each household looked up by its
    # key (the statistics of a table just written are no guide for a join).
    review = [(key, h) for key, h in households.items() if h.location.status == "review"]
    queued = session.execute(
        text(
            """
            INSERT INTO geocode_review (county_code, household_id, address, reason, candidates)
            SELECT :county, s.id, coalesce(s.address, ''), s.reason, CAST(s.candidates AS jsonb)
            FROM unnest(CAST(:ids AS bigint[]), CAST(:addresses AS text[]), CAST(:reasons AS text[]),
                        CAST(:candidates AS text[])) AS s(id, address, reason, candidates)
            WHERE (SELECT h.geocode_status FROM household h WHERE h.id = s.id) = 'review'
            ON CONFLICT (household_id) WHERE status = 'open' DO NOTHING
            RETURNING id
            """
        ),
        {
            "county": county,
            "ids": [ids[key] for key, _ in review],
            "addresses": [h.address for _, h in review],
            "reasons": [h.location.review_reason for _, h in review],
            "candidates": [json.dumps(h.location.candidates) for _, h in review],
        },
    ).all()
    report.review_queued = len(queued)
    return ids, to_assign


def _known(
    session: Session, *, sql: str, exists_sql: str, county: str, keys: list[str]
) -> dict[str, tuple[Any, ...]]:
    """The rows ``sql`` finds for ``keys`` (first column → the others), found
    before anything is written: inserts then leave them out without looking in
    the table they write. Nothing is looked for when ``exists_sql`` says the
    table holds nothing to find."""
    if not keys or not session.execute(text(exists_sql), {"county": county}).scalar_one():
        return {}
    found = session.execute(text(sql), {"county": county, "keys": keys})
    return {str(row[0]): tuple(row[1:]) for row in found}


def _own_point(household: _Household) -> bool:
    """Whether the household's point is not its building's (coordinates, or no building)."""
    return household.lon is not None or household.location.building_id is None


def _household_columns(households: dict[str, _Household]) -> dict[str, list[str]]:
    """The household stage rows, one per key, as COPY columns (but for the
    micro-grid and whether it is known)."""
    values = list(households.values())
    locations = [h.location for h in values]
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
    }


# The resident stage's columns; household_id and known last (they are found last).
_RESIDENT_STAGE = (
    "id_number", "name", "phone", "sex", "birth_date", "category", "hukou", "health_code", "tags",
    "household_id", "known",
)  # fmt: skip


def _resident_lines(rows: AcceptedRows) -> list[str]:
    """The resident stage's rows in COPY's text format, but for household_id."""
    tag_texts = {t: "{" + ",".join(t) + "}" for t in set(rows["tags"])}
    return _lines(
        [
            _texts(rows["id_number"]),
            _texts(rows["name"]),
            _texts(rows["phone"]),
            _texts(rows["sex"]),
            list(map(dt.date.isoformat, rows["birth_date"])),
            _texts(rows["category"]),
            _texts(rows["hukou"]),
            _texts(rows["health_code"]),
            list(map(tag_texts.__getitem__, rows["tags"])),
        ]
    )


def _write_residents(
    session: Session,
    *,
    rows: AcceptedRows,
    lines: list[str],
    before: dict[str, tuple[Any, ...]],
    county: str,
    report: ResidentImportReport,
    watch: _Stopwatch,
) -> None:
    """Stage the residents (``lines``), insert the new ones with their history
    and update those known ``before`` (id number → id and tracked fields)."""
    session.execute(
        text(
            "CREATE TEMP TABLE resident_stage (id_number text, name text, phone text, sex text,"
            " birth_date date, category text, hukou text, health_code text, tags text[],"
            " household_id bigint, known boolean) ON COMMIT DROP"
        )
    )
    _copy_lines(session, table="resident_stage", names=list(_RESIDENT_STAGE), lines=lines)
    watch.lap("residents_stage")
    params = {"county": county, "source": report.file}
    # New residents: inserted, each with its "created" history row, in one statement.
    inserted = session.connection().execute(
        text(
            """
            WITH created AS (
                INSERT INTO resident (county_code, household_id, name, id_number, phone, sex, birth_date,
                                      category, tags, hukou, health_code, source)
                SELECT :county, s.household_id, s.name, s.id_number, s.phone, s.sex, s.birth_date,
                       s.category, s.tags, s.hukou, s.health_code, :source
                FROM resident_stage s WHERE NOT s.known
                RETURNING id
            )
            INSERT INTO resident_history (resident_id, source, changes)
            SELECT id, :source, CAST(:created AS jsonb) FROM created
            """
        ),
        params | {"created": json.dumps({"created": True})},
    )
    report.created = inserted.rowcount
    watch.lap("residents")
    if before:
        _update_residents(session, before=before, rows=rows, params=params, report=report)
    report.unchanged = len(rows) - report.created - report.updated
    watch.lap("updates")


def _update_residents(
    session: Session,
    *,
    before: dict[str, tuple[Any, ...]],
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
            FROM resident_stage s WHERE s.known
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


def _write_quarantines(session: Session, *, rows: AcceptedRows, county: str) -> int:
    """Create the quarantines of the file not yet recorded (same resident, same start)."""
    with_quarantine = [i for i, kind in enumerate(rows["quarantine_kind"]) if kind is not None]
    if not with_quarantine:
        return 0

    def column(name: str) -> list[Any]:
        return [rows[name][i] for i in with_quarantine]

    session.execute(
        text(
            "CREATE TEMP TABLE quarantine_stage (id_number text, quarantine_kind text,"
            " quarantine_start date, quarantine_end date, quarantine_site text) ON COMMIT DROP"
        )
    )
    _copy(
        session,
        table="quarantine_stage",
        columns={
            "id_number": _texts(column("id_number")),
            "quarantine_kind": _texts(column("quarantine_kind")),
            "quarantine_start": _plain(column("quarantine_start"), dt.date.isoformat),
            "quarantine_end": _plain(column("quarantine_planned_end"), dt.date.isoformat),
            "quarantine_site": _texts(column("quarantine_site")),
        },
    )
    created = session.execute(
        text(
            """
            INSERT INTO quarantine (county_code, resident_id, kind, site_name, start_date, planned_end)
            SELECT :county, r.id, s.quarantine_kind, s.quarantine_site, s.quarantine_start, s.quarantine_end
            FROM quarantine_stage s JOIN resident r ON r.id_number = s.id_number
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
