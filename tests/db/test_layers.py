"""Layers on a hand-built county (tests/db/layers_fixture.py) whose every figure
can be counted by hand: per micro-grid, rolled up, on chosen days, across
Beijing midnight, and before and after a boundary redraw."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection

from db.assign import assign_households
from db.layers import LAYERS, compute_layer
from geo.errors import InvalidInput, NotFound
from tests.db import layers_fixture as lf
from tests.db.layers_fixture import CELL, COUNTY, DAY, GRID, MG_A, MG_B, TOWNSHIP


@pytest.fixture
def county(session) -> lf.Fixture:
    conn: Connection = session.connection()
    return lf.build(conn)


def by_code(session, layer: str, *, as_of: dt.date = DAY, level: str = "microgrid",
            within: str = GRID) -> dict[str, tuple[float | None, int, int]]:  # fmt: skip
    result = compute_layer(session, layer=layer, as_of=as_of, level=level, within=within)
    return {f.code: (f.value, f.numerator, f.denominator) for f in result.figures}


# (layer, day) → {micro-grid: (value, numerator, denominator)}, counted by hand
# from the fixture's docstrings.
EXPECTED = {
    ("coverage", DAY): {MG_A: (33.33, 1, 3), MG_B: (50.0, 1, 2)},
    ("coverage", dt.date(2020, 2, 7)): {MG_A: (66.67, 2, 3), MG_B: (50.0, 1, 2)},
    ("incomplete", DAY): {MG_A: (1.0, 1, 3), MG_B: (0.0, 0, 2)},
    ("incomplete", dt.date(2020, 2, 7)): {MG_A: (1.0, 1, 3), MG_B: (1.0, 1, 2)},
    ("unvisited", DAY): {MG_A: (1.0, 1, 3), MG_B: (1.0, 1, 2)},
    ("unvisited", dt.date(2020, 2, 7)): {MG_A: (0.0, 0, 3), MG_B: (0.0, 0, 2)},
    ("cases", dt.date(2020, 2, 4)): {MG_A: (1.0, 1, 0), MG_B: (1.0, 1, 0)},
    ("cases", dt.date(2020, 2, 5)): {MG_A: (0.0, 0, 0), MG_B: (1.0, 1, 0)},
    ("cases", DAY): {MG_A: (0.0, 0, 0), MG_B: (1.0, 1, 0)},
    ("cases_total", dt.date(2020, 2, 5)): {MG_A: (1.0, 1, 0), MG_B: (1.0, 1, 0)},
    ("cases_total", DAY): {MG_A: (1.0, 1, 0), MG_B: (1.0, 1, 0)},
    ("quarantine", DAY): {MG_A: (1.0, 1, 0), MG_B: (1.0, 1, 0)},
    ("quarantine", dt.date(2020, 2, 2)): {MG_A: (1.0, 1, 0), MG_B: (1.0, 1, 0)},
    ("quarantine", dt.date(2020, 2, 4)): {MG_A: (1.0, 1, 0), MG_B: (0.0, 0, 0)},
    ("quarantine_overdue", DAY): {MG_A: (0.0, 0, 1), MG_B: (1.0, 1, 1)},
    ("fever", DAY): {MG_A: (1.0, 1, 1), MG_B: (0.0, 0, 1)},
    ("checkpoint_flags", DAY): {MG_A: (1.0, 1, 1), MG_B: (0.0, 0, 1)},
    ("checkpoint_flags", dt.date(2020, 2, 5)): {MG_A: (0.0, 0, 0), MG_B: (1.0, 1, 1)},
}


@pytest.mark.parametrize(("layer", "day"), list(EXPECTED), ids=lambda v: str(v))
def test_each_layer_counts_what_the_fixture_holds(session, county, layer, day) -> None:
    assert by_code(session, layer, as_of=day) == EXPECTED[(layer, day)]


def test_every_layer_is_covered_by_the_hand_count() -> None:
    assert {layer for layer, _ in EXPECTED} == set(LAYERS)


@pytest.mark.parametrize("layer", sorted(LAYERS))
@pytest.mark.parametrize("level", ["grid", "community", "township"])
def test_a_parent_is_the_sum_of_its_micro_grids(session, county, layer, level) -> None:
    parts = compute_layer(session, layer=layer, as_of=DAY, level="microgrid", within=COUNTY)
    whole = compute_layer(session, layer=layer, as_of=DAY, level=level, within=COUNTY)
    assert len(whole.figures) == 1
    (figure,) = whole.figures
    assert figure.numerator == sum(f.numerator for f in parts.figures)
    assert figure.denominator == sum(f.denominator for f in parts.figures)
    assert figure.households == 5 and figure.residents == 10


def test_a_case_counts_where_the_person_lives_not_where_it_was_reported(session, county) -> None:
    """A1a's case was reported by a hospital in another town: it counts in A."""
    assert by_code(session, "cases_total", as_of=dt.date(2020, 2, 3))[MG_A][1] == 1


