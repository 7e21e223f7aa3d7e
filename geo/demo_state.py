"""Person state of the demo county on a reference date: health codes, close
contacts, fever, quarantines and daily temperature checks.

``geo.demo`` generates who lives where; this module adds what the epidemic
did to them, as of ``REFERENCE_DATE`` (2020-02-06, the day the Zhanjiang
report's screening team took a Wuhan returnee's temperature). Deterministic:
the same demo, date and seed give identical tables (``DemoState.digest``); only
``numpy.random.default_rng([seed, STATE_STREAM])`` draws numbers.

Proportions and where they come from
------------------------------------
* Hubei-linked and back-from-abroad people are the demo's own flags: Xincheng
  town's 655 and 35 of 210,186 residents (DOMAIN.md), i.e. 3.1 and 0.17 per
  thousand, apportioned exactly by ``geo.demo``.
* Close contacts: ``CLOSE_CONTACTS_PER_THOUSAND`` = 2 per thousand residents.
  The reports give no figure; this is an assumption of the same order as the
  Hubei-linked share. Half of them (as far as there are candidates) live with
  a Hubei-linked or back-from-abroad person, the rest anywhere.
* Quarantine: every Hubei-linked person, everyone back from abroad within 14
  days and every close contact (the Zhanjiang report: "people from the
  epidemic area and close contacts"). Most at home; central quarantine in one
  of ``SITE_WORDS`` hotels for ``CENTRAL_SHARE`` of each group (assumed:
  Zhanjiang housed Hubei arrivals and close contacts in designated hotels).
* Start dates: back from abroad and close contacts within the 14 days before
  the reference date; Hubei-linked people within the 21 days before it (many
  came home for the Spring Festival, before Wuhan closed on 2020-01-23), so
  about a third have served their 14 days and are released. Planned end =
  start + 14 days; ``EXTENDED_SHARE`` are extended by 7 days; a quarantine
  whose (extended) end is on or before the reference date is released then.
* Temperature checks: one a day, 08:00–11:00, from the start to the
  reference date (to the day before release). Readings in tenths of a degree,
  mostly 36.0–37.2; ``FEVER_CHECK_SHARE`` of readings are 37.3–38.5.
  ``FEVER_THRESHOLD_C`` (37.3 °C, inclusive) makes a reading a fever and its
  person gets the fever tag. On the reference date itself ``MISSED_TODAY_SHARE``
  (assumed: 10 %) of the people under quarantine have no check yet — the
  state is a snapshot of a working day, and the overdue-checks layer exists
  because some are always missed.
* Health codes: green, except people under quarantine on the reference date:
  yellow, or red for those with a fever reading and ``RED_SHARE`` of the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from geo.demo import (
    REFERENCE_DATE,
    BoolArray,
    DemoCounty,
    FloatArray,
    IntArray,
    StrArray,
    Table,
)
from geo.errors import InvalidInput

# Mixed into the seed so the state's draws never repeat the generator's.
STATE_STREAM = 2
CLOSE_CONTACTS_PER_THOUSAND = 2.0
CLOSE_CONTACT_HOUSEMATE_SHARE = 0.5
CENTRAL_SHARE = {"hubei_linked": 0.2, "abroad_14d": 0.5, "close_contact": 0.6}
QUARANTINE_DAYS = 14
START_WINDOW_DAYS = {"hubei_linked": 21, "abroad_14d": 14, "close_contact": 14}
EXTENDED_SHARE = 0.05
EXTENSION_DAYS = 7
FEVER_THRESHOLD_C = 37.3
FEVER_CHECK_SHARE = 0.005
RED_SHARE = 0.05
# Hotels used as central quarantine sites: "<county><word>", e.g. 新兴县东堤酒店.
SITE_WORDS = ("迎宾馆", "东堤酒店", "锦水酒店", "城南宾馆", "育英酒店")
SITE_OFFSET_M = 40.0
CHECK_HOUR = 8
CHECK_SPREAD_MINUTES = 180
MISSED_TODAY_SHARE = 0.10
QUARANTINE_REASONS = ("hubei_linked", "abroad_14d", "close_contact")

_NORMAL_TENTHS = (360, 372)  # 36.0–37.2 °C
_FEVER_TENTHS = (373, 385)  # 37.3–38.5 °C
_MEAN_TENTHS = 365.5
_SD_TENTHS = 2.5
_NAT = np.datetime64("NaT", "D")
_M_PER_DEG = 111_320.0

DateArray = NDArray[np.datetime64]


@dataclass(frozen=True)
class ResidentState(Table):
    """One row per ``demo.residents`` row (same order)."""

    health_code: StrArray  # "green" / "yellow" / "red"
    close_contact: BoolArray
    fever: BoolArray  # a temperature check ≥ FEVER_THRESHOLD_C


@dataclass(frozen=True)
class QuarantineSites(Table):
    """Central quarantine hotels, WGS84 points inside the county."""

    name: StrArray
    lon: FloatArray
    lat: FloatArray


@dataclass(frozen=True)
class Quarantines(Table):
    """One row per quarantine, by resident index; home quarantines have no site
    (``site`` "", ``lon``/``lat`` NaN). Missing dates are NaT."""

    resident: IntArray
    reason: StrArray  # one of QUARANTINE_REASONS
    kind: StrArray  # "home" / "central"
    site: StrArray
    lon: FloatArray
    lat: FloatArray
    start: DateArray  # datetime64[D]
    planned_end: DateArray  # start + 14 days
    extended_to: DateArray  # NaT unless extended
    released_on: DateArray  # NaT while still in quarantine on the reference date


@dataclass(frozen=True)
class TemperatureChecks(Table):
    """One row per daily check; ``quarantine`` indexes ``Quarantines`` rows."""

    resident: IntArray
    quarantine: IntArray
    checked_at: NDArray[np.datetime64]  # datetime64[s], local time (UTC+8)
    temperature_c: FloatArray  # one decimal, as a thermometer shows


@dataclass(frozen=True)
class DemoState:
    """The state of every demo resident on ``reference_date``."""

    reference_date: dt.date
    seed: int
    residents: ResidentState
    sites: QuarantineSites
    quarantines: Quarantines
    temperature_checks: TemperatureChecks

    def in_quarantine(self) -> BoolArray:
        """Per resident: under quarantine on the reference date (not released)."""
        out = np.zeros(len(self.residents), dtype=np.bool_)
        ongoing = np.isnat(self.quarantines.released_on)
        out[self.quarantines.resident[ongoing]] = True
        return out

    def digest(self) -> str:
        """SHA-256 over every column: equal iff the generated state is equal."""
        sha = hashlib.sha256(f"{self.reference_date}|{self.seed}|".encode())
        for table in (self.residents, self.sites, self.quarantines, self.temperature_checks):
            for name in table.column_names():
                column = getattr(table, name)
                sha.update(name.encode())
                if column.dtype.kind == "U":
                    sha.update("\x1f".join(column.tolist()).encode())
                else:
                    sha.update(np.ascontiguousarray(column).tobytes())
        return sha.hexdigest()

    def summary(self) -> dict[str, object]:
        """Counts a person can check against the proportions in the module docstring."""
        codes, counts = np.unique(self.residents.health_code, return_counts=True)
        q = self.quarantines
        return {
            "reference_date": self.reference_date.isoformat(),
            "residents": len(self.residents),
            "close_contact": int(self.residents.close_contact.sum()),
            "fever": int(self.residents.fever.sum()),
            "health_code": {str(c): int(n) for c, n in zip(codes, counts, strict=True)},
            "quarantines": len(q),
            "central": int((q.kind == "central").sum()),
            "extended": int((~np.isnat(q.extended_to)).sum()),
            "released": int((~np.isnat(q.released_on)).sum()),
            "temperature_checks": len(self.temperature_checks),
        }


def expected_close_contacts(residents: int) -> int:
    """Close contacts among ``residents`` people (``CLOSE_CONTACTS_PER_THOUSAND``)."""
    return round(residents * CLOSE_CONTACTS_PER_THOUSAND / 1000)


def is_fever(temperature_c: float) -> bool:
    """A reading of 37.3 °C or more is a fever (the threshold is inclusive)."""
    return temperature_c >= FEVER_THRESHOLD_C


def generate_state(
    demo: DemoCounty, *, reference_date: dt.date | None = None, seed: int | None = None
) -> DemoState:
    """Generate the residents' state on ``reference_date`` (default 2020-02-06).

    ``seed`` defaults to the demo's seed. See the module docstring for the
    proportions; promises: every Hubei-linked, back-from-abroad and close-
    contact resident has exactly one quarantine; a resident has the fever tag
    iff one of their checks reads ≥ 37.3 °C; no date is after the reference date
    except planned and extended ends.
    """
    day = np.datetime64(reference_date or REFERENCE_DATE.astype(dt.date), "D")
    if np.isnat(day):
        raise InvalidInput("the reference date must be a date")
    base_seed = demo.seed if seed is None else seed
    rng = np.random.default_rng([base_seed, STATE_STREAM])
    close_contact = _close_contacts(rng, demo=demo)
    sites = _sites(rng, demo=demo)
    quarantines = _quarantines(rng, demo=demo, close_contact=close_contact, sites=sites, day=day)
    checks = _temperature_checks(rng, quarantines=quarantines, day=day)
    fever = np.zeros(len(demo.residents), dtype=np.bool_)
    fever[checks.resident[checks.temperature_c >= FEVER_THRESHOLD_C]] = True
    health = _health_codes(rng, quarantines=quarantines, fever=fever, n=len(demo.residents))
    return DemoState(
        reference_date=day.astype(dt.date),
        seed=base_seed,
        residents=ResidentState(health_code=health, close_contact=close_contact, fever=fever),
        sites=sites,
        quarantines=quarantines,
        temperature_checks=checks,
    )


# --- who ---------------------------------------------------------------------------------


def _close_contacts(rng: np.random.Generator, *, demo: DemoCounty) -> BoolArray:
    """Close contacts, disjoint from the Hubei-linked and back-from-abroad people;
    up to half of them share a household with one of those."""
    residents = demo.residents
    n = len(residents)
    tagged = residents.hubei_linked | residents.abroad_14d
    target = min(expected_close_contacts(n), int((~tagged).sum()))
    exposed_households = np.unique(residents.household[tagged])
    housemates = np.flatnonzero(np.isin(residents.household, exposed_households) & ~tagged)
    from_home = min(housemates.size, round(target * CLOSE_CONTACT_HOUSEMATE_SHARE))
    chosen = rng.permutation(housemates)[:from_home]
    others = np.setdiff1d(np.flatnonzero(~tagged), chosen)
    chosen = np.concatenate([chosen, rng.permutation(others)[: target - from_home]])
    out = np.zeros(n, dtype=np.bool_)
    out[chosen] = True
    return out


# --- where -------------------------------------------------------------------------------


def _sites(rng: np.random.Generator, *, demo: DemoCounty) -> QuarantineSites:
    """Hotels next to distinct urban buildings (any building if too few), inside the county."""
    county = demo.areas_of("county")
    if not county:
        raise InvalidInput("the demo county has no county outline")
    outline = county[0].geom_4326
    buildings = demo.buildings
    urban = np.flatnonzero(buildings.road != "")
    pool = urban if urban.size >= len(SITE_WORDS) else np.arange(len(buildings))
    chosen = rng.permutation(pool)[: len(SITE_WORDS)].tolist()
    # A county without buildings still gets its sites, all at one inner point.
    chosen += [None] * (len(SITE_WORDS) - len(chosen))
    lonlat = [_site_point(outline=outline, demo=demo, building=b) for b in chosen]
    return QuarantineSites(
        name=np.array([demo.county_name + w for w in SITE_WORDS], dtype=np.str_),
        lon=np.array([p[0] for p in lonlat], dtype=np.float64),
        lat=np.array([p[1] for p in lonlat], dtype=np.float64),
    )


def _site_point(
    *, outline: BaseGeometry, demo: DemoCounty, building: int | None
) -> tuple[float, float]:
    """A point ``SITE_OFFSET_M`` east of ``building`` (its own point if that leaves
    the county); the county's inner point when there is no building."""
    if building is None:
        point = outline.representative_point()
        return round(float(point.x), 5), round(float(point.y), 5)
    lon, lat = float(demo.buildings.lon[building]), float(demo.buildings.lat[building])
    shifted = round(lon + SITE_OFFSET_M / (_M_PER_DEG * np.cos(np.radians(lat))), 5)
    if shapely.contains_xy(outline, shifted, lat):
        return shifted, lat
    return lon, lat


