"""Field activity of the demo county: determinism, the screening round's
proportions, visits, cases and their histories, checkpoints, passages and the
date shift. Every figure is recounted here from the raw columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely
from pyproj import Geod

from db.demo import build_demo
from geo.demo import DemoCounty, id_check_digit
from geo.demo_activity import (
    FAR_LIMIT_M,
    PASSAGE_DAYS,
    ROUND_NAME,
    VISITED_SHARE,
    WORKERS_PER_GRID,
    DemoActivity,
    expected_cases,
    generate_activity,
    is_flagged,
    shift_state,
)
from geo.demo_state import DemoState, generate_state

REFERENCE = dt.date(2020, 2, 6)
HOUSEHOLDS = 3_000
SEED = 11
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def demo() -> DemoCounty:
    return build_demo(county_code="445321", households=HOUSEHOLDS, seed=SEED)


@pytest.fixture(scope="module")
def state(demo: DemoCounty) -> DemoState:
    return generate_state(demo)


@pytest.fixture(scope="module")
def activity(demo: DemoCounty, state: DemoState) -> DemoActivity:
    return generate_activity(demo, state)


def local(value: str) -> np.datetime64:
    return np.datetime64(value, "s")


def seconds_of_day(stamps: np.ndarray) -> np.ndarray:
    return (stamps - stamps.astype("datetime64[D]")).astype(np.int64)


def household_results(activity: DemoActivity, n: int) -> np.ndarray:
    """Recount: complete once any visit is, else the last visit's result."""
    out = np.full(n, "", dtype="<U11")
    v = activity.visits
    for household, result, _ in sorted(
        zip(v.household.tolist(), v.result.tolist(), v.visited_at.tolist(), strict=True),
        key=lambda row: (row[0], row[2]),
    ):
        out[household] = "complete" if out[household] == "complete" else result
    return out


# --- determinism ---------------------------------------------------------------------------


def test_deterministic(demo: DemoCounty, state: DemoState, activity: DemoActivity) -> None:
    again = generate_activity(demo, state, seed=SEED)
    assert again.digest() == activity.digest()
    for a, b in zip(activity.tables(), again.tables(), strict=True):
        for column in a.column_names():
            np.testing.assert_array_equal(getattr(a, column), getattr(b, column))
    other = generate_activity(demo, state, seed=SEED + 1)
    assert other.digest() != activity.digest()
    assert activity.seed == SEED and activity.reference_date == REFERENCE


# --- the round and its visits --------------------------------------------------------------


def test_round(activity: DemoActivity) -> None:
    r = activity.screening_round
    assert r.name == ROUND_NAME == "第一轮全面排查"
    assert r.area_code == "445321"
    assert (r.start_date, r.end_date) == (dt.date(2020, 1, 31), dt.date(2020, 2, 9))
    assert r.start_date < REFERENCE < r.end_date  # in progress


def test_visited_share_and_results(demo: DemoCounty, activity: DemoActivity) -> None:
    n = len(demo.households)
    results = household_results(activity, n)
    np.testing.assert_array_equal(results, activity.household_results(n))
    visited = results != ""
    assert abs(visited.mean() - VISITED_SHARE) <= 0.01
    incomplete = np.isin(results, ("partial", "nobody_home", "refused")).sum() / visited.sum()
    not_complete = (visited & (results != "complete")).sum() / visited.sum()
    assert 0.08 <= incomplete <= 0.12
    assert 0.08 <= not_complete <= 0.12
    assert 0 < (results == "vacant").sum() < 0.02 * visited.sum()
    assert {"partial", "nobody_home", "refused"} <= set(results.tolist())


def test_progress_varies_by_microgrid(demo: DemoCounty, activity: DemoActivity) -> None:
    """Some micro-grids nearly done, some far behind: the coverage map has contrast."""
    results = activity.household_results(len(demo.households))
    microgrid = demo.buildings.microgrid_code[demo.households.building]
    _, inverse = np.unique(microgrid, return_inverse=True)
    share = np.bincount(inverse, weights=results != "") / np.bincount(inverse)
    assert (share >= 0.95).mean() >= 0.10
    assert (share <= 0.60).mean() >= 0.05
    assert share.std() > 0.1


