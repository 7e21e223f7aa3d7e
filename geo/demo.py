"""The synthetic demo county: areas, buildings, households and residents.

Real parts: the county outline and the township and village/community *names*
(``geo.gazetteer``). Everything else is invented and every generated boundary is
flagged ``synthetic=True``: township cells are Voronoi cells of random centres,
community cells Voronoi cells inside them, grids (300–500 households) and
micro-grids (30–50 households) are cut from the household points.

Promises (tested in ``tests/geo/test_demo.py``):

* deterministic: the same inputs and seed give byte-identical output
  (``DemoCounty.digest``); only ``numpy.random.default_rng(seed)`` draws numbers;
* codes: township = county + 3 digits (from 100), community = township + 3,
  grid = community + 3, micro-grid = grid + 2;
* every area geometry is a valid MultiPolygon on the 1e-6° grid (6 decimals);
  all levels are planned in floating point and their linework is snapped in a
  single noding pass (``geo.partition.node_coverage``), so siblings share
  edges exactly (no overlap, no gap) and each parent is exactly the union of
  its children. The county is the real outline plus a vertex, snapped by
  ≤ 0.1 m, wherever a township, community or grid boundary meets it;
* every building lies strictly inside exactly one micro-grid and all households
  of a building share it; grids hold 300–500 households in communities of at
  least 300 and micro-grids 30–50 wherever the building sizes allow it;
* residents' categories and tags are the Xincheng town registry's shares,
  apportioned exactly by largest remainder; ID numbers follow GB 11643 and are
  unique; phone numbers are unique.

Pure: stdlib, numpy and shapely. Column-oriented tables (numpy arrays) so the
loader in ``db/`` can stream them with COPY.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput
from geo.gazetteer import CountyGazetteer
from geo.partition import (
    M_PER_DEG_LAT,
    M_PER_DEG_LON_EQUATOR,
    Plan,
    node_coverage,
    plan_band,
    plan_voronoi,
    snap_multipolygon,
)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]
BoolArray = NDArray[np.bool_]

DEFAULT_HOUSEHOLDS = 75_000
DEFAULT_SEED = 20200206
# The demo's "today": ages are computed and the 14-day windows end here.
REFERENCE_DATE = np.datetime64("2020-02-06", "D")
LEVELS = ("county", "township", "community", "grid", "microgrid")

GRID_BAND = (300, 500)
GRID_TARGET = 400
MICROGRID_BAND = (30, 50)
MICROGRID_TARGET = 40
# The county seat town holds this share of the households (Xincheng: ~40 %).
SEAT_SHARE = 0.40
# Building points sit on a 1e-5° grid (~1 m); cut lines sit on the 1e-6° area
# grid, so a cut can always fall strictly between two distinct buildings.
POINT_DECIMALS = 5
# Buildings keep this distance (degrees, ~2 m) from their community's edge, so
# snapping the linework to 1e-6° (≤ 0.7e-6°) never moves an edge onto a building.
_EDGE_MARGIN_DEG = 2e-5
_ROOMS_PER_FLOOR = 2

# Xincheng town's resident registry (DOMAIN.md): categories and tags.
CATEGORIES = ("local_permanent", "nonlocal_permanent", "local_temporary", "nonlocal_temporary")
CATEGORY_LABELS = {
    "local_permanent": "本地常住",
    "nonlocal_permanent": "外地常住",
    "local_temporary": "本地暂住",
    "nonlocal_temporary": "外地暂住",
}
XINCHENG_CATEGORY_COUNTS = (162_651, 11_760, 12_569, 23_206)
XINCHENG_RESIDENTS = 210_186
XINCHENG_HUBEI_LINKED = 655
XINCHENG_ABROAD_14D = 35
TAGS = ("hubei_linked", "abroad_14d")
# Persons per household 1..6, mean ≈ 2.81.
_PERSONS_P = (0.18, 0.28, 0.25, 0.17, 0.08, 0.04)

_HUBEI_AREA_CODES = (420102, 420106, 420111, 420115, 420502, 420902, 421002, 421102)
_OTHER_AREA_CODES = (
    440106, 440304, 440604, 440802, 440902, 441202, 445302, 445381,
    450103, 450403, 430104, 431003, 360102, 510104, 350102, 460106,
)  # fmt: skip
_MOBILE_PREFIXES = (
    130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156,
    157, 158, 159, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 191, 198, 199,
)  # fmt: skip
_SURNAMES = "陈黄李梁林张刘吴何罗郑杨周王谢冯邓叶苏曾蔡潘许朱彭卢钟余郭胡区麦莫邱"
_GIVEN_MALE = "伟强军杰勇斌明辉华建国志文海俊锋宇浩东平鹏荣振家树耀永德成汉"
_GIVEN_FEMALE = "丽芳娟敏静燕红霞玲梅琳婷慧秀英娜倩雪颖洁婉嘉欣怡琪晓美凤兰"
_ROADS = (
    "新城路", "人民路", "建设路", "解放路", "新兴大道", "东堤路", "西堤路", "环城路",
    "城北路", "城南路", "育英路", "公园路", "华南路", "商贸路", "工业大道", "文化路",
    "富华路", "锦水路", "翔顺路", "和平路",
)  # fmt: skip
_ESTATE_PREFIXES = (
    "翠湖", "金湾", "锦绣", "碧桂", "华侨", "东方", "阳光", "丽景",
    "御景", "富华", "明珠", "龙腾", "凤凰", "怡景", "绿茵", "水岸",
)  # fmt: skip
_ESTATE_SUFFIXES = ("花园", "小区", "新村", "苑", "名苑", "豪庭", "雅居", "公寓")
_DIGITS_ZH = "零一二三四五六七八九"


@dataclass(frozen=True, slots=True)
class AreaRecord:
    """One area of any level; ``geom_4326`` is a valid MultiPolygon on the 1e-6° grid."""

    code: str
    name: str
    level: str
    parent_code: str | None
    geom_4326: MultiPolygon
    synthetic: bool


@dataclass(frozen=True)
class Table:
    """Equal-length numpy columns, one per dataclass field, in field order."""

    def column_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))

    def __len__(self) -> int:
        names = self.column_names()
        return len(getattr(self, names[0])) if names else 0

    def rows(self) -> Iterator[tuple[object, ...]]:
        """Rows of Python values (``datetime.date`` for dates), e.g. for COPY."""
        return zip(*(getattr(self, n).tolist() for n in self.column_names()), strict=True)


@dataclass(frozen=True)
class Buildings(Table):
    """Standard address points, one row per building, WGS84 lon/lat (5 decimals)."""

    code: StrArray  # community code + 5 digits
    county_code: StrArray
    township_code: StrArray
    community_code: StrArray
    grid_code: StrArray
    microgrid_code: StrArray
    lon: FloatArray
    lat: FloatArray
    households: IntArray  # households living in the building
    floors: IntArray
    units: IntArray  # 单元 (stairwells)
    county: StrArray
    township: StrArray
    community: StrArray
    road: StrArray  # urban: road name; villages: ""
    house_no: StrArray  # "12号" on the road (urban) or in the village group
    estate: StrArray  # urban: estate name; villages: ""
    building_no: StrArray  # urban: "3栋"; villages: ""
    village_group: StrArray  # villages: "三组"; urban: ""
    address: StrArray  # full standard address


@dataclass(frozen=True)
class Households(Table):
    """One row per household; ``building`` indexes ``Buildings`` rows."""

    code: StrArray  # building code + 3 digits
    building: IntArray
    building_code: StrArray
    unit: IntArray
    floor: IntArray
    room: StrArray  # "302": floor and door
    persons: IntArray


@dataclass(frozen=True)
class Residents(Table):
    """One row per person; ``household`` indexes ``Households`` rows."""

    household: IntArray
    household_code: StrArray
    name: StrArray
    sex: StrArray  # "M" / "F"
    birth_date: NDArray[np.datetime64]
    id_number: StrArray  # 18 characters, GB 11643
    phone: StrArray  # 11 digits
    category: StrArray  # one of CATEGORIES
    hubei_linked: BoolArray
    abroad_14d: BoolArray


@dataclass(frozen=True)
class DemoCounty:
    """The generated county. ``areas`` lists parents before children."""

    county_code: str
    county_name: str
    seed: int
    areas: tuple[AreaRecord, ...]
    buildings: Buildings
    households: Households
    residents: Residents

    def areas_of(self, level: str) -> list[AreaRecord]:
        return [a for a in self.areas if a.level == level]

    def households_per_area(self, level: str) -> dict[str, int]:
        """Households per grid or micro-grid code (level ``grid``/``microgrid``)."""
        codes = self.buildings.grid_code if level == "grid" else self.buildings.microgrid_code
        unique, inverse = np.unique(codes, return_inverse=True)
        counts = np.bincount(inverse, weights=self.buildings.households, minlength=unique.size)
        return {str(c): int(n) for c, n in zip(unique.tolist(), counts.tolist(), strict=True)}

    def summary(self) -> dict[str, object]:
        """Counts per level, residents per category, tags and the band figures."""
        categories, counts = np.unique(self.residents.category, return_counts=True)
        per_category = dict(zip(categories.tolist(), counts.tolist(), strict=True))
        return {
            "county_code": self.county_code,
            "county_name": self.county_name,
            "seed": self.seed,
            "areas": {level: len(self.areas_of(level)) for level in LEVELS},
            "buildings": len(self.buildings),
            "households": len(self.households),
            "residents": len(self.residents),
            "residents_by_category": {c: int(per_category.get(c, 0)) for c in CATEGORIES},
            "tags": {
                "hubei_linked": int(self.residents.hubei_linked.sum()),
                "abroad_14d": int(self.residents.abroad_14d.sum()),
            },
            "grid_households": self._band_figures("grid"),
            "microgrid_households": self._band_figures("microgrid"),
        }

    def digest(self) -> str:
        """SHA-256 over every code, geometry (WKB) and column: equal iff output equal."""
        sha = hashlib.sha256()
        for area in self.areas:
            sha.update(f"{area.code}|{area.name}|{area.level}|{area.parent_code}|".encode())
            sha.update(shapely.to_wkb(area.geom_4326))
        for table in (self.buildings, self.households, self.residents):
            for name in table.column_names():
                sha.update(name.encode())
                sha.update(_column_bytes(getattr(table, name)))
        return sha.hexdigest()

    def banded_sizes(self, level: str) -> tuple[list[int], int]:
        """Households per grid (``level="grid"``) or micro-grid (``"microgrid"``)
        where the band applies, and how many areas are exempt from it: a
        community under 300 households is one grid, a grid under 30 one micro-grid."""
        low = GRID_BAND[0] if level == "grid" else MICROGRID_BAND[0]
        suffix = 3 if level == "grid" else 2
        per_area = self.households_per_area(level)
        per_parent: dict[str, int] = {}
        for code, n in per_area.items():
            per_parent[code[:-suffix]] = per_parent.get(code[:-suffix], 0) + n
        sizes = [n for code, n in per_area.items() if per_parent[code[:-suffix]] >= low]
        return sizes, len(per_area) - len(sizes)

    def _band_figures(self, level: str) -> dict[str, int]:
        sizes, exempt = self.banded_sizes(level)
        low, high = GRID_BAND if level == "grid" else MICROGRID_BAND
        return {
            "count": len(sizes),
            "min": min(sizes, default=0),
            "max": max(sizes, default=0),
            "below_band": sum(1 for n in sizes if n < low),
            "above_band": sum(1 for n in sizes if n > high),
            "exempt": exempt,
        }


def generate_demo(
    *,
    county_outline_4326: MultiPolygon | Polygon,
    gazetteer: CountyGazetteer,
    households: int = DEFAULT_HOUSEHOLDS,
    seed: int = DEFAULT_SEED,
    seat_township: str | None = None,
) -> DemoCounty:
    """Generate the demo county inside ``county_outline_4326`` (WGS84 lon/lat).

    ``seat_township`` names the county seat town, the most urban one (~40 % of
    households); by default the township with the most 社区 (新城镇 for 新兴县).
    """
    if households < 0:
        raise InvalidInput(f"households must be ≥ 0, got {households}")
    if not 1 <= len(gazetteer.townships) <= 900:
        raise InvalidInput(f"the gazetteer of {gazetteer.code} must list 1–900 townships")
    rng = np.random.default_rng(seed)
    outline = snap_multipolygon(county_outline_4326)
    if outline.is_empty:
        raise InvalidInput("the county outline has no area")
    seat = _seat_index(gazetteer, seat_township)
    drafts, sites, sheet = _plan_areas(
        rng, outline=outline, gazetteer=gazetteer, seat=seat, households=households
    )
    areas = _snap_areas(outline, drafts=drafts, sheet=sheet)
    buildings = _buildings_table(sites, gazetteer=gazetteer)
    household_table = _households_table(rng, buildings)
    residents = _residents_table(rng, household_table, county_code=gazetteer.code)
    return DemoCounty(
        county_code=gazetteer.code,
        county_name=gazetteer.name,
        seed=seed,
        areas=areas,
        buildings=buildings,
        households=household_table,
        residents=residents,
    )


def apportion(total: int, weights: Sequence[float] | FloatArray) -> IntArray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder).

    Ties between equal remainders go to the lower index, so the result is exact
    and predictable: ``sum == total`` and each share is ``floor`` or ``ceil`` of
    its quota.
    """
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or w.size == 0 or (w < 0).any() or w.sum() <= 0:
        raise InvalidInput("apportion needs total ≥ 0 and non-negative weights with a positive sum")
    quotas = total * w / w.sum()
    shares = np.floor(quotas).astype(np.int64)
    left = int(total - shares.sum())
    order = np.argsort(-(quotas - shares), kind="stable")
    shares[order[:left]] += 1
    return np.asarray(shares, dtype=np.int64)