# --- when --------------------------------------------------------------------------------


def _quarantines(
    rng: np.random.Generator,
    *,
    demo: DemoCounty,
    close_contact: BoolArray,
    sites: QuarantineSites,
    day: np.datetime64,
) -> Quarantines:
    residents = demo.residents
    groups = {
        "hubei_linked": residents.hubei_linked,
        "abroad_14d": residents.abroad_14d,
        "close_contact": close_contact,
    }
    resident = np.concatenate([np.flatnonzero(groups[r]) for r in QUARANTINE_REASONS])
    reason = np.concatenate(
        [np.full(int(groups[r].sum()), r, dtype="<U13") for r in QUARANTINE_REASONS]
    )
    order = np.argsort(resident, kind="stable")
    resident, reason = resident[order].astype(np.int64), reason[order].astype(np.str_)
    k = resident.size
    window = np.array([START_WINDOW_DAYS[r] for r in reason.tolist()], dtype=np.int64)
    start = day - (rng.random(k) * window).astype(np.int64).astype("timedelta64[D]")
    central_p = np.array([CENTRAL_SHARE[r] for r in reason.tolist()], dtype=np.float64)
    central = rng.random(k) < central_p
    site_index = rng.integers(0, len(sites), size=k) if len(sites) else np.zeros(k, np.int64)
    planned_end = start + np.timedelta64(QUARANTINE_DAYS, "D")
    extended = rng.random(k) < EXTENDED_SHARE
    extended_to = np.where(extended, planned_end + np.timedelta64(EXTENSION_DAYS, "D"), _NAT)
    end = np.where(extended, extended_to, planned_end)
    return Quarantines(
        resident=resident,
        reason=reason,
        kind=np.where(central, "central", "home").astype(np.str_),
        site=np.where(central, sites.name[site_index], "").astype(np.str_),
        lon=np.where(central, sites.lon[site_index], np.nan),
        lat=np.where(central, sites.lat[site_index], np.nan),
        start=start,
        planned_end=planned_end,
        extended_to=extended_to.astype("datetime64[D]"),
        released_on=np.where(end <= day, end, _NAT).astype("datetime64[D]"),
    )


