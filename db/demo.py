"""Load the synthetic demo county into PostGIS.

The generators (``geo.demo``, ``geo.demo_state``, ``geo.demo_activity``) are
pure; this module owns the writes: it replaces any earlier data of the county
in one transaction, streams rows with COPY, and assigns every household to its
micro-grid by point-in-polygon in PostGIS (the same rule as for imported
households: ties go to the lowest code). Visits' ``distance_m`` comes with the
rows (computed by the generator on the WGS84 spheroid with ``pyproj.Geod``);
passages' ``home_microgrid_code`` is the micro-grid PostGIS gave the
resident's household. With ``today`` every date of the state and the activity
moves so that the demo's reference date is ``today``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from psycopg import Connection as PgConnection
from sqlalchemy import Connection, Engine, text

from db.assign import assignment_counts, building_microgrids
from db.households import building_household_key
from geo.address_noise import noisy_addresses
from geo.demo import DemoCounty, generate_demo
from geo.demo_activity import DemoActivity, generate_activity, shift_state
from geo.demo_state import DemoState, generate_state
from geo.errors import NotFound
from geo.gazetteer import county_gazetteer
from geo.io import read_feature_file
from geo.partition import as_multipolygon
from geo.registry_export import household_addresses, hukou_places, write_registry_file

BOUNDARIES_DIR = Path(__file__).resolve().parent.parent / "data" / "boundaries"
# The demo's boundaries are in force from the start of the 2020 campaign, so
# "as of" questions about that spring have an answer.
DEMO_VALID_FROM = dt.date(2020, 1, 1)
DEMO_SOURCE = "wangge demo (synthetic)"


def shipped_outline_path(county_code: str) -> Path:
    """The shipped WGS84 outline ``*_<code>_wgs84.geojson``; ``NotFound`` lists what is shipped."""
    candidates = sorted(BOUNDARIES_DIR.glob(f"*_{county_code}_wgs84.geojson"))
    if candidates:
        return candidates[0]
    shipped = sorted(p.name for p in BOUNDARIES_DIR.glob("*_wgs84.geojson"))
    raise NotFound(
        f"no shipped outline for county {county_code}; shipped: {', '.join(shipped) or 'none'}"
    )


def build_demo(*, county_code: str, households: int, seed: int) -> DemoCounty:
    """Generate (without writing) the demo county on its shipped outline."""
    table = read_feature_file(shipped_outline_path(county_code))
    geometry = table.features[0].geometry
    if geometry is None:
        raise NotFound(f"the shipped outline of county {county_code} has no geometry")
    outline = as_multipolygon(geometry)
    return generate_demo(
        county_outline_4326=outline,
        gazetteer=county_gazetteer(county_code),
        households=households,
        seed=seed,
    )


def write_demo_register(
    folder: Path, *, county_code: str, households: int, seed: int
) -> list[Path]:
    """The demo's resident register as a grid office sends it — GBK CSV and
    XLSX, addresses typed the ways people type them — for ``wangge import residents``."""
    demo = build_demo(county_code=county_code, households=households, seed=seed)
    h = demo.households
    addresses = noisy_addresses(
        np.random.default_rng(seed), demo.buildings, h.building, units=h.unit, rooms=h.room
    )
    state = generate_state(demo)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{county_code}_register_gbk.csv", folder / f"{county_code}_register.xlsx"]
    for path, fmt in zip(paths, ("csv-gbk", "xlsx"), strict=True):
        write_registry_file(demo, path, fmt=fmt, addresses=addresses, state=state)  # type: ignore[arg-type]
    return paths


def load_demo(
    engine: Engine,
    *,
    county_code: str,
    households: int,
    seed: int,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Generate the county and replace whatever the database held for it.

    ``today``: move every date and time of the state and the activity
    (quarantines, temperature checks, the screening round and its visits,
    cases and their histories, checkpoints, passages) by whole days so that
    the demo's reference date (2020-02-06) falls on ``today``; the areas are
    then in force from ``DEMO_VALID_FROM`` or as many days earlier. Default:
    no shift. Registry data (birth dates, ID numbers) never move.

    Returns the generators' summaries, ``reference_date`` (ISO date the demo
    represents), the load timings (seconds) and the number of households
    assigned and left unassigned by PostGIS.
    """
    started = time.perf_counter()
    demo = build_demo(county_code=county_code, households=households, seed=seed)
    state = generate_state(demo)
    activity = generate_activity(demo, state)
    shift = 0 if today is None else (today - state.reference_date).days
    state = shift_state(state, shift)
    activity = activity.shifted(shift)
    valid_from = DEMO_VALID_FROM + dt.timedelta(days=min(shift, 0))
    generated = time.perf_counter()
    with engine.begin() as connection:
        _delete_county(connection, county_code=county_code)
        _copy_areas(connection, demo=demo, valid_from=valid_from)
        building_ids = _copy_buildings(connection, demo=demo)
        # Assign before the households are written, so each row is written once.
        microgrids = building_microgrids(connection, county_code=county_code)
        household_ids = _copy_households(
            connection, demo=demo, building_ids=building_ids, microgrids=microgrids
        )
        resident_ids = _copy_residents(
            connection, demo=demo, state=state, household_ids=household_ids
        )
        _copy_quarantines(connection, demo=demo, state=state, resident_ids=resident_ids)
        _copy_temperatures(connection, demo=demo, state=state, resident_ids=resident_ids)
        activity_started = time.perf_counter()
        _copy_activity(
            connection,
            demo=demo,
            activity=activity,
            household_ids=household_ids,
            resident_ids=resident_ids,
            home_microgrids=[microgrids.get(b_id) for b_id in building_ids.tolist()],
        )
        activity_done = time.perf_counter()
        assigned, unassigned = assignment_counts(connection, county_code=county_code)
    connection_done = time.perf_counter()
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            # VACUUM too: a re-run deletes the previous demo, whose dead rows would
            # otherwise slow every later load and query until autovacuum came by.
            text(
                "VACUUM (ANALYZE) area, building, household, resident, quarantine,"
                " temperature_check, screening_round, visit, case_report, case_status_change,"
                " checkpoint, passage"
            )
        )
    summary = demo.summary()
    summary["reference_date"] = state.reference_date.isoformat()
    summary["state"] = state.summary()
    summary["activity"] = activity.summary(len(demo.households))
    summary["load"] = {
        "generate_s": round(generated - started, 2),
        "write_s": round(connection_done - generated, 2),
        "activity_write_s": round(activity_done - activity_started, 2),
        "households_assigned": assigned,
        "households_unassigned": unassigned,
    }
    return summary


