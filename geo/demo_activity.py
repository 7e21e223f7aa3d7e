"""Field activity of the demo county up to its reference date: a screening
round and its door visits, cases with their status history, checkpoints and
the passages through them.

``geo.demo`` generates who lives where and ``geo.demo_state`` what the epidemic
did to them; this module adds what the grid teams, hospitals and checkpoints
recorded, so that every choropleth layer (coverage of the round, incomplete
households, cases, flagged passages) has something real to show. Deterministic:
the same demo, state and seed give identical tables (``DemoActivity.digest``);
only ``numpy.random.default_rng([seed, ACTIVITY_STREAM])`` draws numbers.
Dates are relative to the state's reference date (2020-02-06 by default);
``DemoActivity.shifted`` and ``shift_state`` move a whole demo to another day.
Pure: numpy, shapely and pyproj; no database, no web.

Proportions and where they come from
------------------------------------
The reports (DOMAIN.md) say *how* the work was done — every household of a
round visited, the incomplete ones revisited, three-person teams, checkpoints
registering temperature and health code — but give no progress, case or
traffic figures for Xinxing. Every share below is therefore an assumption,
stated as such, chosen so the layers show contrast.

* Screening round: one, over the whole county, ``ROUND_NAME`` from
  reference − 6 days to reference + 3 days (2020-01-31 to 2020-02-09), so it is
  in progress on the reference date.
* Progress: each micro-grid's share of households visited is drawn from
  Beta(4, 1) (mean 0.8: many nearly done, a tail far behind), then scaled so
  that exactly ``VISITED_SHARE`` (80 %) of the county's households are visited.
  Teams walk a micro-grid building by building, so the visited households are
  whole buildings plus part of one.
* Results of a visited household's last visit: ``INCOMPLETE_SHARE`` (9.5 %)
  incomplete — partial (some members not seen), nobody home or refused, mixed
  ``INCOMPLETE_MIX`` — and ``VACANT_SHARE`` (1 %) vacant; the rest complete. So
  9.5 % are incomplete without the vacant ones and 10.5 % with them: inside
  the 8–12 % band either way. ``REVISIT_SHARE`` (6 %) of the complete
  households needed two visits: nobody home first, complete 1–3 days later.
* Who was seen: everybody on a complete visit; 1 … n−1 of n on a partial one
  (only households of two or more are partial); nobody otherwise.
* When: days from the round's start to the reference date, weighted by working
  hours (08:30–12:00 and 14:30–20:30, Asia/Shanghai local time); on the
  reference date itself only the morning, so a demo made "live" in the
  afternoon has nothing in the future.
* Where: the household's point plus GPS noise (``GPS_SIGMA_M`` = 4 m a side,
  clipped at 12 m); ``FAR_SHARE`` (2 %) of visited households were registered
  at their village committee or community office instead (the building
  nearest the centre of its community's buildings, at least ``FAR_MIN_M``
  away), with ``far_reason`` "住户在村委会登记" / "住户在社区居委会登记".
  ``distance_m`` is computed here on the WGS84 spheroid (``pyproj.Geod``) from
  the 6-decimal stored points.
* Workers: two grid workers (网格员) a grid; each visit is one of them.
* Cases: the reports give no count for Xinxing; the one figure they give is
  Zhanjiang's 20 patients discharged (seed report 000), a city of millions. At
  that rate a 210,000-person demo would have no case at all, so the demo
  assumes the rates of ``CASE_RATES`` per person of each risk group — mostly
  Hubei-linked people and close contacts, a few back from abroad, a trickle
  from fever clinics among everybody else — with at least ``MIN_CASES`` of
  each status so a small demo shows every status. Residents with a fever
  reading are chosen first. At the default size (210,000 residents) that is
  12 confirmed (4 since recovered), 7 asymptomatic (2 recovered) and 27
  suspected cases (14 ruled out): 46 in all. Histories: confirmed cases were
  reported suspected, confirmed 1–2 days later, and ``RECOVERED_SHARE`` have
  recovered (10–12 days after confirmation); asymptomatic cases, from testing,
  recover after 14 days of observation (the same share); ``RULED_OUT_SHARE``
  of suspected cases were ruled out 1–2 days after the report, the rest are
  pending (reported within the last 2 days). Reported by the county hospital,
  the township health centre or the county CDC; ``REMOTE_REPORT_SHARE`` by
  another township's health centre — they still count where the person lives.
* Checkpoints (卡口): per township, a highway exit 500 m inside the county
  edge where the township meets it, ``VILLAGE_ENTRANCES`` village entrances
  and ``ESTATE_GATES`` estate gates (``SEAT_ESTATE_GATES`` in the most urban
  township); no ports (Xinxing is inland). All set up on reference − 13 days
  (2020-01-24, assumed).
* Passages: the ``PASSAGE_DAYS`` (7) days up to the reference date, 06:00–22:00
  (to noon on the reference date). ``PASSAGES_PER_THOUSAND`` (20) passages of
  registered residents per thousand residents a day, at checkpoints of their
  own township (their estate gate or village entrance most often), not while
  they are under quarantine — except ``QUARANTINE_BREACH_SHARE`` (0.2 %) caught
  leaving, who show their yellow or red code. ``UNKNOWN_SHARE`` (25 %) of all
  passages are people (and vehicles) not registered in the county, mostly at
  highway exits, from ``ORIGINS``, with health codes ``UNKNOWN_CODE_P``
  (yellow or red for everyone from Hubei). Temperatures in tenths of a degree,
  mostly 36.0–37.2; ``PASSAGE_FEVER_SHARE`` (0.3 %) read 37.3–38.5. A passage
  is flagged when it reads ≥ 37.3 °C or shows a yellow or red code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Geod
from shapely.geometry import MultiLineString
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from geo.demo import (
    BoolArray,
    Buildings,
    DemoCounty,
    FloatArray,
    IntArray,
    StrArray,
    Table,
    apportion,
    id_check_digit,
)
from geo.demo_state import FEVER_THRESHOLD_C, DemoState
from geo.errors import InvalidInput
from geo.partition import M_PER_DEG_LAT, M_PER_DEG_LON_EQUATOR

# Mixed into the seed so the activity's draws never repeat the generator's or the state's.
ACTIVITY_STREAM = 3

# --- the screening round ---------------------------------------------------------------
ROUND_NAME = "第一轮全面排查"
ROUND_START_OFFSET_DAYS = -6  # 2020-01-31
ROUND_END_OFFSET_DAYS = 3  # 2020-02-09
VISITED_SHARE = 0.80
PROGRESS_BETA = (4.0, 1.0)  # per micro-grid share visited, mean 0.8
INCOMPLETE_SHARE = 0.095
INCOMPLETE_MIX = {"partial": 0.5, "nobody_home": 0.4, "refused": 0.1}
VACANT_SHARE = 0.01
REVISIT_SHARE = 0.06
REVISIT_MAX_DAYS = 3
GPS_SIGMA_M = 4.0
FAR_SHARE = 0.02
FAR_MIN_M = 150.0
FAR_LIMIT_M = 100.0  # a visit farther than this from the household needs a reason
FAR_REASON_VILLAGE = "住户在村委会登记"
FAR_REASON_URBAN = "住户在社区居委会登记"
WORKERS_PER_GRID = 2
# Opening hours as (from, to) minutes after midnight, local time (UTC+8).
VISIT_WINDOWS = ((8 * 60 + 30, 12 * 60), (14 * 60 + 30, 20 * 60 + 30))
PASSAGE_WINDOWS = ((6 * 60, 22 * 60),)
# Nothing happens after noon on the reference date.
REFERENCE_DAY_END_MINUTES = 12 * 60
VISIT_NOTES = {
    "partial": "{missing}人外出未见",
    "nobody_home": "无人在家，已留联系卡",
    "refused": "拒绝配合登记",
    "vacant": "房屋空置",
}

# --- cases -----------------------------------------------------------------------------
CASE_GROUPS = ("hubei_linked", "close_contact", "abroad_14d", "other")
CASE_KINDS = ("confirmed", "asymptomatic", "suspected")
CASE_RATES: dict[str, dict[str, float]] = {
    "hubei_linked": {"confirmed": 0.010, "asymptomatic": 0.005, "suspected": 0.020},
    "close_contact": {"confirmed": 0.010, "asymptomatic": 0.010, "suspected": 0.015},
    "abroad_14d": {"confirmed": 0.0, "asymptomatic": 0.0, "suspected": 0.030},
    "other": {"confirmed": 0.000005, "asymptomatic": 0.0, "suspected": 0.00003},
}
MIN_CASES = {"confirmed": 2, "asymptomatic": 1, "suspected": 2}
RECOVERED_SHARE = 0.3
RULED_OUT_SHARE = 0.5
REMOTE_REPORT_SHARE = 0.15
CASE_NOTES = {
    "hubei_linked": "湖北返乡人员",
    "close_contact": "密切接触者",
    "abroad_14d": "境外返回人员",
    "other": "发热门诊",
}

# --- checkpoints and passages ----------------------------------------------------------
EXIT_INSET_M = 500.0
EDGE_MIN_M = 1_000.0  # a township meets the county edge along at least this much
VILLAGE_ENTRANCES = 2
ESTATE_GATES = 2
SEAT_ESTATE_GATES = 4
CHECKPOINT_OFFSET_M = {"village_entrance": 40.0, "estate_gate": 20.0}
CHECKPOINT_SINCE_OFFSET_DAYS = -13  # 2020-01-24
PASSAGE_DAYS = 7
PASSAGES_PER_THOUSAND = 20.0
UNKNOWN_SHARE = 0.25
QUARANTINE_BREACH_SHARE = 0.002
PASSAGE_FEVER_SHARE = 0.003
UNKNOWN_CODE_P = {"green": 0.965, "yellow": 0.03, "red": 0.005}
HUBEI_RED_SHARE = 0.3
PLATE_SHARE = {"highway_exit": 0.7, "village_entrance": 0.1, "estate_gate": 0.1}
PLATE_ONLY_SHARE = 0.2  # of unknown passages at highway exits: a vehicle, nobody registered
# Checkpoint choice of a registered resident: weight by kind, for a village / urban resident;
# a highway exit of another township gets ``OTHER_EXIT_WEIGHT``.
KNOWN_KIND_WEIGHT = {
    "village_entrance": (4.0, 1.0),
    "estate_gate": (1.0, 4.0),
    "highway_exit": (1.0, 1.0),
}
OTHER_EXIT_WEIGHT = 0.1
UNKNOWN_KIND_WEIGHT = {"highway_exit": 4.0, "village_entrance": 1.0, "estate_gate": 1.0}
# Where people not registered in the county come from: (area code, city, plate prefix, weight).
ORIGINS: tuple[tuple[int, str, str, float], ...] = (
    (445302, "云浮市", "粤W", 30.0),
    (441202, "肇庆市", "粤H", 15.0),
    (440604, "佛山市", "粤E", 15.0),
    (440106, "广州市", "粤A", 15.0),
    (440304, "深圳市", "粤B", 8.0),
    (440703, "江门市", "粤J", 5.0),
    (440902, "茂名市", "粤K", 4.0),
    (440802, "湛江市", "粤G", 3.0),
    (450103, "南宁市", "桂A", 2.0),
    (420102, "武汉市", "鄂A", 1.0),
    (421002, "荆州市", "鄂D", 0.5),
)
LOCAL_PLATE = "粤W"

_NORMAL_TENTHS = (360, 372)
_FEVER_TENTHS = (373, 385)
_MEAN_TENTHS = 364.5
_SD_TENTHS = 2.5
_PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_SURNAMES = "陈黄李梁林张刘吴何罗郑杨周王谢冯邓叶苏曾蔡潘许朱彭卢钟余郭胡"
_GIVEN = "伟强军杰勇斌明辉华建国志文海俊锋丽芳娟敏静燕红霞玲梅琳婷慧秀英"
_MOBILE_PREFIXES = (130, 131, 132, 135, 136, 137, 138, 139, 150, 151, 158, 159, 186, 188, 189)
_GEOD = Geod(ellps="WGS84")
_NAT = np.datetime64("NaT", "D")

DateArray = NDArray[np.datetime64]


@dataclass(frozen=True)
class ScreeningRound:
    """The round: every household under ``area_code``, ``start_date`` to ``end_date``."""

    name: str
    area_code: str
    start_date: dt.date
    end_date: dt.date


@dataclass(frozen=True)
class Visits(Table):
    """One row per visit, in time order; ``household`` indexes ``demo.households``.
    Points are WGS84 on the 1e-6° grid; ``far_reason`` is "" unless
    ``distance_m`` > ``FAR_LIMIT_M``."""

    household: IntArray
    result: StrArray  # one of complete / partial / nobody_home / refused / vacant
    persons_seen: IntArray
    note: StrArray
    worker: StrArray
    visited_at: NDArray[np.datetime64]  # datetime64[s], local time (UTC+8)
    lon: FloatArray
    lat: FloatArray
    distance_m: FloatArray  # to the household's point, on the WGS84 spheroid
    far_reason: StrArray


@dataclass(frozen=True)
class Cases(Table):
    """One row per case, by resident index; ``status`` is the latest change's."""

    resident: IntArray
    household: IntArray
    group: StrArray  # one of CASE_GROUPS
    status: StrArray
    reported_on: DateArray
    onset_date: DateArray  # NaT for asymptomatic cases
    reported_by: StrArray
    reported_elsewhere: BoolArray  # by a health centre of another township
    note: StrArray