def expected_registry_counts(residents: int) -> dict[str, int]:
    """Residents per category and per tag for ``residents`` people, as the demo assigns them."""
    categories = apportion(residents, XINCHENG_CATEGORY_COUNTS)
    rest = XINCHENG_RESIDENTS - XINCHENG_HUBEI_LINKED - XINCHENG_ABROAD_14D
    tags = apportion(residents, (XINCHENG_HUBEI_LINKED, XINCHENG_ABROAD_14D, rest))
    out = {c: int(n) for c, n in zip(CATEGORIES, categories.tolist(), strict=True)}
    out.update(hubei_linked=int(tags[0]), abroad_14d=int(tags[1]))
    return out


def id_check_digit(first17: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    return "10X98765432"[total % 11]


def chinese_number(n: int) -> str:
    """1..99 as Chinese numerals: 3 → 三, 12 → 十二, 30 → 三十."""
    if not 1 <= n <= 99:
        raise InvalidInput(f"chinese_number handles 1..99, got {n}")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS_ZH[tens] + "十")
    return head + (_DIGITS_ZH[ones] if ones else "")


# --- areas -------------------------------------------------------------------------


def _plan_areas(
    rng: np.random.Generator,
    *,
    outline: MultiPolygon,
    gazetteer: CountyGazetteer,
    seat: int,
    households: int,
) -> tuple[list[_Draft], list[_Site], _Sheet]:
    """Plan every level in floating point: drafts (parents first), sites, linework."""
    count = len(gazetteer.townships)
    town_plan, town_centres = _township_plan(rng, outline=outline, count=count, seat=seat)
    town_households = _township_households(rng, total=households, count=count, seat=seat)
    sheet = _Sheet(linework=list(town_plan.cuts_4326))
    towns: list[_Draft] = []
    sites: list[_Site] = []
    for t, town in enumerate(gazetteer.townships):
        code = f"{gazetteer.code}{100 + t:03d}"
        first_leaf = len(sheet.leaves)
        sites += _township_sites(
            rng,
            town=_Town(code=code, name=town.name, communities=town.communities,
                       cell=town_plan.pieces_4326[t], centre=town_centres[t], seat=t == seat),
            households=int(town_households[t]),
            sheet=sheet,
        )  # fmt: skip
        stop_leaf = len(sheet.leaves)
        towns.append(_Draft(code, town.name, "township", gazetteer.code, first_leaf, stop_leaf))
    county = _Draft(gazetteer.code, gazetteer.name, "county", None, 0, len(sheet.leaves))
    drafts = [
        county,
        *towns,
        *(s.community for s in sites),
        *(g for s in sites for g in s.grids),
        *(m for s in sites for m in s.microgrids),
    ]
    return drafts, sites, sheet


