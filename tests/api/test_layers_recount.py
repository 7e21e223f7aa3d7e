"""Every layer of the demo county, at every level, equals an independent
recount from the raw rows.

The recount reads the tables with plain SELECTs and does everything else in
Python — Beijing days, a case's status on a date, quarantine on a date, the
round's households, the roll-up through the parent codes — sharing no SQL
and no code with db/layers.py. The API's figures must equal it exactly."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from sqlalchemy import create_engine, text

from geo.demo import REFERENCE_DATE

DAY = dt.date.fromisoformat(str(REFERENCE_DATE))
BEIJING = dt.timezone(dt.timedelta(hours=8))
LEVELS = ("township", "community", "grid", "microgrid")
LAYERS = ("coverage", "incomplete", "unvisited", "cases", "cases_total", "quarantine",
          "quarantine_overdue", "fever", "checkpoint_flags")  # fmt: skip


class Raw:
    """The demo's rows, as plain Python."""

    def __init__(self, url: str) -> None:
        engine = create_engine(url)
        with engine.connect() as c:

            def q(sql: str) -> list:
                return list(c.execute(text(sql)).all())

            self.county = q("SELECT code FROM area WHERE level = 'county' AND valid_to IS NULL")[0][
                0
            ]
            self.parent = dict(q("SELECT code, parent_code FROM area WHERE valid_to IS NULL"))
            self.level = dict(q("SELECT code, level FROM area WHERE valid_to IS NULL"))
            self.home = dict(
                q("SELECT id, microgrid_code FROM household WHERE microgrid_code IS NOT NULL")
            )
            self.resident_home = dict(q("SELECT id, household_id FROM resident"))
            self.rounds = q("SELECT id, area_code, start_date, end_date FROM screening_round")
            self.visits = q("SELECT round_id, household_id, result, visited_at FROM visit")
            self.cases = q("SELECT id, resident_id, household_id, reported_on FROM case_report")
            self.changes = q("SELECT case_id, status, effective_on, id FROM case_status_change")
            self.quarantines = q("SELECT resident_id, start_date, released_on FROM quarantine")
            self.checks = q("SELECT resident_id, checked_at, temperature_c FROM temperature_check")
            self.passages = q(
                "SELECT home_microgrid_code, passed_at, temperature_c, health_code FROM passage"
            )
        engine.dispose()

    def ancestor_at(self, code: str, level: str) -> str | None:
        while code is not None and self.level.get(code) != level:
            code = self.parent.get(code)
        return code

    def under(self, code: str, root: str) -> bool:
        while code is not None:
            if code == root:
                return True
            code = self.parent.get(code)
        return False


def beijing_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(BEIJING).date()