@dataclass(frozen=True)
class CaseStatusChanges(Table):
    """Each case's statuses in order; the first is its report. ``case`` indexes ``Cases``."""

    case: IntArray
    status: StrArray
    effective_on: DateArray


@dataclass(frozen=True)
class Checkpoints(Table):
    """Checkpoints (卡口), WGS84 points on the 1e-6° grid inside their township."""

    name: StrArray
    kind: StrArray  # highway_exit / village_entrance / estate_gate
    township_code: StrArray
    lon: FloatArray
    lat: FloatArray
    set_up_on: DateArray


@dataclass(frozen=True)
class Passages(Table):
    """One row per passage, in time order. ``resident`` is −1 for people not
    registered in the county; empty strings stand for missing text and NaN for
    a missing temperature."""

    checkpoint: IntArray
    passed_at: NDArray[np.datetime64]  # datetime64[s], local time (UTC+8)
    direction: StrArray  # "in" / "out"
    resident: IntArray
    person_name: StrArray
    id_number: StrArray
    phone: StrArray
    plate: StrArray
    temperature_c: FloatArray
    health_code: StrArray  # green / yellow / red / ""
    origin: StrArray
    home_microgrid_code: StrArray  # the resident's household's micro-grid; "" if unknown
    flagged: BoolArray  # ≥ 37.3 °C or a yellow or red code


