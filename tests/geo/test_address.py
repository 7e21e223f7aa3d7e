"""Address normalising, parsing and matching against the standard address registry.

Two registries: a hand-written one whose traps are named in each test (a road
number in two communities, a community name in two townships, a township whose
short name starts a road, …), and the demo county (20,000 households), whose
every household address is rewritten the way a grid office types it and must
come back to its own building — or to a review queue, never to another building.
Timings are printed, not asserted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from geo.address import (
    AddressIndex,
    AddressMatch,
    AdminNames,
    ParsedAddress,
    RegistryAddress,
    chinese_to_int,
    normalise,
    parse,
)
from geo.address_noise import (
    DRAWS,
    BuildingParts,
    building_parts,
    noisy_address,
    noisy_addresses,
    registry_addresses,
)
from geo.demo import DemoCounty

# --- a hand-written registry --------------------------------------------------------------

_ROWS = [
    # id, township, community, road, house, estate, building, village group
    (1, "新城镇", "州背社区", "人民路", "12号", "翠湖花园", "1栋", None),
    (2, "新城镇", "州背社区", "人民路", "12号", "翠湖花园", "3栋", None),
    (3, "新城镇", "东南社区", "人民路", "12号", "金湾花园", "3栋", None),  # same road number
    (4, "新城镇", "东南社区", "新城路", "5号", "锦绣小区", "2栋", None),  # 新城路 vs 新城镇
    (5, "新城镇", "布龙村", None, "12号", None, None, "三组"),
    (6, "新城镇", "布龙村", None, "12号", None, None, "一组"),
    (7, "太平镇", "河村", None, "3号", None, None, "一组"),  # 河村 in two townships
    (8, "车岗镇", "河村", None, "3号", None, None, "一组"),
    (9, "稔村镇", "稔村", None, "5号", None, None, "二组"),  # 稔村: community and township stem
    (10, "新城镇", "州背社区", "人民北路", "8号", "凤凰名苑", "1栋", None),
    (11, "新城镇", "凤凰村", None, "7号", None, None, "一组"),  # 凤凰 starts 凤凰名苑 too
    (12, "新城镇", "东南社区", "新兴大道", "20号", "明珠豪庭", "1栋", None),  # 新兴 vs 新兴县
]


def _registry() -> list[RegistryAddress]:
    return [
        RegistryAddress(
            building_id=bid,
            county="新兴县",
            township=town,
            community=community,
            road=road,
            house_number=house,
            estate=estate,
            building_no=building,
            village_group=group,
            lon=112.2 + bid / 1000,
            lat=22.7,
            province="广东省",
            city="云浮市",
        )
        for bid, town, community, road, house, estate, building, group in _ROWS
    ]


@pytest.fixture(scope="module")
def index() -> AddressIndex:
    return AddressIndex(_registry())


# --- normalise ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("人民路１２号", "人民路12号"),  # full-width digits
        ("ａｂｃ小区Ａ座", "ABC小区A栋"),  # full-width letters; 座 → 栋
        ("新城镇 州背社区，人民路12号。", "新城镇州背社区人民路12号"),  # spaces, punctuation
        ("人民路十二号", "人民路12号"),
        ("翠湖花园三栋", "翠湖花园3栋"),
        ("二单元三零二室", "2单元302室"),
        ("一百零五号", "105号"),
        ("第三组", "3组"),
        ("第三村民小组", "3组"),
        ("3小组", "3组"),
        ("三组", "3组"),  # the canonical village group is Arabic: 三组 == 3组
        ("3幢", "3栋"),
        ("3号楼", "3栋"),
        ("3#楼", "3栋"),
        ("人民路12#", "人民路12号"),  # after a road, # is a house number
        ("一组5#", "1组5号"),  # after a village group too
        ("翠湖花园3#", "翠湖花园3栋"),  # elsewhere a building
        ("人民路12#3#", "人民路12号3栋"),
        ("302房", "302室"),
        ("302号房", "302室"),
        ("2 302", "2-302"),  # a space between numbers separates them
        ("2－302", "2-302"),
        ("2—302", "2-302"),
        ("三村一组", "三村1组"),  # numerals inside names stay
        ("五一村", "五一村"),
        ("六祖镇", "六祖镇"),
        ("012号", "12号"),
    ],
)
def test_normalise_variants(raw: str, expected: str) -> None:
    assert normalise(raw) == expected
    assert normalise(expected) == expected  # idempotent


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三", 3), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23), ("一百零五", 105),
     ("三零二", 302), ("两", 2)],
)  # fmt: skip
def test_chinese_to_int(numeral: str, value: int) -> None:
    assert chinese_to_int(numeral) == value


# --- parse -------------------------------------------------------------------------------


def test_parse_full_address_without_registry_names() -> None:
    p = parse("广东省云浮市新兴县新城镇州背社区人民路十二号翠湖花园三栋二单元三零二室")
    assert p == ParsedAddress(
        province="广东省", city="云浮市", county="新兴县", township="新城镇",
        community="州背社区", road="人民路", house_number="12号", estate="翠湖花园",
        building_no="3栋", unit="2单元", room="302室",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tail", "unit", "room"),
    [
        ("3栋2单元302室", "2单元", "302室"),
        ("3栋2-302", "2单元", "302室"),
        ("3栋302房", None, "302室"),
        ("3栋二单元302室", "2单元", "302室"),
        ("3栋2单元302", "2单元", "302室"),  # a bare number after the unit is the room
        ("3栋302", None, "302室"),
        ("3-2-302", "2单元", "302室"),
    ],
)
def test_parse_unit_and_room(tail: str, unit: str | None, room: str | None) -> None:
    p = parse("新城镇州背社区翠湖花园" + tail)
    assert (p.estate, p.building_no, p.unit, p.room) == ("翠湖花园", "3栋", unit, room)


def test_parse_village_address() -> None:
    p = parse("新兴县新城镇布龙村第三村民小组十二号201房")
    assert (p.community, p.village_group, p.house_number, p.room) == (
        "布龙村",
        "3组",
        "12号",
        "201室",
    )
    assert p.road is None and p.estate is None and p.building_no is None


def test_parse_estate_before_road_and_building_after_estate() -> None:
    p = parse("新城镇州背社区翠湖花园人民路12号3号楼")
    assert (p.road, p.house_number, p.estate, p.building_no) == (
        "人民路",
        "12号",
        "翠湖花园",
        "3栋",
    )
    p = parse("新城镇州背社区翠湖花园3号")  # 号 after an estate names the building
    assert (p.house_number, p.building_no) == (None, "3栋")


@pytest.mark.parametrize(
    ("text", "county", "township", "community"),
    [
        ("云浮新兴县新城镇州背社区人民路12号", "新兴县", "新城镇", "州背社区"),  # city without 市
        ("新兴新城镇州背社区人民路12号", "新兴县", "新城镇", "州背社区"),  # county without 县
        ("广东云浮新兴新城镇州背社区人民路12号", "新兴县", "新城镇", "州背社区"),
        ("新城镇州背社区人民路12号", None, "新城镇", "州背社区"),  # no prefix at all
        ("新城州背人民路12号", None, "新城镇", "州背社区"),  # no suffixes
        ("新城镇州背居委会人民路12号", None, "新城镇", "州背社区"),  # office for community
        ("新城镇布龙村委会3组12号", None, "新城镇", "布龙村"),
        ("稔村镇稔村2组5号", None, "稔村镇", "稔村"),
        ("稔村2组5号", None, None, "稔村"),  # the full community beats the township's stem
        ("新城路5号锦绣小区2栋", None, None, None),  # 新城路 is a road, not 新城(镇)
        ("新兴大道20号明珠豪庭1栋", None, None, None),  # 新兴大道 is a road, not 新兴(县)
    ],
)
def test_parse_with_registry_names(
    index: AddressIndex, text: str, county: str | None, township: str | None, community: str | None
) -> None:
    p = parse(text, known=index.names)
    assert (p.county, p.township, p.community) == (county, township, community)
    assert p.house_number is not None


def test_parse_roads_are_kept_whole(index: AddressIndex) -> None:
    assert parse("新城路5号锦绣小区2栋", known=index.names).road == "新城路"
    assert parse("新兴大道20号明珠豪庭1栋", known=index.names).road == "新兴大道"


def test_admin_names_accept_any_spelling() -> None:
    names = AdminNames(counties=frozenset({"新兴县"}), townships=frozenset({"新城镇"}))
    assert parse("新兴新城镇人民路1号", known=names).township == "新城镇"


# --- match on the hand-written registry ----------------------------------------------------


def _building(m: AddressMatch) -> int | None:
    assert (m.building_id is not None) == (m.level == "building" and m.status == "matched")
    return m.building_id


@pytest.mark.parametrize(
    "text",
    [
        "广东省云浮市新兴县新城镇州背社区人民路12号翠湖花园3栋",
        "新兴县新城镇州背社区人民路12号翠湖花园3栋2单元302室",
        "云浮新兴新城镇州背社区人民路12#翠湖花园3#2-302",
        "新城镇 州背社区 翠湖花园 人民路十二号 三幢 302房",
        "新城镇州背社区人民路１２号翠湖花园３座",
        "州背社区人民路12号3号楼",  # no estate: road number + building are enough
        "人民路12号翠湖花园3栋",  # no township or community: the estate tells them apart
        "新城州背人民路12号翠湖花园3栋",
    ],
)
def test_match_variants_find_the_building(index: AddressIndex, text: str) -> None:
    m = index.match(text)
    assert _building(m) == 2, m
    assert (m.township, m.community) == ("新城镇", "州背社区")
    assert m.lon == pytest.approx(112.202)


def test_exact_key_scores_one(index: AddressIndex) -> None:
    m = index.match("新城镇州背社区人民路12号翠湖花园3栋")
    assert (m.method, m.score, m.candidates) == ("exact", 1.0, ((2, 1.0),))
    assert m.parsed is not None and m.parsed.building_no == "3栋"


def test_road_number_in_two_communities_is_ambiguous(index: AddressIndex) -> None:
    m = index.match("新兴县人民路12号3栋")
    assert (m.status, m.building_id, m.level) == ("ambiguous", None, "township")
    assert {b for b, _ in m.candidates} == {2, 3}


def test_community_name_in_two_townships(index: AddressIndex) -> None:
    assert _building(index.match("太平镇河村一组3号")) == 7
    assert _building(index.match("车岗镇河村一组3号")) == 8
    m = index.match("河村一组3号")
    assert (m.status, m.building_id) == ("ambiguous", None)
    assert {b for b, _ in m.candidates} == {7, 8}
    m = index.match("河村")
    assert (m.status, m.level, m.building_id) == ("ambiguous", "county", None)


def test_village_addresses(index: AddressIndex) -> None:
    assert _building(index.match("新城镇布龙村三组12号")) == 5
    assert _building(index.match("布龙村第一村民小组十二号101房")) == 6
    assert _building(index.match("稔村二组5号")) == 9
    assert _building(index.match("稔村镇稔村二组五号")) == 9
    m = index.match("布龙村12号")  # no group: two houses fit
    assert (m.status, m.level, m.community) == ("ambiguous", "community", "布龙村")
    assert {b for b, _ in m.candidates} == {5, 6}


def test_short_names_never_eat_roads_or_estates(index: AddressIndex) -> None:
    assert _building(index.match("新城路5号锦绣小区2栋")) == 4
    assert _building(index.match("新兴大道20号明珠豪庭1栋")) == 12
    assert _building(index.match("凤凰名苑1栋")) == 10
    # A mistyped estate that starts like a community's stem: 凤凰名院 is not 凤凰村.
    assert _building(index.match("新城镇凤凰名院1栋")) == 10


@pytest.mark.parametrize(
    ("text", "level", "community"),
    [
        ("新城镇州背社区", "community", "州背社区"),
        ("州背社区", "community", "州背社区"),
        ("新城镇州背社区人民路99号翠湖花园3栋", "community", "州背社区"),  # no such number
        ("新城镇州背社区翠湖花园9栋", "community", "州背社区"),  # no such building
        ("新城镇", "township", None),
        ("广东省云浮市新兴县", "county", None),
        ("新兴县某某路1号", "county", None),
    ],
)
def test_fallback_to_the_named_area(
    index: AddressIndex, text: str, level: str, community: str | None
) -> None:
    m = index.match(text)
    assert (m.status, m.level, m.building_id, m.method) == ("matched", level, None, "fallback")
    assert m.community == community


@pytest.mark.parametrize("text", ["", "   ", "今天天气不错", "asdf qwer", "12345", "####"])
def test_garbage_is_unmatched(index: AddressIndex, text: str) -> None:
    m = index.match(text)
    assert (m.status, m.level, m.building_id, m.candidates) == ("unmatched", "none", None, ())


def test_small_typos_in_names(index: AddressIndex) -> None:
    m = index.match("新城镇州背社区人民路12号翠湖花圆3栋")  # 圆 for 园
    assert _building(m) == 2 and m.method == "fuzzy" and 0.6 < m.score < 1.0
    assert _building(index.match("新城镇州背社区人名路12号翠湖花园3栋")) == 2
    assert _building(index.match("新城镇洲背社区人民路12号翠湖花园3栋")) == 2


def test_never_guesses_a_different_road(index: AddressIndex) -> None:
    # 人民南路 is not in the registry; 人民路 and 人民北路 are other roads.
    m = index.match("新城镇州背社区人民南路12号3栋")
    assert m.building_id is None
    # A registry name is authoritative: 人民路8号 is not 人民北路8号.
    assert index.match("新城镇州背社区人民路8号凤凰名苑1栋").building_id is None


def test_conflicting_township_falls_back(index: AddressIndex) -> None:
    m = index.match("太平镇州背社区人民路12号翠湖花园3栋")  # 州背社区 is in 新城镇
    assert (m.building_id, m.level, m.township) == (None, "township", "太平镇")


# --- the demo county -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> DemoCounty:
    from db.demo import build_demo  # tests may import db; geo/ never does

    return build_demo(county_code="445321", households=20_000, seed=1)


@pytest.fixture(scope="module")
def demo_index(demo: DemoCounty) -> AddressIndex:
    registry = registry_addresses(demo.buildings)
    started = time.perf_counter()
    index = AddressIndex(registry)
    print(f"\nindex of {len(index)} buildings built in {time.perf_counter() - started:.3f} s")
    return index


def _score(index: AddressIndex, texts: list[str], truth: list[int]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text, true_id in zip(texts, truth, strict=True):
        m = index.match(text)
        if m.building_id is None:
            counts["fallback" if m.method == "fallback" else m.status] += 1
        else:
            counts["right" if m.building_id == true_id else "wrong"] += 1
    return counts


def test_every_household_address_finds_its_building(
    demo: DemoCounty, demo_index: AddressIndex
) -> None:
    households = demo.households
    rng = np.random.default_rng(20200206)
    texts = noisy_addresses(
        rng, demo.buildings, households.building, units=households.unit, rooms=households.room
    )
    started = time.perf_counter()
    counts = _score(demo_index, texts, households.building.tolist())
    elapsed = time.perf_counter() - started
    n = len(texts)
    print(
        f"\n{n} household addresses: {counts['right'] / n:.2%} at the true building, "
        f"wrong {counts['wrong'] / n:.3%}, ambiguous {counts['ambiguous']}, "
        f"fallback {counts['fallback']}, unmatched {counts['unmatched']}; "
        f"{n / elapsed:,.0f} addresses/s"
    )
    assert counts["wrong"] == 0
    assert counts["right"] >= 0.95 * n


def test_harder_noise_never_gives_a_wrong_building(
    demo: DemoCounty, demo_index: AddressIndex
) -> None:
    """Typos in 20 % of names, and township/community dropped even where that
    leaves the address ambiguous: review items are fine, a wrong building is not."""
    rng = np.random.default_rng(7)
    b, households = demo.buildings, demo.households
    parts = [building_parts(b, row=r) for r in range(len(b))]
    real = frozenset(p.road for p in parts) | frozenset(p.estate for p in parts)
    rows = rng.choice(len(households), size=5_000, replace=False)
    texts = [
        noisy_address(
            rng,
            building=parts[int(households.building[r])],
            unit=int(households.unit[r]),
            room=str(households.room[r]),
            may_omit_township=True,
            may_omit_community=True,
            typo_rate=0.2,
            real_names=real,
        )
        for r in rows
    ]
    counts = _score(demo_index, texts, households.building[rows].tolist())
    print(f"\nhard noise, {len(texts)} addresses: {dict(counts)}")
    assert counts["wrong"] == 0
    assert counts["right"] >= 0.8 * len(texts)


def test_demo_road_number_in_two_communities_is_ambiguous(
    demo: DemoCounty, demo_index: AddressIndex
) -> None:
    b = demo.buildings
    where: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in np.flatnonzero(b.road != "").tolist():
        where[(str(b.road[i]), str(b.house_no[i]), str(b.building_no[i]))].append(i)
    shared = [(key, ids) for key, ids in where.items() if len({b.community[i] for i in ids}) > 1]
    assert shared, "the demo should repeat some road numbers across communities"
    (road, house, building), ids = shared[0]
    m = demo_index.match(f"新兴县{road}{house}{building}")
    assert (m.status, m.building_id) == ("ambiguous", None)
    assert set(ids) <= {c for c, _ in m.candidates}
    # Naming the community resolves it.
    first = ids[0]
    m = demo_index.match(f"{b.township[first]}{b.community[first]}{road}{house}{building}")
    assert m.building_id == first


def test_demo_community_and_garbage(demo: DemoCounty, demo_index: AddressIndex) -> None:
    b = demo.buildings
    towns = defaultdict(set)
    for town, community in zip(b.township.tolist(), b.community.tolist(), strict=True):
        towns[community].add(town)
    community = next(c for c, t in sorted(towns.items()) if len(t) == 1)
    m = demo_index.match(f"新兴县{community}")
    assert (m.status, m.level, m.community, m.building_id) == (
        "matched",
        "community",
        community,
        None,
    )
    m = demo_index.match("请填写地址 N/A")
    assert (m.status, m.level, m.building_id) == ("unmatched", "none", None)


# --- the noise generator ---------------------------------------------------------------------


def test_noise_is_deterministic_and_row_by_row(demo: DemoCounty) -> None:
    b, households = demo.buildings, demo.households
    rows = np.arange(0, len(households), 97)
    building, units, rooms = households.building[rows], households.unit[rows], households.room[rows]
    first = noisy_addresses(np.random.default_rng(3), b, building, units=units, rooms=rooms)
    again = noisy_addresses(np.random.default_rng(3), b, building, units=units, rooms=rooms)
    assert first == again
    other = noisy_addresses(np.random.default_rng(4), b, building, units=units, rooms=rooms)
    assert first != other
    # Each address consumes DRAWS uniforms: one at a time gives the same texts.
    rng = np.random.default_rng(3)
    one_by_one = [
        noisy_addresses(
            rng, b, building[k : k + 1], units=units[k : k + 1], rooms=rooms[k : k + 1]
        )[0]
        for k in range(5)
    ]
    assert one_by_one == first[:5]
    expected = np.random.default_rng(3)
    expected.random(5 * DRAWS)
    assert rng.random() == expected.random()


def test_noise_covers_every_variant(demo: DemoCounty) -> None:
    b, households = demo.buildings, demo.households
    texts = noisy_addresses(
        np.random.default_rng(1),
        b,
        households.building,
        units=households.unit,
        rooms=households.room,
    )
    joined = "\n".join(texts)
    for needle in (
        "幢",
        "座",
        "号楼",
        "#",
        "１",
        " ",
        "，",
        "单元",
        "房",
        "-",
        "十",
        "三栋",
        "小组",
    ):
        assert needle in joined, needle
    starts = Counter(t[:3] for t in texts)
    assert starts["广东省"] > 0 and starts["新兴县"] > 0 and starts["云浮市"] > 0
    assert any(t.startswith("新兴") and not t.startswith("新兴县") for t in texts)
    # Omitted township (sometimes) and community (rarely).
    towns = set(b.township.tolist())
    no_township = sum(not any(town in t for town in towns) for t in texts)
    assert 0.02 * len(texts) < no_township < 0.3 * len(texts)
    # Estate before the road number in some urban addresses.
    urban = np.flatnonzero(b.road[households.building] != "")
    before = sum(
        texts[i].find(str(b.estate[households.building[i]]))
        < texts[i].find(str(b.road[households.building[i]]))
        for i in urban.tolist()
    )
    assert 0 < before < len(urban)
    # Normalising is idempotent on everything people type.
    assert all(normalise(normalise(t)) == normalise(t) for t in texts[:2000])


def test_single_noisy_address_keeps_parts_unless_allowed() -> None:
    parts = BuildingParts(
        province="广东省", city="云浮市", county="新兴县", township="新城镇",
        community="州背社区", road="人民路", house_no="12号", estate="翠湖花园",
        building_no="3栋", village_group="",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    texts = [noisy_address(rng, building=parts, unit=2, room="302") for _ in range(300)]
    assert all("新城镇" in t and "州背社区" in t for t in texts)
    index = AddressIndex(
        [RegistryAddress(1, "新兴县", "新城镇", "州背社区", "人民路", "12号", "翠湖花园", "3栋",
                         None, 112.2, 22.7)]
    )  # fmt: skip
    assert all(index.match(t).building_id == 1 for t in texts)


def test_geo_address_imports_no_web_framework_or_database() -> None:
    code = (
        "import sys, geo.address, geo.address_noise\n"
        "bad = [m for m in ('fastapi', 'starlette', 'sqlalchemy', 'psycopg', 'geoalchemy2', 'db')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