TAGS = ("hubei_linked", "abroad_14d", "close_contact", "fever")


def _delete_county(connection: Connection, *, county_code: str) -> None:
    params = {"county": county_code}
    # Field work first: passages hold checkpoints and residents, visits hold
    # rounds and households, cases hold residents and households (their status
    # changes go with them). Quarantines, temperature checks, history and
    # review items go with their residents and households (ON DELETE CASCADE).
    for table in ("passage", "checkpoint", "visit", "screening_round", "case_report"):
        connection.execute(text(f"DELETE FROM {table} WHERE county_code = :county"), params)
    connection.execute(text("DELETE FROM resident WHERE county_code = :county"), params)
    connection.execute(text("DELETE FROM household WHERE county_code = :county"), params)
    connection.execute(text("DELETE FROM building WHERE county_code = :county"), params)
    connection.execute(
        text("DELETE FROM area WHERE county_code = :county OR code = :county"), params
    )


def _pg(connection: Connection) -> PgConnection[Any]:
    raw = connection.connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def _copy(
    connection: Connection, *, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with _pg(connection).cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _reserve_ids(connection: Connection, *, table: str, count: int) -> np.ndarray:
    """A block of ``count`` fresh ids from the table's sequence (explicit ids
    let residents reference households within the same COPY stream)."""
    connection.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    start = connection.execute(
        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
             f" greatest((SELECT coalesce(max(id), 0) FROM {table}), 1) + :n)"),
        {"n": count},
    ).scalar_one() - count + 1  # fmt: skip
    return np.arange(start, start + count, dtype=np.int64)