@dataclass(frozen=True)
class DemoActivity:
    """What the grid teams, hospitals and checkpoints recorded up to ``reference_date``."""

    reference_date: dt.date
    seed: int
    screening_round: ScreeningRound
    visits: Visits
    cases: Cases
    case_changes: CaseStatusChanges
    checkpoints: Checkpoints
    passages: Passages

    def tables(self) -> tuple[Table, ...]:
        return (self.visits, self.cases, self.case_changes, self.checkpoints, self.passages)

    def digest(self) -> str:
        """SHA-256 over the round and every column: equal iff the activity is equal."""
        r = self.screening_round
        sha = hashlib.sha256(
            f"{self.reference_date}|{self.seed}|{r.name}|{r.area_code}|{r.start_date}|"
            f"{r.end_date}|".encode()
        )
        for table in self.tables():
            for name in table.column_names():
                sha.update(name.encode())
                sha.update(_column_bytes(getattr(table, name)))
        return sha.hexdigest()

    def household_results(self, households: int) -> StrArray:
        """Per household: the round's result — "complete" once any visit is, else
        the last visit's result; "" when not visited yet."""
        out = np.full(households, "", dtype="<U11")
        v = self.visits
        order = np.lexsort((v.visited_at, v.household))
        out[v.household[order]] = v.result[order]  # the last visit wins …
        out[v.household[v.result == "complete"]] = "complete"  # … unless one was complete
        return out.astype(np.str_)

    def summary(self, households: int) -> dict[str, object]:
        """Counts a person can check against the module docstring (``households``:
        the demo's household count, the round's denominator)."""
        results = self.household_results(households)
        visited = int((results != "").sum())
        incomplete = int(np.isin(results, ("partial", "nobody_home", "refused")).sum())
        v, c, p = self.visits, self.cases, self.passages
        statuses, status_counts = np.unique(c.status, return_counts=True)
        kinds, kind_counts = np.unique(self.checkpoints.kind, return_counts=True)
        return {
            "reference_date": self.reference_date.isoformat(),
            "screening_round": {
                "name": self.screening_round.name,
                "start_date": self.screening_round.start_date.isoformat(),
                "end_date": self.screening_round.end_date.isoformat(),
            },
            "visits": len(v),
            "households_visited": visited,
            "visited_share": round(visited / households, 4) if households else 0.0,
            "households_complete": int((results == "complete").sum()),
            "households_incomplete": incomplete,
            "households_vacant": int((results == "vacant").sum()),
            "incomplete_share_of_visited": round(incomplete / visited, 4) if visited else 0.0,
            "households_revisited": int(len(v) - np.unique(v.household).size),
            "far_visits": int((v.far_reason != "").sum()),
            "cases": len(c),
            "cases_by_status": {
                str(s): int(n) for s, n in zip(statuses, status_counts, strict=True)
            },
            "case_status_changes": len(self.case_changes),
            "cases_reported_elsewhere": int(c.reported_elsewhere.sum()),
            "checkpoints": len(self.checkpoints),
            "checkpoints_by_kind": {
                str(k): int(n) for k, n in zip(kinds, kind_counts, strict=True)
            },
            "passages": len(p),
            "passages_of_residents": int((p.resident >= 0).sum()),
            "passages_flagged": int(p.flagged.sum()),
        }

    def shifted(self, days: int) -> DemoActivity:
        """The same activity ``days`` days later (earlier when negative)."""
        if days == 0:
            return self
        later = dt.timedelta(days=days)
        r = self.screening_round
        changes = _shifted_tables(self, days)
        changes["screening_round"] = dataclasses.replace(
            r, start_date=r.start_date + later, end_date=r.end_date + later
        )
        return dataclasses.replace(self, reference_date=self.reference_date + later, **changes)


def shift_state(state: DemoState, days: int) -> DemoState:
    """The same state ``days`` days later: every date and time column of its
    tables (quarantine dates, check times) moves, and so does the reference date."""
    if days == 0:
        return state
    later = state.reference_date + dt.timedelta(days=days)
    return dataclasses.replace(state, reference_date=later, **_shifted_tables(state, days))


