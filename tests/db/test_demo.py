"""The demo county in PostGIS, checked with independent SQL: the hierarchy
passes the import checks, every household sits in exactly one micro-grid, and
the figures the API shows equal a spatial recount from raw rows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from db.areas import child_areas, get_area
from db.demo import build_demo, load_demo
from geo.demo import CATEGORIES, expected_registry_counts

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