def recount(raw: Raw, layer: str, *, as_of: dt.date) -> tuple[Counter, Counter, Counter, Counter]:
    """(numerator, denominator, households, residents) per micro-grid."""
    num: Counter = Counter()
    den: Counter = Counter()
    households = Counter(raw.home.values())
    residents = Counter(raw.home[h] for h in raw.resident_home.values() if h in raw.home)

    def home_of_resident(rid):
        return raw.home.get(raw.resident_home.get(rid))

    if layer in ("coverage", "incomplete", "unvisited"):
        started = [r for r in raw.rounds if r[2] <= as_of]
        started.sort(key=lambda r: (r[3] >= as_of, r[2], r[0]), reverse=True)
        if not started:
            return num, den, households, residents
        round_id, area = started[0][0], started[0][1]
        seen: dict[int, bool] = {}
        for rid, hid, result, at in raw.visits:
            if rid == round_id and beijing_day(at) <= as_of:
                seen[hid] = seen.get(hid, False) or result == "complete"
        for hid, mg in raw.home.items():
            if not raw.under(mg, area):
                continue
            den[mg] += 1
            status = "unvisited" if hid not in seen else ("complete" if seen[hid] else "incomplete")
            num[mg] += status == {"coverage": "complete"}.get(layer, layer)
    elif layer in ("cases", "cases_total"):
        history = defaultdict(list)
        for case_id, status, effective, change_id in raw.changes:
            history[case_id].append((effective, change_id, status))
        for case_id, rid, hid, reported in raw.cases:
            past = sorted(h for h in history[case_id] if h[0] <= as_of)
            if reported > as_of or not past:
                continue
            status = past[-1][2]
            mg = home_of_resident(rid) if rid is not None else raw.home.get(hid)
            counted = status in ("suspected", "confirmed", "asymptomatic") if layer == "cases" \
                else status != "ruled_out"  # fmt: skip
            if mg is not None and counted:
                num[mg] += 1
    elif layer in ("quarantine", "quarantine_overdue", "fever"):
        quarantined = {rid for rid, start, released in raw.quarantines
                       if start <= as_of and (released is None or released > as_of)}  # fmt: skip
        checked: dict[int, bool] = {}
        for rid, at, celsius in raw.checks:
            if beijing_day(at) == as_of:
                checked[rid] = checked.get(rid, False) or float(celsius) >= 37.3
        if layer == "quarantine":
            for rid in quarantined:
                if (mg := home_of_resident(rid)) is not None:
                    num[mg] += 1
        elif layer == "quarantine_overdue":
            for rid in quarantined:
                if (mg := home_of_resident(rid)) is not None:
                    den[mg] += 1
                    num[mg] += rid not in checked
        else:
            for rid, fever in checked.items():
                if (mg := home_of_resident(rid)) is not None:
                    den[mg] += 1
                    num[mg] += fever
    elif layer == "checkpoint_flags":
        for mg, at, celsius, code in raw.passages:
            if mg is None or beijing_day(at) != as_of:
                continue
            den[mg] += 1
            num[mg] += (celsius is not None and float(celsius) >= 37.3) or code in ("red", "yellow")
    return num, den, households, residents


@pytest.fixture(scope="module")
def raw(demo_db_url) -> Raw:
    return Raw(demo_db_url)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("as_of", [DAY, DAY - dt.timedelta(days=3)], ids=["reference", "3d-before"])
def test_layer_equals_an_independent_recount_at_every_level(demo_client, raw, layer, as_of):
    num, den, households, residents = recount(raw, layer, as_of=as_of)
    rate = layer == "coverage"
    for level in LEVELS:
        body = demo_client.get(f"/api/layers/{layer}", params={
            "within": raw.county, "level": level, "as_of": as_of.isoformat()}).json()  # fmt: skip
        expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for counter, slot in ((num, 0), (den, 1), (households, 2), (residents, 3)):
            for mg, n in counter.items():
                expected[raw.ancestor_at(mg, level)][slot] += n
        got = {f["properties"]["code"]: f["properties"] for f in body["features"]}
        assert set(got) == {c for c, lv in raw.level.items() if lv == level}
        for code, props in got.items():
            n, d, hh, rs = expected.get(code, [0, 0, 0, 0])
            assert (props["numerator"], props["denominator"]) == (n, d), (layer, level, code)
            assert (props["households"], props["residents"]) == (hh, rs), (layer, level, code)
            if rate:
                assert props["value"] == (round(100 * n / d, 2) if d else None)
            else:
                assert props["value"] == (float(n) if (rs if layer != "coverage" else d) else None)


# Days back from the reference date within which each layer must show something.
# Fevers (0.5 % of some 40 readings a day) and flagged passages of residents
# (a few a week) are rare in the 3,000-household test demo; the default demo,
# 25 times larger, has them every day.
RARE_WINDOW_DAYS = {"fever": 21, "checkpoint_flags": 7}


@pytest.mark.parametrize("layer", LAYERS)
def test_the_demo_gives_every_layer_something_to_show(raw, layer) -> None:
    days = range(RARE_WINDOW_DAYS.get(layer, 1))
    totals = [sum(recount(raw, layer, as_of=DAY - dt.timedelta(days=d))[0].values()) for d in days]
    assert max(totals) > 0, f"the demo has nothing for {layer}"