def _shifted_tables(obj: DemoActivity | DemoState, days: int) -> dict[str, Any]:
    """Every table field of ``obj``, shifted by ``days`` days."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Table):
            out[f.name] = _shift_table(value, days)
    return out


def _shift_table(table: Table, days: int) -> Table:
    """``table`` with every datetime64 column ``days`` days later (NaT stays NaT)."""
    step = np.timedelta64(days, "D")
    moved = {
        name: getattr(table, name) + step
        for name in table.column_names()
        if getattr(table, name).dtype.kind == "M"
    }
    return dataclasses.replace(table, **moved)


def is_flagged(temperature_c: float | None, health_code: str | None) -> bool:
    """A passage is flagged at 37.3 °C or more, or with a yellow or red code."""
    hot = temperature_c is not None and temperature_c >= FEVER_THRESHOLD_C
    return hot or health_code in ("yellow", "red")


def generate_activity(
    demo: DemoCounty, state: DemoState, *, seed: int | None = None
) -> DemoActivity:
    """Generate the demo's field activity up to ``state.reference_date``.

    ``seed`` defaults to the demo's seed. See the module docstring for the
    proportions; promises: every visit is of a demo household, between the
    round's start and the reference date (noon), with ``persons_seen`` ≤ the
    household's size; each case is a distinct resident whose history starts
    with its report and ends with its status; every checkpoint lies inside its
    township; a passage of a resident carries their household's micro-grid.
    """
    if len(state.residents) != len(demo.residents):
        raise InvalidInput("the state was not generated for this demo (resident counts differ)")
    base_seed = demo.seed if seed is None else seed
    rng = np.random.default_rng([base_seed, ACTIVITY_STREAM])
    day = np.datetime64(state.reference_date, "D")
    start = day + np.timedelta64(ROUND_START_OFFSET_DAYS, "D")
    screening_round = ScreeningRound(
        name=ROUND_NAME,
        area_code=demo.county_code,
        start_date=start.astype(dt.date),
        end_date=(day + np.timedelta64(ROUND_END_OFFSET_DAYS, "D")).astype(dt.date),
    )
    visits = _visits(rng, demo=demo, start=start, day=day)
    cases, changes = _cases(rng, demo=demo, state=state, day=day)
    checkpoints = _checkpoints(rng, demo=demo, day=day)
    passages = _passages(rng, demo=demo, state=state, checkpoints=checkpoints, day=day)
    return DemoActivity(
        reference_date=state.reference_date,
        seed=base_seed,
        screening_round=screening_round,
        visits=visits,
        cases=cases,
        case_changes=changes,
        checkpoints=checkpoints,
        passages=passages,
    )


# --- visits ------------------------------------------------------------------------------


def _visits(
    rng: np.random.Generator, *, demo: DemoCounty, start: np.datetime64, day: np.datetime64
) -> Visits:
    h, b = demo.households, demo.buildings
    n = len(h)
    mg_codes, microgrid = np.unique(b.microgrid_code[h.building], return_inverse=True)
    microgrid = microgrid.astype(np.int64)
    sizes = np.bincount(microgrid, minlength=mg_codes.size).astype(np.int64)
    progress = rng.beta(*PROGRESS_BETA, size=mg_codes.size)
    target = round(VISITED_SHARE * n)
    per_microgrid = _visited_per_microgrid(sizes, progress, target=target)
    # Teams walk a micro-grid building by building, in an order of their own.
    building_key = rng.random(len(b))
    walk = np.lexsort((np.arange(n), building_key[h.building], microgrid))
    rank = _rank_in_sorted_groups(microgrid[walk])
    visited = walk[rank < per_microgrid[microgrid[walk]]]  # walk order, grouped by micro-grid
    k = visited.size
    # Times drawn per visit, sorted within each micro-grid, dealt out in walk order.
    stamps = _timestamps(rng, n=k, first=start, last=day, windows=VISIT_WINDOWS)
    stamps = stamps[np.lexsort((stamps, microgrid[visited]))]
    result = _results(rng, persons=h.persons[visited])
    persons = h.persons[visited]
    seen = np.where(result == "complete", persons, 0)
    partial = result == "partial"
    seen[partial] = 1 + np.floor(rng.random(int(partial.sum())) * (persons[partial] - 1)).astype(
        np.int64
    )
    # Revisits: nobody home first, complete 1–3 days later.
    final_day = stamps.astype("datetime64[D]")
    can_revisit = np.flatnonzero((result == "complete") & (final_day > start))
    revisits = rng.permutation(can_revisit)[
        : min(can_revisit.size, round(REVISIT_SHARE * int((result == "complete").sum())))
    ]
    revisits.sort()
    room = np.minimum((final_day[revisits] - start).astype(np.int64), REVISIT_MAX_DAYS)
    back = 1 + np.floor(rng.random(revisits.size) * room).astype(np.int64)
    first_day = final_day[revisits] - back.astype("timedelta64[D]")
    first_stamps = first_day.astype("datetime64[s]") + _clock(
        rng, n=revisits.size, windows=VISIT_WINDOWS, reference_day=np.zeros(revisits.size, bool)
    ).astype("timedelta64[s]")
    household = np.concatenate([visited, visited[revisits]])
    stamp = np.concatenate([stamps, first_stamps])
    outcome = np.concatenate([result, np.full(revisits.size, "nobody_home")]).astype(np.str_)
    seen = np.concatenate([seen, np.zeros(revisits.size, np.int64)])
    final = np.concatenate([np.ones(k, np.bool_), np.zeros(revisits.size, np.bool_)])
    lon, lat, far_reason = _visit_points(rng, demo=demo, household=household, final=final)
    home_lon, home_lat = b.lon[h.building[household]], b.lat[h.building[household]]
    distance = _geod_distance_m(home_lon, home_lat, lon, lat)
    worker = _workers(rng, demo=demo, household=household)
    missing = h.persons[household] - seen
    note = np.array(
        [
            VISIT_NOTES.get(r, "").format(missing=m)
            for r, m in zip(outcome.tolist(), missing.tolist(), strict=True)
        ],
        dtype=np.str_,
    )
    order = np.lexsort((household, stamp))
    return Visits(
        household=household[order].astype(np.int64),
        result=outcome[order],
        persons_seen=seen[order].astype(np.int64),
        note=note[order],
        worker=worker[order],
        visited_at=stamp[order].astype("datetime64[s]"),
        lon=lon[order],
        lat=lat[order],
        distance_m=distance[order],
        far_reason=far_reason[order],
    )


def _visited_per_microgrid(sizes: IntArray, progress: FloatArray, *, target: int) -> IntArray:
    """Households visited per micro-grid: ``sizes × min(1, progress × s)`` with the
    scale ``s`` that makes the total ``target``, rounded by largest remainder
    (each share ≤ the micro-grid's size)."""
    if target <= 0 or sizes.size == 0:
        return np.zeros(sizes.size, dtype=np.int64)

    def total(scale: float) -> float:
        return float((sizes * np.minimum(1.0, progress * scale)).sum())

    low, high = 0.0, 1.0 / max(float(progress.min()), 1e-12)
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if total(middle) < target else (low, middle)
    # total(high) ≥ target, so every quota below is ≤ its micro-grid's size.
    quotas = np.asarray(sizes * np.minimum(1.0, progress * high), dtype=np.float64)
    return np.minimum(apportion(target, quotas), sizes)


def _results(rng: np.random.Generator, *, persons: IntArray) -> StrArray:
    """Exact shares of each result among the visited; partial only where ≥ 2 live."""
    k = persons.size
    incomplete = (
        apportion(round(INCOMPLETE_SHARE * k), list(INCOMPLETE_MIX.values())) if k else None
    )
    counts = (
        dict(zip(INCOMPLETE_MIX, incomplete.tolist(), strict=True))
        if incomplete is not None
        else {}
    )
    counts["vacant"] = round(VACANT_SHARE * k)
    result = np.full(k, "complete", dtype="<U11")
    order = rng.permutation(k)
    multi = order[persons[order] >= 2]
    partial = multi[: counts.get("partial", 0)]
    result[partial] = "partial"
    rest = order[result[order] == "complete"]
    position = 0
    for outcome in ("nobody_home", "refused", "vacant"):
        chosen = rest[position : position + counts.get(outcome, 0)]
        result[chosen] = outcome
        position += chosen.size
    return result.astype(np.str_)


def _visit_points(
    rng: np.random.Generator, *, demo: DemoCounty, household: IntArray, final: BoolArray
) -> tuple[FloatArray, FloatArray, StrArray]:
    """The phone's point: the household's, with GPS noise; for ``FAR_SHARE`` of
    the last visits, the community office's (when that is ``FAR_MIN_M`` away)."""
    b = demo.buildings
    building = demo.households.building[household]
    office = _community_offices(demo)[building]
    office_distance = _geod_distance_m(
        b.lon[building], b.lat[building], b.lon[office], b.lat[office]
    )
    candidates = np.flatnonzero(final & (office_distance >= FAR_MIN_M))
    far_count = min(candidates.size, round(FAR_SHARE * int(final.sum())))
    far = np.zeros(household.size, dtype=np.bool_)
    far[rng.permutation(candidates)[:far_count]] = True
    at = np.where(far, office, building)
    lat0 = b.lat[at]
    # Clipped at 3 sigma, so a near visit is never mistaken for a far one.
    noise = np.clip(
        rng.normal(0.0, GPS_SIGMA_M, size=(household.size, 2)), -3 * GPS_SIGMA_M, 3 * GPS_SIGMA_M
    )
    lon = np.round(b.lon[at] + noise[:, 0] / (M_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat0))), 6)
    lat = np.round(lat0 + noise[:, 1] / M_PER_DEG_LAT, 6)
    urban = b.road[building] != ""
    reason = np.where(far, np.where(urban, FAR_REASON_URBAN, FAR_REASON_VILLAGE), "")
    return lon.astype(np.float64), lat.astype(np.float64), reason.astype(np.str_)