def _copy_areas(connection: Connection, *, demo: DemoCounty, valid_from: dt.date) -> None:
    rows = (
        (a.code, a.name, a.level, "land", a.parent_code, demo.county_code, a.synthetic, 1,
         valid_from, DEMO_SOURCE, _ewkb_hex(a.geom_4326))
        for a in demo.areas
    )  # fmt: skip
    columns = ("code", "name", "level", "kind", "parent_code", "county_code", "synthetic",
               "version", "valid_from", "source", "geom")  # fmt: skip
    _copy(connection, table="area", columns=columns, rows=rows)


def _ewkb_hex(geom_4326: Any) -> Any:
    """COPY's text format takes PostGIS geometry as hex EWKB (SRID included)."""
    return shapely.to_wkb(shapely.set_srid(geom_4326, 4326), hex=True, include_srid=True)


def _copy_buildings(connection: Connection, *, demo: DemoCounty) -> np.ndarray:
    """COPY the standard address registry (one row per building)."""
    b = demo.buildings
    ids = _reserve_ids(connection, table="building", count=len(b))
    rows = zip(
        ids.tolist(), b.county_code.tolist(), b.code.tolist(), b.address.tolist(), b.county.tolist(),
        b.township.tolist(), b.community.tolist(), _blank_none(b.road), b.house_no.tolist(),
        _blank_none(b.estate), _blank_none(b.building_no), _blank_none(b.village_group),
        [DEMO_SOURCE] * len(b), _ewkb_hex(shapely.points(b.lon, b.lat)).tolist(), strict=True,
    )  # fmt: skip
    columns = ("id", "county_code", "code", "address", "county", "township", "community", "road",
               "house_number", "estate", "building_no", "village_group", "source", "geom")  # fmt: skip
    _copy(connection, table="building", columns=columns, rows=rows)
    return ids


def _copy_households(
    connection: Connection,
    *,
    demo: DemoCounty,
    building_ids: np.ndarray,
    microgrids: dict[int, str],
) -> np.ndarray:
    """COPY the households, located at their building's point (a building-level
    match of their standard address), with their micro-grid and the key an
    import of the demo's own register finds them by."""
    h = demo.households
    b = demo.buildings
    ids = _reserve_ids(connection, table="household", count=len(h))
    household_buildings = building_ids[h.building].tolist()
    points = _ewkb_hex(shapely.points(b.lon[h.building], b.lat[h.building])).tolist()
    addresses = household_addresses(demo)
    # The same rule as the addresses: apartments by unit and room, a shared
    # village house by room, a one-household house by the house alone.
    urban = (b.road[h.building] != "").tolist()
    shared = (b.households[h.building] > 1).tolist()
    keys = [
        building_household_key(
            building_id=b_id,
            unit=str(unit) if is_urban else None,
            room=room if is_urban or is_shared else None,
        )
        for b_id, unit, room, is_urban, is_shared in zip(
            household_buildings, h.unit.tolist(), h.room.tolist(), urban, shared, strict=True
        )
    ]
    n = len(h)
    rows = zip(
        ids.tolist(), [demo.county_code] * n, household_buildings,
        [str(u) for u in h.unit.tolist()], h.floor.tolist(), h.room.tolist(),
        [microgrids.get(b_id) for b_id in household_buildings], addresses, points,
        ["building"] * n, [1.0] * n, ["matched"] * n, keys, strict=True,
    )  # fmt: skip
    columns = ("id", "county_code", "building_id", "unit", "floor", "room", "microgrid_code",
               "address", "geom", "geocode_level", "geocode_score", "geocode_status",
               "address_key")  # fmt: skip
    _copy(connection, table="household", columns=columns, rows=rows)
    return ids


