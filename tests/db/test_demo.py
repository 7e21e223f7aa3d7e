"""The demo county in PostGIS, checked with independent SQL: the hierarchy
passes the import checks, every household sits in exactly one micro-grid, and
the figures the API shows equal a spatial recount from raw rows. The field
activity (round, visits, cases, checkpoints, passages) equals the generator's,
and ``today=`` moves every date of the state and the activity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from db.areas import child_areas, get_area
from db.demo import DEMO_VALID_FROM, build_demo, load_demo
from geo.demo import CATEGORIES, DemoCounty, expected_registry_counts
from geo.demo_activity import DemoActivity, generate_activity
from geo.demo_state import DemoState, generate_state

HOUSEHOLDS = 6_000
SEED = 7


@pytest.fixture(scope="module")
def demo_engine(pg):
    engine = create_engine(pg.database("demo_test"))
    summary = load_demo(engine, county_code="445321", households=HOUSEHOLDS, seed=SEED)
    yield engine, summary
    engine.dispose()


@pytest.fixture
def demo_session(demo_engine):
    engine, _ = demo_engine
    with Session(engine) as session:
        yield session


def scalar(session: Session, sql: str, **params) -> object:
    return session.execute(text(sql), params).scalar_one()


def test_counts_match_what_was_asked(demo_session, demo_engine) -> None:
    _, summary = demo_engine
    assert scalar(demo_session, "SELECT count(*) FROM household") == HOUSEHOLDS
    residents = scalar(demo_session, "SELECT count(*) FROM resident")
    assert residents == summary["residents"]
    assert 2.4 * HOUSEHOLDS < residents < 3.2 * HOUSEHOLDS
    levels = dict(
        demo_session.execute(text("SELECT level, count(*) FROM area GROUP BY level")).all()
    )
    assert levels["county"] == 1 and levels["township"] == 12
    assert (
        levels["community"] > 150 and levels["microgrid"] >= levels["grid"] >= levels["community"]
    )


def test_real_names_and_synthetic_marks(demo_session) -> None:
    towns = demo_session.execute(
        text("SELECT name, synthetic FROM area WHERE level = 'township' ORDER BY code")
    ).all()
    names = {name for name, _ in towns}
    assert {"新城镇", "六祖镇", "天堂镇", "簕竹镇"} <= names
    assert all(synthetic for _, synthetic in towns)
    county = demo_session.execute(
        text("SELECT name, synthetic FROM area WHERE level = 'county'")
    ).one()
    assert county == ("新兴县", False)  # the real outline


def test_no_sibling_overlaps(demo_session) -> None:
    overlaps = demo_session.execute(
        text(
            """
            SELECT a.code, b.code, ST_Area(ST_Intersection(a.geom, b.geom)::geography) AS m2
            FROM area a JOIN area b
              ON a.parent_code = b.parent_code AND a.code < b.code AND a.geom && b.geom
            WHERE ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1.0
            """
        )
    ).all()
    assert overlaps == []


def test_children_lie_within_their_parents(demo_session) -> None:
    outside = demo_session.execute(
        text(
            """
            SELECT c.code FROM area c JOIN area p ON p.code = c.parent_code
            WHERE NOT ST_Covers(ST_Buffer(p.geom::geography, 1.0)::geometry, c.geom)
            """
        )
    ).all()
    assert outside == []


def test_every_household_in_exactly_one_microgrid(demo_session) -> None:
    """Recount point-in-polygon from scratch and compare with the stored assignment."""
    rows = demo_session.execute(
        text(
            """
            SELECT h.id, h.microgrid_code, array_agg(a.code ORDER BY a.code) AS covering
            FROM household h JOIN building b ON b.id = h.building_id
            LEFT JOIN area a ON a.level = 'microgrid' AND ST_Covers(a.geom, b.geom)
            GROUP BY h.id, h.microgrid_code
            """
        )
    ).all()
    assert len(rows) == HOUSEHOLDS
    not_one = [r for r in rows if len([c for c in r.covering if c]) != 1]
    assert not_one == []
    assert all(r.microgrid_code == r.covering[0] for r in rows)


def test_assignment_agrees_with_the_generator(demo_session) -> None:
    demo = build_demo(county_code="445321", households=HOUSEHOLDS, seed=SEED)
    stored = dict(
        demo_session.execute(
            text(
                "SELECT code, microgrid_code FROM building b JOIN household h ON h.building_id = b.id"
            )
        ).all()
    )
    generated = dict(
        zip(demo.buildings.code.tolist(), demo.buildings.microgrid_code.tolist(), strict=True)
    )
    assert stored == generated


def test_resident_categories_follow_xincheng(demo_session) -> None:
    residents = int(scalar(demo_session, "SELECT count(*) FROM resident"))
    counts = dict(
        demo_session.execute(
            text("SELECT category, count(*) FROM resident GROUP BY category")
        ).all()
    )
    expected = expected_registry_counts(residents)
    assert {c: counts.get(c, 0) for c in CATEGORIES} == {c: expected[c] for c in CATEGORIES}
    hubei = scalar(demo_session, "SELECT count(*) FROM resident WHERE 'hubei_linked' = ANY(tags)")
    abroad = scalar(demo_session, "SELECT count(*) FROM resident WHERE 'abroad_14d' = ANY(tags)")
    assert (hubei, abroad) == (expected["hubei_linked"], expected["abroad_14d"])
    assert scalar(demo_session, "SELECT count(DISTINCT id_number) FROM resident") == residents


def test_area_figures_equal_a_spatial_recount(demo_session) -> None:
    """The API counts down the hierarchy; recount by point-in-polygon on township polygons."""
    today = dt.date.today()
    recount = dict(
        demo_session.execute(
            text(
                """
                SELECT t.code, count(h.id) FROM area t
                JOIN building b ON ST_Covers(t.geom, b.geom)
                JOIN household h ON h.building_id = b.id
                WHERE t.level = 'township' GROUP BY t.code
                """
            )
        ).all()
    )
    towns = child_areas(demo_session, code="445321", as_of=today)
    assert {t.code: t.households for t in towns if t.households} == recount
    county = get_area(demo_session, code="445321", as_of=today)
    assert county.households == HOUSEHOLDS
    assert county.residents == scalar(demo_session, "SELECT count(*) FROM resident")


def test_demo_is_reproducible_and_replaces_itself(demo_engine) -> None:
    engine, summary = demo_engine
    again = load_demo(engine, county_code="445321", households=HOUSEHOLDS, seed=SEED)
    assert {k: v for k, v in again.items() if k != "load"} == {
        k: v for k, v in summary.items() if k != "load"
    }
    with Session(engine) as session:
        assert scalar(session, "SELECT count(*) FROM household") == HOUSEHOLDS
        assert scalar(session, "SELECT count(*) FROM area WHERE level = 'county'") == 1


# --- field activity: the shared 3,000-household demo (seed 11), read only ----------------------

SMALL = {"county_code": "445321", "households": 3_000, "seed": 11}
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def small_generated() -> tuple[DemoCounty, DemoState, DemoActivity]:
    demo = build_demo(**SMALL)  # type: ignore[arg-type]
    state = generate_state(demo)
    return demo, state, generate_activity(demo, state)


@pytest.fixture(scope="module")
def small_engine(demo_db_url):
    engine = create_engine(demo_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def small_session(small_engine):
    with Session(small_engine) as session:
        yield session


def rows(session: Session, sql: str, **params) -> list[tuple]:
    return [tuple(r) for r in session.execute(text(sql), params).all()]


def local_text(stamps: np.ndarray) -> list[str]:
    return np.datetime_as_string(stamps.astype("datetime64[s]"), unit="s").tolist()


LOCAL = "to_char({} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD\"T\"HH24:MI:SS')"


def test_activity_rows_equal_the_generator(small_session, small_generated) -> None:
    demo, _, activity = small_generated
    r = activity.screening_round
    assert rows(
        small_session, "SELECT area_code, name, start_date, end_date FROM screening_round"
    ) == [(r.area_code, r.name, r.start_date, r.end_date)]
    # Visits: the same households (by building code, unit, room), results, people and times.
    v, h, b = activity.visits, demo.households, demo.buildings
    stored = rows(
        small_session,
        f"""SELECT b.code, h.unit, h.room, v.result, v.persons_seen, v.worker,
                   {LOCAL.format("v.visited_at")}, coalesce(v.far_reason, '')
            FROM visit v JOIN household h ON h.id = v.household_id
            JOIN building b ON b.id = h.building_id""",
    )
    generated = list(
        zip(
            b.code[h.building[v.household]].tolist(), h.unit[v.household].astype(str).tolist(),
            h.room[v.household].tolist(), v.result.tolist(), v.persons_seen.tolist(),
            v.worker.tolist(), local_text(v.visited_at), v.far_reason.tolist(), strict=True,
        )
    )  # fmt: skip
    assert len(stored) == len(v) and sorted(stored) == sorted(generated)
    # Cases by the person's ID number, with their histories.
    c, ch = activity.cases, activity.case_changes
    stored_cases = rows(
        small_session,
        """SELECT r.id_number, c.status, c.reported_on, c.reported_by,
                  (SELECT array_agg(s.status ORDER BY s.effective_on, s.id)
                   FROM case_status_change s WHERE s.case_id = c.id)
           FROM case_report c JOIN resident r ON r.id = c.resident_id
           WHERE c.household_id = r.household_id""",
    )
    generated_cases = [
        (demo.residents.id_number[c.resident[i]], c.status[i], c.reported_on[i].item(),
         c.reported_by[i], ch.status[ch.case == i].tolist())
        for i in range(len(c))
    ]  # fmt: skip
    assert sorted(stored_cases) == sorted(generated_cases)
    assert scalar(small_session, "SELECT count(*) FROM case_status_change") == len(ch)
    k = activity.checkpoints
    assert sorted(rows(small_session, "SELECT name, kind, ST_X(geom), ST_Y(geom) FROM checkpoint")) == sorted(
        zip(k.name.tolist(), k.kind.tolist(), k.lon.tolist(), k.lat.tolist(), strict=True)
    )  # fmt: skip
    p = activity.passages
    counts = rows(
        small_session,
        "SELECT count(*), count(resident_id), count(*) FILTER (WHERE flagged) FROM passage",
    )
    assert counts == [(len(p), int((p.resident >= 0).sum()), int(p.flagged.sum()))]


def test_visit_distances_equal_a_geodesic_recount(small_session) -> None:
    found = rows(
        small_session,
        """SELECT ST_X(v.geom), ST_Y(v.geom), ST_X(h.geom), ST_Y(h.geom), v.distance_m,
                  ST_Distance(v.geom::geography, h.geom::geography), v.far_reason
           FROM visit v JOIN household h ON h.id = v.household_id""",
    )
    assert found
    lon, lat, hlon, hlat, stored, postgis = np.array([row[:6] for row in found], dtype=float).T
    _, _, recount = GEOD.inv(hlon, hlat, lon, lat)
    assert np.abs(stored - recount).max() <= 0.5
    assert np.abs(stored - postgis).max() <= 0.5
    far = np.array([row[6] is not None for row in found])
    np.testing.assert_array_equal(far, stored > 100)
    assert far.any()


def test_flagged_passages_equal_an_independent_count(small_session) -> None:
    found = rows(small_session, "SELECT temperature_c, health_code, flagged FROM passage")
    by_hand = [
        (t is not None and t >= Decimal("37.3")) or code in ("red", "yellow")
        for t, code, _ in found
    ]
    assert [f for _, _, f in found] == by_hand
    assert 0 < sum(by_hand) < 0.05 * len(found)


def test_passages_count_where_people_live(small_session) -> None:
    """A resident's passage carries their household's micro-grid; others carry none."""
    wrong = scalar(
        small_session,
        """SELECT count(*) FROM passage p JOIN resident r ON r.id = p.resident_id
           JOIN household h ON h.id = r.household_id
           WHERE p.home_microgrid_code IS DISTINCT FROM h.microgrid_code""",
    )
    assert wrong == 0
    assert scalar(small_session, "SELECT count(*) FROM passage WHERE resident_id IS NOT NULL") > 0
    assert (
        scalar(
            small_session,
            "SELECT count(*) FROM passage WHERE resident_id IS NULL AND home_microgrid_code IS NOT NULL",
        )
        == 0
    )
    outside = scalar(
        small_session,
        """SELECT count(*) FROM checkpoint k
           WHERE NOT EXISTS (SELECT 1 FROM area a WHERE a.level = 'county'
                             AND ST_Contains(a.geom, k.geom))""",
    )
    assert outside == 0


def test_reload_replaces_the_activity(demo_engine) -> None:
    """A second load of the same demo leaves one round, and the generator's counts."""
    engine, _ = demo_engine
    summary = load_demo(engine, county_code="445321", households=HOUSEHOLDS, seed=SEED)
    a = summary["activity"]
    with Session(engine) as session:
        assert scalar(session, "SELECT count(*) FROM screening_round") == 1
        assert scalar(session, "SELECT count(*) FROM visit") == a["visits"]
        assert scalar(session, "SELECT count(*) FROM case_report") == a["cases"]
        assert (
            scalar(session, "SELECT count(*) FROM case_status_change") == a["case_status_changes"]
        )
        assert scalar(session, "SELECT count(*) FROM checkpoint") == a["checkpoints"]
        assert scalar(session, "SELECT count(*) FROM passage") == a["passages"]
        assert (
            scalar(session, "SELECT count(*) FROM passage WHERE flagged") == a["passages_flagged"]
        )
        visited = scalar(session, "SELECT count(DISTINCT household_id) FROM visit")
        assert visited == a["households_visited"] == round(0.8 * HOUSEHOLDS)
    assert summary["reference_date"] == "2020-02-06"