def test_visits_belong_to_households_and_see_no_more_than_live_there(
    demo: DemoCounty, activity: DemoActivity
) -> None:
    v = activity.visits
    h = demo.households
    assert ((v.household >= 0) & (v.household < len(h))).all()
    persons = h.persons[v.household]
    assert ((v.persons_seen >= 0) & (v.persons_seen <= persons)).all()
    complete = v.result == "complete"
    np.testing.assert_array_equal(v.persons_seen[complete], persons[complete])
    partial = v.result == "partial"
    assert ((v.persons_seen[partial] >= 1) & (v.persons_seen[partial] < persons[partial])).all()
    assert (v.persons_seen[~(complete | partial)] == 0).all()
    assert (v.note[complete] == "").all() and (v.note[~complete] != "").all()


def test_visit_times(activity: DemoActivity) -> None:
    """Between the round's start and noon of the reference date, in working hours."""
    t = activity.visits.visited_at
    assert t.min() >= local("2020-01-31T00:00:00")
    assert t.max() <= local("2020-02-06T12:00:00")
    assert (np.diff(t.astype(np.int64)) >= 0).all()
    s = seconds_of_day(t)
    morning = (s >= 8.5 * 3600) & (s < 12 * 3600)
    afternoon = (s >= 14.5 * 3600) & (s < 20.5 * 3600)
    assert (morning | afternoon).all()
    days = np.unique(t.astype("datetime64[D]"))
    assert days.size == 7  # every day of the round so far


def test_revisits(demo: DemoCounty, activity: DemoActivity) -> None:
    """Twice-visited households: nobody home first, complete at least a day later."""
    v = activity.visits
    households, counts = np.unique(v.household, return_counts=True)
    twice = households[counts == 2]
    assert counts.max() == 2
    assert 0.03 < twice.size / households.size < 0.08
    for household in twice.tolist():
        mine = np.flatnonzero(v.household == household)
        first, last = mine[np.argsort(v.visited_at[mine])]
        assert (v.result[first], v.result[last]) == ("nobody_home", "complete")
        assert v.visited_at[last].astype("datetime64[D]") > v.visited_at[first].astype("datetime64[D]")  # fmt: skip


def test_visit_locations_and_far_reasons(demo: DemoCounty, activity: DemoActivity) -> None:
    v = activity.visits
    b = demo.buildings
    building = demo.households.building[v.household]
    _, _, recount = GEOD.inv(b.lon[building], b.lat[building], v.lon, v.lat)
    np.testing.assert_allclose(v.distance_m, recount, atol=1e-6)
    np.testing.assert_array_equal(v.lon, np.round(v.lon, 6))
    far = v.far_reason != ""
    np.testing.assert_array_equal(far, v.distance_m > FAR_LIMIT_M)
    assert set(v.far_reason[far].tolist()) <= {"住户在村委会登记", "住户在社区居委会登记"}
    assert 0.01 < far.mean() < 0.03
    assert np.median(v.distance_m[~far]) < 10 and v.distance_m[~far].max() < 40
    county = demo.areas_of("county")[0].geom_4326
    assert shapely.contains_xy(county, v.lon, v.lat).mean() > 0.99


def test_workers(demo: DemoCounty, activity: DemoActivity) -> None:
    v = activity.visits
    assert (np.char.str_len(v.worker) >= 2).all()
    grid = demo.buildings.grid_code[demo.households.building[v.household]]
    for code in np.unique(grid).tolist():
        assert np.unique(v.worker[grid == code]).size <= WORKERS_PER_GRID


# --- cases ---------------------------------------------------------------------------------


def test_cases_in_proportion(demo: DemoCounty, state: DemoState, activity: DemoActivity) -> None:
    c = activity.cases
    r = demo.residents
    assert np.unique(c.resident).size == len(c)
    np.testing.assert_array_equal(c.household, r.household[c.resident])
    sizes = {
        "hubei_linked": int(r.hubei_linked.sum()),
        "close_contact": int(state.residents.close_contact.sum()),
        "abroad_14d": int(r.abroad_14d.sum()),
    }
    sizes["other"] = len(r) - sum(sizes.values())
    ch = activity.case_changes
    first = {int(case): str(s) for case, s in zip(ch.case[::-1], ch.status[::-1], strict=True)}
    confirmed = sum(1 for i in range(len(c)) if "confirmed" in ch.status[ch.case == i])
    asymptomatic = sum(1 for s in first.values() if s == "asymptomatic")
    suspected_only = len(c) - confirmed - asymptomatic
    wanted = expected_cases(sizes)
    assert (confirmed, asymptomatic, suspected_only) == (
        wanted["confirmed"],
        wanted["asymptomatic"],
        wanted["suspected"],
    )
    assert set(c.status.tolist()) >= {"confirmed", "recovered", "suspected", "asymptomatic"}
    at_risk = r.hubei_linked[c.resident] | r.abroad_14d[c.resident]
    at_risk |= state.residents.close_contact[c.resident]
    assert at_risk.mean() > 0.5