def _temperature_checks(
    rng: np.random.Generator, *, quarantines: Quarantines, day: np.datetime64
) -> TemperatureChecks:
    """One check a day from the start to the reference date, or to the day before release."""
    q = quarantines
    released = ~np.isnat(q.released_on)
    last = np.where(released, q.released_on - np.timedelta64(1, "D"), day).astype("datetime64[D]")
    days = np.maximum((last - q.start).astype(np.int64) + 1, 0)
    index = np.repeat(np.arange(len(q), dtype=np.int64), days)
    offset = _rank_in_runs(days)
    check_day = q.start[index] + offset.astype("timedelta64[D]")
    minutes = CHECK_HOUR * 60 + rng.integers(0, CHECK_SPREAD_MINUTES, size=index.size)
    checked_at = check_day.astype("datetime64[s]") + (minutes * 60).astype("timedelta64[s]")
    tenths = _temperature_tenths(rng, n=index.size)
    # Drawn last, so the other draws stay as they were without it.
    kept = ~((check_day == day) & (rng.random(index.size) < MISSED_TODAY_SHARE))
    return TemperatureChecks(
        resident=q.resident[index][kept],
        quarantine=index[kept],
        checked_at=checked_at[kept],
        # tenths / 10 is the double nearest the reading, so 373 / 10 == 37.3 exactly.
        temperature_c=tenths[kept] / 10,
    )