# --- the date shift ----------------------------------------------------------------------------

SHIFT_TODAY = dt.date(2026, 3, 15)

# (what, SQL giving one sorted array of dates or times) for every dated column.
DATED = (
    ("round", "SELECT ARRAY[start_date::timestamp, end_date::timestamp] FROM screening_round"),
    ("visits", "SELECT array_agg(visited_at ORDER BY visited_at) FROM visit"),
    ("visit records", "SELECT array_agg(created_at ORDER BY created_at) FROM visit"),
    ("cases", "SELECT array_agg(reported_on::timestamp ORDER BY reported_on) FROM case_report"),
    ("onsets", "SELECT array_agg(onset_date::timestamp ORDER BY onset_date) FROM case_report WHERE onset_date IS NOT NULL"),
    ("changes", "SELECT array_agg(effective_on::timestamp ORDER BY effective_on) FROM case_status_change"),
    ("checkpoints", "SELECT array_agg(created_at ORDER BY created_at) FROM checkpoint"),
    ("passages", "SELECT array_agg(passed_at ORDER BY passed_at) FROM passage"),
    ("quarantine starts", "SELECT array_agg(start_date::timestamp ORDER BY start_date) FROM quarantine"),
    ("planned ends", "SELECT array_agg(planned_end::timestamp ORDER BY planned_end) FROM quarantine"),
    ("extensions", "SELECT array_agg(extended_to::timestamp ORDER BY extended_to) FROM quarantine WHERE extended_to IS NOT NULL"),
    ("releases", "SELECT array_agg(released_on::timestamp ORDER BY released_on) FROM quarantine WHERE released_on IS NOT NULL"),
    ("checks", "SELECT array_agg(checked_at ORDER BY checked_at) FROM temperature_check"),
)  # fmt: skip