def _snap_areas(
    outline: MultiPolygon, *, drafts: list[_Draft], sheet: _Sheet
) -> tuple[AreaRecord, ...]:
    """One snap-rounding pass over all linework, so every level shares its vertices."""
    coverage = node_coverage(outline, linework=sheet.linework, pieces=sheet.leaves)
    return tuple(
        AreaRecord(
            code=d.code,
            name=d.name,
            level=d.level,
            parent_code=d.parent_code,
            geom_4326=coverage.union_of_range(d.first_leaf, d.stop_leaf),
            synthetic=d.level != "county",
        )
        for d in drafts
    )


# --- townships and communities -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Town:
    code: str
    name: str
    communities: tuple[str, ...]
    cell: BaseGeometry  # unsnapped
    centre: tuple[float, float]
    seat: bool


@dataclass(frozen=True, slots=True)
class _Draft:
    """An area before snapping: it covers leaves (micro-grids) first_leaf … stop_leaf - 1."""

    code: str
    name: str
    level: str
    parent_code: str | None
    first_leaf: int
    stop_leaf: int


@dataclass(slots=True)
class _Sheet:
    """What has been drawn so far: micro-grid pieces (unsnapped) and all cut linework."""

    linework: list[BaseGeometry]
    leaves: list[BaseGeometry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Site:
    """One community's areas and buildings (before the county-wide tables)."""

    town: _Town
    community: _Draft
    urban: bool
    grids: list[_Draft]
    microgrids: list[_Draft]
    lonlat: FloatArray
    households: IntArray
    floors: IntArray
    units: IntArray
    cluster: IntArray  # estate (urban) or village group index
    grid_code: list[str]
    microgrid_code: list[str]


def _seat_index(gazetteer: CountyGazetteer, seat_township: str | None) -> int:
    names = gazetteer.township_names()
    if seat_township is not None:
        if seat_township not in names:
            raise InvalidInput(f"{seat_township} is not a township of {gazetteer.name}")
        return names.index(seat_township)
    urban = [sum(_is_urban(c) for c in t.communities) for t in gazetteer.townships]
    return int(np.argmax(urban))  # first of the maxima: deterministic


def _is_urban(community_name: str) -> bool:
    return community_name.endswith(("社区", "居委会"))


def _township_plan(
    rng: np.random.Generator, *, outline: MultiPolygon, count: int, seat: int
) -> tuple[Plan, list[tuple[float, float]]]:
    """Voronoi cells of well-spread random centres; the seat gets the most central one."""
    spacing_m = 0.6 * math.sqrt(_area_m2(outline) / count)
    inner = _shrink(outline, margin_m=spacing_m / 4)
    centres = _spread_points(rng, region=inner, count=count, min_spacing_m=spacing_m)
    middle = np.asarray(outline.centroid.coords[0])
    central = int(np.argmin(((centres - middle) ** 2).sum(axis=1)))
    order = [i for i in range(count) if i != central]
    order.insert(seat, central)
    centres = centres[order]
    return plan_voronoi(outline, centres), [(float(x), float(y)) for x, y in centres]


def _township_households(
    rng: np.random.Generator, *, total: int, count: int, seat: int
) -> IntArray:
    weights = rng.lognormal(0.0, 0.35, size=count)
    if count > 1:
        weights[seat] = 0.0
        weights *= (1 - SEAT_SHARE) / weights.sum()
        weights[seat] = SEAT_SHARE
    return apportion(total, weights)


def _township_sites(
    rng: np.random.Generator, *, town: _Town, households: int, sheet: _Sheet
) -> list[_Site]:
    if not town.communities:
        raise InvalidInput(f"{town.name} lists no village or community")
    urban = np.array([_is_urban(c) for c in town.communities])
    centres = _community_centres(rng, town=town, urban=urban)
    plan = plan_voronoi(town.cell, centres)
    sheet.linework.extend(plan.cuts_4326)
    counts = _community_households(rng, total=households, urban=urban, seat=town.seat)
    return [
        _community_site(
            rng,
            town=town,
            code=f"{town.code}{j + 1:03d}",
            name=name,
            cell=plan.pieces_4326[j],
            centre=(float(centres[j, 0]), float(centres[j, 1])),
            households=int(counts[j]),
            urban=bool(urban[j]),
            sheet=sheet,
        )
        for j, name in enumerate(town.communities)
    ]


def _community_centres(rng: np.random.Generator, *, town: _Town, urban: BoolArray) -> FloatArray:
    """Urban communities cluster around the town centre; villages spread over the town."""
    area_m2 = _area_m2(town.cell)
    n_urban, n_rural = int(urban.sum()), int((~urban).sum())
    rural_spacing_m = 0.5 * math.sqrt(area_m2 / max(n_rural, 1))
    urban_spacing_m = min(350.0, rural_spacing_m)
    inner = _shrink(town.cell, margin_m=min(urban_spacing_m, rural_spacing_m) / 3)
    urban_sigma_m = (1200.0 if town.seat else 500.0) * max(1.0, math.sqrt(n_urban / 20))
    urban_points = _spread_points(
        rng,
        region=inner,
        count=n_urban,
        min_spacing_m=urban_spacing_m,
        centre=town.centre,
        sigma_m=urban_sigma_m,
    )
    rural_points = _spread_points(
        rng, region=inner, count=n_rural, min_spacing_m=rural_spacing_m, avoid=urban_points
    )
    centres = np.empty((urban.size, 2), dtype=np.float64)
    centres[urban] = urban_points
    centres[~urban] = rural_points
    return centres


def _community_households(
    rng: np.random.Generator, *, total: int, urban: BoolArray, seat: bool
) -> IntArray:
    """Households per community: lognormal weights, urban ones heavier, and
    no community of a size the grid/micro-grid bands cannot split (e.g. 550)."""
    m = urban.size
    floor_size = min(80, total // (2 * m))
    weights = rng.lognormal(0.0, 0.5, size=m) * np.where(urban, 2.5 if seat else 1.5, 1.0)
    counts = floor_size + apportion(total - floor_size * m, weights)
    return _avoid_unsplittable(counts, urban=urban)


def _awkward_gap(n: int, *, urban: bool) -> tuple[int, int] | None:
    """The gap of community sizes that the bands split badly, if ``n`` is in one.

    Between ``max`` and ``2·min`` of a band (500–600, 50–60) no number of parts
    keeps every part in the band; just above ``2·min`` the two halves must both
    land in a narrow window, which whole buildings often miss, hence the slack
    (apartment blocks hold 30–48 households, village houses 1–3).
    """
    for (low, high), slack in (
        (GRID_BAND, 60 if urban else 10),
        (MICROGRID_BAND, 0 if urban else 3),
    ):
        if high < n < 2 * low + slack:
            return high, 2 * low + slack
    return None


def _avoid_unsplittable(counts: IntArray, *, urban: BoolArray) -> IntArray:
    """Move households between siblings until no size is awkward to split.

    Each awkward community moves to the nearer edge of its gap, trading the
    difference with the largest sibling that stays fine; the total is kept.
    """
    counts = counts.copy()
    flags = urban.tolist()
    for i in range(counts.size):
        gap = _awkward_gap(int(counts[i]), urban=flags[i])
        if gap is None:
            continue
        for target in sorted(gap, key=lambda edge: abs(edge - int(counts[i]))):
            delta = target - int(counts[i])
            takers = [
                j
                for j in range(counts.size)
                if j != i
                and counts[j] - delta >= 1
                and _awkward_gap(int(counts[j] - delta), urban=flags[j]) is None
            ]
            if takers:
                j = max(takers, key=lambda k: (int(counts[k]), -k))
                counts[i] += delta
                counts[j] -= delta
                break
    return counts


# --- buildings, grids and micro-grids ---------------------------------------------


def _community_site(
    rng: np.random.Generator,
    *,
    town: _Town,
    code: str,
    name: str,
    cell: BaseGeometry,
    centre: tuple[float, float],
    households: int,
    urban: bool,
    sheet: _Sheet,
) -> _Site:
    sizes, floors, units = _building_sizes(rng, households=households, urban=urban)
    n_buildings = sizes.size
    if urban:
        n_clusters = max(1, round(n_buildings / 6))
    else:
        n_clusters = max(1, min(n_buildings, round(households / 40)))
    cluster = (np.arange(n_buildings, dtype=np.int64) * n_clusters) // max(n_buildings, 1)
    region: BaseGeometry = shapely.buffer(cell, -_EDGE_MARGIN_DEG)
    if region.is_empty:
        region = cell
    spread_m = math.sqrt(_area_m2(cell))
    cluster_centres = _spread_points(
        rng,
        region=region,
        count=n_clusters if n_buildings else 0,
        min_spacing_m=min(80.0 if urban else 200.0, spread_m / 10),
        centre=centre,
        sigma_m=min(200.0 if urban else 600.0, spread_m / 3),
    )
    lonlat = _scatter(
        rng,
        region=region,
        centres=cluster_centres[cluster] if n_buildings else np.empty((0, 2)),
        sigma_m=min(40.0 if urban else 80.0, spread_m / 10),
    )
    first_leaf = len(sheet.leaves)
    grids, microgrids, grid_code, microgrid_code = _grids(
        code=code, name=name, cell=cell, lonlat=lonlat, households=sizes, sheet=sheet
    )
    community = _Draft(code, name, "community", town.code, first_leaf, len(sheet.leaves))
    return _Site(
        town=town,
        community=community,
        urban=urban,
        grids=grids,
        microgrids=microgrids,
        lonlat=lonlat,
        households=sizes,
        floors=floors,
        units=units,
        cluster=cluster,
        grid_code=grid_code,
        microgrid_code=microgrid_code,
    )


def _building_sizes(
    rng: np.random.Generator, *, households: int, urban: bool
) -> tuple[IntArray, IntArray, IntArray]:
    """Households, floors and units per building, summing to ``households``."""
    if urban:
        return _apartment_blocks(rng, households=households)
    return _village_houses(rng, households=households)


def _apartment_blocks(
    rng: np.random.Generator, *, households: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Urban blocks of 30–48 households each, 1–2 units, two flats per floor.

    One block is one micro-grid, as Yueyang drew them "by estate building"; and
    since any two blocks hold ≥ 60 households, every set of whole blocks can be
    cut into in-band micro-grids. Only a community under 60 households has
    smaller blocks (it is one micro-grid anyway).
    """
    if households == 0:
        return (np.zeros(0, dtype=np.int64),) * 3
    low, high = MICROGRID_BAND[0], MICROGRID_BAND[1] - 2
    fewest = max(1, math.ceil(households / high))
    most = max(fewest, households // low)
    count = int(rng.integers(fewest, most + 1))
    sizes = apportion(households, rng.uniform(0.8, 1.2, size=count))
    if count > 1 and (sizes.min() < low or sizes.max() > high):
        sizes = apportion(households, np.ones(count))  # the mean share is in [low, high]
    units = rng.integers(1, 3, size=count).astype(np.int64)
    # A few empty flats on top: capacity ≥ occupancy.
    floors = -(-sizes // (units * _ROOMS_PER_FLOOR)) + rng.integers(0, 3, size=count)
    return sizes, floors.astype(np.int64), units


def _village_houses(
    rng: np.random.Generator, *, households: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Village houses of 1–3 households (mostly 1), one household per floor."""
    draws = households + 1
    capacity = rng.choice(np.array([1, 2, 3]), size=draws, p=[0.7, 0.22, 0.08])
    floors = np.maximum(capacity, rng.integers(1, 4, size=draws))
    total = np.cumsum(capacity)
    count = int(np.searchsorted(total, households)) + 1 if households else 0
    sizes = capacity[:count].astype(np.int64)
    if count:
        sizes[-1] = households - (int(total[count - 2]) if count > 1 else 0)
    return sizes, floors[:count].astype(np.int64), np.ones(count, dtype=np.int64)


def _grids(
    *,
    code: str,
    name: str,
    cell: BaseGeometry,
    lonlat: FloatArray,
    households: IntArray,
    sheet: _Sheet,
) -> tuple[list[_Draft], list[_Draft], list[str], list[str]]:
    """Plan the grids then micro-grids of one community (leaves go to ``sheet``),
    and each building's grid and micro-grid code."""
    grid_code = [""] * households.size
    microgrid_code = [""] * households.size
    grids: list[_Draft] = []
    microgrids: list[_Draft] = []
    grid_plan = plan_band(
        cell, lonlat, weights=households if households.size else None,
        min_weight=GRID_BAND[0], max_weight=GRID_BAND[1], target_weight=GRID_TARGET,
    )  # fmt: skip
    sheet.linework.extend(grid_plan.cuts_4326)
    for g, (piece, members) in enumerate(
        zip(grid_plan.pieces_4326, grid_plan.indices, strict=True), start=1
    ):
        grid = f"{code}{g:03d}"
        first_leaf = len(sheet.leaves)
        micro_plan = plan_band(
            piece, lonlat[members], weights=households[members] if members.size else None,
            min_weight=MICROGRID_BAND[0], max_weight=MICROGRID_BAND[1],
            target_weight=MICROGRID_TARGET,
        )  # fmt: skip
        sheet.linework.extend(micro_plan.cuts_4326)
        for m, (micro_piece, micro_members) in enumerate(
            zip(micro_plan.pieces_4326, micro_plan.indices, strict=True), start=1
        ):
            micro = f"{grid}{m:02d}"
            leaf = len(sheet.leaves)
            sheet.leaves.append(micro_piece)
            microgrids.append(
                _Draft(micro, f"{name}第{g}网格{m}号微网格", "microgrid", grid, leaf, leaf + 1)
            )
            for b in members[micro_members].tolist():
                grid_code[b] = grid
                microgrid_code[b] = micro
        grids.append(_Draft(grid, f"{name}第{g}网格", "grid", code, first_leaf, len(sheet.leaves)))
    return grids, microgrids, grid_code, microgrid_code


# --- the county-wide tables ---------------------------------------------------------


def _buildings_table(sites: list[_Site], *, gazetteer: CountyGazetteer) -> Buildings:
    road, house_no, estate, building_no, group, codes = [], [], [], [], [], []
    for site in sites:
        parts = _address_parts(site)
        road += parts[0]
        house_no += parts[1]
        estate += parts[2]
        building_no += parts[3]
        group += parts[4]
        codes += [f"{site.community.code}{i + 1:05d}" for i in range(site.households.size)]
    town_name = _per_building(sites, lambda s: s.town.name)
    community_name = _per_building(sites, lambda s: s.community.name)
    prefix = gazetteer.province + gazetteer.city + gazetteer.name
    address = [
        f"{prefix}{t}{c}{r}{h}{e}{b}" if r else f"{prefix}{t}{c}{g}{h}"
        for t, c, r, h, e, b, g in zip(
            town_name, community_name, road, house_no, estate, building_no, group, strict=True
        )
    ]
    n = len(codes)
    return Buildings(
        code=np.array(codes, dtype=np.str_),
        county_code=np.full(n, gazetteer.code),
        township_code=np.array(_per_building(sites, lambda s: s.town.code), dtype=np.str_),
        community_code=np.array(_per_building(sites, lambda s: s.community.code), dtype=np.str_),
        grid_code=np.array([c for s in sites for c in s.grid_code], dtype=np.str_),
        microgrid_code=np.array([c for s in sites for c in s.microgrid_code], dtype=np.str_),
        lon=_concat_float([s.lonlat[:, 0] for s in sites]),
        lat=_concat_float([s.lonlat[:, 1] for s in sites]),
        households=_concat_int([s.households for s in sites]),
        floors=_concat_int([s.floors for s in sites]),
        units=_concat_int([s.units for s in sites]),
        county=np.full(n, gazetteer.name),
        township=np.array(town_name, dtype=np.str_),
        community=np.array(community_name, dtype=np.str_),
        road=np.array(road, dtype=np.str_),
        house_no=np.array(house_no, dtype=np.str_),
        estate=np.array(estate, dtype=np.str_),
        building_no=np.array(building_no, dtype=np.str_),
        village_group=np.array(group, dtype=np.str_),
        address=np.array(address, dtype=np.str_),
    )


def _address_parts(
    site: _Site,
) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """Road, house number, estate, building number and village group per building.

    Urban estates sit on a road at one number and number their buildings 1..n;
    village houses are numbered 1..n within their village group (村民小组).
    Names and numbers are derived from the community code so they need no draws.
    """
    cluster = site.cluster.tolist()
    rank = _rank_within(site.cluster).tolist()
    n = len(cluster)
    if not site.urban:
        return (
            [""] * n,
            [f"{r + 1}号" for r in rank],
            [""] * n,
            [""] * n,
            [f"{chinese_number(c % 99 + 1)}组" for c in cluster],
        )
    salt = int(site.community.code[-6:])
    count = max(cluster, default=-1) + 1
    # About three estates per road; (road, number) is unique within the community.
    estates = [_estate_name(salt + c) for c in range(count)]
    roads = [_ROADS[(salt + c // 3) % len(_ROADS)] for c in range(count)]
    numbers = [
        (salt % 7) * 2 + 1 + 16 * (c % 3) + 60 * (c // (3 * len(_ROADS))) for c in range(count)
    ]
    return (
        [roads[c] for c in cluster],
        [f"{numbers[c]}号" for c in cluster],
        [estates[c] for c in cluster],
        [f"{r + 1}栋" for r in rank],
        [""] * n,
    )


def _estate_name(k: int) -> str:
    prefix = _ESTATE_PREFIXES[k % len(_ESTATE_PREFIXES)]
    suffix = _ESTATE_SUFFIXES[(k // len(_ESTATE_PREFIXES)) % len(_ESTATE_SUFFIXES)]
    return prefix + suffix


def _households_table(rng: np.random.Generator, buildings: Buildings) -> Households:
    """Households fill each building unit by unit, floor by floor, two doors a floor."""
    per_building = buildings.households
    building = np.repeat(np.arange(per_building.size, dtype=np.int64), per_building)
    rank = _rank_within(building)
    floors = buildings.floors[building]
    per_unit = floors * _ROOMS_PER_FLOOR
    urban = buildings.road[building] != ""
    unit = np.where(urban, rank // per_unit + 1, 1)
    floor = np.where(urban, (rank % per_unit) // _ROOMS_PER_FLOOR + 1, rank + 1)
    door = np.where(urban, rank % _ROOMS_PER_FLOOR + 1, 1)
    persons = rng.choice(np.arange(1, 7), size=building.size, p=_PERSONS_P).astype(np.int64)
    building_code = buildings.code[building]
    return Households(
        code=np.char.add(building_code, np.char.zfill((rank + 1).astype(np.str_), 3)),
        building=building,
        building_code=building_code,
        unit=unit.astype(np.int64),
        floor=floor.astype(np.int64),
        room=(floor * 100 + door).astype(np.str_),
        persons=persons,
    )


def _residents_table(
    rng: np.random.Generator, households: Households, *, county_code: str
) -> Residents:
    household = np.repeat(np.arange(households.persons.size, dtype=np.int64), households.persons)
    n = household.size
    category = _categories(rng, households.persons, household)
    hubei, abroad = _tags(rng, n)
    male = rng.random(n) < 0.5
    birth = _birth_dates(rng, n)
    area = np.full(n, int(county_code), dtype=np.int64)
    nonlocal_ = (category == 1) | (category == 3)
    area[nonlocal_] = rng.choice(np.array(_OTHER_AREA_CODES), size=int(nonlocal_.sum()))
    hubei_nonlocal = nonlocal_ & hubei
    area[hubei_nonlocal] = rng.choice(np.array(_HUBEI_AREA_CODES), size=int(hubei_nonlocal.sum()))
    return Residents(
        household=household,
        household_code=households.code[household],
        name=_names(rng, household=household, male=male),
        sex=np.where(male, "M", "F").astype(np.str_),
        birth_date=birth,
        id_number=_id_numbers(rng, area=area, birth=birth, male=male),
        phone=_phones(rng, n),
        category=np.array(CATEGORIES, dtype=np.str_)[category],
        hubei_linked=hubei,
        abroad_14d=abroad,
    )


def _categories(rng: np.random.Generator, persons: IntArray, household: IntArray) -> IntArray:
    """Exact category counts; members of a household share a category (except at
    the 3 block boundaries) because households are dealt out in random order."""
    n = household.size
    counts = apportion(n, XINCHENG_CATEGORY_COUNTS)
    dealt = rng.permutation(persons.size)
    start_in_deal = np.empty(persons.size, dtype=np.int64)
    start_in_deal[dealt] = np.cumsum(persons[dealt]) - persons[dealt]
    position = start_in_deal[household] + _rank_within(household)
    return np.searchsorted(np.cumsum(counts), position, side="right").astype(np.int64)


def _tags(rng: np.random.Generator, n: int) -> tuple[BoolArray, BoolArray]:
    """Disjoint Hubei-linked and back-from-abroad sets of exactly apportioned size."""
    expected = expected_registry_counts(n)
    chosen = rng.permutation(n)[: expected["hubei_linked"] + expected["abroad_14d"]]
    hubei = np.zeros(n, dtype=np.bool_)
    abroad = np.zeros(n, dtype=np.bool_)
    hubei[chosen[: expected["hubei_linked"]]] = True
    abroad[chosen[expected["hubei_linked"] :]] = True
    return hubei, abroad


def _birth_dates(rng: np.random.Generator, n: int) -> NDArray[np.datetime64]:
    """Ages 0–99 on REFERENCE_DATE: flat to 60, then thinning out to 100."""
    ages = np.arange(100)
    weights = np.where(ages < 60, 1.0, (100 - ages) / 40)
    age = rng.choice(ages, size=n, p=weights / weights.sum())
    days = np.floor(age * 365.25 + rng.random(n) * 365).astype(np.int64) + 1
    return REFERENCE_DATE - days.astype("timedelta64[D]")


def _id_numbers(
    rng: np.random.Generator, *, area: IntArray, birth: NDArray[np.datetime64], male: BoolArray
) -> StrArray:
    """GB 11643 numbers: area, birth date, sequence (odd = male), check digit.

    Unique: people sharing area, birth date and sex get consecutive sequence
    numbers from a random start.
    """
    n = area.size
    day = birth.astype("datetime64[D]").astype(np.int64)
    order = np.lexsort((rng.random(n), male, day, area))
    key_change = np.ones(n, dtype=np.bool_)
    sorted_keys = np.stack([area[order], day[order], male[order].astype(np.int64)])
    key_change[1:] = (sorted_keys[:, 1:] != sorted_keys[:, :-1]).any(axis=0)
    group = np.cumsum(key_change) - 1
    group_start = np.flatnonzero(key_change)
    rank = np.empty(n, dtype=np.int64)
    offset = rng.integers(0, 150, size=group_start.size)
    rank[order] = np.arange(n) - group_start[group] + offset[group]
    if n and rank.max() >= 499:
        raise InvalidInput("too many people share an area code, birth date and sex")
    sequence = 2 * rank + np.where(male, 1, 2)
    first17 = area * 10**11 + _yyyymmdd(birth) * 1000 + sequence
    return np.char.add(first17.astype(np.str_), _check_digits(first17))


def _yyyymmdd(dates: NDArray[np.datetime64]) -> IntArray:
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month_start = dates.astype("datetime64[M]")
    month = month_start.astype(np.int64) % 12 + 1
    day = (dates - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    return np.asarray(year * 10000 + month * 100 + day, dtype=np.int64)


def _check_digits(first17: IntArray) -> StrArray:
    total = np.zeros(first17.size, dtype=np.int64)
    for i in range(17):
        digit = (first17 // 10 ** (16 - i)) % 10
        total += digit * (2 ** (17 - i) % 11)
    return np.array(list("10X98765432"), dtype=np.str_)[total % 11]


def _phones(rng: np.random.Generator, n: int) -> StrArray:
    """Unique 11-digit mobile numbers with real prefixes (13x/15x/18x/19x)."""
    prefixes = np.array(_MOBILE_PREFIXES, dtype=np.int64)
    numbers = rng.choice(prefixes, size=n) * 10**8 + rng.integers(0, 10**8, size=n)
    for _ in range(100):
        _, first = np.unique(numbers, return_index=True)
        duplicate = np.ones(n, dtype=np.bool_)
        duplicate[first] = False
        if not duplicate.any():
            break
        k = int(duplicate.sum())
        numbers[duplicate] = rng.choice(prefixes, size=k) * 10**8 + rng.integers(0, 10**8, size=k)
    return numbers.astype(np.str_)


def _names(rng: np.random.Generator, *, household: IntArray, male: BoolArray) -> StrArray:
    """Surname shared within a household (spouses and some others differ), 1–2 given chars."""
    surnames = np.array(list(_SURNAMES), dtype=np.str_)
    weights = 1 / (np.arange(surnames.size) + 3.0)
    p = weights / weights.sum()
    n = household.size
    family = rng.choice(surnames, size=int(household.max()) + 1 if n else 0, p=p)
    surname = family[household] if n else np.array([], dtype=np.str_)
    own = (rng.random(n) < 0.3) & (_rank_within(household) > 0)
    surname[own] = rng.choice(surnames, size=int(own.sum()), p=p)
    male_chars = np.array(list(_GIVEN_MALE), dtype=np.str_)
    female_chars = np.array(list(_GIVEN_FEMALE), dtype=np.str_)
    first = np.where(male, rng.choice(male_chars, n), rng.choice(female_chars, n))
    second = np.where(male, rng.choice(male_chars, n), rng.choice(female_chars, n))
    second[rng.random(n) < 0.25] = ""
    return np.char.add(np.char.add(surname, first), second)


# --- helpers -------------------------------------------------------------------------


def _rank_within(group: IntArray) -> IntArray:
    """0-based position of each element within its run of equal, contiguous values."""
    n = group.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=np.bool_)
    start[1:] = group[1:] != group[:-1]
    start_index = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return (np.arange(n) - start_index).astype(np.int64)


def _per_building(sites: list[_Site], value: Callable[[_Site], str]) -> list[str]:
    return [value(s) for s in sites for _ in range(s.households.size)]


def _concat_float(arrays: list[FloatArray]) -> FloatArray:
    return np.concatenate(arrays).astype(np.float64) if arrays else np.zeros(0)


def _concat_int(arrays: list[IntArray]) -> IntArray:
    return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, dtype=np.int64)


def _column_bytes(column: NDArray[np.generic]) -> bytes:
    if column.dtype.kind == "U":
        return "\x1f".join(column.tolist()).encode() + b"\x1e"
    return np.ascontiguousarray(column).tobytes() + b"\x1e"


def _local_metres(lonlat: FloatArray, *, origin: tuple[float, float]) -> FloatArray:
    """Local equirectangular metres around ``origin``: enough for spacing rules."""
    k_lon = M_PER_DEG_LON_EQUATOR * math.cos(math.radians(origin[1]))
    return np.column_stack(
        ((lonlat[:, 0] - origin[0]) * k_lon, (lonlat[:, 1] - origin[1]) * M_PER_DEG_LAT)
    )


def _area_m2(geom: BaseGeometry) -> float:
    """Approximate area in m² (local equirectangular scale; for spacing rules only)."""
    lat = geom.centroid.y if not geom.is_empty else 0.0
    return float(geom.area) * M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat)) * M_PER_DEG_LAT


def _shrink(geom: BaseGeometry, *, margin_m: float) -> BaseGeometry:
    """``geom`` pulled in by about ``margin_m`` (falls back to ``geom`` if that empties it)."""
    inner = shapely.buffer(geom, -margin_m / M_PER_DEG_LAT)
    return geom if inner.is_empty else inner


def _spread_points(
    rng: np.random.Generator,
    *,
    region: BaseGeometry,
    count: int,
    min_spacing_m: float,
    centre: tuple[float, float] | None = None,
    sigma_m: float = 0.0,
    avoid: FloatArray | None = None,
) -> FloatArray:
    """``count`` random points inside ``region`` at least ``min_spacing_m`` apart.

    Gaussian around ``centre`` when given, else uniform; also kept that far from
    the ``avoid`` points. The spacing relaxes by 20 % after each 10 unlucky rounds,
    so it always terminates on a region with area.
    """
    placed = np.empty((0, 2)) if avoid is None else np.asarray(avoid, dtype=np.float64)
    already = placed.shape[0]
    if count == 0:
        return np.empty((0, 2))
    shapely.prepare(region)
    xmin, ymin, xmax, ymax = region.bounds
    origin = ((xmin + xmax) / 2, (ymin + ymax) / 2)
    spacing_m = min_spacing_m
    placed_m = _local_metres(placed, origin=origin)
    for attempt in range(400):
        gaussian = sigma_m if attempt < 200 else 0.0
        candidates = _candidates(
            rng, bounds=(xmin, ymin, xmax, ymax), centre=centre, sigma_m=gaussian, origin=origin
        )
        inside = candidates[shapely.contains_xy(region, candidates[:, 0], candidates[:, 1])]
        for point, point_m in zip(inside, _local_metres(inside, origin=origin), strict=True):
            if placed_m.shape[0] and np.hypot(*(placed_m - point_m).T).min() < spacing_m:
                continue
            placed = np.vstack([placed, point])
            placed_m = np.vstack([placed_m, point_m])
            if placed.shape[0] - already == count:
                return placed[already:]
        if attempt % 10 == 9:
            spacing_m *= 0.8
    raise InvalidInput(f"could not place {count} points in a region of {_area_m2(region):.0f} m²")


def _candidates(
    rng: np.random.Generator,
    *,
    bounds: tuple[float, float, float, float],
    centre: tuple[float, float] | None,
    sigma_m: float,
    origin: tuple[float, float],
) -> FloatArray:
    xmin, ymin, xmax, ymax = bounds
    if centre is None or sigma_m <= 0:
        return np.column_stack((rng.uniform(xmin, xmax, 64), rng.uniform(ymin, ymax, 64)))
    k_lon = M_PER_DEG_LON_EQUATOR * math.cos(math.radians(origin[1]))
    offsets = rng.normal(0.0, sigma_m, size=(64, 2)) / np.array([k_lon, M_PER_DEG_LAT])
    return np.asarray(np.asarray(centre) + offsets, dtype=np.float64)


def _scatter(
    rng: np.random.Generator, *, region: BaseGeometry, centres: FloatArray, sigma_m: float
) -> FloatArray:
    """One point per centre, Gaussian around it, inside ``region``, on the
    1e-5° grid and all distinct (rejection sampling; uniform after 40 rounds)."""
    n = centres.shape[0]
    out = np.zeros((n, 2))
    if n == 0:
        return out
    shapely.prepare(region)
    xmin, ymin, xmax, ymax = region.bounds
    k_lon = M_PER_DEG_LON_EQUATOR * math.cos(math.radians((ymin + ymax) / 2))
    scale = np.array([sigma_m / k_lon, sigma_m / M_PER_DEG_LAT])
    pending = np.arange(n)
    for attempt in range(200):
        if attempt < 40:
            candidates = centres[pending] + rng.normal(size=(pending.size, 2)) * scale
        else:
            candidates = np.column_stack(
                (rng.uniform(xmin, xmax, pending.size), rng.uniform(ymin, ymax, pending.size))
            )
        candidates = np.round(candidates, POINT_DECIMALS)
        ok = shapely.contains_xy(region, candidates[:, 0], candidates[:, 1])
        placed = np.ones(n, dtype=np.bool_)
        placed[pending] = False
        fresh = pending[ok]
        out[fresh] = candidates[ok]
        pending = np.sort(np.concatenate([pending[~ok], _collisions(out, fresh=fresh, old=placed)]))
        if pending.size == 0:
            return out
    raise InvalidInput(f"could not place {n} buildings in a region of {_area_m2(region):.0f} m²")


def _collisions(points: FloatArray, *, fresh: IntArray, old: BoolArray) -> IntArray:
    """The ``fresh`` indices whose point repeats an ``old`` point or an earlier fresh one."""
    if fresh.size == 0:
        return fresh
    keys = _point_keys(points)
    fresh_keys = keys[fresh]
    _, first = np.unique(fresh_keys, return_index=True)
    repeated = np.ones(fresh.size, dtype=np.bool_)
    repeated[first] = False
    repeated |= np.isin(fresh_keys, keys[old])
    return fresh[repeated]


def _point_keys(points: FloatArray) -> IntArray:
    """One int64 per point on the 1e-5° grid (lon and lat each fit in 26 bits)."""
    grid = np.round(points * 10**POINT_DECIMALS).astype(np.int64) + 2**25
    return np.asarray(grid[:, 0] * 2**26 + grid[:, 1], dtype=np.int64)