def test_a_visit_after_beijing_midnight_counts_for_the_next_day(session, county) -> None:
    """A3's visit at 2020-02-06 17:30 UTC is on the 7th in Beijing."""
    assert by_code(session, "unvisited", as_of=DAY)[MG_A][1] == 1
    assert by_code(session, "unvisited", as_of=dt.date(2020, 2, 7))[MG_A][1] == 0


def test_before_the_round_every_household_is_unvisited(session, county) -> None:
    figures = by_code(session, "coverage", as_of=dt.date(2020, 2, 1))
    assert figures == {MG_A: (0.0, 0, 3), MG_B: (0.0, 0, 2)}


def test_areas_without_households_have_no_data(session, county) -> None:
    """A new empty micro-grid next to the others: no value, not zero."""
    lf.add_area(session.connection(), code=GRID + "03", level="microgrid", parent=GRID,
                wkt=lf.box_wkt(2 * CELL, 0, 3 * CELL, CELL))  # fmt: skip
    for layer in ("coverage", "cases", "quarantine"):
        assert by_code(session, layer)[GRID + "03"] == (None, 0, 0), layer


def test_unlocated_households_are_counted_beside_the_map(session, county) -> None:
    result = compute_layer(session, layer="coverage", as_of=DAY, within=COUNTY, level="township")
    assert result.unlocated_households == 1
    assert result.figures[0].households == 5


def test_default_level_is_the_one_below_within(session, county) -> None:
    result = compute_layer(session, layer="quarantine", as_of=DAY, within=TOWNSHIP)
    assert result.level == "community"


def test_the_round_in_progress_is_the_default(session, county) -> None:
    result = compute_layer(session, layer="coverage", as_of=DAY, within=GRID)
    assert result.round is not None and result.round.id == county.round_id
    before = compute_layer(session, layer="coverage", as_of=dt.date(2020, 1, 20), within=GRID)
    assert before.round is None
    assert all(f.value is None for f in before.figures)


def test_bad_requests_say_what_was_wrong(session, county) -> None:
    with pytest.raises(NotFound, match="no layer 'nope'"):
        compute_layer(session, layer="nope", as_of=DAY)
    with pytest.raises(InvalidInput, match="level 'street'"):
        compute_layer(session, layer="cases", as_of=DAY, level="street", within=COUNTY)
    with pytest.raises(NotFound, match="no area with code '000'"):
        compute_layer(session, layer="cases", as_of=DAY, within="000")
    with pytest.raises(NotFound, match="no screening round"):
        compute_layer(session, layer="coverage", as_of=DAY, within=GRID, round_id=-5)


class TestBoundaryRedraw:
    """On CHANGE_DAY (the 5th) A shrinks to x < 0.008 and B grows: household A3
    (x = 0.009) moves from A to B. Before the redraw the figures are those of
    the old boundaries; from it, of the new."""

    @pytest.fixture
    def redrawn(self, session, county) -> lf.Fixture:
        conn: Connection = session.connection()
        lf.redraw(conn, code=MG_A, wkt=lf.box_wkt(0, 0, 0.008, CELL), day=lf.CHANGE_DAY)
        lf.redraw(conn, code=MG_B, wkt=lf.box_wkt(0.008, 0, 2 * CELL, CELL), day=lf.CHANGE_DAY)
        assign_households(conn, county_code=COUNTY)
        return county

    def test_before_the_redraw_the_old_boundaries_count(self, session, redrawn) -> None:
        result = compute_layer(session, layer="coverage", as_of=dt.date(2020, 2, 4),
                               level="microgrid", within=GRID)  # fmt: skip
        assert result.membership == "recomputed"
        assert {f.code: f.households for f in result.figures} == {MG_A: 3, MG_B: 2}
        assert {f.code: f.numerator for f in result.figures} == {MG_A: 1, MG_B: 0}

    def test_after_the_redraw_the_new_boundaries_count(self, session, redrawn) -> None:
        result = compute_layer(session, layer="coverage", as_of=dt.date(2020, 2, 7),
                               level="microgrid", within=GRID)  # fmt: skip
        assert result.membership == "assigned"
        assert {f.code: f.households for f in result.figures} == {MG_A: 2, MG_B: 3}
        # A3's complete visit on the 7th now counts in B.
        assert {f.code: (f.numerator, f.denominator) for f in result.figures} == {
            MG_A: (1, 2),
            MG_B: (2, 3),
        }

    def test_recomputed_membership_equals_the_assignment_on_the_same_boundaries(
        self, session, county
    ) -> None:
        """With no redraw, forcing the recomputation gives the assigned answer."""
        from db import layers

        assigned = by_code(session, "coverage")
        original = layers.boundaries_changed_since
        try:
            layers.boundaries_changed_since = lambda *a, **k: True  # type: ignore[assignment]
            recomputed = by_code(session, "coverage")
        finally:
            layers.boundaries_changed_since = original
        assert recomputed == assigned