def test_today_moves_every_date(pg, small_session) -> None:
    engine = create_engine(pg.database("demo_shifted"))
    try:
        summary = load_demo(engine, **SMALL, today=SHIFT_TODAY)  # type: ignore[arg-type]
        assert summary["reference_date"] == SHIFT_TODAY.isoformat()
        assert summary["state"]["reference_date"] == SHIFT_TODAY.isoformat()
        step = SHIFT_TODAY - dt.date(2020, 2, 6)
        with Session(engine) as shifted:
            for what, sql in DATED:
                before, after = scalar(small_session, sql), scalar(shifted, sql)
                assert before and len(before) == len(after), what
                assert all(b + step == a for b, a in zip(before, after, strict=True)), what
            # Registry data does not move; the areas are in force on the new dates.
            assert scalar(shifted, "SELECT min(birth_date) FROM resident") == scalar(
                small_session, "SELECT min(birth_date) FROM resident"
            )
            assert scalar(shifted, "SELECT min(valid_from) FROM area") == DEMO_VALID_FROM
            assert get_area(shifted, code="445321", as_of=SHIFT_TODAY).households == 3_000
            last = scalar(shifted, "SELECT max(passed_at) FROM passage")
            assert last.astimezone(dt.timezone(dt.timedelta(hours=8))).date() == SHIFT_TODAY

        # Earlier than 2020: the areas come into force as many days earlier.
        early = dt.date(2019, 10, 1)
        summary = load_demo(engine, **SMALL, today=early)  # type: ignore[arg-type]
        assert summary["reference_date"] == early.isoformat()
        with Session(engine) as shifted:
            valid_from = scalar(shifted, "SELECT min(valid_from) FROM area")
            assert valid_from == DEMO_VALID_FROM + (early - dt.date(2020, 2, 6))
            assert scalar(shifted, "SELECT max(valid_from) FROM area") == valid_from
            assert valid_from <= scalar(shifted, "SELECT min(start_date) FROM quarantine")
            assert scalar(shifted, "SELECT count(*) FROM screening_round") == 1
            assert get_area(shifted, code="445321", as_of=valid_from).households == 3_000
    finally:
        engine.dispose()