def _community_offices(demo: DemoCounty) -> IntArray:
    """Per building: the building of its community nearest the centre of the
    community's buildings (where the village committee or community office is)."""
    b = demo.buildings
    if len(b) == 0:
        return np.zeros(0, dtype=np.int64)
    codes, community = np.unique(b.community_code, return_inverse=True)
    counts = np.bincount(community, minlength=codes.size)
    mean_lon = np.bincount(community, weights=b.lon, minlength=codes.size) / counts
    mean_lat = np.bincount(community, weights=b.lat, minlength=codes.size) / counts
    k_lon = np.cos(np.radians(mean_lat[community]))
    d2 = ((b.lon - mean_lon[community]) * k_lon) ** 2 + (b.lat - mean_lat[community]) ** 2
    order = np.lexsort((np.arange(len(b)), d2, community))
    first = np.ones(order.size, dtype=np.bool_)
    first[1:] = community[order][1:] != community[order][:-1]
    office_of = np.empty(codes.size, dtype=np.int64)
    office_of[community[order][first]] = order[first]
    return np.asarray(office_of[community], dtype=np.int64)


def _workers(rng: np.random.Generator, *, demo: DemoCounty, household: IntArray) -> StrArray:
    """``WORKERS_PER_GRID`` grid workers per grid; each visit is one of its grid's."""
    b = demo.buildings
    grid_codes, grid = np.unique(b.grid_code, return_inverse=True)
    names = _person_names(rng, grid_codes.size * WORKERS_PER_GRID).reshape(-1, WORKERS_PER_GRID)
    if household.size == 0:
        return np.zeros(0, dtype=np.str_)
    g = grid[demo.households.building[household]]
    pick = rng.integers(0, WORKERS_PER_GRID, size=household.size)
    return np.asarray(names[g, pick], dtype=np.str_)


# --- cases -------------------------------------------------------------------------------


def expected_cases(group_sizes: dict[str, int]) -> dict[str, int]:
    """Cases per kind (confirmed, asymptomatic, suspected) for the given risk-group
    sizes: ``CASE_RATES`` summed and rounded, at least ``MIN_CASES`` each."""
    out = {}
    for kind in CASE_KINDS:
        rate_sum = sum(CASE_RATES[g][kind] * group_sizes.get(g, 0) for g in CASE_GROUPS)
        out[kind] = max(MIN_CASES[kind], round(rate_sum))
    return out


def _case_groups(demo: DemoCounty, state: DemoState) -> StrArray:
    r = demo.residents
    group = np.full(len(r), "other", dtype="<U13")
    group[r.abroad_14d] = "abroad_14d"
    group[state.residents.close_contact] = "close_contact"
    group[r.hubei_linked] = "hubei_linked"
    return group.astype(np.str_)


def _cases(
    rng: np.random.Generator, *, demo: DemoCounty, state: DemoState, day: np.datetime64
) -> tuple[Cases, CaseStatusChanges]:
    group = _case_groups(demo, state)
    sizes = {g: int((group == g).sum()) for g in CASE_GROUPS}
    wanted = expected_cases(sizes)
    fever = state.residents.fever
    # Each group's people in the order cases are taken: fever readings first.
    pools = {}
    for g in CASE_GROUPS:
        members = np.flatnonzero(group == g)
        members = members[rng.permutation(members.size)]
        pools[g] = members[np.argsort(~fever[members], kind="stable")]
    taken = {g: 0 for g in CASE_GROUPS}
    residents: list[IntArray] = []
    kinds: list[str] = []
    for kind in CASE_KINDS:
        if wanted[kind] == 0 or len(demo.residents) == 0:
            continue
        weights = [CASE_RATES[g][kind] * sizes[g] for g in CASE_GROUPS]
        if sum(weights) <= 0:
            weights = [float(g == "other") for g in CASE_GROUPS]
        shares = apportion(wanted[kind], weights).tolist()
        overflow = 0
        for g, share in zip(CASE_GROUPS, shares, strict=True):
            want = share + (overflow if g == "other" else 0)
            got = pools[g][taken[g] : taken[g] + want]
            taken[g] += got.size
            overflow += share - got.size if g != "other" else 0
            residents.append(got)
            kinds += [kind] * got.size
    resident = np.concatenate(residents) if residents else np.zeros(0, np.int64)
    case_kind = np.array(kinds, dtype=np.str_)
    histories = _histories(rng, kind=case_kind, day=day)
    reported_by, elsewhere = _reporters(rng, demo=demo, resident=resident, kind=case_kind)
    statuses, reported_on, onset, change_case, change_status, change_on = histories
    order = np.lexsort((resident, reported_on))
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    change_order = np.lexsort((change_on, rank[change_case]))
    cases = Cases(
        resident=resident[order].astype(np.int64),
        household=demo.residents.household[resident[order]].astype(np.int64),
        group=group[resident[order]],
        status=statuses[order],
        reported_on=reported_on[order],
        onset_date=onset[order],
        reported_by=reported_by[order],
        reported_elsewhere=elsewhere[order],
        note=np.array([CASE_NOTES[g] for g in group[resident[order]].tolist()], dtype=np.str_),
    )
    changes = CaseStatusChanges(
        case=rank[change_case][change_order].astype(np.int64),
        status=change_status[change_order],
        effective_on=change_on[change_order],
    )
    return cases, changes


def _histories(
    rng: np.random.Generator, *, kind: StrArray, day: np.datetime64
) -> tuple[StrArray, DateArray, DateArray, IntArray, StrArray, DateArray]:
    """Per case: current status, report date, onset (NaT if none); and the
    status changes as (case, status, effective_on) columns."""
    n = kind.size
    status = np.empty(n, dtype="<U12")
    reported = np.full(n, _NAT, dtype="datetime64[D]")
    onset = np.full(n, _NAT, dtype="datetime64[D]")
    change_case: list[int] = []
    change_status: list[str] = []
    change_on: list[np.datetime64] = []

    def days(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1))

    def add(case: int, what: str, on: np.datetime64) -> None:
        change_case.append(case)
        change_status.append(what)
        change_on.append(on)
        status[case] = what

    for what in CASE_KINDS:
        members = np.flatnonzero(kind == what)
        if what == "suspected":
            settled = round(RULED_OUT_SHARE * members.size)
        else:
            settled = round(RECOVERED_SHARE * members.size)
            if what == "confirmed" and members.size >= 2:
                settled = max(settled, 1)
        for i, case in enumerate(members.tolist()):
            done = i < settled
            if what == "confirmed":
                # Recovered: reported by reference − 14, in hospital 10–12 days after confirmation.
                r = day - np.timedelta64(days(14, 17) if done else days(1, 10), "D")
                c = min(r + np.timedelta64(days(1, 2), "D"), day)
                add(case, "suspected", r)
                add(case, "confirmed", c)
                if done:
                    add(case, "recovered", c + np.timedelta64(days(10, 12), "D"))
                onset[case] = r - np.timedelta64(days(0, 4), "D")
            elif what == "asymptomatic":
                r = day - np.timedelta64(days(15, 20) if done else days(0, 12), "D")
                add(case, "asymptomatic", r)
                if done:
                    add(case, "recovered", r + np.timedelta64(14, "D"))
            else:
                r = day - np.timedelta64(days(3, 12) if done else days(0, 2), "D")
                add(case, "suspected", r)
                if done:
                    add(case, "ruled_out", r + np.timedelta64(days(1, 2), "D"))
                onset[case] = r - np.timedelta64(days(0, 3), "D")
            reported[case] = r
    return (
        status.astype(np.str_),
        reported,
        onset,
        np.array(change_case, dtype=np.int64),
        np.array(change_status, dtype=np.str_),
        np.array(change_on, dtype="datetime64[D]"),
    )