def test_case_histories(demo: DemoCounty, activity: DemoActivity) -> None:
    c, ch = activity.cases, activity.case_changes
    ref = np.datetime64(REFERENCE, "D")
    assert ch.case.min() == 0 and ch.case.max() == len(c) - 1
    for i in range(len(c)):
        mine = np.flatnonzero(ch.case == i)
        statuses = ch.status[mine].tolist()
        on = ch.effective_on[mine]
        assert (np.diff(on.astype(np.int64)) >= 0).all()
        assert on[0] == c.reported_on[i] and on[-1] <= ref
        assert statuses[-1] == c.status[i]
        assert statuses in (
            ["suspected"],
            ["suspected", "ruled_out"],
            ["suspected", "confirmed"],
            ["suspected", "confirmed", "recovered"],
            ["asymptomatic"],
            ["asymptomatic", "recovered"],
        )
        if statuses[0] == "asymptomatic":
            assert np.isnat(c.onset_date[i])
        else:
            assert c.onset_date[i] <= c.reported_on[i]


def test_cases_reported_elsewhere_count_where_people_live(
    demo: DemoCounty, activity: DemoActivity
) -> None:
    c = activity.cases
    assert c.reported_elsewhere.any()
    names = {a.code: a.name for a in demo.areas_of("township")}
    b = demo.buildings
    home = b.township_code[demo.households.building[c.household]]
    for by, town, elsewhere in zip(c.reported_by.tolist(), home.tolist(), c.reported_elsewhere.tolist(), strict=True):  # fmt: skip
        if elsewhere:
            assert by.endswith("卫生院") and by != f"{names[town]}卫生院"
        else:
            assert by in ("新兴县人民医院", "新兴县疾病预防控制中心", f"{names[town]}卫生院")


# --- checkpoints and passages --------------------------------------------------------------


def test_checkpoints(demo: DemoCounty, activity: DemoActivity) -> None:
    k = activity.checkpoints
    towns = {a.code: a.geom_4326 for a in demo.areas_of("township")}
    county = demo.areas_of("county")[0].geom_4326
    assert shapely.contains_xy(county, k.lon, k.lat).all()
    for code, lon, lat in zip(k.township_code.tolist(), k.lon.tolist(), k.lat.tolist(), strict=True):  # fmt: skip
        assert shapely.contains_xy(towns[code], lon, lat)
    assert set(k.kind.tolist()) == {"highway_exit", "village_entrance", "estate_gate"}
    assert np.unique(k.name).size == len(k)
    per_town = {code: int((k.township_code == code).sum()) for code in towns}
    assert all(1 <= n <= 7 for n in per_town.values()), per_town
    # Highway exits lie near the county edge.
    edge = county.boundary
    exits = k.kind == "highway_exit"
    for lon, lat in zip(k.lon[exits].tolist(), k.lat[exits].tolist(), strict=True):
        assert edge.distance(shapely.Point(lon, lat)) * 111_000 < 1_000


