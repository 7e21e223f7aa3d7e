"""Person state of the demo county: determinism, proportions, quarantine rules,
temperature checks and the 37.3 °C fever threshold. Every figure is recounted
here from the raw columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import shapely

import geo.demo_state
from db.demo import build_demo
from geo.demo import XINCHENG_ABROAD_14D, XINCHENG_HUBEI_LINKED, XINCHENG_RESIDENTS, DemoCounty
from geo.demo_state import (
    CENTRAL_SHARE,
    EXTENSION_DAYS,
    FEVER_THRESHOLD_C,
    MISSED_TODAY_SHARE,
    QUARANTINE_DAYS,
    SITE_WORDS,
    START_WINDOW_DAYS,
    DemoState,
    expected_close_contacts,
    generate_state,
    is_fever,
)

REFERENCE = dt.date(2020, 2, 6)


@pytest.fixture(scope="module")
def demo() -> DemoCounty:
    return build_demo(county_code="445321", households=6000, seed=3)


@pytest.fixture(scope="module")
def state(demo: DemoCounty) -> DemoState:
    return generate_state(demo)


def day(value: dt.date) -> np.datetime64:
    return np.datetime64(value, "D")


# --- determinism ---------------------------------------------------------------------------


def test_deterministic(demo: DemoCounty, state: DemoState) -> None:
    again = generate_state(demo, seed=demo.seed)
    assert again.digest() == state.digest()
    for table in ("residents", "quarantines", "temperature_checks", "sites"):
        a, b = getattr(state, table), getattr(again, table)
        for column in a.column_names():
            np.testing.assert_array_equal(getattr(a, column), getattr(b, column))
    assert generate_state(demo, seed=demo.seed + 1).digest() != state.digest()
    assert state.seed == demo.seed
    assert state.reference_date == REFERENCE


# --- who is quarantined --------------------------------------------------------------------


def test_demo_flags_follow_the_xincheng_figures(demo: DemoCounty) -> None:
    n = len(demo.residents)
    hubei = int(demo.residents.hubei_linked.sum())
    abroad = int(demo.residents.abroad_14d.sum())
    assert abs(hubei - n * XINCHENG_HUBEI_LINKED / XINCHENG_RESIDENTS) <= 1
    assert abs(abroad - n * XINCHENG_ABROAD_14D / XINCHENG_RESIDENTS) <= 1


def test_close_contacts(demo: DemoCounty, state: DemoState) -> None:
    contacts = state.residents.close_contact
    n = len(demo.residents)
    assert int(contacts.sum()) == expected_close_contacts(n) == round(n * 2 / 1000)
    assert not (contacts & (demo.residents.hubei_linked | demo.residents.abroad_14d)).any()
    exposed = np.unique(
        demo.residents.household[demo.residents.hubei_linked | demo.residents.abroad_14d]
    )
    housemates = np.isin(demo.residents.household[contacts], exposed).sum()
    assert housemates == round(int(contacts.sum()) / 2)


def test_every_exposed_person_has_exactly_one_quarantine(
    demo: DemoCounty, state: DemoState
) -> None:
    r = demo.residents
    q = state.quarantines
    exposed = r.hubei_linked | r.abroad_14d | state.residents.close_contact
    assert sorted(q.resident.tolist()) == np.flatnonzero(exposed).tolist()
    assert np.unique(q.resident).size == len(q)
    for reason, flags in (
        ("hubei_linked", r.hubei_linked),
        ("abroad_14d", r.abroad_14d),
        ("close_contact", state.residents.close_contact),
    ):
        assert flags[q.resident[q.reason == reason]].all()


def test_quarantine_dates(state: DemoState) -> None:
    q = state.quarantines
    ref = day(REFERENCE)
    age = (ref - q.start).astype(np.int64)
    window = np.array([START_WINDOW_DAYS[r] for r in q.reason.tolist()])
    assert ((age >= 0) & (age < window)).all()
    assert (age[q.reason != "hubei_linked"] < 14).all()
    assert (age >= 14).any()  # some Hubei-linked people came home before the lockdown
    assert (q.planned_end == q.start + np.timedelta64(QUARANTINE_DAYS, "D")).all()
    extended = ~np.isnat(q.extended_to)
    assert 0 < extended.sum() < 0.2 * len(q)
    assert (q.extended_to[extended] == q.planned_end[extended] + np.timedelta64(EXTENSION_DAYS, "D")).all()  # fmt: skip
    end = np.where(extended, q.extended_to, q.planned_end)
    released = ~np.isnat(q.released_on)
    np.testing.assert_array_equal(released, end <= ref)
    assert (q.released_on[released] == end[released]).all()
    assert released.any() and not released.all()


def test_sites_and_kinds(demo: DemoCounty, state: DemoState) -> None:
    sites = state.sites
    assert sites.name.tolist() == [demo.county_name + w for w in SITE_WORDS]
    assert all(name.startswith("新兴县") for name in sites.name.tolist())
    points = set(zip(sites.lon.tolist(), sites.lat.tolist(), strict=True))
    assert len(points) == len(SITE_WORDS)
    county = demo.areas_of("county")[0].geom_4326
    assert shapely.contains_xy(county, sites.lon, sites.lat).all()
    q = state.quarantines
    central = q.kind == "central"
    assert set(q.kind.tolist()) == {"home", "central"}
    assert np.isnan(q.lon[~central]).all() and np.isnan(q.lat[~central]).all()
    assert (q.site[~central] == "").all()
    by_name = dict(zip(sites.name.tolist(), zip(sites.lon.tolist(), sites.lat.tolist(), strict=True), strict=True))  # fmt: skip
    for site, lon, lat in zip(q.site[central].tolist(), q.lon[central].tolist(), q.lat[central].tolist(), strict=True):  # fmt: skip
        assert by_name[site] == (lon, lat)
    # The assumed shares, loosely: central quarantine is the exception for Hubei-linked people.
    share = central.sum() / len(q)
    assert min(CENTRAL_SHARE.values()) / 2 < share < max(CENTRAL_SHARE.values())


# --- temperature checks --------------------------------------------------------------------


def test_one_check_a_day_until_today_or_release(state: DemoState) -> None:
    """Every day from the start, to the day before release or to the reference
    date — where about MISSED_TODAY_SHARE are not checked yet."""
    q = state.quarantines
    checks = state.temperature_checks
    ref = day(REFERENCE)
    due_today = missed_today = 0
    for index in range(len(q)):
        mine = checks.checked_at[checks.quarantine == index]
        days = mine.astype("datetime64[D]")
        last = ref if np.isnat(q.released_on[index]) else q.released_on[index] - np.timedelta64(1, "D")  # fmt: skip
        expected = np.arange(q.start[index], last + np.timedelta64(1, "D"))
        if expected.size and expected[-1] == ref:
            due_today += 1
            if days.size == 0 or days[-1] != ref:
                missed_today += 1
                expected = expected[:-1]
        np.testing.assert_array_equal(days, expected)
    assert due_today > 0
    share = missed_today / due_today
    assert missed_today > 0 and share < 3 * MISSED_TODAY_SHARE, (missed_today, due_today)
    np.testing.assert_array_equal(checks.resident, q.resident[checks.quarantine])
    hours = (checks.checked_at - checks.checked_at.astype("datetime64[D]")).astype(np.int64) / 3600
    assert ((hours >= 8) & (hours < 11)).all()


def test_temperatures(state: DemoState) -> None:
    t = state.temperature_checks.temperature_c
    assert ((t >= 36.0) & (t <= 38.5)).all()
    np.testing.assert_array_equal(t, np.round(t * 10) / 10)
    fever_share = (t >= 37.3).mean()
    assert 0 < fever_share < 0.02
    assert ((t >= 36.0) & (t <= 37.2)).mean() > 0.98


def test_fever_tag_iff_a_reading_at_or_above_threshold(state: DemoState) -> None:
    checks = state.temperature_checks
    expected = np.zeros(len(state.residents), dtype=np.bool_)
    expected[checks.resident[checks.temperature_c >= 37.3]] = True
    np.testing.assert_array_equal(state.residents.fever, expected)
    assert state.residents.fever.any()


def test_fever_threshold_exactly_at_37_3() -> None:
    assert FEVER_THRESHOLD_C == 37.3
    assert is_fever(37.3)
    assert is_fever(373 / 10)
    assert not is_fever(37.2)
    assert not is_fever(37.29)


def test_generated_readings_of_exactly_37_3_are_fevers(
    demo: DemoCounty, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Readings of only 37.2 or 37.3: the tag must fall exactly at the boundary.
    monkeypatch.setattr(geo.demo_state, "_NORMAL_TENTHS", (372, 372))
    monkeypatch.setattr(geo.demo_state, "_FEVER_TENTHS", (373, 373))
    monkeypatch.setattr(geo.demo_state, "FEVER_CHECK_SHARE", 0.05)
    state = generate_state(demo)
    checks = state.temperature_checks
    assert set(checks.temperature_c.tolist()) == {37.2, 37.3}
    at_threshold = np.unique(checks.resident[checks.temperature_c == 37.3])
    assert at_threshold.size > 0
    assert state.residents.fever[at_threshold].all()
    assert int(state.residents.fever.sum()) == at_threshold.size
    only_372 = np.setdiff1d(checks.resident, at_threshold)
    assert only_372.size > 0 and not state.residents.fever[only_372].any()


# --- health codes --------------------------------------------------------------------------


def test_health_codes(demo: DemoCounty, state: DemoState) -> None:
    codes = state.residents.health_code
    ongoing = state.in_quarantine()
    assert (codes[~ongoing] == "green").all()
    assert np.isin(codes[ongoing], ["yellow", "red"]).all()
    assert (codes[ongoing & state.residents.fever] == "red").all()
    assert (codes == "green").mean() > 0.99
    assert (codes[ongoing] == "yellow").mean() > 0.8
    hubei = demo.residents.hubei_linked
    assert (codes[hubei] != "green").mean() > 0.5
    assert (codes == "red").sum() >= 1


def test_other_reference_date(demo: DemoCounty) -> None:
    later = generate_state(demo, reference_date=dt.date(2020, 3, 25))
    q = later.quarantines
    assert (q.start <= day(dt.date(2020, 3, 25))).all()
    assert (q.start > day(dt.date(2020, 3, 4))).all()
    assert later.summary()["reference_date"] == "2020-03-25"


def test_summary(state: DemoState) -> None:
    summary = state.summary()
    assert summary["quarantines"] == len(state.quarantines)
    assert summary["temperature_checks"] == len(state.temperature_checks)
    assert summary["close_contact"] == int(state.residents.close_contact.sum())
    codes = summary["health_code"]
    assert isinstance(codes, dict) and sum(codes.values()) == len(state.residents)