def _reporters(
    rng: np.random.Generator, *, demo: DemoCounty, resident: IntArray, kind: StrArray
) -> tuple[StrArray, BoolArray]:
    """County hospital for confirmed cases, the CDC for asymptomatic ones, the
    township health centre or the county hospital for suspected ones;
    ``REMOTE_REPORT_SHARE`` by another township's health centre."""
    towns = demo.areas_of("township")
    town_names = {t.code: t.name for t in towns}
    b = demo.buildings
    home_town = b.township_code[demo.households.building[demo.residents.household[resident]]]
    hospital = f"{demo.county_name}人民医院"
    cdc = f"{demo.county_name}疾病预防控制中心"
    out: list[str] = []
    for what, town in zip(kind.tolist(), home_town.tolist(), strict=True):
        if what == "confirmed":
            out.append(hospital)
        elif what == "asymptomatic":
            out.append(cdc)
        else:
            out.append(hospital if rng.random() < 0.5 else f"{town_names.get(town, '')}卫生院")
    n = resident.size
    elsewhere = np.zeros(n, dtype=np.bool_)
    remote = rng.permutation(n)[: max(1, round(REMOTE_REPORT_SHARE * n)) if n >= 3 else 0]
    codes = sorted(town_names)
    for case in remote.tolist():
        others = [c for c in codes if c != home_town[case]]
        if others:
            out[case] = f"{town_names[others[int(rng.integers(0, len(others)))]]}卫生院"
            elsewhere[case] = True
    return np.array(out, dtype=np.str_).reshape(n), elsewhere


# --- checkpoints -------------------------------------------------------------------------


def _checkpoints(rng: np.random.Generator, *, demo: DemoCounty, day: np.datetime64) -> Checkpoints:
    county = demo.areas_of("county")
    if not county:
        raise InvalidInput("the demo county has no county outline")
    outline = county[0].geom_4326
    shapely.prepare(outline)
    # The county edge, widened by ~0.1 m: township edges on it are snapped to it.
    edge_zone = outline.boundary.buffer(1e-6)
    b = demo.buildings
    towns = demo.areas_of("township")
    urban_per_town = [int(((b.township_code == t.code) & (b.road != "")).sum()) for t in towns]
    seat = int(np.argmax(urban_per_town)) if towns else -1
    names: list[str] = []
    kinds: list[str] = []
    town_codes: list[str] = []
    points: list[tuple[float, float]] = []

    def add(name: str, kind: str, town_code: str, point: tuple[float, float]) -> None:
        names.append(name)
        kinds.append(kind)
        town_codes.append(town_code)
        points.append(point)

    for t, town in enumerate(towns):
        region = town.geom_4326
        shapely.prepare(region)
        shared = _lines(region.boundary.intersection(edge_zone))
        if shared.length * M_PER_DEG_LAT >= EDGE_MIN_M:
            at = shapely.line_interpolate_point(
                shared, float(rng.uniform(0.2, 0.8)), normalized=True
            )
            add(f"{town.name}高速出口卡口", "highway_exit", town.code, _inset(region, at, outline))
        in_town = b.township_code == town.code
        villages = np.flatnonzero(in_town & (b.road == ""))
        communities = np.unique(b.community_code[villages])
        for code in rng.permutation(communities)[:VILLAGE_ENTRANCES].tolist():
            pool = villages[b.community_code[villages] == code]
            building = int(pool[rng.integers(0, pool.size)])
            point = _near(
                rng, b, building, CHECKPOINT_OFFSET_M["village_entrance"], region, outline
            )
            add(f"{town.name}{b.community[building]}村口卡口", "village_entrance", town.code, point)
        urban = np.flatnonzero(in_town & (b.estate != ""))
        estate_keys = np.char.add(np.char.add(b.community_code[urban], "|"), b.estate[urban])
        keys, first = np.unique(estate_keys, return_index=True)
        gates = SEAT_ESTATE_GATES if t == seat else ESTATE_GATES
        for pick in rng.permutation(keys.size)[:gates].tolist():
            building = int(urban[first[pick]])
            point = _near(rng, b, building, CHECKPOINT_OFFSET_M["estate_gate"], region, outline)
            add(f"{town.name}{b.estate[building]}大门卡口", "estate_gate", town.code, point)
    since = day + np.timedelta64(CHECKPOINT_SINCE_OFFSET_DAYS, "D")
    return Checkpoints(
        name=np.array(names, dtype=np.str_),
        kind=np.array(kinds, dtype=np.str_),
        township_code=np.array(town_codes, dtype=np.str_),
        lon=np.array([p[0] for p in points], dtype=np.float64),
        lat=np.array([p[1] for p in points], dtype=np.float64),
        set_up_on=np.full(len(names), since, dtype="datetime64[D]"),
    )


def _lines(geom: BaseGeometry) -> MultiLineString:
    """The line parts of ``geom`` as one MultiLineString (empty when there are none)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "LineString" and p.length > 0]
    return MultiLineString(parts)


def _inset(region: BaseGeometry, at: BaseGeometry, outline: BaseGeometry) -> tuple[float, float]:
    """The point of ``region`` pulled ``EXIT_INSET_M`` in from ``at`` (on its edge)."""
    for inset_m in (EXIT_INSET_M, EXIT_INSET_M / 5, 0.0):
        inner = region.buffer(-inset_m / M_PER_DEG_LAT) if inset_m else region
        if inner.is_empty:
            continue
        point = nearest_points(inner, at)[0]
        candidate = (round(float(point.x), 6), round(float(point.y), 6))
        if _inside(candidate, region, outline):
            return candidate
    return _fallback(region)


def _near(
    rng: np.random.Generator,
    b: Buildings,
    building: int,
    offset_m: float,
    region: BaseGeometry,
    outline: BaseGeometry,
) -> tuple[float, float]:
    """A point ``offset_m`` from ``building`` in a random direction, inside the
    township (the building's own point if the offset leaves it)."""
    lon0, lat0 = float(b.lon[building]), float(b.lat[building])
    angle = float(rng.uniform(0.0, 2 * math.pi))
    k_lon = M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat0))
    candidate = (
        round(lon0 + offset_m * math.cos(angle) / k_lon, 6),
        round(lat0 + offset_m * math.sin(angle) / M_PER_DEG_LAT, 6),
    )
    if _inside(candidate, region, outline):
        return candidate
    return (round(lon0, 6), round(lat0, 6))


def _inside(point: tuple[float, float], region: BaseGeometry, outline: BaseGeometry) -> bool:
    return bool(
        shapely.contains_xy(region, point[0], point[1])
        and shapely.contains_xy(outline, point[0], point[1])
    )