def _temperature_tenths(rng: np.random.Generator, *, n: int) -> IntArray:
    normal = np.clip(np.rint(rng.normal(_MEAN_TENTHS, _SD_TENTHS, size=n)), *_NORMAL_TENTHS)
    fever = rng.integers(_FEVER_TENTHS[0], _FEVER_TENTHS[1] + 1, size=n)
    return np.where(rng.random(n) < FEVER_CHECK_SHARE, fever, normal).astype(np.int64)


def _rank_in_runs(lengths: IntArray) -> IntArray:
    """0, 1, …, len−1 for each run length, concatenated."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.asarray(np.arange(total, dtype=np.int64) - starts, dtype=np.int64)


# --- health codes ------------------------------------------------------------------------


def _health_codes(
    rng: np.random.Generator, *, quarantines: Quarantines, fever: BoolArray, n: int
) -> StrArray:
    """Green, except people under quarantine on the day: yellow, or red with a fever
    reading and for ``RED_SHARE`` of the others."""
    codes = np.full(n, "green", dtype="<U6")
    ongoing = quarantines.resident[np.isnat(quarantines.released_on)]
    red = fever[ongoing] | (rng.random(ongoing.size) < RED_SHARE)
    codes[ongoing] = np.where(red, "red", "yellow")
    return codes.astype(np.str_)