def _copy_residents(
    connection: Connection, *, demo: DemoCounty, state: DemoState, household_ids: np.ndarray
) -> np.ndarray:
    """COPY the residents with their registry fields and state; returns their ids."""
    r = demo.residents
    ids = _reserve_ids(connection, table="resident", count=len(r))
    flags = zip(
        r.hubei_linked.tolist(), r.abroad_14d.tolist(),
        state.residents.close_contact.tolist(), state.residents.fever.tolist(), strict=True,
    )  # fmt: skip
    tags = [sorted(tag for tag, on in zip(TAGS, row, strict=True) if on) for row in flags]
    hukou = hukou_places(demo)
    rows = zip(
        ids.tolist(), [demo.county_code] * len(r), household_ids[r.household].tolist(), r.name.tolist(),
        r.id_number.tolist(), r.phone.tolist(), r.sex.tolist(), r.birth_date.tolist(),
        r.category.tolist(), tags, hukou, state.residents.health_code.tolist(),
        [DEMO_SOURCE] * len(r), strict=True,
    )  # fmt: skip
    columns = ("id", "county_code", "household_id", "name", "id_number", "phone", "sex", "birth_date",
               "category", "tags", "hukou", "health_code", "source")  # fmt: skip
    _copy(connection, table="resident", columns=columns, rows=rows)
    return ids


def _copy_quarantines(
    connection: Connection, *, demo: DemoCounty, state: DemoState, resident_ids: np.ndarray
) -> None:
    q = state.quarantines
    central = q.kind == "central"
    points = _ewkb_hex(shapely.points(q.lon[central], q.lat[central])).tolist()
    geoms: list[str | None] = [None] * len(q)
    for index, point in zip(np.flatnonzero(central).tolist(), points, strict=True):
        geoms[index] = point
    rows = zip(
        [demo.county_code] * len(q), resident_ids[q.resident].tolist(), q.kind.tolist(),
        [site or None for site in q.site.tolist()], geoms, q.start.tolist(), q.planned_end.tolist(),
        _dates(q.extended_to), _dates(q.released_on), q.reason.tolist(), strict=True,
    )  # fmt: skip
    columns = ("county_code", "resident_id", "kind", "site_name", "geom", "start_date", "planned_end",
               "extended_to", "released_on", "note")  # fmt: skip
    _copy(connection, table="quarantine", columns=columns, rows=rows)


def _copy_temperatures(
    connection: Connection, *, demo: DemoCounty, state: DemoState, resident_ids: np.ndarray
) -> None:
    t = state.temperature_checks
    # The generator's times are local (UTC+8), as a grid worker writes them down.
    checked_at = [
        f"{stamp} +08:00" for stamp in np.datetime_as_string(t.checked_at, unit="s").tolist()
    ]
    rows = zip(
        [demo.county_code] * len(t), resident_ids[t.resident].tolist(), checked_at,
        t.temperature_c.tolist(), strict=True,
    )  # fmt: skip
    _copy(
        connection,
        table="temperature_check",
        columns=("county_code", "resident_id", "checked_at", "temperature_c"),
        rows=rows,
    )