def _fallback(region: BaseGeometry) -> tuple[float, float]:
    point = region.representative_point()
    return round(float(point.x), 6), round(float(point.y), 6)


# --- passages ----------------------------------------------------------------------------


def _passages(
    rng: np.random.Generator,
    *,
    demo: DemoCounty,
    state: DemoState,
    checkpoints: Checkpoints,
    day: np.datetime64,
) -> Passages:
    r = demo.residents
    h, b = demo.households, demo.buildings
    n_res = len(r)
    if len(checkpoints) == 0 or n_res == 0:
        return _empty_passages()
    first_day = day - np.timedelta64(PASSAGE_DAYS - 1, "D")
    per_day = PASSAGES_PER_THOUSAND * n_res / 1000
    stamps = _timestamps(
        rng, n=round(per_day * _open_days(PASSAGE_WINDOWS, PASSAGE_DAYS)), first=first_day,
        last=day, windows=PASSAGE_WINDOWS,
    )  # fmt: skip
    stamp_day = stamps.astype("datetime64[D]")
    known = _passers(rng, state=state, stamp_day=stamp_day, n_res=n_res)
    resident, code = known
    building = h.building[r.household[resident]]
    town = b.township_code[building]
    urban = b.road[building] != ""
    checkpoint = _known_checkpoints(rng, checkpoints=checkpoints, town=town, urban=urban)
    k = resident.size
    at_exit = checkpoints.kind[checkpoint] == "highway_exit"
    plate = np.where(
        at_exit & (rng.random(k) < PLATE_SHARE["highway_exit"]), _plates(rng, k, LOCAL_PLATE), ""
    )
    unknown_count = round(k * UNKNOWN_SHARE / (1 - UNKNOWN_SHARE))
    unknown = _unknown_passages(
        rng, checkpoints=checkpoints, stamps=_timestamps(
            rng, n=unknown_count, first=first_day, last=day, windows=PASSAGE_WINDOWS
        ),
    )  # fmt: skip
    total = k + unknown_count
    tenths = np.where(
        rng.random(total) < PASSAGE_FEVER_SHARE,
        rng.integers(_FEVER_TENTHS[0], _FEVER_TENTHS[1] + 1, size=total),
        np.clip(np.rint(rng.normal(_MEAN_TENTHS, _SD_TENTHS, size=total)), *_NORMAL_TENTHS),
    ).astype(np.int64)
    # tenths / 10 is the double nearest the reading, so 373 / 10 == 37.3 exactly.
    temperature = tenths / 10
    health = np.concatenate([code, unknown["health_code"]]).astype(np.str_)
    direction = np.where(rng.random(total) < 0.5, "in", "out").astype(np.str_)
    passed_at = np.concatenate([stamps, unknown["stamps"]])
    all_resident = np.concatenate([resident, np.full(unknown_count, -1, np.int64)])
    home = np.concatenate([b.microgrid_code[building], np.full(unknown_count, "")]).astype(np.str_)
    flagged = (tenths >= round(FEVER_THRESHOLD_C * 10)) | np.isin(health, ("yellow", "red"))
    order = np.lexsort((np.arange(total), passed_at))
    return Passages(
        checkpoint=np.concatenate([checkpoint, unknown["checkpoint"]])[order].astype(np.int64),
        passed_at=passed_at[order].astype("datetime64[s]"),
        direction=direction[order],
        resident=all_resident[order],
        person_name=np.concatenate([r.name[resident], unknown["name"]]).astype(np.str_)[order],
        id_number=np.concatenate([r.id_number[resident], unknown["id_number"]]).astype(np.str_)[
            order
        ],
        phone=np.concatenate([np.full(k, ""), unknown["phone"]]).astype(np.str_)[order],
        plate=np.concatenate([plate, unknown["plate"]]).astype(np.str_)[order],
        temperature_c=temperature[order],
        health_code=health[order],
        origin=np.concatenate([np.full(k, ""), unknown["origin"]]).astype(np.str_)[order],
        home_microgrid_code=home[order],
        flagged=flagged[order],
    )


def _passers(
    rng: np.random.Generator, *, state: DemoState, stamp_day: DateArray, n_res: int
) -> tuple[IntArray, StrArray]:
    """A registered resident for each passage: somebody not under quarantine
    that day (green code), or for ``QUARANTINE_BREACH_SHARE`` somebody under a
    quarantine still running on the reference date (their yellow or red code)."""
    q = state.quarantines
    resident = np.zeros(stamp_day.size, dtype=np.int64)
    code = np.full(stamp_day.size, "green", dtype="<U6")
    still_in = np.isnat(q.released_on)
    for d in np.unique(stamp_day):
        slots = np.flatnonzero(stamp_day == d)
        covering = (q.start <= d) & (still_in | (d < q.released_on))
        away = np.zeros(n_res, dtype=np.bool_)
        away[q.resident[covering]] = True
        free = np.flatnonzero(~away)
        breachers = np.unique(q.resident[covering & still_in])
        breach = rng.random(slots.size) < QUARANTINE_BREACH_SHARE
        if breachers.size == 0:
            breach[:] = False
        elif free.size == 0:
            breach[:] = True
        stay = slots[~breach]
        if free.size:
            resident[stay] = free[rng.integers(0, free.size, size=stay.size)]
        if breach.any():
            chosen = breachers[rng.integers(0, breachers.size, size=int(breach.sum()))]
            resident[slots[breach]] = chosen
            code[slots[breach]] = state.residents.health_code[chosen]
    return resident, code.astype(np.str_)


def _known_checkpoints(
    rng: np.random.Generator, *, checkpoints: Checkpoints, town: StrArray, urban: BoolArray
) -> IntArray:
    out = np.zeros(town.size, dtype=np.int64)
    exits = checkpoints.kind == "highway_exit"
    for code in np.unique(town).tolist():
        for is_urban in (False, True):
            slots = np.flatnonzero((town == code) & (urban == is_urban))
            if slots.size == 0:
                continue
            own = checkpoints.township_code == code
            weights = np.array(
                [KNOWN_KIND_WEIGHT[k][int(is_urban)] for k in checkpoints.kind.tolist()]
            )
            weights = np.where(own, weights, np.where(exits, OTHER_EXIT_WEIGHT, 0.0))
            if weights.sum() <= 0:
                weights = np.ones(len(checkpoints))
            out[slots] = rng.choice(len(checkpoints), size=slots.size, p=weights / weights.sum())
    return out