def test_passage_times_and_people(
    demo: DemoCounty, state: DemoState, activity: DemoActivity
) -> None:
    p = activity.passages
    first = np.datetime64(REFERENCE, "D") - np.timedelta64(PASSAGE_DAYS - 1, "D")
    assert np.unique(p.passed_at.astype("datetime64[D]")).tolist() == np.arange(first, np.datetime64(REFERENCE, "D") + 1).tolist()  # fmt: skip
    assert p.passed_at.max() <= local("2020-02-06T12:00:00")
    s = seconds_of_day(p.passed_at)
    assert ((s >= 6 * 3600) & (s < 22 * 3600)).all()
    known = p.resident >= 0
    assert 0.6 < known.mean() < 0.9
    r, b = demo.residents, demo.buildings
    home = b.microgrid_code[demo.households.building[r.household[p.resident[known]]]]
    np.testing.assert_array_equal(p.home_microgrid_code[known], home)
    assert (p.home_microgrid_code[~known] == "").all()
    np.testing.assert_array_equal(p.person_name[known], r.name[p.resident[known]])
    # Everybody is somebody: a resident, a named person or a plate.
    assert (known | (p.person_name != "") | (p.plate != "")).all()
    # Unknown people carry valid GB 11643 numbers.
    ids = p.id_number[~known & (p.id_number != "")]
    assert ids.size and all(i[17] == id_check_digit(i[:17]) for i in ids.tolist())
    # A resident with a yellow or red code at a checkpoint is under quarantine that day.
    q = state.quarantines
    for resident, code, at in zip(p.resident[known].tolist(), p.health_code[known].tolist(), p.passed_at[known].astype("datetime64[D]").tolist(), strict=True):  # fmt: skip
        if code != "green":
            mine = q.start[q.resident == resident]
            assert mine.size and mine[0] <= np.datetime64(at, "D")


def test_flagged_is_an_independent_recount(activity: DemoActivity) -> None:
    p = activity.passages
    recount = [
        is_flagged(None if np.isnan(t) else t, code or None)
        for t, code in zip(p.temperature_c.tolist(), p.health_code.tolist(), strict=True)
    ]
    np.testing.assert_array_equal(p.flagged, recount)
    by_hand = (p.temperature_c >= 37.3) | np.isin(p.health_code, ("yellow", "red"))
    np.testing.assert_array_equal(p.flagged, by_hand)
    assert 0.002 < p.flagged.mean() < 0.05
    t = p.temperature_c
    np.testing.assert_array_equal(t, np.round(t * 10) / 10)
    assert ((t >= 36.0) & (t <= 38.5)).all() and (t < 37.3).mean() > 0.99


def test_is_flagged_threshold() -> None:
    assert is_flagged(37.3, "green") and is_flagged(373 / 10, None)
    assert not is_flagged(37.2, "green") and not is_flagged(None, None)
    assert is_flagged(36.5, "yellow") and is_flagged(36.5, "red")


# --- the date shift ------------------------------------------------------------------------


def test_shift_moves_every_date(state: DemoState, activity: DemoActivity) -> None:
    days = (dt.date(2026, 5, 1) - REFERENCE).days
    moved = activity.shifted(days)
    step = np.timedelta64(days, "D")
    assert moved.reference_date == dt.date(2026, 5, 1)
    assert moved.screening_round.start_date == dt.date(2026, 4, 25)
    np.testing.assert_array_equal(moved.visits.visited_at, activity.visits.visited_at + step)
    np.testing.assert_array_equal(moved.passages.passed_at, activity.passages.passed_at + step)
    np.testing.assert_array_equal(moved.cases.reported_on, activity.cases.reported_on + step)
    np.testing.assert_array_equal(moved.cases.onset_date, activity.cases.onset_date + step)
    np.testing.assert_array_equal(
        moved.case_changes.effective_on, activity.case_changes.effective_on + step
    )
    np.testing.assert_array_equal(moved.checkpoints.set_up_on, activity.checkpoints.set_up_on + step)  # fmt: skip
    np.testing.assert_array_equal(moved.visits.household, activity.visits.household)
    assert moved.shifted(-days).digest() == activity.digest()
    assert activity.shifted(0) is activity

    later = shift_state(state, days)
    assert later.reference_date == dt.date(2026, 5, 1)
    q, q0 = later.quarantines, state.quarantines
    np.testing.assert_array_equal(q.start, q0.start + step)
    np.testing.assert_array_equal(np.isnat(q.released_on), np.isnat(q0.released_on))
    np.testing.assert_array_equal(q.released_on, q0.released_on + step)
    np.testing.assert_array_equal(
        later.temperature_checks.checked_at, state.temperature_checks.checked_at + step
    )
    # Shifting after generating equals generating with the later reference date's state:
    # the in-quarantine set does not change.
    np.testing.assert_array_equal(later.in_quarantine(), state.in_quarantine())