def _copy_activity(
    connection: Connection,
    *,
    demo: DemoCounty,
    activity: DemoActivity,
    household_ids: np.ndarray,
    resident_ids: np.ndarray,
    home_microgrids: list[str | None],
) -> None:
    """COPY the screening round, visits, cases and their histories, checkpoints
    and passages. Record times (``created_at``, ``changed_at``) are the times
    the things happened, so a shifted demo has no record from the future."""
    county = demo.county_code
    r = activity.screening_round
    (round_id,) = _reserve_ids(connection, table="screening_round", count=1).tolist()
    _copy(
        connection,
        table="screening_round",
        columns=("id", "county_code", "area_code", "name", "start_date", "end_date", "created_at"),
        rows=[(round_id, county, r.area_code, r.name, r.start_date, r.end_date,
               f"{r.start_date} 08:00:00 +08:00")],
    )  # fmt: skip

    v = activity.visits
    visited_at = _local_times(v.visited_at)
    rows = zip(
        [county] * len(v), [round_id] * len(v), household_ids[v.household].tolist(),
        v.result.tolist(), v.persons_seen.tolist(), _blank_none(v.note), v.worker.tolist(),
        visited_at, _ewkb_hex(shapely.points(v.lon, v.lat)).tolist(), v.distance_m.tolist(),
        _blank_none(v.far_reason), visited_at, strict=True,
    )  # fmt: skip
    columns: tuple[str, ...] = (
        "county_code", "round_id", "household_id", "result", "persons_seen", "note", "worker",
        "visited_at", "geom", "distance_m", "far_reason", "created_at",
    )  # fmt: skip
    _copy(connection, table="visit", columns=columns, rows=rows)

    c, ch = activity.cases, activity.case_changes
    case_ids = _reserve_ids(connection, table="case_report", count=len(c))
    last_change = np.zeros(len(c), dtype="datetime64[D]")
    np.maximum.at(last_change, ch.case, ch.effective_on)
    rows = zip(
        case_ids.tolist(), [county] * len(c), resident_ids[c.resident].tolist(),
        household_ids[c.household].tolist(), c.status.tolist(), c.reported_on.tolist(),
        _dates(c.onset_date), c.reported_by.tolist(), c.note.tolist(), _noon(c.reported_on),
        _noon(last_change), strict=True,
    )  # fmt: skip
    columns = ("id", "county_code", "resident_id", "household_id", "status", "reported_on",
               "onset_date", "reported_by", "note", "created_at", "updated_at")  # fmt: skip
    _copy(connection, table="case_report", columns=columns, rows=rows)
    rows = zip(
        case_ids[ch.case].tolist(), ch.status.tolist(), ch.effective_on.tolist(),
        _noon(ch.effective_on), strict=True,
    )  # fmt: skip
    _copy(
        connection,
        table="case_status_change",
        columns=("case_id", "status", "effective_on", "changed_at"),
        rows=rows,
    )

    k = activity.checkpoints
    checkpoint_ids = _reserve_ids(connection, table="checkpoint", count=len(k))
    set_up = [f"{d} 08:00:00 +08:00" for d in k.set_up_on.tolist()]
    rows = zip(
        checkpoint_ids.tolist(), [county] * len(k), k.name.tolist(), k.kind.tolist(),
        _ewkb_hex(shapely.points(k.lon, k.lat)).tolist(), set_up, set_up, strict=True,
    )  # fmt: skip
    columns = ("id", "county_code", "name", "kind", "geom", "created_at", "updated_at")
    _copy(connection, table="checkpoint", columns=columns, rows=rows)

    p = activity.passages
    known = p.resident >= 0
    resident_of = np.where(known, resident_ids[np.where(known, p.resident, 0)], 0).tolist()
    household_of = demo.residents.household[np.where(known, p.resident, 0)]
    building_of = demo.households.building[household_of].tolist()
    passed_at = _local_times(p.passed_at)
    rows = zip(
        [county] * len(p), checkpoint_ids[p.checkpoint].tolist(), passed_at,
        p.direction.tolist(),
        [rid if is_known else None for rid, is_known in zip(resident_of, known.tolist(), strict=True)],
        _blank_none(p.person_name), _blank_none(p.id_number), _blank_none(p.phone),
        _blank_none(p.plate), [None if np.isnan(t) else t for t in p.temperature_c.tolist()],
        _blank_none(p.health_code), _blank_none(p.origin),
        [home_microgrids[b] if is_known else None
         for b, is_known in zip(building_of, known.tolist(), strict=True)],
        passed_at, strict=True,
    )  # fmt: skip
    columns = ("county_code", "checkpoint_id", "passed_at", "direction", "resident_id",
               "person_name", "id_number", "phone", "plate", "temperature_c", "health_code",
               "origin", "home_microgrid_code", "created_at")  # fmt: skip
    _copy(connection, table="passage", columns=columns, rows=rows)


def _local_times(stamps: np.ndarray) -> list[str]:
    """The generator's local times (UTC+8), as timestamptz text."""
    text_stamps = np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s")
    return np.char.add(text_stamps, " +08:00").tolist()  # type: ignore[no-any-return]


def _noon(days: np.ndarray) -> list[str]:
    """Record times for date-only events: noon local time of each day."""
    return [f"{d} 12:00:00 +08:00" for d in days.astype("datetime64[D]").tolist()]


def _dates(values: np.ndarray) -> list[dt.date | None]:
    return [None if np.isnat(v) else v.astype("datetime64[D]").item() for v in values]


def _blank_none(values: np.ndarray) -> list[str | None]:
    return [v or None for v in values.tolist()]