def _unknown_passages(
    rng: np.random.Generator, *, checkpoints: Checkpoints, stamps: NDArray[np.datetime64]
) -> dict[str, NDArray[np.generic]]:
    """People (and vehicles) not registered in the county."""
    n = stamps.size
    weights = np.array([UNKNOWN_KIND_WEIGHT[k] for k in checkpoints.kind.tolist()])
    checkpoint = rng.choice(len(checkpoints), size=n, p=weights / weights.sum()).astype(np.int64)
    kind = checkpoints.kind[checkpoint]
    origin_weights = np.array([o[3] for o in ORIGINS])
    origin = rng.choice(len(ORIGINS), size=n, p=origin_weights / origin_weights.sum())
    area = np.array([o[0] for o in ORIGINS], dtype=np.int64)[origin]
    hubei = area // 10_000 == 42
    codes = rng.choice(list(UNKNOWN_CODE_P), size=n, p=list(UNKNOWN_CODE_P.values()))
    codes = np.where(hubei, np.where(rng.random(n) < HUBEI_RED_SHARE, "red", "yellow"), codes)
    plate_share = np.array([PLATE_SHARE[k] for k in kind.tolist()], dtype=np.float64)
    has_plate = rng.random(n) < plate_share
    plate_only = (kind == "highway_exit") & (rng.random(n) < PLATE_ONLY_SHARE)
    has_plate |= plate_only
    prefixes = np.array([o[2] for o in ORIGINS], dtype=np.str_)[origin]
    plates = np.char.add(prefixes, _plates(rng, n, ""))
    male = rng.random(n) < 0.5
    names = _person_names(rng, n)
    ids = _id_numbers(rng, area=area, male=male)
    phones = _phones(rng, n)
    return {
        "stamps": stamps,
        "checkpoint": checkpoint,
        "name": np.where(plate_only, "", names).astype(np.str_),
        "id_number": np.where(plate_only, "", ids).astype(np.str_),
        "phone": np.where(plate_only, "", phones).astype(np.str_),
        "plate": np.where(has_plate, plates, "").astype(np.str_),
        "origin": np.array([o[1] for o in ORIGINS], dtype=np.str_)[origin],
        "health_code": np.where(plate_only, "", codes).astype(np.str_),
    }


def _empty_passages() -> Passages:
    empty_s = np.zeros(0, dtype=np.str_)
    return Passages(
        checkpoint=np.zeros(0, np.int64), passed_at=np.zeros(0, "datetime64[s]"),
        direction=empty_s, resident=np.zeros(0, np.int64), person_name=empty_s,
        id_number=empty_s, phone=empty_s, plate=empty_s, temperature_c=np.zeros(0),
        health_code=empty_s, origin=empty_s, home_microgrid_code=empty_s,
        flagged=np.zeros(0, np.bool_),
    )  # fmt: skip


# --- people, numbers, times --------------------------------------------------------------


def _person_names(rng: np.random.Generator, n: int) -> StrArray:
    surnames = np.array(list(_SURNAMES), dtype=np.str_)
    given = np.array(list(_GIVEN), dtype=np.str_)
    second = np.where(rng.random(n) < 0.7, rng.choice(given, n), "")
    return np.char.add(np.char.add(rng.choice(surnames, n), rng.choice(given, n)), second).astype(
        np.str_
    )


def _id_numbers(rng: np.random.Generator, *, area: IntArray, male: BoolArray) -> StrArray:
    """GB 11643 numbers of adults 18–70 (not checked for uniqueness: visitors)."""
    n = area.size
    born = np.datetime64("1950-01-01") + rng.integers(0, 52 * 365, size=n).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(born, unit="D"), "-", "")
    sequence = 2 * rng.integers(0, 499, size=n) + np.where(male, 1, 2)
    first17 = [
        f"{a:06d}{d}{s:03d}"
        for a, d, s in zip(area.tolist(), ymd.tolist(), sequence.tolist(), strict=True)
    ]
    return (
        np.array([f + id_check_digit(f) for f in first17], dtype=np.str_)
        if n
        else np.zeros(0, np.str_)
    )


def _phones(rng: np.random.Generator, n: int) -> StrArray:
    prefixes = np.array(_MOBILE_PREFIXES, dtype=np.int64)
    numbers = rng.choice(prefixes, size=n) * 10**8 + rng.integers(0, 10**8, size=n)
    return numbers.astype(np.str_)


def _plates(rng: np.random.Generator, n: int, prefix: str) -> StrArray:
    chars = np.array(list(_PLATE_CHARS), dtype=np.str_)
    picks = rng.choice(chars, size=(n, 5))
    body = picks[:, 0] if n else np.zeros(0, np.str_)
    for i in range(1, 5):
        body = np.char.add(body, picks[:, i])
    return np.char.add(prefix, body).astype(np.str_) if n else np.zeros(0, np.str_)


def _open_days(windows: Sequence[tuple[int, int]], days: int) -> float:
    """Days' worth of opening hours over ``days`` days, the last ending at noon."""
    full = sum(e - s for s, e in windows)
    last = sum(max(0, min(e, REFERENCE_DAY_END_MINUTES) - s) for s, e in windows)
    return (days - 1) + last / full if days else 0.0


def _timestamps(
    rng: np.random.Generator,
    *,
    n: int,
    first: np.datetime64,
    last: np.datetime64,
    windows: Sequence[tuple[int, int]],
) -> NDArray[np.datetime64]:
    """``n`` local times from ``first`` to ``last`` (days) within the opening
    ``windows``; days weighted by their opening hours (the last ends at noon)."""
    days = int((last - first).astype(np.int64)) + 1
    if n == 0 or days <= 0:
        return np.zeros(0, dtype="datetime64[s]")
    full = sum(e - s for s, e in windows)
    short = sum(max(0, min(e, REFERENCE_DAY_END_MINUTES) - s) for s, e in windows)
    weights = np.full(days, float(full))
    weights[-1] = short
    offset = rng.choice(days, size=n, p=weights / weights.sum())
    reference_day = offset == days - 1
    clock = _clock(rng, n=n, windows=windows, reference_day=reference_day)
    stamp_day = first + offset.astype("timedelta64[D]")
    return np.asarray(
        stamp_day.astype("datetime64[s]") + clock.astype("timedelta64[s]"), dtype="datetime64[s]"
    )


def _clock(
    rng: np.random.Generator,
    *,
    n: int,
    windows: Sequence[tuple[int, int]],
    reference_day: BoolArray,
) -> IntArray:
    """Seconds after midnight, uniform over the opening ``windows`` (minutes);
    before noon where ``reference_day``."""
    starts = np.array([s for s, _ in windows], dtype=np.int64) * 60
    lengths = np.array([e - s for s, e in windows], dtype=np.int64) * 60
    short = sum(max(0, min(e, REFERENCE_DAY_END_MINUTES) - s) for s, e in windows) * 60
    span = np.where(reference_day, short, int(lengths.sum()))
    u = np.floor(rng.random(n) * span).astype(np.int64)
    ends = np.cumsum(lengths)
    which = np.searchsorted(ends, u, side="right")
    return np.asarray(starts[which] + u - (ends[which] - lengths[which]), dtype=np.int64)


def _geod_distance_m(
    lon1: FloatArray, lat1: FloatArray, lon2: FloatArray, lat2: FloatArray
) -> FloatArray:
    """Metres between the points on the WGS84 spheroid."""
    if np.size(lon1) == 0:
        return np.zeros(0, dtype=np.float64)
    _, _, distance = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(distance, dtype=np.float64)


def _rank_in_sorted_groups(group: IntArray) -> IntArray:
    """0-based position within runs of equal values of a sorted array."""
    n = group.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=np.bool_)
    start[1:] = group[1:] != group[:-1]
    start_index = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return (np.arange(n) - start_index).astype(np.int64)


def _column_bytes(column: NDArray[np.generic]) -> bytes:
    if column.dtype.kind == "U":
        return "\x1f".join(column.tolist()).encode() + b"\x1e"
    return np.ascontiguousarray(column).tobytes() + b"\x1e"
